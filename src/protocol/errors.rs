//! The engine's refusals in words: the dotted codes and messages dialects send when
//! the engine refuses a command. Dialects with their own wording map codes first.

use crate::engine::ErrorCode;

/// The dotted code of an engine refusal, as turntable v1 and the HTTP API report it (other
/// dialects map some of them to their own).
pub fn code(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotIdentified => "auth.not_identified",
        ErrorCode::AlreadyIdentified => "auth.already_identified",
        ErrorCode::NotMember => "game.not_member",
        ErrorCode::TooManyWatches => "subscribe.too_many",
        ErrorCode::TooManyChannels => "joingame.too_many",
        ErrorCode::NotInRoom => "room.not_connected",
        ErrorCode::AlreadyInRoom => "room.already_connected",
        ErrorCode::UnknownRecipient => "room.unknown_recipient",
        ErrorCode::NotYourMessage => "room.not_your_message",
        ErrorCode::UnknownMessage => "room.unknown_message",
        ErrorCode::NotSubscribed => "channel.not_subscribed",
        ErrorCode::UnknownGame => "game.unknown",
        ErrorCode::GameFull => "game.full",
        ErrorCode::ServerChannel => "channel.server_only",
        ErrorCode::Forbidden => "channel.forbidden",
        ErrorCode::ChannelFull => "channel.full",
        ErrorCode::DocumentChannel => "channel.document",
        ErrorCode::DocumentNotOpen => "ot.not_open",
        ErrorCode::TooManyDocuments => "ot.too_many_documents",
        ErrorCode::EditRefused(e) => e.code(),
        ErrorCode::OwnerUnavailable => "cluster.owner_unavailable",
        ErrorCode::ClusterUnavailable => "cluster.unavailable",
    }
}

/// A human-readable explanation to go with the code, in no dialect's words (each dialect
/// says how to identify, join or open in its own).
pub fn message(code: ErrorCode) -> &'static str {
    match code {
        ErrorCode::NotIdentified => "identify first",
        ErrorCode::AlreadyIdentified => "this connection is already identified",
        ErrorCode::NotMember => "not a member of this channel",
        ErrorCode::TooManyWatches => "too many subscriptions: a connection, user or shard limit",
        ErrorCode::TooManyChannels => "too many channels on this connection",
        ErrorCode::NotInRoom => "join a room first",
        ErrorCode::AlreadyInRoom => "this connection is already in a room",
        ErrorCode::UnknownRecipient => "no such user online in this room",
        ErrorCode::NotYourMessage => "only the author can update a message",
        ErrorCode::UnknownMessage => "no such message in this room",
        ErrorCode::NotSubscribed => "not subscribed to this channel",
        ErrorCode::UnknownGame => "no such game is open",
        ErrorCode::GameFull => "the game is full",
        ErrorCode::ServerChannel => "only the server publishes to this channel",
        ErrorCode::Forbidden => "the channel's namespace does not allow this",
        ErrorCode::ChannelFull => "the channel has as many members as it may",
        ErrorCode::DocumentChannel => {
            "a document's channel: open the document (World's ot.open) instead"
        }
        ErrorCode::DocumentNotOpen => "open the document first",
        ErrorCode::TooManyDocuments => "no room for another document on this server",
        ErrorCode::EditRefused(e) => e.message(),
        ErrorCode::OwnerUnavailable => "the server that holds this is down; try again soon",
        ErrorCode::ClusterUnavailable => {
            "the servers cannot reach each other right now; try again soon"
        }
    }
}
