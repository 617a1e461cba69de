//! Questions and orders from the HTTP API. The shard serving a request sends a
//! [`Query`] to the shards that know the answer (the owner of a channel, or every
//! shard for what is spread over them, like a user's connections); each answers with an
//! [`Answer`] routed back to the asking shard, where the engine hands it to the runtime
//! through [`Outbox::answer`] to complete the request.

use std::rc::Rc;

use super::message::{Answer, ConnId, Event, Query, ShardMsg};
use super::ownership::ShardId;
use super::{Engine, Outbox};

impl Engine {
    /// Sends `query` to shard `to`; its answer comes back through [`Outbox::answer`]
    /// with the same `ticket`. It is sent even to an unreachable shard: the caller
    /// asks only reachable ones ([`Engine::node_reachable`]).
    pub fn ask(&mut self, to: ShardId, ticket: u64, query: Query, out: &mut impl Outbox) {
        let msg = ShardMsg::Query {
            from: self.me,
            ticket,
            query,
        };
        if to == self.me {
            self.loopback.push_back(msg);
        } else {
            out.send(to, msg);
        }
        self.drain_loopback(out);
    }

    /// The owner shard of a channel or user, for queries that go to one shard.
    pub fn owner_of(&self, id: &str) -> ShardId {
        self.owner(id)
    }

    /// Answers a query from shard `from`.
    pub(super) fn on_query(
        &mut self,
        from: ShardId,
        ticket: u64,
        query: Query,
        out: &mut impl Outbox,
    ) {
        let answer = match query {
            Query::User { user } => Answer::Count {
                connections: self.local_users.get(&*user).map_or(0, |u| u.conns.len()),
                status: self.owned_users.get(&user).map(|rec| rec.status),
            },
            Query::Disconnect { user } => {
                let conns = self
                    .local_users
                    .get(&*user)
                    .map(|u| u.conns.clone())
                    .unwrap_or_default();
                out.deliver(&conns, &Event::Disconnected);
                Answer::Count {
                    connections: conns.len(),
                    status: None,
                }
            }
            Query::Reload => {
                let conns: Vec<_> = self.conns.keys().copied().collect();
                out.deliver(&conns, &Event::Reload);
                Answer::Count {
                    connections: conns.len(),
                    status: None,
                }
            }
            Query::Kick {
                channel,
                user,
                message,
            } => Answer::Count {
                connections: self.kick(&channel, user.as_deref(), message, out),
                status: None,
            },
            Query::CreateGame(info) => {
                Answer::Games(self.create_game(info, out).into_iter().collect())
            }
            Query::Profiles { users } => Answer::Profiles(
                users
                    .into_iter()
                    .filter_map(|u| {
                        let profile = self.local_users.get(&*u)?.profile.clone()?;
                        Some((u, profile))
                    })
                    .collect(),
            ),
            Query::RoomPost { room, content } => Answer::Published {
                seq: self.post_to_room(&room, content, out),
            },
            Query::ListGames => Answer::Games(self.local_games()),
            Query::CloseGame { id } => {
                Answer::Games(self.close_game(&id, out).into_iter().collect())
            }
            Query::Members { channel } => Answer::Members(
                self.owned_channels
                    .get(&channel)
                    .map(|rec| rec.members().map(Box::from).collect())
                    .unwrap_or_default(),
            ),
            Query::Publish { channel, data } => {
                let seq = self.sequence_and_send(&channel, Box::from(""), data, None, out);
                Answer::Published { seq }
            }
        };
        self.route(from, ShardMsg::Answer { ticket, answer }, out);
    }

    /// Takes this shard's connections (of `user`, or all) out of `channel`; returns
    /// how many there were.
    fn kick(
        &mut self,
        channel: &str,
        user: Option<&str>,
        message: Box<str>,
        out: &mut impl Outbox,
    ) -> usize {
        let kicked: Vec<(ConnId, Rc<str>)> = self
            .conns
            .iter()
            .filter(|(_, local)| local.tie(channel).is_some())
            .map(|(conn, local)| (*conn, local.user.clone().unwrap_or_else(|| Rc::from(""))))
            .filter(|(_, who)| user.is_none_or(|u| **who == *u))
            .collect();
        let event = Event::Kicked {
            channel: Box::from(channel),
            message,
        };
        for (conn, who) in &kicked {
            self.untie(*conn, who, channel, out);
            out.deliver(&[*conn], &event);
        }
        kicked.len()
    }
}
