//! Chat rooms (the Talker dialect's model): members with profiles, idle members kept for
//! a grace period, public, private and updated messages.
//!
//! A room's owner shard keeps its members, where their connections are, the message
//! counter and recent authors, and stamps every event with its clock. Connections'
//! shards keep which of their connections sit in which room, for fan-out.

use std::collections::VecDeque;
use std::rc::Rc;

use ahash::AHashMap;

use super::owned::{Record, ShardCounts};
use super::presence::ShardSet;
use super::{
    ConnAddr, ConnId, Engine, ErrorCode, Event, Outbox, RoomChange, RoomCommand, RoomMember,
    ShardMsg, refuse,
};

/// The author of messages the HTTP API posts in a room.
const SERVER_AUTHOR: &str = r#"{"id":"","name":"server"}"#;

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

/// A room as its owner keeps it; it lives while it has members (idle ones included).
#[derive(Debug, Default)]
pub struct Room {
    members: AHashMap<Box<str>, Member>,
    /// Where the members' connections are: the shards a broadcast goes to.
    shards: ShardCounts,
    /// The id of the last message.
    last_message: u64,
    /// Authors of the last messages, oldest first: the one at the back wrote
    /// `last_message`.
    authors: VecDeque<Box<str>>,
}

impl Room {
    fn author_of(&self, id: u64) -> Option<&str> {
        let back = self.last_message.checked_sub(id)?;
        let index = (self.authors.len() as u64).checked_sub(back + 1)?;
        self.authors.get(index as usize).map(|a| &**a)
    }
}

impl Room {
    /// Every member's connections: (member id, connection).
    pub fn conns(&self) -> impl Iterator<Item = (&str, ConnAddr)> {
        self.members
            .iter()
            .flat_map(|(id, m)| m.conns.iter().map(move |c| (&**id, *c)))
    }
}

impl Record for Room {
    fn is_unused(&self) -> bool {
        self.members.is_empty()
    }
}

/// Members whose connections all dropped, in the order they went idle (the grace period
/// is the same for all, so the front is always the next to expire).
#[derive(Debug, Default)]
pub struct IdleMembers {
    queue: VecDeque<(u64, Box<str>, Box<str>)>,
}

/// This shard's connections in each room.
#[derive(Debug, Default)]
pub struct RoomSeats {
    rooms: AHashMap<Rc<str>, Vec<ConnId>>,
}

impl RoomSeats {
    /// Whether the room's owner has seated `conn` in `room` (told it it is in).
    pub fn seated(&self, room: &str, conn: ConnId) -> bool {
        self.rooms.get(room).is_some_and(|c| c.contains(&conn))
    }
}

/// Where one local connection sits, and as whom (to re-enter it if the room's owner
/// lost it).
#[derive(Debug, Clone)]
pub struct Seat {
    pub room: Rc<str>,
    pub member: RoomMember,
}

