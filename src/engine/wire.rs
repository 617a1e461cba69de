//! The binary form of a [`ShardMsg`], for shard messages that leave the process (the
//! cross-node transport). Within a node, shards pass `ShardMsg` values over glommio's
//! channel mesh and nothing here runs.
//!
//! A message is one version byte, [`VERSION`], then the message in postcard's format
//! (serde, variable-length integers, a varint before every string and list, a varint
//! variant index before every enum's fields). A node refuses bytes of another version
//! with [`WireError::Version`] instead of misreading them; change `VERSION` with any
//! change to a type a shard message holds.
//!
//! Why postcard rather than bincode: both were measured on real messages
//! (`cargo bench --bench wire`, 2 cores shared with other work, two runs; sizes without
//! the version byte; bincode 2.0.1 through serde with `config::standard()`, its varint
//! form):
//!
//! | message | postcard | bincode | postcard encode + decode | bincode encode + decode |
//! |---|---|---|---|---|
//! | a publication, 100-byte payload (`ToChannel`) | 141 B | 146 B | 0.56–0.59 µs | 0.77–0.89 µs |
//! | a join (`ChannelMsg::Join`) | 32 B | 36 B | 0.34–0.57 µs | 0.54–0.69 µs |
//! | a presence change (`StatusOf`) | 10 B | 10 B | 0.13–0.17 µs | 0.17–0.29 µs |
//! | a query (`Query::Members`) | 14 B | 14 B | 0.15–0.26 µs | 0.22–0.36 µs |
//! | its answer, 10 members | 84 B | 84 B | 0.93–1.19 µs | 0.87–1.29 µs |
//!
//! postcard is never larger (LEB128 varints: a connection id takes 6 bytes where
//! bincode's takes 9), faster on four messages and even on the fifth, and maintained;
//! bincode's development stopped (RUSTSEC-2025-0141, and its 3.0.0 release is only a
//! `compile_error!`).

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The wire format's version, the first byte of every encoded message.
pub const VERSION: u8 = 4;

/// Why bytes from a peer are not a shard message.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("empty shard message")]
    Empty,
    #[error("shard message of wire format {found}; this node speaks {VERSION}")]
    Version { found: u8 },
    #[error("malformed shard message: {0}")]
    Malformed(#[from] postcard::Error),
    #[error("{0} bytes left after the shard message")]
    Trailing(usize),
}

/// `msg` (a [`ShardMsg`](super::message::ShardMsg), or a batch of them) as bytes for
/// another node.
pub fn encode<T: Serialize>(msg: &T) -> Vec<u8> {
    postcard::to_extend(msg, vec![VERSION])
        .expect("every shard message serializes: no map, no sequence of unknown length")
}

