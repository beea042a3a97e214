//! The codelab's Socket.IO protocol at the wire level, with the official npm
//! clients: socket.io-client 2.5 (Socket.IO v4 / Engine.IO v3, what the
//! codelab serves) and 4.x (Socket.IO v5 / Engine.IO v4).

mod common;

use realtimer_server::ServerConfig;

fn url() -> String {
    format!("http://{}", common::start_server(ServerConfig::default()))
}

#[test]
fn codelab_protocol_with_socket_io_client_2() {
    common::run_node("socketio-wire.mjs", &[&url(), "v2"]);
}

#[test]
fn codelab_protocol_with_socket_io_client_4() {
    common::run_node("socketio-wire.mjs", &[&url(), "v4"]);
}

#[test]
fn codelab_protocol_with_clients_2_and_4_in_one_room() {
    common::run_node("socketio-wire.mjs", &[&url(), "mixed"]);
}

#[test]
fn bad_input_over_socket_io_is_refused_and_the_server_stays_up() {
    common::run_node("socketio-wire.mjs", &[&url(), "bad"]);
}
