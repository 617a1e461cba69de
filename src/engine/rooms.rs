//! Chat rooms (the Talker dialect's model): members with profiles, idle members kept for
//! a grace period, public, private and updated messages.
//!
//! A room's owner shard keeps its members, where their connections are, the message
//! counter and recent authors, and stamps every event with its clock. Connections'
//! shards keep which of their connections sit in which room, for fan-out.

use std::collections::VecDeque;
use std::rc::Rc;

use ahash::AHashMap;

use super::presence::ShardSet;
use super::{
    Command, ConnAddr, ConnId, Engine, ErrorCode, Event, Outbox, RoomChange, RoomMember, ShardMsg,
};

/// Message authors remembered per room, for updates; older messages cannot be updated.
const REMEMBERED_AUTHORS: usize = 4096;

/// One user in a room, however many connections they have there.
#[derive(Debug)]
struct Member {
    profile: Box<str>,
    brief: Box<str>,
    conns: Vec<ConnAddr>,
    /// Set while the user has no connection left, until the grace period ends.
    idle_since_ms: Option<u64>,
}

/// A room as its owner keeps it.
#[derive(Debug, Default)]
struct Room {
    members: AHashMap<Box<str>, Member>,
    next_message: u64,
    authors: VecDeque<(u64, Box<str>)>,
}

impl Room {
    fn shards(&self) -> ShardSet {
        let mut set = ShardSet::default();
        for conn in self.members.values().flat_map(|m| &m.conns) {
            set.insert(conn.shard);
        }
        set
    }

    fn author_of(&self, id: u64) -> Option<&str> {
        self.authors
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, author)| &**author)
    }
}

/// The rooms this shard owns; a room lives while it has members (idle ones included).
#[derive(Debug, Default)]
pub struct OwnedRooms {
    rooms: AHashMap<Box<str>, Room>,
}

impl OwnedRooms {
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }
}

/// This shard's connections in each room.
#[derive(Debug, Default)]
pub struct RoomSeats {
    rooms: AHashMap<Rc<str>, Vec<ConnId>>,
}

/// Where one local connection sits.
#[derive(Debug, Clone)]
pub struct Seat {
    pub room: Rc<str>,
    pub user: Box<str>,
}

impl Engine {
    /// Handles the room commands of a local connection.
    pub(super) fn room_command(&mut self, conn: ConnId, cmd: Command, out: &mut impl Outbox) {
        let seat = self.conns.get(&conn).and_then(|c| c.seat.clone());
        match (cmd, seat) {
            (Command::RoomConnect { room, member }, None) => {
                let room: Rc<str> = Rc::from(room);
                let local = self.conns.get_mut(&conn).expect("checked by caller");
                local.seat = Some(Seat {
                    room: room.clone(),
                    user: member.id.clone(),
                });
                let msg = ShardMsg::RoomEnter {
                    room: Box::from(&*room),
                    member,
                    conn: self.addr(conn),
                };
                self.send_to_owner(&room, msg, out);
            }
            (Command::RoomConnect { .. }, Some(_)) => {
                out.deliver(
                    &[conn],
                    &Event::Error {
                        code: ErrorCode::AlreadyInRoom,
                    },
                );
            }
            (
                Command::RoomSay {
                    content,
                    to,
                    update,
                },
                Some(seat),
            ) => {
                let msg = ShardMsg::RoomSay {
                    room: Box::from(&*seat.room),
                    user: seat.user,
                    conn: self.addr(conn),
                    content,
                    to,
                    update,
                };
                self.send_to_owner(&seat.room, msg, out);
            }
            (Command::RoomClose, Some(_)) => self.leave_room(conn, true, out),
            (_, _) => out.deliver(
                &[conn],
                &Event::Error {
                    code: ErrorCode::NotInRoom,
                },
            ),
        }
    }

