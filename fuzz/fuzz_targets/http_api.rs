//! The server's HTTP API as a hostile client reaches it: the whole router
//! of `realtimer serve` (the web app, `/ws` and Socket.IO handshakes,
//! `/socket.io/socket.io.js`, WHIP and WHEP with their PATCH and DELETE)
//! takes requests built from the input, on one runtime and one SFU kept
//! across inputs. No request may panic it or hang it (each answer is read
//! in full within the runtime).
//!
//! The input is a list of requests separated by `\0`; each is a method
//! line (`METHOD PATH`), header lines (`name: value`), an empty line and
//! the body, as in HTTP/1.1. `{loc}` in a path stands for the last
//! `Location` the server answered (a WHIP session), so PATCH and DELETE
//! reach a live session.
#![no_main]

use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Method, Request};
use axum::Router;
use http_body_util::BodyExt;
use libfuzzer_sys::fuzz_target;
use realtimer_server::sfu::{whip, SfuService, SfuSettings};
use realtimer_server::{Hub, RoomsConfig};
use tower::ServiceExt;

struct Server {
    runtime: tokio::runtime::Runtime,
    router: Router,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let router = runtime.block_on(async {
            let sfu = SfuService::start(SfuSettings::default())
                .await
                .expect("the SFU binds loopback");
            realtimer_server::app(Hub::new(RoomsConfig::default()), None)
                .merge(whip::routes(sfu, None))
        });
        Server { runtime, router }
    })
}

/// One request from its text form; `None` when it cannot be one (a
/// method or header axum's types refuse before any handler runs).
fn request(text: &[u8], location: &str) -> Option<Request<Body>> {
    let (head, body) = match text.windows(2).position(|w| w == b"\n\n") {
        Some(at) => (&text[..at], &text[at + 2..]),
        None => (text, &[][..]),
    };
    let head = std::str::from_utf8(head).ok()?;
    let mut lines = head.lines();
    let (method, path) = lines.next()?.split_once(' ')?;
    let path = path.replace("{loc}", location);
    let uri = if path.starts_with('/') {
        path
    } else {
        format!("/{path}")
    };
    let mut builder = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).ok()?)
        .uri(uri);
    for line in lines {
        let (name, value) = line.split_once(':')?;
        builder = builder.header(
            HeaderName::from_bytes(name.trim().as_bytes()).ok()?,
            HeaderValue::from_str(value.trim()).ok()?,
        );
    }
    builder.body(Body::from(body.to_vec())).ok()
}

fuzz_target!(|data: &[u8]| {
    let server = server();
    let mut location = String::from("/whip/r/none");
    for text in data.split(|b| *b == 0).take(8) {
        let Some(request) = request(text, &location) else {
            continue;
        };
        server.runtime.block_on(async {
            let response = server
                .router
                .clone()
                .oneshot(request)
                .await
                .expect("the router is infallible");
            if let Some(l) = response
                .headers()
                .get("location")
                .and_then(|l| l.to_str().ok())
            {
                location = l.to_owned();
            }
            // Read the whole answer: a body that never ends would hang here.
            let _ = response.into_body().collect().await;
        });
    }
});