/// The message `bytes` hold, as [`encode`] wrote it.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, WireError> {
    let (&version, body) = bytes.split_first().ok_or(WireError::Empty)?;
    if version != VERSION {
        return Err(WireError::Version { found: version });
    }
    let (msg, rest) = postcard::take_from_bytes(body)?;
    if !rest.is_empty() {
        return Err(WireError::Trailing(rest.len()));
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use proptest::prelude::*;
    use proptest::strategy::{Strategy, ValueTree};
    use proptest::test_runner::TestRunner;

    use super::*;
    use crate::engine::lobby::GameInfo;
    use crate::engine::message::{
        Answer, ChannelMsg, ClaimMsg, ConnAddr, ConnId, DocumentMsg, ErrorCode, Event, PublishMode,
        Query, Resync, ResyncSeat, ResyncTie, RoomChange, RoomMember, ShardMsg, Status,
    };
    use crate::engine::ot::{Delta, Op, OtError};

    /// The variants of an enum a strategy must cover, listed by a match with no
    /// wildcard: a new variant does not compile until it is named here, and the
    /// coverage test fails until the strategy makes it.
    trait Variants {
        const NAMES: &'static [&'static str];
        fn variant(&self) -> &'static str;
    }

    macro_rules! variants {
        ($ty:ident: $($v:ident),+ $(,)?) => {
            impl Variants for $ty {
                const NAMES: &'static [&'static str] = &[$(stringify!($v)),+];
                fn variant(&self) -> &'static str {
                    match self {
                        $($ty::$v { .. } => stringify!($v)),+
                    }
                }
            }
        };
    }

    variants!(ShardMsg: UserUp, UserDown, SetStatus, Watch, Unwatch, ToUser, Claim, Channel,
        Document, UserCounted, StatusOf, ToLocalUser, Joined, TieRefused, Subscribed,
        DocumentOpened, ToChannel, ToConn, Query, Answer, RoomEnter, RoomExit, RoomSay, ToRoom,
        Resync);
    variants!(Resync: User, Channel, Room, Claims, Done, Ask);
    variants!(Event: Identified, Presence, StatusSet, Joined, Left, Subscribed, Unsubscribed,
        Published, MemberJoined, MemberLeft, Invite, Message, Error, Refused, Answered,
        Replaced, Members,
        DocumentOpened, EditAccepted, DocumentEdited, Reload, Kicked, Disconnected,
        RoomConnected, RoomUsers, RoomPresence, RoomLeave, RoomMessage);
    variants!(Query: User, Disconnect, Reload, Kick, Members, Profiles, Publish, RoomPost,
        CreateGame, ListGames, CloseGame);
    variants!(Answer: Count, Members, Profiles, Published, Games);
    variants!(ClaimMsg: Claim, Release);
    variants!(ChannelMsg: Join, Leave, Subscribe, Unsubscribe, Publish, Announce, Members);
    variants!(DocumentMsg: Open, Edit);
    variants!(ErrorCode: NotIdentified, AlreadyIdentified, NotMember, TooManyWatches,
        TooManyChannels, NotInRoom, AlreadyInRoom, UnknownRecipient, NotYourMessage,
        UnknownMessage, NotSubscribed, UnknownGame, GameFull, ServerChannel, Forbidden,
        ChannelFull, DocumentChannel,
        DocumentNotOpen, TooManyDocuments, EditRefused, OwnerUnavailable, ClusterUnavailable);
    variants!(OtError: RevisionTooOld, RevisionInFuture, OutOfRange, SplitsCharacter, TooLarge);
    variants!(Op: Retain, Insert, Delete);
    variants!(Status: Online, Busy, Offline);
    variants!(RoomChange: Join, Idle, Back);

    fn text() -> impl Strategy<Value = Box<str>> + Clone {
        any::<String>().prop_map(Into::into)
    }

    fn texts() -> impl Strategy<Value = Vec<Box<str>>> + Clone {
        prop::collection::vec(text(), 0..4)
    }

    fn receipt() -> impl Strategy<Value = Option<Box<str>>> + Clone {
        prop::option::of(text())
    }

    fn conn() -> impl Strategy<Value = ConnId> + Clone {
        any::<u64>().prop_map(ConnId)
    }

    fn addr() -> impl Strategy<Value = ConnAddr> + Clone {
        (any::<usize>(), conn()).prop_map(|(shard, conn)| ConnAddr { shard, conn })
    }

    fn status() -> impl Strategy<Value = Status> + Clone {
        prop_oneof![
            Just(Status::Online),
            Just(Status::Busy),
            Just(Status::Offline)
        ]
    }

    fn room_change() -> impl Strategy<Value = RoomChange> + Clone {
        prop_oneof![
            Just(RoomChange::Join),
            Just(RoomChange::Idle),
            Just(RoomChange::Back)
        ]
    }

    fn ot_error() -> impl Strategy<Value = OtError> + Clone {
        prop_oneof![
            any::<u64>().prop_map(|oldest| OtError::RevisionTooOld { oldest }),
            any::<u64>().prop_map(|current| OtError::RevisionInFuture { current }),
            Just(OtError::OutOfRange),
            Just(OtError::SplitsCharacter),
            any::<usize>().prop_map(|max| OtError::TooLarge { max }),
        ]
    }

    fn error_code() -> impl Strategy<Value = ErrorCode> + Clone {
        use ErrorCode::*;
        let fixed = [
            NotIdentified,
            AlreadyIdentified,
            NotMember,
            TooManyWatches,
            TooManyChannels,
            NotInRoom,
            AlreadyInRoom,
            UnknownRecipient,
            NotYourMessage,
            UnknownMessage,
            NotSubscribed,
            UnknownGame,
            GameFull,
            ServerChannel,
            Forbidden,
            ChannelFull,
            DocumentChannel,
            DocumentNotOpen,
            TooManyDocuments,
            OwnerUnavailable,
            ClusterUnavailable,
        ];
        prop_oneof![
            prop::sample::select(fixed.to_vec()),
            ot_error().prop_map(EditRefused),
        ]
    }

    fn op() -> impl Strategy<Value = Op> + Clone {
        prop_oneof![
            any::<usize>().prop_map(Op::Retain),
            any::<String>().prop_map(Op::Insert),
            any::<usize>().prop_map(Op::Delete),
        ]
    }

    fn delta() -> impl Strategy<Value = Delta> + Clone {
        prop::collection::vec(op(), 0..5).prop_map(Delta::from_iter)
    }

    fn mode() -> impl Strategy<Value = PublishMode> + Clone {
        (any::<bool>(), receipt()).prop_map(|(echo, receipt)| PublishMode { echo, receipt })
    }

    fn member() -> impl Strategy<Value = RoomMember> + Clone {
        (text(), text(), text()).prop_map(|(id, profile, brief)| RoomMember { id, profile, brief })
    }

    fn game() -> impl Strategy<Value = GameInfo> + Clone {
        (text(), text(), any::<usize>(), text(), any::<usize>()).prop_map(
            |(id, name, max_players, metadata, players)| GameInfo {
                id,
                name,
                max_players,
                metadata,
                players,
            },
        )
    }

    fn event() -> impl Strategy<Value = Event> + Clone {
        let skip = prop::option::of(addr());
        prop_oneof![
            text().prop_map(|user| Event::Identified { user }).boxed(),
            prop::collection::vec((text(), status()), 0..3)
                .prop_map(|statuses| Event::Presence { statuses })
                .boxed(),
            status()
                .prop_map(|status| Event::StatusSet { status })
                .boxed(),
            (text(), texts(), receipt())
                .prop_map(|(channel, members, receipt)| Event::Joined {
                    channel,
                    members,
                    receipt
                })
                .boxed(),
            (text(), receipt())
                .prop_map(|(channel, receipt)| Event::Left { channel, receipt })
                .boxed(),
            (text(), receipt())
                .prop_map(|(channel, receipt)| Event::Subscribed { channel, receipt })
                .boxed(),
            (text(), receipt())
                .prop_map(|(channel, receipt)| Event::Unsubscribed { channel, receipt })
                .boxed(),
            (text(), text())
                .prop_map(|(channel, receipt)| Event::Published { channel, receipt })
                .boxed(),
            (text(), text())
                .prop_map(|(channel, user)| Event::MemberJoined { channel, user })
                .boxed(),
            (text(), text())
                .prop_map(|(channel, user)| Event::MemberLeft { channel, user })
                .boxed(),
            (text(), text())
                .prop_map(|(channel, from)| Event::Invite { channel, from })
                .boxed(),
            (text(), any::<u64>(), text(), text(), skip.clone())
                .prop_map(|(channel, seq, from, data, skip)| Event::Message {
                    channel,
                    seq,
                    from,
                    data,
                    skip
                })
                .boxed(),
            (error_code(), receipt())
                .prop_map(|(code, receipt)| Event::Error { code, receipt })
                .boxed(),
            (text(), text(), receipt())
                .prop_map(|(code, message, receipt)| Event::Refused {
                    code,
                    message,
                    receipt,
                })
                .boxed(),
            (text(), receipt())
                .prop_map(|(data, receipt)| Event::Answered { data, receipt })
                .boxed(),
            Just(Event::Replaced).boxed(),
            (text(), texts(), receipt())
                .prop_map(|(channel, members, receipt)| Event::Members {
                    channel,
                    members,
                    receipt
                })
                .boxed(),
            (text(), text(), any::<u64>(), receipt())
                .prop_map(
                    |(document, text, revision, receipt)| Event::DocumentOpened {
                        document,
                        text,
                        revision,
                        receipt
                    }
                )
                .boxed(),
            (text(), any::<u64>(), receipt())
                .prop_map(|(document, revision, receipt)| Event::EditAccepted {
                    document,
                    revision,
                    receipt
                })
                .boxed(),
            (text(), any::<u64>(), text(), delta(), skip)
                .prop_map(
                    |(document, revision, user, delta, skip)| Event::DocumentEdited {
                        document,
                        revision,
                        user,
                        delta,
                        skip
                    }
                )
                .boxed(),
            Just(Event::Reload).boxed(),
            (text(), text())
                .prop_map(|(channel, message)| Event::Kicked { channel, message })
                .boxed(),
            Just(Event::Disconnected).boxed(),
            text()
                .prop_map(|profile| Event::RoomConnected { profile })
                .boxed(),
            texts()
                .prop_map(|profiles| Event::RoomUsers { profiles })
                .boxed(),
            (room_change(), text(), any::<u64>())
                .prop_map(|(change, profile, time)| Event::RoomPresence {
                    change,
                    profile,
                    time
                })
                .boxed(),
            (text(), any::<u64>())
                .prop_map(|(user, time)| Event::RoomLeave { user, time })
                .boxed(),
            (
                any::<u64>(),
                text(),
                text(),
                any::<u64>(),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(id, content, brief, time, private, update)| {
                    Event::RoomMessage {
                        id,
                        content,
                        brief,
                        time,
                        private,
                        update,
                    }
                })
                .boxed(),
        ]
    }

    fn query() -> impl Strategy<Value = Query> + Clone {
        prop_oneof![
            text().prop_map(|user| Query::User { user }).boxed(),
            text().prop_map(|user| Query::Disconnect { user }).boxed(),
            Just(Query::Reload).boxed(),
            (text(), prop::option::of(text()), text())
                .prop_map(|(channel, user, message)| Query::Kick {
                    channel,
                    user,
                    message
                })
                .boxed(),
            text()
                .prop_map(|channel| Query::Members { channel })
                .boxed(),
            texts().prop_map(|users| Query::Profiles { users }).boxed(),
            (text(), text())
                .prop_map(|(channel, data)| Query::Publish { channel, data })
                .boxed(),
            (text(), text())
                .prop_map(|(room, content)| Query::RoomPost { room, content })
                .boxed(),
            game().prop_map(Query::CreateGame).boxed(),
            Just(Query::ListGames).boxed(),
            text().prop_map(|id| Query::CloseGame { id }).boxed(),
        ]
    }

    fn answer() -> impl Strategy<Value = Answer> + Clone {
        prop_oneof![
            (any::<usize>(), prop::option::of(status())).prop_map(|(connections, status)| {
                Answer::Count {
                    connections,
                    status,
                }
            }),
            texts().prop_map(Answer::Members),
            prop::collection::vec((text(), text()), 0..3).prop_map(Answer::Profiles),
            prop::option::of(any::<u64>()).prop_map(|seq| Answer::Published { seq }),
            prop::collection::vec(game(), 0..3).prop_map(Answer::Games),
        ]
    }

    fn claim_msg() -> impl Strategy<Value = ClaimMsg> + Clone {
        prop_oneof![
            (text(), addr(), any::<usize>(), any::<u64>()).prop_map(|(user, conn, max, since)| {
                ClaimMsg::Claim {
                    user,
                    conn,
                    max,
                    since,
                }
            }),
            (text(), addr()).prop_map(|(user, conn)| ClaimMsg::Release { user, conn }),
        ]
    }

    fn channel_msg() -> impl Strategy<Value = ChannelMsg> + Clone {
        prop_oneof![
            (text(), text(), addr(), texts(), receipt()).prop_map(
                |(channel, user, conn, invite, receipt)| ChannelMsg::Join {
                    channel,
                    user,
                    conn,
                    invite,
                    receipt
                }
            ),
            (text(), text(), addr()).prop_map(|(channel, user, conn)| ChannelMsg::Leave {
                channel,
                user,
                conn
            }),
            (text(), addr(), receipt()).prop_map(|(channel, conn, receipt)| {
                ChannelMsg::Subscribe {
                    channel,
                    conn,
                    receipt,
                }
            }),
            (text(), addr()).prop_map(|(channel, conn)| ChannelMsg::Unsubscribe { channel, conn }),
            (text(), text(), addr(), text(), mode()).prop_map(
                |(channel, user, conn, data, mode)| ChannelMsg::Publish {
                    channel,
                    user,
                    conn,
                    data,
                    mode
                }
            ),
            (text(), text()).prop_map(|(channel, data)| ChannelMsg::Announce { channel, data }),
            (text(), addr(), receipt()).prop_map(|(channel, conn, receipt)| {
                ChannelMsg::Members {
                    channel,
                    conn,
                    receipt,
                }
            }),
        ]
    }

    fn document_msg() -> impl Strategy<Value = DocumentMsg> + Clone {
        prop_oneof![
            (text(), text(), addr(), receipt()).prop_map(|(document, user, conn, receipt)| {
                DocumentMsg::Open {
                    document,
                    user,
                    conn,
                    receipt,
                }
            }),
            (text(), text(), addr(), any::<u64>(), delta(), receipt()).prop_map(
                |(document, user, conn, base, delta, receipt)| DocumentMsg::Edit {
                    document,
                    user,
                    conn,
                    base,
                    delta,
                    receipt
                }
            ),
        ]
    }

    fn resync() -> impl Strategy<Value = Resync> + Clone {
        let from = any::<usize>();
        let tie = (conn(), text(), any::<bool>()).prop_map(|(conn, user, member)| ResyncTie {
            conn,
            user,
            member,
        });
        let seat =
            (conn(), member(), any::<bool>()).prop_map(|(conn, member, seated)| ResyncSeat {
                conn,
                member,
                seated,
            });
        prop_oneof![
            (
                text(),
                from,
                prop::option::of(conn()),
                prop::option::of(status()),
                any::<bool>()
            )
                .prop_map(|(user, from, conn, status, watching)| Resync::User {
                    user,
                    from,
                    conn,
                    status,
                    watching
                }),
            (text(), from, prop::collection::vec(tie, 0..3)).prop_map(|(channel, from, ties)| {
                Resync::Channel {
                    channel,
                    from,
                    ties,
                }
            }),
            (text(), from, prop::collection::vec(seat, 0..3))
                .prop_map(|(room, from, seats)| Resync::Room { room, from, seats }),
            (
                text(),
                from,
                prop::collection::vec((conn(), any::<u64>()), 0..3)
            )
                .prop_map(|(user, from, conns)| Resync::Claims { user, from, conns }),
            from.prop_map(|from| Resync::Done { from }),
            from.prop_map(|from| Resync::Ask { from }),
        ]
    }

    fn shard_msg() -> impl Strategy<Value = ShardMsg> {
        let from = any::<usize>();
        prop_oneof![
            (text(), from, conn())
                .prop_map(|(user, from, conn)| ShardMsg::UserUp { user, from, conn })
                .boxed(),
            (text(), from)
                .prop_map(|(user, from)| ShardMsg::UserDown { user, from })
                .boxed(),
            (text(), status())
                .prop_map(|(user, status)| ShardMsg::SetStatus { user, status })
                .boxed(),
            (text(), from)
                .prop_map(|(user, from)| ShardMsg::Watch { user, from })
                .boxed(),
            (text(), from)
                .prop_map(|(user, from)| ShardMsg::Unwatch { user, from })
                .boxed(),
            (text(), event())
                .prop_map(|(user, event)| ShardMsg::ToUser { user, event })
                .boxed(),
            claim_msg().prop_map(ShardMsg::Claim).boxed(),
            channel_msg().prop_map(ShardMsg::Channel).boxed(),
            document_msg().prop_map(ShardMsg::Document).boxed(),
            (text(), conn())
                .prop_map(|(user, conn)| ShardMsg::UserCounted { user, conn })
                .boxed(),
            (text(), status())
                .prop_map(|(user, status)| ShardMsg::StatusOf { user, status })
                .boxed(),
            (text(), event())
                .prop_map(|(user, event)| ShardMsg::ToLocalUser { user, event })
                .boxed(),
            (text(), conn(), texts(), receipt())
                .prop_map(|(channel, conn, members, receipt)| ShardMsg::Joined {
                    channel,
                    conn,
                    members,
                    receipt
                })
                .boxed(),
            (text(), conn(), error_code(), receipt())
                .prop_map(|(channel, conn, code, receipt)| ShardMsg::TieRefused {
                    channel,
                    conn,
                    code,
                    receipt
                })
                .boxed(),
            (text(), conn(), receipt())
                .prop_map(|(channel, conn, receipt)| ShardMsg::Subscribed {
                    channel,
                    conn,
                    receipt
                })
                .boxed(),
            (text(), conn(), text(), any::<u64>(), receipt())
                .prop_map(
                    |(document, conn, text, revision, receipt)| ShardMsg::DocumentOpened {
                        document,
                        conn,
                        text,
                        revision,
                        receipt
                    }
                )
                .boxed(),
            (text(), event())
                .prop_map(|(channel, event)| ShardMsg::ToChannel { channel, event })
                .boxed(),
            (conn(), event())
                .prop_map(|(conn, event)| ShardMsg::ToConn { conn, event })
                .boxed(),
            (from, any::<u64>(), query())
                .prop_map(|(from, ticket, query)| ShardMsg::Query {
                    from,
                    ticket,
                    query
                })
                .boxed(),
            (any::<u64>(), answer())
                .prop_map(|(ticket, answer)| ShardMsg::Answer { ticket, answer })
                .boxed(),
            (text(), member(), addr())
                .prop_map(|(room, member, conn)| ShardMsg::RoomEnter { room, member, conn })
                .boxed(),
            (text(), text(), addr(), any::<bool>())
                .prop_map(|(room, user, conn, leaving)| ShardMsg::RoomExit {
                    room,
                    user,
                    conn,
                    leaving
                })
                .boxed(),
            (
                text(),
                text(),
                addr(),
                text(),
                prop::option::of(text()),
                prop::option::of(any::<u64>())
            )
                .prop_map(
                    |(room, user, conn, content, to, update)| ShardMsg::RoomSay {
                        room,
                        user,
                        conn,
                        content,
                        to,
                        update,
                    }
                )
                .boxed(),
            (text(), event())
                .prop_map(|(room, event)| ShardMsg::ToRoom { room, event })
                .boxed(),
            resync().prop_map(ShardMsg::Resync).boxed(),
        ]
    }

    /// Fails unless `strategy` makes every variant of `T`.
    fn covers_every_variant<T: Variants>(strategy: impl Strategy<Value = T>) {
        let mut runner = TestRunner::deterministic();
        let mut seen = BTreeSet::new();
        for _ in 0..5000 {
            let value = strategy.new_tree(&mut runner).unwrap().current();
            seen.insert(value.variant());
        }
        let missing: Vec<_> = T::NAMES.iter().filter(|n| !seen.contains(*n)).collect();
        assert!(missing.is_empty(), "the strategy never makes {missing:?}");
    }

    #[test]
    fn the_strategies_make_every_variant() {
        covers_every_variant(shard_msg());
        covers_every_variant(event());
        covers_every_variant(query());
        covers_every_variant(answer());
        covers_every_variant(claim_msg());
        covers_every_variant(channel_msg());
        covers_every_variant(document_msg());
        covers_every_variant(resync());
        covers_every_variant(error_code());
        covers_every_variant(ot_error());
        covers_every_variant(op());
        covers_every_variant(status());
        covers_every_variant(room_change());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn every_message_comes_back_as_it_went(msg in shard_msg()) {
            let bytes = encode(&msg);
            prop_assert_eq!(bytes[0], VERSION);
            prop_assert_eq!(decode(&bytes), Ok(msg));
        }

        #[test]
        fn a_cut_message_is_an_error(msg in shard_msg(), cut in any::<prop::sample::Index>()) {
            let bytes = encode(&msg);
            let len = cut.index(bytes.len());
            prop_assert!(decode::<ShardMsg>(&bytes[..len]).is_err());
        }

        #[test]
        fn garbage_is_an_error_or_a_message_never_a_panic(
            body in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let mut bytes = vec![VERSION];
            bytes.extend_from_slice(&body);
            if let Ok(msg) = decode::<ShardMsg>(&bytes) {
                prop_assert_eq!(decode(&encode(&msg)), Ok(msg));
            }
        }

        #[test]
        fn a_changed_byte_is_an_error_or_a_message_never_a_panic(
            msg in shard_msg(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut bytes = encode(&msg);
            let at = at.index(bytes.len() - 1) + 1;
            bytes[at] = byte;
            if let Ok(msg) = decode::<ShardMsg>(&bytes) {
                prop_assert_eq!(decode(&encode(&msg)), Ok(msg));
            }
        }
    }

    #[test]
    fn another_version_is_refused() {
        let mut bytes = encode(&ShardMsg::UserDown {
            user: "1:1".into(),
            from: 1,
        });
        assert!(decode::<ShardMsg>(&bytes).is_ok());
        bytes[0] = VERSION + 1;
        assert_eq!(
            decode::<ShardMsg>(&bytes),
            Err(WireError::Version { found: VERSION + 1 })
        );
        assert_eq!(decode::<ShardMsg>(&[]), Err(WireError::Empty));
        bytes[0] = VERSION;
        bytes.push(0);
        assert_eq!(decode::<ShardMsg>(&bytes), Err(WireError::Trailing(1)));
    }
}
