//! Backend hooks on the way to the engine. A join or subscription in a namespace with a
//! `subscribe_hook`, a publication in one with a `publish_hook`, and a dialect's call
//! of the backend (an RPC) wait for the backend's answer; meanwhile the connection's
//! later actions wait behind it, so what one client does keeps its order. Other
//! connections, and the shard, carry on.
//!
//! The request is a JSON POST:
//!
//! ```text
//! {"hook":"subscribe","channel":C,"namespace":N,"user":U|null,"dialect":D,"join":bool}
//! {"hook":"publish","channel":C,"namespace":N,"user":U|null,"dialect":D,"data":DATA}
//! {"hook":"rpc","method":M,"user":U|null,"dialect":D,"data":DATA}
//! ```
//!
//! and the answer a 2xx JSON object: `{}` allows, `{"data": X}` replaces a
//! publication's data (or is an RPC's result), `{"error": {"code": "...", "message":
//! "..."}}` refuses with that code, which the client gets in its dialect's error shape.
//! A backend that is down, slow (past `hook_timeout`), overloaded or answers anything
//! else refuses too (fail closed) with `hook.unavailable`.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;

use ahash::AHashMap;
use serde_json::{Value, json};

use crate::engine::namespace::Namespaces;
use crate::engine::{ChannelCommand, Command, ConnId, Event, PublishMode, Receipt};
use crate::hooks::{HookClient, HookError};
use crate::protocol::{Action, CloseReason, Connected, Denied};

/// Actions one connection may have waiting behind a hook; one more closes it as a
/// client that does not wait for its answers.
const MAX_HELD: usize = 256;

/// The code a client gets when the backend gave no usable answer.
const UNAVAILABLE: &str = "hook.unavailable";

/// A shard's hook client and the actions waiting behind each connection's hook.
pub struct HookGate {
    client: Option<HookClient>,
    timeout: std::time::Duration,
    namespaces: Arc<Namespaces>,
    rpc_hook: Option<Box<str>>,
    connect_hook: Option<Box<str>>,
    held: RefCell<AHashMap<ConnId, VecDeque<Action>>>,
}

/// What the backend's answer leads to.
pub enum Verdict {
    /// Carry out this action (the command, its data perhaps replaced).
    Go(Action),
    /// Tell the client this (a refusal, an RPC's result).
    Tell(Event),
    /// Give the dialect the connect hook's answer, with what it asked to `resume`.
    Connected {
        resume: Box<str>,
        outcome: Result<Connected, Denied>,
    },
}

/// One question for the backend, and what to do with a yes.
pub enum Question {
    /// A join (`join`) or subscription of `channel`; `cmd` goes ahead on a yes.
    Tie {
        url: Box<str>,
        channel: Box<str>,
        join: bool,
        cmd: Command,
    },
    /// A publication; a yes may replace its data.
    Publish {
        url: Box<str>,
        channel: Box<str>,
        data: Box<str>,
        mode: PublishMode,
    },
    /// A dialect's call; the answer's `data` goes back to the client.
    Rpc {
        url: Box<str>,
        method: Box<str>,
        data: Box<str>,
        receipt: Receipt,
    },
    /// Who brings these credentials; the dialect resumes with the answer.
    Connect {
        url: Box<str>,
        credentials: Box<str>,
        resume: Box<str>,
    },
}

impl HookGate {
    /// A gate that calls the backend with `client` (`None`: no hook is configured and
    /// nothing waits).
    pub fn new(
        client: Option<HookClient>,
        timeout: std::time::Duration,
        namespaces: Arc<Namespaces>,
        rpc_hook: Option<Box<str>>,
        connect_hook: Option<Box<str>>,
    ) -> HookGate {
        HookGate {
            client,
            timeout,
            namespaces,
            rpc_hook,
            connect_hook,
            held: Default::default(),
        }
    }

    /// Starts holding `conn`'s next actions (a question is on its way).
    pub fn start_holding(&self, conn: ConnId) {
        self.held.borrow_mut().insert(conn, VecDeque::new());
    }