    /// Takes a local connection out of its room, if it is in one.
    pub(super) fn leave_room(&mut self, conn: ConnId, leaving: bool, out: &mut impl Outbox) {
        let Some(seat) = self.conns.get_mut(&conn).and_then(|c| c.seat.take()) else {
            return;
        };
        if let Some(conns) = self.seats.rooms.get_mut(&seat.room) {
            conns.retain(|c| *c != conn);
            if conns.is_empty() {
                self.seats.rooms.remove(&seat.room);
            }
        }
        let msg = ShardMsg::RoomExit {
            room: Box::from(&*seat.room),
            user: seat.user,
            conn: self.addr(conn),
            leaving,
        };
        self.send_to_owner(&seat.room, msg, out);
    }

    /// A `connected` for a local connection: from here on it gets the room's broadcasts.
    pub(super) fn seat_taken(&mut self, conn: ConnId) {
        if let Some(seat) = self.conns.get(&conn).and_then(|c| c.seat.as_ref()) {
            self.seats
                .rooms
                .entry(seat.room.clone())
                .or_default()
                .push(conn);
        }
    }

    /// Delivers a room broadcast to this shard's connections in the room.
    pub(super) fn on_to_room(
        &mut self,
        room: &str,
        event: &Event,
        except: Option<ConnId>,
        out: &mut impl Outbox,
    ) {
        let Some(conns) = self.seats.rooms.get(room) else {
            return;
        };
        match except {
            Some(skip) if conns.contains(&skip) => {
                let rest: Vec<ConnId> = conns.iter().copied().filter(|c| *c != skip).collect();
                out.deliver(&rest, event);
            }
            _ => out.deliver(conns, event),
        }
    }

    pub(super) fn on_enter(
        &mut self,
        name: Box<str>,
        new: RoomMember,
        conn: ConnAddr,
        out: &mut impl Outbox,
    ) {
        let time = self.now_ms / 1000;
        let room = self.rooms.rooms.entry(name.clone()).or_default();
        let change = match room.members.get_mut(&new.id) {
            None => {
                let member = Member {
                    profile: new.profile.clone(),
                    brief: new.brief,
                    conns: vec![conn],
                    idle_since_ms: None,
                };
                room.members.insert(new.id, member);
                Some(RoomChange::Join)
            }
            Some(member) => {
                member.conns.push(conn);
                member.idle_since_ms.take().map(|_| RoomChange::Back)
            }
        };
        let profiles = room.members.values().map(|m| m.profile.clone()).collect();
        let shards = room.shards();
        self.send_to_conn(
            conn,
            Event::RoomConnected {
                profile: new.profile.clone(),
            },
            out,
        );
        self.send_to_conn(conn, Event::RoomUsers { profiles }, out);
        if let Some(change) = change {
            let event = Event::RoomPresence {
                change,
                profile: new.profile,
                time,
            };
            self.send_to_room(&name, shards, event, Some(conn), out);
        }
    }

