//! The game lobby (the MMOTD seed's "creating and managing games"). A game is the
//! channel `game:<id>`: its record (name, player limit, metadata) lives on that
//! channel's owner shard, beside the roster, so a join is checked against the limit
//! where the roster is. Players join and leave the game's channel over any dialect;
//! its members hear of it as of any channel, and the lobby — the channel `lobby` — gets
//! a publication for every change:
//!
//! ```text
//! {"type":"game_created","game":{"id","name","max_players","players","metadata"}}
//! {"type":"player_joined","game":ID,"user":U,"players":N}
//! {"type":"player_left","game":ID,"user":U,"players":N}
//! {"type":"game_closed","game":ID}
//! ```
//!
//! The `game:` prefix is reserved: joining `game:<id>` needs the game to exist and
//! have room.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::message::{ChannelMsg, ErrorCode};
use super::{Engine, Outbox};

/// The channel every lobby change is published on.
pub const LOBBY: &str = "lobby";
/// The prefix of game channels.
pub const GAME_PREFIX: &str = "game:";

/// A game as the lobby lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GameInfo {
    pub id: Box<str>,
    pub name: Box<str>,
    pub max_players: usize,
    /// Application data as JSON, passed through.
    pub metadata: Box<str>,
    /// Members of the game's channel now.
    pub players: usize,
}

impl GameInfo {
    /// The game as the API and the lobby's `game_created` show it.
    pub fn view(&self) -> GameView<'_> {
        GameView {
            id: &self.id,
            name: &self.name,
            max_players: self.max_players,
            players: self.players,
            metadata: serde_json::from_str(&self.metadata).unwrap_or(Value::Null),
        }
    }

    /// [`GameInfo::view`] as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).expect("a game's view is plain JSON")
    }
}

/// A game as clients see it: the API's answers and the lobby's `game_created`.
#[derive(Debug, Serialize)]
pub struct GameView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub max_players: usize,
    pub players: usize,
    /// The application's metadata, parsed (`null` if it was not JSON).
    pub metadata: Value,
}

/// A change the lobby channel announces: the data of its publications, the same in
/// every dialect (see the module doc for the shapes).
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LobbyEvent<'a> {
    GameCreated {
        game: GameView<'a>,
    },
    PlayerJoined {
        game: &'a str,
        user: &'a str,
        players: usize,
    },
    PlayerLeft {
        game: &'a str,
        user: &'a str,
        players: usize,
    },
    GameClosed {
        game: &'a str,
    },
}

/// What the owner keeps of a game (players are the channel's roster).
#[derive(Debug)]
pub(super) struct Game {
    name: Box<str>,
    max_players: usize,
    metadata: Box<str>,
}

/// A player joined or left a game.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PlayerChange {
    Joined,
    Left,
}

impl Engine {
    /// Creates a game on this (its channel's owner) shard and tells the lobby; `None`
    /// if the id is taken.
    pub(super) fn create_game(
        &mut self,
        info: GameInfo,
        out: &mut impl Outbox,
    ) -> Option<GameInfo> {
        let channel = format!("{GAME_PREFIX}{}", info.id).into_boxed_str();
        if self.games.contains_key(&channel) {
            return None;
        }
        let game = Game {
            name: info.name.clone(),
            max_players: info.max_players,
            metadata: info.metadata.clone(),
        };
        self.games.insert(channel, game);
        self.announce(&LobbyEvent::GameCreated { game: info.view() }, out);
        Some(info)
    }

    /// Closes a game: forgets it and tells the lobby (the caller kicks its players).
    pub(super) fn close_game(&mut self, id: &str, out: &mut impl Outbox) -> Option<GameInfo> {
        let channel = format!("{GAME_PREFIX}{id}");
        let info = self.game_info(&channel)?;
        self.games.remove(&*channel);
        self.announce(&LobbyEvent::GameClosed { game: id }, out);
        Some(info)
    }

    /// The games this shard owns.
    pub(super) fn local_games(&self) -> Vec<GameInfo> {
        self.games
            .keys()
            .filter_map(|channel| self.game_info(channel))
            .collect()
    }

    fn game_info(&self, channel: &str) -> Option<GameInfo> {
        let game = self.games.get(channel)?;
        Some(GameInfo {
            id: Box::from(&channel[GAME_PREFIX.len()..]),
            name: game.name.clone(),
            max_players: game.max_players,
            metadata: game.metadata.clone(),
            players: self.players(channel),
        })
    }

    fn players(&self, channel: &str) -> usize {
        self.owned_channels
            .get(channel)
            .map_or(0, |rec| rec.members().count())
    }

    /// Why `user` may not join `channel`, if it is a game that does not exist or is full.
    pub(super) fn game_refusal(&self, channel: &str, user: &str) -> Option<ErrorCode> {
        if !channel.starts_with(GAME_PREFIX) {
            return None;
        }
        let Some(game) = self.games.get(channel) else {
            return Some(ErrorCode::UnknownGame);
        };
        let rec = self.owned_channels.get(channel);
        let already = rec.is_some_and(|rec| rec.members().any(|m| m == user));
        (!already && self.players(channel) >= game.max_players).then_some(ErrorCode::GameFull)
    }

    /// Tells the lobby a player joined or left a game (no-op for other channels).
    pub(super) fn player_changed(
        &mut self,
        channel: &str,
        user: &str,
        change: PlayerChange,
        out: &mut impl Outbox,
    ) {
        if !self.games.contains_key(channel) {
            return;
        }
        let (game, players) = (&channel[GAME_PREFIX.len()..], self.players(channel));
        let event = match change {
            PlayerChange::Joined => LobbyEvent::PlayerJoined {
                game,
                user,
                players,
            },
            PlayerChange::Left => LobbyEvent::PlayerLeft {
                game,
                user,
                players,
            },
        };
        self.announce(&event, out);
    }

    /// Publishes a lobby change on the lobby channel, through its owner.
    fn announce(&mut self, event: &LobbyEvent<'_>, out: &mut impl Outbox) {
        let data = serde_json::to_string(event).expect("a lobby event is plain JSON");
        let msg = ChannelMsg::Announce {
            channel: Box::from(LOBBY),
            data: data.into_boxed_str(),
        };
        self.send_to_owner_of_channel(msg, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lobby_events_have_the_documented_shapes() {
        let info = GameInfo {
            id: "g1".into(),
            name: "Duel".into(),
            max_players: 2,
            metadata: r#"{"map":"dust"}"#.into(),
            players: 0,
        };
        let shapes = [
            (
                LobbyEvent::GameCreated { game: info.view() },
                r#"{"type":"game_created","game":{"id":"g1","name":"Duel","max_players":2,"players":0,"metadata":{"map":"dust"}}}"#,
            ),
            (
                LobbyEvent::PlayerJoined {
                    game: "g1",
                    user: "1:1",
                    players: 1,
                },
                r#"{"type":"player_joined","game":"g1","user":"1:1","players":1}"#,
            ),
            (
                LobbyEvent::PlayerLeft {
                    game: "g1",
                    user: "1:1",
                    players: 0,
                },
                r#"{"type":"player_left","game":"g1","user":"1:1","players":0}"#,
            ),
            (
                LobbyEvent::GameClosed { game: "g1" },
                r#"{"type":"game_closed","game":"g1"}"#,
            ),
        ];
        for (event, text) in shapes {
            assert_eq!(serde_json::to_string(&event).unwrap(), text);
        }
    }
}