    /// Stops holding `conn`'s actions, giving back those held.
    pub fn release(&self, conn: ConnId) -> Vec<Action> {
        self.held
            .borrow_mut()
            .remove(&conn)
            .map(Vec::from)
            .unwrap_or_default()
    }

    /// Takes `action` to hold it behind a hook in flight for `conn`; gives it back if
    /// none is.
    pub fn hold(&self, conn: ConnId, action: Action) -> Result<(), Action> {
        let mut held = self.held.borrow_mut();
        let Some(queue) = held.get_mut(&conn) else {
            return Err(action);
        };
        if queue.len() >= MAX_HELD {
            return Err(Action::Close(CloseReason::new(
                1008,
                "too many requests waiting",
            )));
        }
        queue.push_back(action);
        Ok(())
    }

    /// Whether any hook is configured (else nothing is asked and nothing waits).
    pub fn enabled(&self) -> bool {
        self.client.is_some()
    }
}

impl HookGate {
    /// The question `action` asks of the backend, if its namespace or dialect has a hook;
    /// the action back otherwise.
    pub fn question(&self, action: Action) -> Result<Question, Action> {
        if self.client.is_none() {
            return Err(action);
        }
        let namespaces = &self.namespaces;
        match action {
            Action::Engine(Command::Channel(ChannelCommand::Publish {
                channel,
                data,
                mode,
            })) => match namespaces.policy_of(&channel).publish_hook.clone() {
                Some(url) => Ok(Question::Publish {
                    url,
                    channel,
                    data,
                    mode,
                }),
                None => Err(Action::Engine(Command::Channel(ChannelCommand::Publish {
                    channel,
                    data,
                    mode,
                }))),
            },
            Action::Engine(cmd) => {
                let tie = match &cmd {
                    Command::Channel(ChannelCommand::Join { channel, .. }) => Some((channel, true)),
                    Command::Channel(ChannelCommand::Subscribe { channel, .. }) => {
                        Some((channel, false))
                    }
                    _ => None,
                };
                let Some((channel, join)) = tie else {
                    return Err(Action::Engine(cmd));
                };
                match namespaces.policy_of(channel).subscribe_hook.clone() {
                    Some(url) => Ok(Question::Tie {
                        url,
                        channel: channel.clone(),
                        join,
                        cmd,
                    }),
                    None => Err(Action::Engine(cmd)),
                }
            }
            Action::Rpc {
                method,
                data,
                receipt,
            } => match self.rpc_hook.clone() {
                Some(url) => Ok(Question::Rpc {
                    url,
                    method,
                    data,
                    receipt,
                }),
                None => Err(Action::Rpc {
                    method,
                    data,
                    receipt,
                }),
            },
            Action::Connect {
                credentials,
                resume,
            } => match self.connect_hook.clone() {
                Some(url) => Ok(Question::Connect {
                    url,
                    credentials,
                    resume,
                }),
                None => Err(Action::Connect {
                    credentials,
                    resume,
                }),
            },
            other => Err(other),
        }
    }