impl Engine {
    /// Handles the room commands of a local connection.
    pub(super) fn room_command(&mut self, conn: ConnId, cmd: RoomCommand, out: &mut impl Outbox) {
        let seat = self.conns.get(&conn).and_then(|c| c.seat.clone());
        match (cmd, seat) {
            (RoomCommand::Connect { room, member }, None) => {
                let room: Rc<str> = Rc::from(room);
                let local = self.conns.get_mut(&conn).expect("checked by caller");
                local.seat = Some(Box::new(Seat {
                    room: room.clone(),
                    member: member.clone(),
                }));
                let msg = ShardMsg::RoomEnter {
                    room: Box::from(&*room),
                    member,
                    conn: self.addr(conn),
                };
                self.send_to_owner(&room, msg, out);
            }
            (RoomCommand::Connect { .. }, Some(_)) => {
                refuse(conn, ErrorCode::AlreadyInRoom, None, out)
            }
            (
                RoomCommand::Say {
                    content,
                    to,
                    update,
                },
                Some(seat),
            ) => {
                let msg = ShardMsg::RoomSay {
                    room: Box::from(&*seat.room),
                    user: seat.member.id,
                    conn: self.addr(conn),
                    content,
                    to,
                    update,
                };
                self.send_to_owner(&seat.room, msg, out);
            }
            (RoomCommand::Close, Some(_)) => self.leave_room(conn, true, out),
            (_, _) => refuse(conn, ErrorCode::NotInRoom, None, out),
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
            user: seat.member.id,
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
    pub(super) fn on_to_room(&mut self, room: &str, event: &Event, out: &mut impl Outbox) {
        if let Some(conns) = self.seats.rooms.get(room) {
            out.deliver(conns, event);
        }
    }

    pub(super) fn on_enter(
        &mut self,
        name: Box<str>,
        new: RoomMember,
        conn: ConnAddr,
        out: &mut impl Outbox,
    ) {
        let profile = new.profile.clone();
        let profiles = self.admit_to_room(&name, new, conn, true, out);
        let connected = Event::RoomConnected { profile };
        self.send_to_conn(conn, connected, out);
        self.send_to_conn(conn, Event::RoomUsers { profiles }, out);
    }

    /// Adds a connection to a room (if `announce`, its members hear of a newcomer or a
    /// return); returns the profiles of everyone in the room.
    pub(super) fn admit_to_room(
        &mut self,
        name: &str,
        new: RoomMember,
        conn: ConnAddr,
        announce: bool,
        out: &mut impl Outbox,
    ) -> Vec<Box<str>> {
        let time = self.now_ms / 1000;
        let room = self.rooms.entry(name);
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
        // The room hears of the newcomer before the newcomer is seated (both go over
        // the same FIFO link to its shard), so the newcomer does not hear of itself.
        let others = room.shards.shards();
        room.shards.add(conn.shard);
        let profiles = room.members.values().map(|m| m.profile.clone()).collect();
        if let Some(change) = change.filter(|_| announce) {
            let event = Event::RoomPresence {
                change,
                profile: new.profile,
                time,
            };
            self.send_to_room(name, others, event, out);
        }
        profiles
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
        let Some(room) = self.rooms.get_mut(name) else {
            return;
        };
        let Some(member) = room.members.get_mut(user) else {
            return;
        };
        let before = member.conns.len();
        member.conns.retain(|c| *c != conn);
        if member.conns.len() < before {
            room.shards.remove(conn.shard);
        }
        if !member.conns.is_empty() {
            return;
        }
        let event = if leaving {
            room.members.remove(user);
            Event::RoomLeave {
                user: Box::from(user),
                time: now_ms / 1000,
            }
        } else {
            member.idle_since_ms = Some(now_ms);
            let event = Event::RoomPresence {
                change: RoomChange::Idle,
                profile: member.profile.clone(),
                time: now_ms / 1000,
            };
            self.idle
                .queue
                .push_back((now_ms, Box::from(name), Box::from(user)));
            event
        };
        let shards = room.shards.shards();
        self.rooms.remove_if_unused(name);
        self.send_to_room(name, shards, event, out);
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
        let Some(room) = self.rooms.get_mut(name) else {
            return self.refuse_at(from, ErrorCode::NotInRoom, None, out);
        };
        let Some(brief) = room.members.get(user).map(|m| m.brief.clone()) else {
            return self.refuse_at(from, ErrorCode::NotInRoom, None, out);
        };
        let id = match update {
            Some(id) => match room.author_of(id) {
                Some(author) if author == user => id,
                Some(_) => return self.refuse_at(from, ErrorCode::NotYourMessage, None, out),
                None => return self.refuse_at(from, ErrorCode::UnknownMessage, None, out),
            },
            None => {
                room.last_message += 1;
                if room.authors.len() == REMEMBERED_AUTHORS {
                    room.authors.pop_front();
                }
                room.authors.push_back(Box::from(user));
                room.last_message
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
        let Some(to) = to else {
            let shards = room.shards.shards();
            return self.send_to_room(name, shards, event, out);
        };
        let recipients = match room.members.get(&to) {
            Some(member) if !member.conns.is_empty() => member.conns.clone(),
            _ => return self.refuse_at(from, ErrorCode::UnknownRecipient, None, out),
        };
        for conn in recipients {
            self.send_to_conn(conn, event.clone(), out);
        }
    }

    /// Posts `content` in a room as the server (HTTP API); the message id, or `None` if
    /// the room has nobody in it.
    pub(super) fn post_to_room(
        &mut self,
        name: &str,
        content: Box<str>,
        out: &mut impl Outbox,
    ) -> Option<u64> {
        let time = self.now_ms / 1000;
        let room = self.rooms.get_mut(name)?;
        room.last_message += 1;
        if room.authors.len() == REMEMBERED_AUTHORS {
            room.authors.pop_front();
        }
        room.authors.push_back(Box::from(""));
        let event = Event::RoomMessage {
            id: room.last_message,
            content,
            brief: Box::from(SERVER_AUTHOR),
            time,
            private: false,
            update: false,
        };
        let (id, shards) = (room.last_message, room.shards.shards());
        self.send_to_room(name, shards, event, out);
        Some(id)
    }

    /// Advances the clock to `now_ms` (ms since the epoch) and ends the grace period of
    /// idle members whose time is up, telling their rooms they left.
    pub fn tick(&mut self, now_ms: u64, out: &mut impl Outbox) {
        self.now_ms = now_ms;
        let grace = self.limits.room_idle_grace_ms;
        while let Some((since, _, _)) = self.idle.queue.front() {
            if now_ms.saturating_sub(*since) < grace {
                break;
            }
            let (since, name, user) = self.idle.queue.pop_front().expect("front above");
            let Some(room) = self.rooms.get_mut(&name) else {
                continue;
            };
            // Still idle since then (not back, nor gone idle again later)?
            if room.members.get(&user).and_then(|m| m.idle_since_ms) != Some(since) {
                continue;
            }
            room.members.remove(&user);
            let shards = room.shards.shards();
            self.rooms.remove_if_unused(&name);
            let event = Event::RoomLeave {
                user,
                time: now_ms / 1000,
            };
            self.send_to_room(&name, shards, event, out);
        }
        self.drain_loopback(out);
    }

    fn send_to_room(&mut self, name: &str, shards: ShardSet, event: Event, out: &mut impl Outbox) {
        let msg = ShardMsg::ToRoom {
            room: Box::from(name),
            event,
        };
        self.route_many(shards, msg, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_are_found_by_id_until_they_age_out() {
        let mut room = Room::default();
        for i in 1..=REMEMBERED_AUTHORS as u64 + 10 {
            room.last_message = i;
            if room.authors.len() == REMEMBERED_AUTHORS {
                room.authors.pop_front();
            }
            room.authors.push_back(format!("u{i}").into());
        }
        let last = room.last_message;
        assert_eq!(room.author_of(last), Some(&*format!("u{last}")));
        assert_eq!(room.author_of(11), Some("u11"));
        assert_eq!(room.author_of(10), None);
        assert_eq!(room.author_of(0), None);
        assert_eq!(room.author_of(last + 1), None);
    }
}
