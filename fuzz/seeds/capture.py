#!/usr/bin/env python3
"""Records the UDP and TCP payloads crossing the loopback interface while a
command runs, and turns them into seed inputs for the fuzz targets.

    fuzz/seeds/capture.py LABEL -- COMMAND...

Run as root (an AF_PACKET socket on `lo`). Each payload is sorted by its
first byte as RFC 7983 §7 demultiplexes a WebRTC 5-tuple (STUN 0..3, DTLS
20..63, TURN ChannelData 64..79, RTP/RTCP 128..191) and written, in the
input format of each target that reads such bytes, to
fuzz/corpus/TARGET/seed-LABEL-<sha1 prefix> (the names .gitignore keeps).
At most PER_KIND payloads of each (target, first byte, length bucket) are
kept, so a long capture adds a few dozen distinct seeds, not thousands of
alike ones. Everything on `lo` is recorded, other programs' traffic too.

The seeds in the repository came from (Chromium's STUN, DTLS handshake
and records with SCTP inside; coturn's STUN/TURN over UDP and TCP):
  capture.py chromium -- cargo nextest run -p realtimer --test chromium \
      chromium_offers_rust_answers rust_offers_chromium_answers
  capture.py coturn   -- fuzz/seeds/coturn.sh
"""
import hashlib
import os
import socket
import struct
import subprocess
import sys
import threading

ETH_P_ALL = 0x0003
PER_KIND = 3
CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus")


def payloads(frame):
    """(protocol, payload) of an Ethernet frame on `lo`, IPv4 or IPv6."""
    ethertype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if ethertype == 0x0800 and len(ip) >= 20:
        header_len = (ip[0] & 0x0F) * 4
        proto, body = ip[9], ip[header_len:struct.unpack("!H", ip[2:4])[0]]
    elif ethertype == 0x86DD and len(ip) >= 40:
        proto, body = ip[6], ip[40 : 40 + struct.unpack("!H", ip[4:6])[0]]
    else:
        return None
    if proto == 17 and len(body) >= 8:
        return "udp", body[8:]
    if proto == 6 and len(body) >= 20:
        data = body[(body[12] >> 4) * 4 :]
        return ("tcp", data) if data else None
    return None


def kind(first):
    if first <= 3:
        return "stun"
    if 20 <= first <= 63:
        return "dtls"
    if 64 <= first <= 79:
        return "channeldata"
    if 128 <= first <= 191:
        return "rtp"
    return None


def seeds_for(proto, data):
    """(target, input) pairs: each target's own input format."""
    k = kind(data[0])
    out = []
    if proto == "tcp":
        # A TURN stream's bytes, read in 61-byte chunks (turn_stream's
        # first byte 0 means chunks of 1; 1 means 62).
        if k in ("stun", "channeldata"):
            out += [("turn_stream", b"\x01" + data)]
        return out
    if k == "stun":
        out += [("stun_decode", data)]
        if len(data) >= 2 and len(data) <= 255:
            # ice_agent: a config byte, then [flags, len, bytes]: flags 1
            # re-signs a request with the agent's key, 2 a response to its
            # last request with the peer's.
            is_request = struct.unpack("!H", data[:2])[0] & 0x0110 == 0
            out += [("ice_agent", bytes([0, 1 if is_request else 2, len(data)]) + data)]
    if k == "dtls":
        # dtls_input: flag 0 (fresh server), one datagram with a u16 length.
        out += [("dtls_input", b"\x00" + struct.pack("!H", len(data)) + data)]
    if k == "rtp":
        out += [("rtp_packets", data)]
        # srtp_unprotect: selector bit 7 set tries SRTP, clear SRTCP.
        is_rtcp = 192 <= data[1] <= 223
        out += [("srtp_unprotect", (b"\x00" if is_rtcp else b"\x80") + data)]
    if k is not None:
        # rtc_datagrams: a length byte whose top two bits name the RFC 7983
        # range, then at most 63 bytes of the datagram.
        steer = {"stun": 0, "dtls": 1, "channeldata": 2, "rtp": 3}[k]
        chunk = data[:63]
        out += [("rtc_datagrams", bytes([steer << 6 | len(chunk)]) + chunk)]
    return out


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    label, command = sys.argv[1], sys.argv[3:]
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(ETH_P_ALL))
    sock.bind(("lo", 0))
    sock.settimeout(0.2)
    frames, done = [], threading.Event()

    def record():
        while not done.is_set():
            try:
                frame, address = sock.recvfrom(65535)
            except socket.timeout:
                continue
            # Each frame on lo is seen outgoing and incoming: keep one.
            if address[2] != socket.PACKET_OUTGOING:
                frames.append(frame)

    recorder = threading.Thread(target=record)
    recorder.start()
    status = subprocess.call(command)
    done.set()
    recorder.join()

    kept, written = {}, 0
    for frame in frames:
        found = payloads(frame)
        if not found or not found[1]:
            continue
        proto, data = found
        for target, seed in seeds_for(proto, data):
            bucket = (target, data[0], len(data).bit_length())
            if kept.get(bucket, 0) >= PER_KIND:
                continue
            kept[bucket] = kept.get(bucket, 0) + 1
            directory = os.path.join(CORPUS, target)
            os.makedirs(directory, exist_ok=True)
            name = f"seed-{label}-{hashlib.sha1(seed).hexdigest()[:12]}"
            with open(os.path.join(directory, name), "wb") as f:
                f.write(seed)
            written += 1
    print(f"{len(frames)} frames, {written} seeds written", file=sys.stderr)
    sys.exit(status)


if __name__ == "__main__":
    main()
