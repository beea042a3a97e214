//! What the browser tests serve: one page at http://localhost:PORT/ and
//! its signaling WebSocket at /ws, whose JSON messages go both ways.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::header;
use axum::response::Html;
use axum::routing::get;
use axum::Router;
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use serde_json::Value;
use tokio::sync::mpsc;

/// What the media pages share (signaling, checks, the test pattern's
/// counter band), served at /media-page.js.
const MEDIA_PAGE_JS: &str = include_str!("../../../../tests/browser/media-page.js");

/// Serves `page`, the script the media pages share, and the page's /ws;
/// returns the port and the sockets the page opens.
pub(crate) async fn serve(page: &'static str) -> (u16, mpsc::UnboundedReceiver<WebSocket>) {
    let (sock_tx, sock_rx) = mpsc::unbounded_channel::<WebSocket>();
    let app = Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route(
            "/media-page.js",
            get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], MEDIA_PAGE_JS) }),
        )
        .route(
            "/ws",
            get(move |up: WebSocketUpgrade| {
                let tx = sock_tx.clone();
                async move {
                    up.on_upgrade(move |s| async move {
                        let _ = tx.send(s);
                    })
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (port, sock_rx)
}

/// A sender whose JSON values a task writes to the socket, as text, until
/// the page is gone.
pub(crate) fn json_sender(
    mut ws_tx: SplitSink<WebSocket, Message>,
) -> mpsc::UnboundedSender<Value> {
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Value>();
    tokio::spawn(async move {
        while let Some(v) = out_rx.recv().await {
            if ws_tx
                .send(Message::Text(v.to_string().into()))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    out_tx
}
