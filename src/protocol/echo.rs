//! The test services: `/echo` sends every message back (the Autobahn TestSuite's and
//! sockjs-protocol's echo), and SockJS's `close` service ends every session as it
//! opens. Neither takes part in the engine.

use super::close::CloseReason;
use super::contract::{Action, Context, Dialect, Fault, Inbound, Keepalive, Settings};
use crate::engine::Event;

/// Every text and binary message sent back as it came.
pub struct Echo;

impl Dialect for Echo {
    type Session = ();
    const NAME: &'static str = "echo";
    const ENGINE: bool = false;

    fn open(_: Option<&str>, _: &Settings, _: &mut Vec<Action>) {}

    fn on_message(_: &mut (), msg: Inbound<'_>, _: &Context<'_>, out: &mut Vec<Action>) {
        out.push(match msg {
            Inbound::Text(text) => Action::send(text.to_vec()),
            Inbound::Binary(data) => Action::SendBinary(data.to_vec()),
        });
    }

    fn encode(_: &Event, _: &mut Vec<u8>) -> bool {
        false
    }

    fn keepalive(settings: &Settings) -> Keepalive {
        Keepalive::websocket(settings)
    }

    fn on_fault(_: &mut (), _: Fault, out: &mut Vec<Action>) {
        out.push(Action::Close(CloseReason::SERVER_FATAL));
    }
}

/// SockJS's `close` test service: every session is closed with 3000 "Go away!" as soon
/// as it opens.
pub struct GoAway;

const GO_AWAY: CloseReason = CloseReason::new(3000, "Go away!");

impl Dialect for GoAway {
    type Session = ();
    const NAME: &'static str = "goaway";
    const ENGINE: bool = false;

    fn open(_: Option<&str>, _: &Settings, out: &mut Vec<Action>) {
        out.push(Action::Close(GO_AWAY));
    }

    fn on_message(_: &mut (), _: Inbound<'_>, _: &Context<'_>, _: &mut Vec<Action>) {}

    fn encode(_: &Event, _: &mut Vec<u8>) -> bool {
        false
    }

    fn keepalive(settings: &Settings) -> Keepalive {
        Keepalive::websocket(settings)
    }

    fn on_fault(_: &mut (), _: Fault, out: &mut Vec<Action>) {
        out.push(Action::Close(GO_AWAY));
    }
}