    pub(super) fn on_exit(
        &mut self,
        name: &str,
        user: &str,
        conn: ConnAddr,
        leaving: bool,
        out: &mut impl Outbox,
    ) {
        let now_ms = self.now_ms;
        let Some(room) = self.rooms.rooms.get_mut(name) else {
            return;
        };
        let Some(member) = room.members.get_mut(user) else {
            return;
        };
        member.conns.retain(|c| *c != conn);
        if !member.conns.is_empty() {
            return;
        }
        let profile = member.profile.clone();
        let event = if leaving {
            room.members.remove(user);
            Event::RoomLeave {
                user: Box::from(user),
                time: now_ms / 1000,
            }
        } else {
            member.idle_since_ms = Some(now_ms);
            Event::RoomPresence {
                change: RoomChange::Idle,
                profile,
                time: now_ms / 1000,
            }
        };
        let shards = room.shards();
        if room.members.is_empty() {
            self.rooms.rooms.remove(name);
        }
        self.send_to_room(name, shards, event, None, out);
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_say(
        &mut self,
        name: &str,
        user: &str,
        from: ConnAddr,
        content: Box<str>,
        to: Option<Box<str>>,
        update: Option<u64>,
        out: &mut impl Outbox,
    ) {
        let time = self.now_ms / 1000;
        let Some(room) = self.rooms.rooms.get_mut(name) else {
            return self.send_to_conn(
                from,
                Event::Error {
                    code: ErrorCode::NotInRoom,
                },
                out,
            );
        };
        let Some(brief) = room.members.get(user).map(|m| m.brief.clone()) else {
            return self.send_to_conn(
                from,
                Event::Error {
                    code: ErrorCode::NotInRoom,
                },
                out,
            );
        };
        let id = match update {
            Some(id) => match room.author_of(id) {
                Some(author) if author == user => id,
                Some(_) => {
                    return self.send_to_conn(
                        from,
                        Event::Error {
                            code: ErrorCode::NotYourMessage,
                        },
                        out,
                    );
                }
                None => {
                    return self.send_to_conn(
                        from,
                        Event::Error {
                            code: ErrorCode::UnknownMessage,
                        },
                        out,
                    );
                }
            },
            None => {
                room.next_message += 1;
                if room.authors.len() == REMEMBERED_AUTHORS {
                    room.authors.pop_front();
                }
                room.authors.push_back((room.next_message, Box::from(user)));
                room.next_message
            }
        };
        let event = Event::RoomMessage {
            id,
            content,
            brief,
            time,
            private: to.is_some(),
            update: update.is_some(),
        };
        match to {
            None => {
                let shards = room.shards();
                self.send_to_room(name, shards, event, None, out);
            }
            Some(to) => {
                let recipients = match room.members.get(&to) {
                    Some(member) if !member.conns.is_empty() => member.conns.clone(),
                    _ => {
                        return self.send_to_conn(
                            from,
                            Event::Error {
                                code: ErrorCode::UnknownRecipient,
                            },
                            out,
                        );
                    }
                };
                for conn in recipients {
                    self.send_to_conn(conn, event.clone(), out);
                }
            }
        }
    }

    /// Advances the clock to `now_ms` (ms since the epoch) and ends the grace period of
    /// idle members whose time is up, telling their rooms they left.
    pub fn tick(&mut self, now_ms: u64, out: &mut impl Outbox) {
        self.now_ms = now_ms;
        let grace = self.limits.room_idle_grace_ms;
        let mut left = Vec::new();
        for (name, room) in &mut self.rooms.rooms {
            let shards = room.shards();
            room.members
                .retain(|user, member| match member.idle_since_ms {
                    Some(since) if now_ms.saturating_sub(since) >= grace => {
                        left.push((name.clone(), shards, Box::from(&**user)));
                        false
                    }
                    _ => true,
                });
        }
        self.rooms.rooms.retain(|_, room| !room.members.is_empty());
        for (name, shards, user) in left {
            let event = Event::RoomLeave {
                user,
                time: now_ms / 1000,
            };
            self.send_to_room(&name, shards, event, None, out);
        }
        self.drain_loopback(out);
    }

    fn send_to_conn(&mut self, conn: ConnAddr, event: Event, out: &mut impl Outbox) {
        let msg = ShardMsg::ToConn {
            conn: conn.conn,
            event,
        };
        self.route(conn.shard, msg, out);
    }

    fn send_to_room(
        &mut self,
        name: &str,
        shards: ShardSet,
        event: Event,
        except: Option<ConnAddr>,
        out: &mut impl Outbox,
    ) {
        for shard in shards.iter() {
            let msg = ShardMsg::ToRoom {
                room: Box::from(name),
                event: event.clone(),
                except: except.filter(|c| c.shard == shard).map(|c| c.conn),
            };
            self.route(shard, msg, out);
        }
    }
}
