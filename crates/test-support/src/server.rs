//! The signaling server (`realtimer_server::serve`) in a thread of the
//! test process.

use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;

use realtimer_server::{serve, ServerConfig};

/// Starts the server on 127.0.0.1:0 in a thread of its own; it runs until
/// the test process exits.
pub fn start_server(config: ServerConfig) -> SocketAddr {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, config).await.unwrap();
        });
    });
    rx.recv().unwrap()
}