    /// Asks the backend on behalf of `user` (speaking `dialect`) and says what follows.
    pub async fn answer(&self, question: Question, user: Option<&str>, dialect: &str) -> Verdict {
        let namespace = |channel: &str| self.namespaces.name_of(channel).to_owned();
        let opaque = |data: &str| serde_json::from_str::<Value>(data).unwrap_or(Value::Null);
        let (url, body) = match &question {
            Question::Tie {
                url, channel, join, ..
            } => (
                url,
                json!({"hook": "subscribe", "channel": &**channel,
            "namespace": namespace(channel), "user": user, "dialect": dialect, "join": join}),
            ),
            Question::Publish {
                url, channel, data, ..
            } => (
                url,
                json!({"hook": "publish", "channel": &**channel,
            "namespace": namespace(channel), "user": user, "dialect": dialect,
            "data": opaque(data)}),
            ),
            Question::Rpc {
                url, method, data, ..
            } => (
                url,
                json!({"hook": "rpc", "method": &**method, "user": user,
            "dialect": dialect, "data": opaque(data)}),
            ),
            Question::Connect {
                url, credentials, ..
            } => (
                url,
                json!({"hook": "connect", "credentials": &**credentials, "dialect": dialect}),
            ),
        };
        let client = self.client.as_ref().expect("asked only with a client");
        let verdict = verdict(client.call(url, &body, self.timeout).await);
        let refused = |receipt: Receipt, (code, message): (Box<str>, Box<str>)| {
            Verdict::Tell(Event::Refused {
                code,
                message,
                receipt,
            })
        };
        match (question, verdict) {
            (Question::Connect { resume, .. }, answer) => Verdict::Connected {
                resume,
                outcome: connected(answer),
            },
            (Question::Tie { cmd, .. }, Ok(_)) => Verdict::Go(Action::Engine(cmd)),
            (Question::Tie { cmd, .. }, Err(refusal)) => refused(receipt_of(&cmd), refusal),
            (
                Question::Publish {
                    channel,
                    data,
                    mode,
                    ..
                },
                Ok(mut answer),
            ) => {
                let data = match answer.get_mut("data") {
                    Some(new) => new.take().to_string().into_boxed_str(),
                    None => data,
                };
                Verdict::Go(Action::Engine(Command::Channel(ChannelCommand::Publish {
                    channel,
                    data,
                    mode,
                })))
            }
            (Question::Publish { mode, .. }, Err(refusal)) => refused(mode.receipt, refusal),
            (Question::Rpc { receipt, .. }, Ok(mut answer)) => {
                let result = answer.get_mut("data").map_or(Value::Null, Value::take);
                let data = result.to_string().into_boxed_str();
                Verdict::Tell(Event::Answered { data, receipt })
            }
            (Question::Rpc { receipt, .. }, Err(refusal)) => refused(receipt, refusal),
        }
    }
}

/// The request id of a join or subscription.
fn receipt_of(cmd: &Command) -> Receipt {
    match cmd {
        Command::Channel(
            ChannelCommand::Join { receipt, .. } | ChannelCommand::Subscribe { receipt, .. },
        ) => receipt.clone(),
        _ => None,
    }
}

/// A yes (the answer) or the refusal's code and message.
fn verdict(
    reply: Result<crate::hooks::HookReply, HookError>,
) -> Result<Value, (Box<str>, Box<str>)> {
    let reply = reply.map_err(|e| {
        tracing::warn!(error = %e, "backend hook failed; refusing");
        (
            Box::from(UNAVAILABLE),
            Box::from("the application's backend did not answer"),
        )
    })?;
    let body = reply.body;
    if let Some(error) = body.get("error") {
        let text = |key: &str, default: &str| -> Box<str> {
            Box::from(error.get(key).and_then(Value::as_str).unwrap_or(default))
        };
        return Err((
            text("code", "hook.refused"),
            text("message", "refused by the application"),
        ));
    }
    Ok(body)
}

/// The user a connect hook's answer names: `{"user": ID, "profile": {...}}`.
fn connected(answer: Result<Value, (Box<str>, Box<str>)>) -> Result<Connected, Denied> {
    let denied = |(code, message): (Box<str>, Box<str>)| Denied { code, message };
    let mut answer = answer.map_err(denied)?;
    let user = match answer.get("user").and_then(Value::as_str) {
        Some(user) if crate::engine::id::is_valid(user) => Box::from(user),
        _ => {
            tracing::warn!("the connect hook's answer names no valid user; refusing");
            return Err(denied((
                Box::from("auth.denied"),
                Box::from("the application's backend named no user"),
            )));
        }
    };
    let mut profile = match answer.get_mut("profile").map(Value::take) {
        Some(Value::Object(profile)) => profile,
        _ => serde_json::Map::new(),
    };
    profile.remove("id");
    Ok(Connected { user, profile })
}
