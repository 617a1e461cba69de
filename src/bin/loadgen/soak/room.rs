//! What every connection of the soak does in its room: joins it (after identifying and
//! watching a few users), publishes into it, and reads it, counting each game message's
//! `seq` and its latency.

use std::cell::Cell;
use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use super::sequence::Sequence;
use crate::client::{Client, contains};
use crate::{Tally, field_u64, identify};

/// Connects as `user`, identifies, watches `watch` (none: no `subscribe`) and joins
/// game room `room`.
pub async fn join(
    addr: SocketAddr,
    user: &str,
    watch: &[String],
    room: usize,
) -> io::Result<Client> {
    let mut c = identify(addr, user).await?;
    if !watch.is_empty() {
        let ids = serde_json::to_string(watch).map_err(io::Error::other)?;
        c.send(format!(r#"{{"command":"subscribe","data":{ids}}}"#).as_bytes())
            .await?;
        c.wait_for(r#""command":"userchange""#).await?;
    }
    let join =
        format!(r#"{{"command":"joingame","data":{{"channel":"room{room}","self":"{user}"}}}}"#);
    c.send(join.as_bytes()).await?;
    c.wait_for(r#""command":"joined""#).await?;
    Ok(c)
}

/// A game message from `user` into `room`, stamped `t` (µs on the generator's clock);
/// `last` marks a publisher's final one.
pub fn publication(room: usize, user: &str, t: u64, last: bool) -> String {
    let mark = if last { r#","last":1"# } else { "" };
    format!(
        r#"{{"command":"game","data":{{"channel":"room{room}","actions":[{{"from":"{user}","t":{t}{mark}}}]}}}}"#
    )
}

/// Whether a game message is a publisher's final one.
pub fn is_last(text: &[u8]) -> bool {
    contains(text, br#""last":1"#)
}

/// Reads the room until `until` (`None`: until the connection fails) or until
/// `on_game` returns true, counting every game message into `seq` and `tally`;
/// `on_game` gets each one with its `seq`. Pings are answered on the way.
pub async fn read(
    client: &mut Client,
    until: Option<Instant>,
    tally: &Tally,
    seq: &Cell<Sequence>,
    mut on_game: impl FnMut(&[u8], u64) -> bool,
) -> io::Result<()> {
    let mut done = false;
    while !done {
        let timeout = match until {
            Some(at) => match at.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return Ok(()),
            },
            None => None,
        };
        client.set_read_timeout(timeout)?;
        let got = client
            .recv(|text| {
                if let Some(n) = game_seq(text) {
                    let mut s = seq.get();
                    s.record(n);
                    seq.set(s);
                    tally.delivered(text);
                    done |= on_game(text, n);
                }
            })
            .await;
        match got {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::TimedOut => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The `seq` of a turntable v1 game message; `None` for any other message.
fn game_seq(text: &[u8]) -> Option<u64> {
    if !text.starts_with(br#"{"command":"game","#) {
        return None;
    }
    field_u64(text, br#""seq":"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_game_message_s_number_is_read_and_others_have_none() {
        let game = br#"{"command":"game","data":{"channel":"room3","seq":17,"from":"s3","actions":[{"from":"s3","t":5,"timestamp":1}]}}"#;
        assert_eq!(game_seq(game), Some(17));
        let joined = br#"{"command":"memberjoined","data":{"channel":"room3","user":"c9"}}"#;
        assert_eq!(game_seq(joined), None);
    }

    #[test]
    fn only_the_final_publication_is_marked_last() {
        assert!(is_last(publication(2, "s2", 9, true).as_bytes()));
        assert!(!is_last(publication(2, "s2", 9, false).as_bytes()));
    }
}
