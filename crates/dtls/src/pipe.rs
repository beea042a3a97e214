//! The in-memory datagram "socket" OpenSSL reads and writes.
//!
//! `openssl::ssl::SslStream` wraps any `Read + Write` in a BIO. This one
//! keeps datagram boundaries in both directions, so DTLS works over it as
//! over a UDP socket, without any IO:
//! - a read hands OpenSSL one whole received datagram, or `WouldBlock`
//!   (OpenSSL then reports `WANT_READ` and we return to the caller);
//! - each write is one DTLS record; records written in one burst are packed
//!   into one datagram while they fit the MTU (RFC 6347 §4.1.1 allows
//!   several records per datagram), and a flush (OpenSSL flushes at the end
//!   of every flight) or [`DatagramPipe::close_datagram`] ends the datagram.

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use bytes::Bytes;

use crate::record;

/// Received datagrams for OpenSSL to read, datagrams OpenSSL wrote for us
/// to send.
#[derive(Debug)]
pub(crate) struct DatagramPipe {
    incoming: VecDeque<Bytes>,
    outgoing: VecDeque<Bytes>,
    /// The datagram being assembled from records.
    open: Vec<u8>,
    mtu: usize,
    /// Datagrams closed so far (never decreases), to tell which ones a call
    /// into OpenSSL produced.
    closed: u64,
    /// The next epoch-0 record sequence number we send
    /// (see [`record::renumber_epoch0`]).
    epoch0_seq: u64,
    /// Epoch-1 records OpenSSL wrote (our Finished), for
    /// [`crate::protection::RecordProtection::derive`]; bounded by
    /// [`EPOCH1_KEPT`].
    /// `None` once taken.
    epoch1_written: Option<Vec<Vec<u8>>>,
}

/// How many of our epoch-1 records are kept: a Finished and its resends.
const EPOCH1_KEPT: usize = 8;

impl DatagramPipe {
    pub(crate) fn new(mtu: usize) -> Self {
        Self {
            incoming: VecDeque::new(),
            outgoing: VecDeque::new(),
            open: Vec::new(),
            mtu,
            closed: 0,
            epoch0_seq: 0,
            epoch1_written: Some(Vec::new()),
        }
    }

    pub(crate) fn push_incoming(&mut self, datagram: Bytes) {
        self.incoming.push_back(datagram);
    }

    /// Drops received datagrams OpenSSL has not read (after a failure).
    pub(crate) fn clear_incoming(&mut self) {
        self.incoming.clear();
    }

    /// Queues a datagram we resend ourselves, its epoch-0 records renumbered.
    pub(crate) fn push_retransmission(&mut self, datagram: &[u8]) {
        let mut copy = datagram.to_vec();
        record::renumber_epoch0(&mut copy, &mut self.epoch0_seq);
        self.outgoing.push_back(Bytes::from(copy));
    }

    /// Queues a datagram that is already whole (one record of ours).
    pub(crate) fn push_datagram(&mut self, datagram: Bytes) {
        self.outgoing.push_back(datagram);
    }

    /// The epoch-1 records OpenSSL wrote so far; stops keeping them.
    pub(crate) fn take_epoch1_written(&mut self) -> Vec<Vec<u8>> {
        self.epoch1_written.take().unwrap_or_default()
    }

    pub(crate) fn pop_outgoing(&mut self) -> Option<Bytes> {
        self.outgoing.pop_front()
    }

    pub(crate) fn outgoing_len(&self) -> usize {
        self.outgoing.len()
    }

    /// Ends the datagram being assembled, if any.
    pub(crate) fn close_datagram(&mut self) {
        if !self.open.is_empty() {
            let datagram = Bytes::from(std::mem::take(&mut self.open));
            self.outgoing.push_back(datagram);
            self.closed += 1;
        }
    }

    /// A mark to pass to [`DatagramPipe::written_since`] later.
    pub(crate) fn mark(&self) -> u64 {
        self.closed
    }

    /// The datagrams OpenSSL wrote since `mark` (call after
    /// [`DatagramPipe::close_datagram`], before anything is popped).
    pub(crate) fn written_since(&self, mark: u64) -> Vec<Bytes> {
        let n = usize::try_from(self.closed - mark).unwrap_or(usize::MAX);
        let skip = self.outgoing.len().saturating_sub(n);
        self.outgoing.iter().skip(skip).cloned().collect()
    }
}

impl Read for DatagramPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.incoming.pop_front() {
            // A datagram larger than OpenSSL's buffer is truncated, as a UDP
            // socket would; its records then fail to parse and are dropped.
            Some(datagram) => {
                let n = datagram.len().min(buf.len());
                buf[..n].copy_from_slice(&datagram[..n]);
                Ok(n)
            }
            None => Err(io::ErrorKind::WouldBlock.into()),
        }
    }
}

impl Write for DatagramPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.open.is_empty() && self.open.len() + buf.len() > self.mtu {
            self.close_datagram();
        }
        let start = self.open.len();
        self.open.extend_from_slice(buf);
        record::renumber_epoch0(&mut self.open[start..], &mut self.epoch0_seq);
        // A write may hold several records (OpenSSL buffers a flight).
        if let Some(kept) = &mut self.epoch1_written {
            if kept.len() < EPOCH1_KEPT && record::has_epoch1_record(buf) {
                kept.push(buf.to_vec());
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.close_datagram();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_pack_up_to_the_mtu_and_flush_ends_a_datagram() {
        let mut p = DatagramPipe::new(100);
        let mark = p.mark();
        p.write_all(&[1; 60]).unwrap();
        p.write_all(&[2; 30]).unwrap();
        p.write_all(&[3; 30]).unwrap(); // 120 > 100: new datagram
        p.flush().unwrap();
        p.write_all(&[4; 10]).unwrap();
        p.close_datagram();
        let sent = p.written_since(mark);
        let lens: Vec<usize> = sent.iter().map(Bytes::len).collect();
        assert_eq!(lens, vec![90, 30, 10]);
        assert_eq!(p.outgoing_len(), 3);
    }

    #[test]
    fn reads_one_datagram_at_a_time_then_would_block() {
        let mut p = DatagramPipe::new(1200);
        p.push_incoming(Bytes::from_static(b"abc"));
        p.push_incoming(Bytes::from_static(b"de"));
        let mut buf = [0; 16];
        assert_eq!(p.read(&mut buf).unwrap(), 3);
        assert_eq!(p.read(&mut buf).unwrap(), 2);
        assert_eq!(
            p.read(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }
}
