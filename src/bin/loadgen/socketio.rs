//! A minimal Socket.IO client for the fanout scenario's comparison peer
//! (scripts/peer-socketio.mjs): Engine.IO v4 over WebSocket, one packet per text
//! frame. The server opens with `0{...}`, the client connects the default namespace
//! with `40` and gets `40{"sid":...}`; events are `42["name",data]`; the server pings
//! with `2` and the client answers `3`.

use std::io;
use std::net::SocketAddr;

use super::client::Client;

/// The Engine.IO v4 WebSocket endpoint.
const PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// Connects, opens the default namespace and joins `room` (the peer's `join` event,
/// answered with `joined`).
pub async fn join(addr: SocketAddr, room: &str) -> io::Result<Client> {
    let mut c = Client::connect(addr, PATH).await?;
    c.wait_for("\"sid\"").await?;
    c.send(b"40").await?;
    c.wait_for("40{").await?;
    c.send(format!(r#"42["join","{room}"]"#).as_bytes()).await?;
    c.wait_for(r#"42["joined""#).await?;
    Ok(c)
}

/// The `publish` event the peer broadcasts to `room` as `game`, with the same body
/// fields as the turntable game action (`from`, the send time `t` in µs, padding `p`).
pub fn publish(room: &str, from: &str, t: u64, pad: &str) -> String {
    format!(r#"42["publish",{{"room":"{room}","from":"{from}","t":{t},"p":"{pad}"}}]"#)
}

/// Reads at least once, answers the server's pings and calls `on_event` for every
/// event packet.
pub async fn recv(c: &mut Client, mut on_event: impl FnMut(&[u8])) -> io::Result<()> {
    let mut pinged = false;
    c.recv(|text| match text {
        b"2" => pinged = true,
        _ if text.starts_with(b"42") => on_event(text),
        _ => {}
    })
    .await?;
    if pinged {
        c.send(b"3").await?;
    }
    Ok(())
}
