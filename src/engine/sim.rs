//! Several engines wired by simulated mesh links (FIFO per pair of shards, arbitrary
//! order across pairs, like glommio's channel mesh) and the engine's behaviour tested
//! on them, without sockets or executors. A simulation can be a cluster of several
//! nodes ([`Sim::cluster`]) whose nodes die and restart ([`Sim::kill`],
//! [`Sim::restart`]) and whose transport between nodes fails ([`Sim::outage`],
//! [`Sim::heal`]).

use std::collections::{BTreeMap, VecDeque};

use super::ot::{Delta, Op};
use super::*;

/// turntable v1's publications: echoed to the publisher (into `turntable:` channels,
/// whose namespace takes publications from members only).
fn echoed() -> PublishMode {
    PublishMode {
        echo: true,
        receipt: None,
    }
}

/// A tiny deterministic generator, so interleavings are random but reproducible.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// The outbox of one simulated shard.
struct SimOut<'a> {
    from: ShardId,
    links: &'a mut BTreeMap<(ShardId, ShardId), VecDeque<ShardMsg>>,
    inbox: &'a mut BTreeMap<(ShardId, u64), Vec<Event>>,
    answers: &'a mut Vec<(ShardId, u64, Answer)>,
    notices: &'a mut Vec<Notice>,
}

impl Outbox for SimOut<'_> {
    fn deliver(&mut self, to: &[ConnId], event: &Event) {
        for conn in to {
            self.inbox
                .entry((self.from, conn.0))
                .or_default()
                .push(event.clone());
        }
    }

    fn send(&mut self, shard: ShardId, msg: ShardMsg) {
        assert_ne!(shard, self.from, "the engine loops its own messages back");
        self.links
            .entry((self.from, shard))
            .or_default()
            .push_back(msg);
    }

    fn send_many(&mut self, shards: ShardSet, msg: ShardMsg) {
        hand_out(shards.iter(), msg, |shard, msg| self.send(shard, msg));
    }

    fn answer(&mut self, ticket: u64, answer: Answer) {
        self.answers.push((self.from, ticket, answer));
    }

    fn notice(&mut self, notice: Notice) {
        self.notices.push(notice);
    }
}

struct Sim {
    placement: Placement,
    limits: Limits,
    /// One engine per shard of the cluster, by cluster index.
    engines: Vec<Engine>,
    /// The cluster transport is down: messages between nodes are lost.
    partitioned: bool,
    links: BTreeMap<(ShardId, ShardId), VecDeque<ShardMsg>>,
    inbox: BTreeMap<(ShardId, u64), Vec<Event>>,
    /// Answers to HTTP API queries: the asking shard, the ticket, the answer.
    answers: Vec<(ShardId, u64, Answer)>,
    /// What the owners told the backend, in order.
    notices: Vec<Notice>,
    rng: Rng,
    next_conn: u64,
}

/// A simulated client connection: its shard and id.
#[derive(Copy, Clone, Debug)]
struct Client(ShardId, ConnId);

impl Sim {
    fn new(shards: usize, seed: u64) -> Self {
        Sim::with_limits(shards, seed, Limits::default())
    }

    fn with_limits(shards: usize, seed: u64, limits: Limits) -> Self {
        Sim::build(Placement::single_node(shards), seed, limits)
    }

    /// `nodes` nodes of `shards` shards each; messages route by cluster index.
    fn cluster(nodes: u32, shards: usize, seed: u64) -> Self {
        Sim::build(Placement::new(nodes, shards), seed, Limits::default())
    }

    fn build(placement: Placement, seed: u64, limits: Limits) -> Self {
        let engines = (0..placement.cluster_shards())
            .map(|index| Engine::new(placement.addr(index), placement, limits.clone()))
            .collect();
        Sim {
            placement,
            limits,
            engines,
            partitioned: false,
            links: BTreeMap::new(),
            inbox: BTreeMap::new(),
            answers: Vec::new(),
            notices: Vec::new(),
            rng: Rng(seed.max(1)),
            next_conn: 1,
        }
    }

    fn out(&mut self, shard: ShardId) -> (&mut Engine, SimOut<'_>) {
        let out = SimOut {
            from: shard,
            links: &mut self.links,
            inbox: &mut self.inbox,
            answers: &mut self.answers,
            notices: &mut self.notices,
        };
        (&mut self.engines[shard], out)
    }

    fn connect(&mut self, shard: ShardId) -> Client {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.engines[shard].open(conn);
        Client(shard, conn)
    }

    fn cmd(&mut self, c: Client, cmd: Command) {
        let (engine, mut out) = self.out(c.0);
        engine.command(c.1, cmd, &mut out);
    }

    fn close(&mut self, c: Client) {
        let (engine, mut out) = self.out(c.0);
        engine.close(c.1, &mut out);
    }

    fn identified(&mut self, shard: ShardId, user: &str) -> Client {
        let c = self.connect(shard);
        self.cmd(c, Command::Identify { user: user.into() });
        c
    }

    /// Delivers mesh messages, one random link at a time, until none is left.
    fn settle(&mut self) {
        while self.step() {}
    }

    /// `steps` random opens (two in three, as one of `users` on one of the first
    /// `shards` shards, then `opened`) and closes of the connections in `open`, with
    /// the mesh settled now and then; `open` holds who is connected afterwards.
    fn churn(
        &mut self,
        rng: &mut Rng,
        steps: usize,
        users: &[String],
        shards: usize,
        open: &mut Vec<(usize, Client)>,
        mut opened: impl FnMut(&mut Sim, Client),
    ) {
        for _ in 0..steps {
            if open.is_empty() || rng.below(3) > 0 {
                let u = rng.below(users.len());
                let c = self.identified(rng.below(shards), &users[u]);
                opened(self, c);
                open.push((u, c));
            } else {
                let (_, c) = open.swap_remove(rng.below(open.len()));
                self.close(c);
            }
            if rng.below(4) == 0 {
                self.settle();
            }
        }
        self.settle();
    }

    /// Delivers one message from a random non-empty link; false if none is waiting.
    fn step(&mut self) -> bool {
        let ready: Vec<(ShardId, ShardId)> = self
            .links
            .iter()
            .filter(|(_, q)| !q.is_empty())
            .map(|(k, _)| *k)
            .collect();
        if ready.is_empty() {
            return false;
        }
        let link = ready[self.rng.below(ready.len())];
        let msg = self.links.get_mut(&link).unwrap().pop_front().unwrap();
        let node = |shard| self.placement.addr(shard).node;
        if self.partitioned && node(link.0) != node(link.1) {
            return true;
        }
        let (engine, mut out) = self.out(link.1);
        engine.shard_msg(msg, &mut out);
        true
    }

    /// True once `c` has been told it is identified.
    fn has_identified(&self, c: Client) -> bool {
        self.inbox
            .get(&(c.0, c.1.0))
            .is_some_and(|events| events.iter().any(|e| matches!(e, Event::Identified { .. })))
    }

    /// Everything delivered to `c` since the last call.
    fn take(&mut self, c: Client) -> Vec<Event> {
        self.inbox.remove(&(c.0, c.1.0)).unwrap_or_default()
    }

    fn totals(&self) -> (usize, usize, usize) {
        self.engines.iter().fold((0, 0, 0), |acc, e| {
            let s = e.stats();
            (
                acc.0 + s.connections,
                acc.1 + s.owned_users,
                acc.2 + s.owned_channels,
            )
        })
    }
}

/// Nodes dying, restarting and losing the cluster transport.
impl Sim {
    /// Runs `f` on every engine with its outbox, then delivers what they sent.
    fn on_all(
        &mut self,
        shards: impl Iterator<Item = ShardId>,
        f: impl Fn(&mut Engine, &mut SimOut),
    ) {
        for shard in shards {
            let (engine, mut out) = self.out(shard);
            f(engine, &mut out);
        }
        self.settle();
    }

    /// The cluster indices of every shard not on `node`.
    fn others(&self, node: NodeId) -> impl Iterator<Item = ShardId> + use<> {
        let theirs = self.placement.shards_of(node);
        (0..self.engines.len()).filter(move |s| !theirs.contains(s))
    }

    /// `node`'s process dies: its state and the messages to and from it are lost, and
    /// the others are told.
    fn kill(&mut self, node: NodeId) {
        let theirs = self.placement.shards_of(node);
        for index in theirs.clone() {
            let addr = self.placement.addr(index);
            self.engines[index] = Engine::new(addr, self.placement, self.limits.clone());
        }
        self.links
            .retain(|(from, to), _| !theirs.contains(from) && !theirs.contains(to));
        self.inbox.retain(|(shard, _), _| !theirs.contains(shard));
        self.on_all(self.others(node), |e, out| e.node_down(node, out));
    }

    /// A killed `node` runs again, fresh, and the others are told.
    fn restart(&mut self, node: NodeId) {
        self.on_all(self.others(node), |e, out| e.node_up(node, out));
    }

    /// The cluster transport goes down: messages between nodes are lost until
    /// [`Sim::heal`].
    fn outage(&mut self) {
        self.partitioned = true;
        self.on_all(0..self.engines.len(), |e, out| e.cluster_down(out));
    }

    /// The cluster transport is back: every shard re-announces, then sweeps.
    fn heal(&mut self) {
        self.partitioned = false;
        self.on_all(0..self.engines.len(), |e, out| e.cluster_up(out));
        self.on_all(0..self.engines.len(), |e, out| e.sweep_stale(out));
    }
}

/// An id (`prefix` and a number) owned by a shard of `node`.
fn owned_by(placement: Placement, node: NodeId, prefix: &str) -> String {
    (0..)
        .map(|i| format!("{prefix}{i}"))
        .find(|id| placement.owner(id).node == node)
        .unwrap()
}

fn ids(list: &[&str]) -> Vec<Box<str>> {
    list.iter().map(|s| Box::from(*s)).collect()
}

fn presence(list: &[(&str, Status)]) -> Event {
    Event::Presence {
        statuses: list.iter().map(|(u, s)| (Box::from(*u), *s)).collect(),
    }
}

/// The shard of one node of `shards` that owns `id`.
fn owner_shard(id: &str, shards: usize) -> ShardId {
    Placement::single_node(shards).owner(id).shard
}

/// Users whose owners are spread over the shards, so cross-shard paths are exercised.
fn users_on_every_shard(shards: usize) -> Vec<String> {
    let mut found: Vec<Option<String>> = vec![None; shards];
    for i in 0.. {
        let id = format!("1:{i}");
        let s = owner_shard(&id, shards);
        if found[s].is_none() {
            found[s] = Some(id);
        }
        if found.iter().all(Option::is_some) {
            break;
        }
    }
    found.into_iter().map(Option::unwrap).collect()
}

#[test]
fn identify_then_commands_need_identity() {
    let mut sim = Sim::new(2, 7);
    let c = sim.connect(0);
    sim.cmd(c, Command::User(UserCommand::Watch(ids(&["x"]))));
    sim.cmd(c, Command::Identify { user: "a".into() });
    sim.settle();
    sim.cmd(c, Command::Identify { user: "b".into() });
    sim.settle();
    assert_eq!(
        sim.take(c),
        vec![
            Event::Error {
                receipt: None,
                code: ErrorCode::NotIdentified
            },
            Event::Identified { user: "a".into() },
            Event::Error {
                receipt: None,
                code: ErrorCode::AlreadyIdentified
            },
        ]
    );
}

#[test]
fn identified_is_sent_only_once_the_owner_counts_the_connection() {
    for seed in 1..30 {
        let mut sim = Sim::new(3, seed);
        let users = users_on_every_shard(3);
        let user = &users[0];
        let watcher = sim.identified(0, "w");
        sim.cmd(watcher, Command::User(UserCommand::Watch(ids(&[user]))));
        let first = sim.identified(1, user);
        sim.settle();
        sim.take(watcher);
        let second = sim.identified(2, user);
        while !sim.has_identified(second) {
            assert!(sim.step(), "seed {seed}: identified never arrived");
        }
        sim.close(first);
        sim.settle();
        let changes = sim.take(watcher);
        assert!(
            changes.is_empty(),
            "seed {seed}: {user} changed while connected: {changes:?}"
        );
    }
}

#[test]
fn snapshot_lists_every_id_once_then_changes_stream() {
    for seed in 1..20 {
        let mut sim = Sim::new(3, seed);
        let users = users_on_every_shard(3);
        let (a, b, c) = (&users[0], &users[1], &users[2]);
        let _b_conn = sim.identified(2, b);
        let watcher = sim.identified(0, "watcher");
        sim.settle();
        sim.take(watcher);
        sim.cmd(
            watcher,
            Command::User(UserCommand::Watch(ids(&[a, b, c, "nobody", b]))),
        );
        sim.settle();
        assert_eq!(
            sim.take(watcher),
            vec![presence(&[
                (a, Status::Offline),
                (b, Status::Online),
                (c, Status::Offline),
                ("nobody", Status::Offline),
            ])],
            "seed {seed}"
        );
        let a_conn = sim.identified(1, a);
        sim.settle();
        sim.cmd(a_conn, Command::User(UserCommand::SetStatus(Status::Busy)));
        sim.settle();
        sim.close(a_conn);
        sim.settle();
        assert_eq!(
            sim.take(watcher),
            vec![
                presence(&[(a, Status::Online)]),
                presence(&[(a, Status::Busy)]),
                presence(&[(a, Status::Offline)]),
            ],
            "seed {seed}"
        );
    }
}

#[test]
fn a_user_goes_offline_only_when_the_last_connection_closes() {
    let mut sim = Sim::new(3, 3);
    let watcher = sim.identified(0, "w");
    sim.cmd(watcher, Command::User(UserCommand::Watch(ids(&["u"]))));
    let first = sim.identified(1, "u");
    let second = sim.identified(2, "u");
    let third = sim.identified(2, "u");
    sim.settle();
    sim.close(first);
    sim.close(second);
    sim.settle();
    let events = sim.take(watcher);
    assert_eq!(events.last(), Some(&presence(&[("u", Status::Online)])));
    sim.close(third);
    sim.settle();
    assert_eq!(sim.take(watcher), vec![presence(&[("u", Status::Offline)])]);
}

#[test]
fn unwatch_stops_changes_and_frees_records() {
    let mut sim = Sim::new(2, 5);
    let watcher = sim.identified(0, "w");
    sim.cmd(watcher, Command::User(UserCommand::Watch(ids(&["u", "v"]))));
    sim.settle();
    sim.take(watcher);
    sim.cmd(watcher, Command::User(UserCommand::Unwatch(ids(&["u"]))));
    let u = sim.identified(1, "u");
    let v = sim.identified(1, "v");
    sim.settle();
    assert_eq!(sim.take(watcher), vec![presence(&[("v", Status::Online)])]);
    for c in [watcher, u, v] {
        sim.close(c);
    }
    sim.settle();
    assert_eq!(sim.totals(), (0, 0, 0));
}

#[test]
fn watch_limit_is_enforced() {
    let mut sim = Sim::new(1, 1);
    sim.engines[0].limits.max_watches_per_conn = 2;
    let c = sim.identified(0, "w");
    sim.take(c);
    sim.cmd(c, Command::User(UserCommand::Watch(ids(&["a", "b", "c"]))));
    assert_eq!(
        sim.take(c),
        vec![Event::Error {
            receipt: None,
            code: ErrorCode::TooManyWatches
        }]
    );
}

#[test]
fn join_invites_every_connection_of_the_invitee_and_tells_members() {
    let mut sim = Sim::new(3, 11);
    let host = sim.identified(0, "host");
    let guest_a = sim.identified(1, "guest");
    let guest_b = sim.identified(2, "guest");
    let other = sim.identified(1, "other");
    sim.settle();
    for c in [host, guest_a, guest_b, other] {
        sim.take(c);
    }
    sim.cmd(
        host,
        Command::Channel(ChannelCommand::Join {
            receipt: None,
            channel: "turntable:CStrike".into(),
            invite: ids(&["guest", "offline-user"]),
        }),
    );
    sim.settle();
    assert_eq!(
        sim.take(host),
        vec![Event::Joined {
            receipt: None,
            channel: "turntable:CStrike".into(),
            members: ids(&["host"]),
        }]
    );
    let invite = Event::Invite {
        channel: "turntable:CStrike".into(),
        from: "host".into(),
    };
    assert_eq!(sim.take(guest_a), vec![invite.clone()]);
    assert_eq!(sim.take(guest_b), vec![invite]);
    assert!(sim.take(other).is_empty());

    sim.cmd(
        guest_b,
        Command::Channel(ChannelCommand::Join {
            receipt: None,
            channel: "turntable:CStrike".into(),
            invite: vec![],
        }),
    );
    sim.settle();
    assert_eq!(
        sim.take(guest_b),
        vec![Event::Joined {
            receipt: None,
            channel: "turntable:CStrike".into(),
            members: ids(&["host", "guest"]),
        }]
    );
    assert_eq!(
        sim.take(host),
        vec![Event::MemberJoined {
            channel: "turntable:CStrike".into(),
            user: "guest".into(),
        }]
    );
    sim.close(guest_b);
    sim.settle();
    assert_eq!(
        sim.take(host),
        vec![Event::MemberLeft {
            channel: "turntable:CStrike".into(),
            user: "guest".into(),
        }]
    );
}

#[test]
fn every_member_sees_publications_in_the_same_order() {
    for seed in 1..30 {
        let mut sim = Sim::new(3, seed);
        let members: Vec<Client> = (0..6)
            .map(|i| sim.identified(i % 3, &format!("p{i}")))
            .collect();
        for &m in &members {
            sim.cmd(
                m,
                Command::Channel(ChannelCommand::Join {
                    receipt: None,
                    channel: "turntable:room".into(),
                    invite: vec![],
                }),
            );
        }
        sim.settle();
        for &m in &members {
            sim.take(m);
        }
        for round in 0..5 {
            for (i, &m) in members.iter().enumerate() {
                sim.cmd(
                    m,
                    Command::Channel(ChannelCommand::Publish {
                        mode: echoed(),
                        channel: "turntable:room".into(),
                        data: format!("[{round},{i}]").into(),
                    }),
                );
            }
        }
        sim.settle();
        let logs: Vec<Vec<Event>> = members.iter().map(|&m| sim.take(m)).collect();
        assert_eq!(logs[0].len(), 30);
        for log in &logs {
            assert_eq!(log, &logs[0], "seed {seed}");
        }
        let seqs: Vec<u64> = logs[0]
            .iter()
            .map(|e| match e {
                Event::Message { seq, .. } => *seq,
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(seqs, (1..=30).collect::<Vec<_>>());
    }
}

#[test]
fn non_members_cannot_publish_and_leave_is_acknowledged() {
    let mut sim = Sim::new(2, 9);
    let c = sim.identified(1, "u");
    sim.settle();
    sim.take(c);
    sim.cmd(
        c,
        Command::Channel(ChannelCommand::Publish {
            mode: echoed(),
            channel: "turntable:h".into(),
            data: "[]".into(),
        }),
    );
    sim.cmd(
        c,
        Command::Channel(ChannelCommand::Leave {
            receipt: None,
            channel: "turntable:h".into(),
        }),
    );
    sim.cmd(
        c,
        Command::Channel(ChannelCommand::Join {
            receipt: None,
            channel: "turntable:h".into(),
            invite: vec![],
        }),
    );
    // Publishing before the owner acknowledged the join is refused too.
    sim.cmd(
        c,
        Command::Channel(ChannelCommand::Publish {
            mode: echoed(),
            channel: "turntable:h".into(),
            data: "[]".into(),
        }),
    );
    sim.settle();
    sim.cmd(
        c,
        Command::Channel(ChannelCommand::Leave {
            receipt: None,
            channel: "turntable:h".into(),
        }),
    );
    sim.settle();
    let not_member = Event::Error {
        receipt: None,
        code: ErrorCode::NotMember,
    };
    assert_eq!(
        sim.take(c),
        vec![
            not_member.clone(),
            not_member.clone(),
            not_member,
            Event::Joined {
                receipt: None,
                channel: "turntable:h".into(),
                members: ids(&["u"]),
            },
            Event::Left {
                receipt: None,
                channel: "turntable:h".into()
            },
        ]
    );
    sim.close(c);
    sim.settle();
    assert_eq!(sim.totals(), (0, 0, 0));
}

#[test]
fn an_rpc_join_undone_before_the_owner_answers_is_still_answered() {
    let mut sim = Sim::new(2, 5);
    let c = sim.identified(1, "u");
    sim.settle();
    sim.take(c);
    let channel: Box<str> = (0..)
        .map(|i| format!("c{i}"))
        .find(|name| owner_shard(name, 2) == 0)
        .expect("a channel owned by the other shard")
        .into();
    let receipt = |id: &str| Some(Box::from(id));
    sim.cmd(
        c,
        Command::Channel(ChannelCommand::Join {
            receipt: receipt("1"),
            channel: channel.clone(),
            invite: vec![],
        }),
    );
    sim.cmd(
        c,
        Command::Channel(ChannelCommand::Leave {
            receipt: receipt("2"),
            channel: channel.clone(),
        }),
    );
    sim.settle();
    assert_eq!(
        sim.take(c),
        vec![
            Event::Left {
                receipt: receipt("2"),
                channel: channel.clone(),
            },
            Event::Joined {
                receipt: receipt("1"),
                channel,
                members: ids(&["u"]),
            },
        ]
    );
    sim.close(c);
    sim.settle();
    assert_eq!(sim.totals(), (0, 0, 0));
}

/// Two clients, `a` and `b`, on shard 1 and two documents owned by shard 0, which
/// holds one document at most: `a` has the first (`held`) open, so opens of the second
/// (`wanted`) are refused until `a` closes it.
struct FullDocuments {
    sim: Sim,
    a: Client,
    b: Client,
    held: Box<str>,
    wanted: Box<str>,
}

impl FullDocuments {
    fn new(seed: u64) -> Self {
        let limits = Limits {
            max_documents: 1,
            ..Limits::default()
        };
        let mut sim = Sim::with_limits(2, seed, limits);
        let (a, b) = (sim.identified(1, "a"), sim.identified(1, "b"));
        sim.settle();
        let owned_by_0 = |name: &String| owner_shard(name, 2) == 0;
        let mut names = (0..).map(|i| format!("doc{i}")).filter(owned_by_0);
        let (held, wanted): (Box<str>, Box<str>) =
            (names.next().unwrap().into(), names.next().unwrap().into());
        sim.cmd(a, open_document(&held, "1"));
        sim.settle();
        FullDocuments {
            sim,
            a,
            b,
            held,
            wanted,
        }
    }

    /// Sends each command from its client (`a` and `b` share a shard, so the owner
    /// gets them in this order), lets the mesh settle, and returns `b`'s answers.
    fn play(&mut self, script: Vec<(Client, Command)>) -> Vec<(Receipt, Option<ErrorCode>)> {
        for (c, cmd) in script {
            self.sim.cmd(c, cmd);
        }
        self.sim.settle();
        self.answers(self.b)
    }

    /// Closes both clients and checks that the owner keeps nothing of theirs.
    fn close_both(mut self) {
        self.sim.close(self.a);
        self.sim.close(self.b);
        self.sim.settle();
        assert_eq!(
            self.sim.totals(),
            (0, 0, 0),
            "the owner keeps no listener nobody holds"
        );
    }

    /// `c`'s answers since the last call: the receipt of each, with the error code of
    /// a refusal.
    fn answers(&mut self, c: Client) -> Vec<(Receipt, Option<ErrorCode>)> {
        self.sim
            .take(c)
            .into_iter()
            .filter_map(|event| match event {
                Event::Error { code, receipt } => Some((receipt, Some(code))),
                Event::DocumentOpened { receipt, .. }
                | Event::Unsubscribed { receipt, .. }
                | Event::EditAccepted { receipt, .. } => Some((receipt, None)),
                _ => None,
            })
            .collect()
    }

    /// Asserts that `b` holds `wanted` (its edit is accepted), then that nothing is
    /// left at the owner once both clients close.
    fn b_holds_wanted(mut self) {
        let edit = Command::Document(DocumentCommand::Edit {
            document: self.wanted.clone(),
            base: 0,
            delta: Delta::default(),
            receipt: Some(Box::from("edit")),
        });
        let b = self.b;
        assert_eq!(
            self.play(vec![(b, edit)]),
            vec![(Some("edit".into()), None)]
        );
        self.close_both();
    }
}

fn open_document(document: &str, id: &str) -> Command {
    Command::Document(DocumentCommand::Open {
        document: Box::from(document),
        receipt: Some(Box::from(id)),
    })
}

fn close_document(document: &str, id: &str) -> Command {
    Command::Channel(ChannelCommand::Unsubscribe {
        channel: Box::from(document),
        receipt: Some(Box::from(id)),
    })
}

#[test]
fn an_open_accepted_after_an_earlier_refusal_of_the_same_document_holds_it() {
    let mut docs = FullDocuments::new(7);
    let (a, b) = (docs.a, docs.b);
    // From one shard, in this order: b's first open finds the owner full, a's close
    // makes room, b's second open is accepted. The refusal arrives first; it must not
    // take the tie the accepted open still needs.
    let script = vec![
        (b, open_document(&docs.wanted, "1")),
        (a, close_document(&docs.held, "9")),
        (b, open_document(&docs.wanted, "2")),
    ];
    assert_eq!(
        docs.play(script),
        vec![
            (Some("1".into()), Some(ErrorCode::TooManyDocuments)),
            (Some("2".into()), None)
        ]
    );
    docs.b_holds_wanted();
}

#[test]
fn an_answer_to_an_open_closed_before_it_came_leaves_a_newer_open_alone() {
    let mut docs = FullDocuments::new(11);
    let (a, b) = (docs.a, docs.b);
    // From one shard, in this order: b's open finds the owner full, b closes the
    // document before the refusal comes, a's close makes room, b opens it again and
    // is accepted. The first refusal must not take the second open's tie.
    let script = vec![
        (b, open_document(&docs.wanted, "1")),
        (b, close_document(&docs.wanted, "2")),
        (a, close_document(&docs.held, "9")),
        (b, open_document(&docs.wanted, "3")),
    ];
    assert_eq!(
        docs.play(script),
        vec![
            (Some("2".into()), None),
            (Some("1".into()), Some(ErrorCode::TooManyDocuments)),
            (Some("3".into()), None),
        ]
    );
    docs.b_holds_wanted();
}

#[test]
fn an_acceptance_of_an_open_closed_before_it_came_leaves_a_newer_refusal_standing() {
    let mut docs = FullDocuments::new(13);
    let (a, b) = (docs.a, docs.b);
    // From one shard, in this order: a's close makes room, b's open is accepted, b
    // closes it again, a's open takes the room back, b's second open is refused. The
    // first acceptance comes after b's close: it must not mark the second open done,
    // or the refusal would leave b holding a document the owner never gave it.
    let script = vec![
        (a, close_document(&docs.held, "9")),
        (b, open_document(&docs.wanted, "1")),
        (b, close_document(&docs.wanted, "2")),
        (a, open_document(&docs.held, "8")),
        (b, open_document(&docs.wanted, "3")),
    ];
    assert_eq!(
        docs.play(script),
        vec![
            (Some("2".into()), None),
            (Some("1".into()), None),
            (Some("3".into()), Some(ErrorCode::TooManyDocuments)),
        ]
    );
    // b holds nothing: closing the document again is refused.
    let again = vec![(b, close_document(&docs.wanted, "4"))];
    assert_eq!(
        docs.play(again),
        vec![(Some("4".into()), Some(ErrorCode::NotSubscribed))]
    );
    docs.close_both();
}

#[test]
fn presence_churn_ends_in_the_right_status() {
    for seed in 1..10 {
        let shards = 4;
        let mut sim = Sim::new(shards, seed);
        let users: Vec<String> = (0..20).map(|i| format!("u{i}")).collect();
        let watchers: Vec<Client> = (0..shards)
            .map(|s| sim.identified(s, &format!("w{s}")))
            .collect();
        for &w in &watchers {
            let list: Vec<&str> = users.iter().map(String::as_str).collect();
            sim.cmd(w, Command::User(UserCommand::Watch(ids(&list))));
        }
        let mut open: Vec<(usize, Client)> = Vec::new();
        let mut rng = Rng(seed * 7919);
        sim.churn(&mut rng, 400, &users, shards, &mut open, |_, _| {});
        for &w in &watchers {
            let mut last: BTreeMap<Box<str>, Status> = BTreeMap::new();
            for event in sim.take(w) {
                if let Event::Presence { statuses } = event {
                    last.extend(statuses);
                }
            }
            for (u, name) in users.iter().enumerate() {
                let expected = if open.iter().any(|(x, _)| *x == u) {
                    Status::Online
                } else {
                    Status::Offline
                };
                assert_eq!(
                    last.get(name.as_str()),
                    Some(&expected),
                    "seed {seed} {name}"
                );
            }
        }
    }
}

fn member(id: &str) -> RoomMember {
    RoomMember {
        id: id.into(),
        profile: format!(r#"{{"id":"{id}","name":"N{id}"}}"#).into(),
        brief: format!(r#"{{"id":"{id}","name":"N{id}"}}"#).into(),
    }
}

impl Sim {
    fn tick(&mut self, now_ms: u64) {
        for shard in 0..self.engines.len() {
            let (engine, mut out) = self.out(shard);
            engine.tick(now_ms, &mut out);
        }
        self.settle();
    }

    fn enter(&mut self, shard: ShardId, room: &str, id: &str) -> Client {
        let c = self.connect(shard);
        let cmd = Command::Room(RoomCommand::Connect {
            room: room.into(),
            member: member(id),
        });
        self.cmd(c, cmd);
        self.settle();
        c
    }

    fn say(&mut self, c: Client, content: &str, to: Option<&str>, update: Option<u64>) {
        let cmd = Command::Room(RoomCommand::Say {
            content: content.into(),
            to: to.map(Into::into),
            update,
        });
        self.cmd(c, cmd);
        self.settle();
    }
}

fn room_change(change: RoomChange, id: &str, time: u64) -> Event {
    Event::RoomPresence {
        change,
        profile: member(id).profile,
        time,
    }
}

fn said(id: u64, content: &str, by: &str, private: bool, update: bool) -> Event {
    Event::RoomMessage {
        id,
        content: content.into(),
        brief: member(by).brief,
        time: 1000,
        private,
        update,
    }
}

#[test]
fn room_members_on_different_shards_see_joins_and_messages() {
    for seed in 1..10 {
        let mut sim = Sim::new(3, seed);
        sim.tick(1_000_000);
        let a = sim.enter(0, "lobby", "a");
        assert_eq!(
            sim.take(a),
            vec![
                Event::RoomConnected {
                    profile: member("a").profile
                },
                Event::RoomUsers {
                    profiles: vec![member("a").profile]
                },
            ]
        );
        let b = sim.enter(2, "lobby", "b");
        assert_eq!(sim.take(a), vec![room_change(RoomChange::Join, "b", 1000)]);
        let Event::RoomUsers { profiles } = &sim.take(b)[1] else {
            panic!("users expected");
        };
        assert_eq!(profiles.len(), 2);

        sim.say(a, "hi", None, None);
        assert_eq!(sim.take(a), vec![said(1, "hi", "a", false, false)]);
        assert_eq!(sim.take(b), vec![said(1, "hi", "a", false, false)]);
        sim.say(b, "psst", Some("a"), None);
        assert_eq!(sim.take(a), vec![said(2, "psst", "b", true, false)]);
        assert!(sim.take(b).is_empty());
        sim.say(a, "hi!", None, Some(1));
        assert_eq!(sim.take(b), vec![said(1, "hi!", "a", false, true)]);
        sim.take(a);

        let refused = |code| {
            vec![Event::Error {
                code,
                receipt: None,
            }]
        };
        sim.say(b, "mine now", None, Some(1));
        assert_eq!(sim.take(b), refused(ErrorCode::NotYourMessage));
        sim.say(b, "?", None, Some(99));
        assert_eq!(sim.take(b), refused(ErrorCode::UnknownMessage));
        sim.say(b, "?", Some("nobody"), None);
        assert_eq!(sim.take(b), refused(ErrorCode::UnknownRecipient));
        assert!(sim.take(a).is_empty(), "seed {seed}");
    }
}

#[test]
fn dropped_members_go_idle_come_back_or_leave_after_the_grace_period() {
    let mut sim = Sim::new(2, 3);
    let grace = Limits::default().room_idle_grace_ms;
    sim.tick(1_000_000);
    let a = sim.enter(0, "r", "a");
    let b = sim.enter(1, "r", "b");
    sim.take(a);
    sim.close(b);
    sim.settle();
    assert_eq!(sim.take(a), vec![room_change(RoomChange::Idle, "b", 1000)]);
    sim.tick(1_000_000 + grace - 1);
    assert!(sim.take(a).is_empty());
    let b = sim.enter(0, "r", "b");
    let back_at = (1_000_000 + grace - 1) / 1000;
    assert_eq!(
        sim.take(a),
        vec![room_change(RoomChange::Back, "b", back_at)]
    );
    sim.take(b);

    sim.close(b);
    sim.settle();
    sim.take(a);
    sim.tick(2_000_000);
    assert_eq!(
        sim.take(a),
        vec![Event::RoomLeave {
            user: "b".into(),
            time: 2000
        }]
    );

    // Two connections are one member: only the last one's drop makes it idle.
    let c1 = sim.enter(0, "r", "c");
    let c2 = sim.enter(1, "r", "c");
    sim.take(a);
    sim.close(c1);
    sim.settle();
    assert!(sim.take(a).is_empty());
    sim.cmd(c2, Command::Room(RoomCommand::Close));
    sim.settle();
    assert_eq!(
        sim.take(a),
        vec![Event::RoomLeave {
            user: "c".into(),
            time: 2000
        }]
    );
    sim.close(a);
    sim.close(c2);
    sim.settle();
    sim.tick(3_000_000);
    assert!(sim.engines.iter().all(|e| e.stats().owned_rooms == 0));
}

#[test]
fn room_commands_need_a_room_and_only_one() {
    let mut sim = Sim::new(2, 5);
    let c = sim.connect(1);
    sim.say(c, "hello?", None, None);
    assert_eq!(
        sim.take(c),
        vec![Event::Error {
            receipt: None,
            code: ErrorCode::NotInRoom
        }]
    );
    let c = sim.enter(1, "r", "x");
    sim.take(c);
    sim.cmd(
        c,
        Command::Room(RoomCommand::Connect {
            room: "other".into(),
            member: member("x"),
        }),
    );
    assert_eq!(
        sim.take(c),
        vec![Event::Error {
            receipt: None,
            code: ErrorCode::AlreadyInRoom
        }]
    );
}

#[test]
fn queries_are_answered_by_the_shards_that_know() {
    let mut sim = Sim::new(3, 11);
    let ann = sim.identified(0, "ann");
    let ann_again = sim.identified(2, "ann");
    let bob = sim.identified(1, "bob");
    for c in [ann, bob] {
        sim.cmd(
            c,
            Command::Channel(ChannelCommand::Join {
                channel: "lobby".into(),
                invite: Vec::new(),
                receipt: None,
            }),
        );
    }
    sim.settle();
    for c in [ann, ann_again, bob] {
        sim.take(c);
    }
    let ask = |sim: &mut Sim, to: ShardId, ticket: u64, query: Query| {
        let (engine, mut out) = sim.out(1);
        engine.ask(to, ticket, query, &mut out);
    };
    for to in 0..3 {
        ask(&mut sim, to, 1, Query::User { user: "ann".into() });
    }
    let lobby_owner = sim.engines[0].owner_of("lobby");
    ask(
        &mut sim,
        lobby_owner,
        2,
        Query::Members {
            channel: "lobby".into(),
        },
    );
    let publish = Query::Publish {
        channel: "lobby".into(),
        data: "[1]".into(),
    };
    ask(&mut sim, lobby_owner, 3, publish);
    sim.settle();
    let mut answers = std::mem::take(&mut sim.answers);
    answers.sort_by_key(|(_, ticket, _)| *ticket);
    assert!(answers.iter().all(|(asker, _, _)| *asker == 1));
    let counts: usize = answers[..3]
        .iter()
        .map(|(_, _, a)| match a {
            Answer::Count { connections, .. } => *connections,
            other => panic!("{other:?}"),
        })
        .sum();
    assert_eq!(counts, 2);
    let statuses: Vec<_> = answers[..3]
        .iter()
        .filter_map(|(_, _, a)| match a {
            Answer::Count { status, .. } => *status,
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        vec![Status::Online],
        "only the owner knows the status"
    );
    assert_eq!(answers[3].2, Answer::Members(ids(&["ann", "bob"])));
    assert_eq!(answers[4].2, Answer::Published { seq: Some(1) });
    for c in [ann, bob] {
        assert!(matches!(&sim.take(c)[..], [Event::Message { seq: 1, .. }]));
    }

    for to in 0..3 {
        ask(&mut sim, to, 4, Query::Disconnect { user: "ann".into() });
    }
    sim.settle();
    assert_eq!(sim.take(ann), vec![Event::Disconnected]);
    assert_eq!(sim.take(ann_again), vec![Event::Disconnected]);
    assert!(sim.take(bob).is_empty());
}

#[test]
fn owners_tell_the_backend_of_occupancy_membership_and_presence_once() {
    let mut sim = Sim::new(2, 11);
    let a = sim.identified(0, "a");
    let a2 = sim.identified(1, "a");
    let b = sim.identified(1, "b");
    sim.settle();
    let join = |channel: &str| {
        Command::Channel(ChannelCommand::Join {
            channel: channel.into(),
            invite: vec![],
            receipt: None,
        })
    };
    for c in [a, a2, b] {
        sim.cmd(c, join("turntable:room"));
        sim.settle();
    }
    for c in [a, a2, b] {
        sim.close(c);
        sim.settle();
    }
    let channel: Box<str> = "turntable:room".into();
    let user = |u: &str| Box::<str>::from(u);
    let notices: Vec<Notice> = sim.notices.drain(..).collect();
    let expected = [
        Notice::UserOnline { user: user("a") },
        Notice::UserOnline { user: user("b") },
        Notice::ChannelOccupied {
            channel: channel.clone(),
        },
        Notice::MemberAdded {
            channel: channel.clone(),
            user: user("a"),
        },
        Notice::MemberAdded {
            channel: channel.clone(),
            user: user("b"),
        },
        Notice::MemberRemoved {
            channel: channel.clone(),
            user: user("a"),
        },
        Notice::UserOffline { user: user("a") },
        Notice::MemberRemoved {
            channel: channel.clone(),
            user: user("b"),
        },
        Notice::ChannelVacated { channel },
        Notice::UserOffline { user: user("b") },
    ];
    for notice in &expected {
        let seen = notices.iter().filter(|n| *n == notice).count();
        assert_eq!(seen, 1, "{notice:?} once in {notices:?}");
    }
    assert_eq!(notices.len(), expected.len(), "{notices:?}");
    let at = |n: &Notice| notices.iter().position(|m| m == n).unwrap();
    assert!(at(&expected[2]) < at(&expected[3]) && at(&expected[7]) < at(&expected[8]));
}

#[test]
fn member_lists_follow_the_namespace_s_receive_rule() {
    use super::namespace::{Namespaces, Policy, Readers};
    let mut namespaces = Namespaces::default();
    let rule = |receive| Policy {
        receive,
        ..Policy::OPEN
    };
    namespaces.set("auth", rule(Readers::Authenticated));
    namespaces.set(
        "asked",
        Policy {
            subscribe_hook: Some("http://backend/subscribe".into()),
            ..rule(Readers::Backend)
        },
    );
    let limits = Limits {
        namespaces: std::sync::Arc::new(namespaces),
        ..Limits::default()
    };
    let mut sim = Sim::with_limits(2, 13, limits);
    let anonymous = sim.connect(0);
    let member = sim.identified(1, "m");
    sim.settle();
    sim.take(member);
    let members = |channel: &str| {
        Command::Channel(ChannelCommand::Members {
            channel: channel.into(),
            receipt: Some("1".into()),
        })
    };
    let forbidden = Event::Error {
        code: ErrorCode::Forbidden,
        receipt: Some("1".into()),
    };
    for channel in ["auth:x", "asked:x"] {
        sim.cmd(anonymous, members(channel));
        sim.settle();
        assert_eq!(sim.take(anonymous), vec![forbidden.clone()], "{channel}");
    }
    sim.cmd(member, members("asked:x"));
    sim.settle();
    assert_eq!(sim.take(member), vec![forbidden.clone()], "no tie, no list");
    sim.cmd(member, members("auth:x"));
    sim.settle();
    assert!(
        matches!(&sim.take(member)[..], [Event::Members { .. }]),
        "an identified connection lists an authenticated namespace's members"
    );
}

fn join(channel: &str, receipt: Option<&str>) -> Command {
    Command::Channel(ChannelCommand::Join {
        channel: channel.into(),
        invite: vec![],
        receipt: receipt.map(Into::into),
    })
}

fn watch(list: &[&str]) -> Command {
    Command::User(UserCommand::Watch(ids(list)))
}

/// The last status `c` was told of `user`, from everything delivered since the last
/// take.
fn last_status(events: &[Event], user: &str) -> Option<Status> {
    events.iter().rev().find_map(|e| match e {
        Event::Presence { statuses } => statuses
            .iter()
            .rev()
            .find(|(u, _)| &**u == user)
            .map(|(_, s)| *s),
        _ => None,
    })
}

#[test]
fn a_user_on_two_nodes_goes_offline_only_when_both_are_gone() {
    for seed in 1..10 {
        let mut sim = Sim::cluster(3, 2, seed);
        let user = owned_by(sim.placement, 0, "u");
        let watcher = sim.identified(0, "w");
        sim.cmd(watcher, watch(&[&user]));
        let _on_1 = sim.identified(2, &user);
        let on_2 = sim.identified(5, &user);
        sim.settle();
        assert_eq!(last_status(&sim.take(watcher), &user), Some(Status::Online));
        sim.kill(1);
        assert!(
            sim.take(watcher).is_empty(),
            "seed {seed}: still online on node 2"
        );
        sim.close(on_2);
        sim.settle();
        assert_eq!(
            sim.take(watcher),
            vec![presence(&[(&user, Status::Offline)])]
        );
    }
}

#[test]
fn a_dead_node_s_members_leave_its_channels_and_rooms_and_go_offline() {
    let mut sim = Sim::cluster(2, 2, 5);
    let channel = owned_by(sim.placement, 0, "turntable:c");
    let room = owned_by(sim.placement, 0, "room");
    let stays = sim.identified(1, "stays");
    let dies = sim.identified(2, "dies");
    for c in [stays, dies] {
        sim.cmd(c, join(&channel, None));
        sim.settle();
    }
    sim.tick(1_000_000);
    let here = sim.enter(0, &room, "a");
    sim.enter(3, &room, "b");
    for c in [stays, dies, here] {
        sim.take(c);
    }
    sim.kill(1);
    assert_eq!(
        sim.take(stays),
        vec![Event::MemberLeft {
            channel: channel.as_str().into(),
            user: "dies".into()
        }]
    );
    assert_eq!(
        sim.take(here),
        vec![room_change(RoomChange::Idle, "b", 1000)]
    );
    sim.tick(2_000_000);
    assert_eq!(
        sim.take(here),
        vec![Event::RoomLeave {
            user: "b".into(),
            time: 2000
        }]
    );
}

#[test]
fn a_restarted_owner_restores_its_members_silently_and_a_node_back_from_the_dead_is_announced() {
    for seed in 1..6 {
        let mut sim = Sim::cluster(3, 2, seed);
        let channel = owned_by(sim.placement, 0, "turntable:c");
        let room = owned_by(sim.placement, 0, "room");
        let (p, q) = (sim.identified(2, "p"), sim.identified(4, "q"));
        for c in [p, q] {
            sim.cmd(c, join(&channel, None));
            sim.settle();
        }
        sim.tick(1_000_000);
        let a = sim.enter(2, &room, "a");
        let b = sim.enter(5, &room, "b");
        for c in [p, q, a, b] {
            sim.take(c);
        }
        // The owner's process restarts: the members re-announce themselves to it, and
        // none of them hears anyone (itself included) join.
        sim.kill(0);
        sim.restart(0);
        sim.tick(2_000_000);
        for c in [p, q, a, b] {
            assert_eq!(sim.take(c), vec![], "seed {seed}");
        }
        sim.say(a, "back", None, None);
        let mut back = said(1, "back", "a", false, false);
        if let Event::RoomMessage { time, .. } = &mut back {
            *time = 2000;
        }
        assert_eq!(sim.take(b), vec![back]);
        sim.take(a);
        // Node 1 (a's and p's) is declared dead though it runs, then is back: the
        // others heard its members leave and go idle, so they hear them again.
        sim.on_all(sim.others(1), |e, out| e.node_down(1, out));
        assert_eq!(sim.take(b), vec![room_change(RoomChange::Idle, "a", 2000)]);
        assert_eq!(
            sim.take(q),
            vec![Event::MemberLeft {
                channel: channel.as_str().into(),
                user: "p".into()
            }]
        );
        sim.on_all(sim.others(1), |e, out| e.node_up(1, out));
        assert_eq!(sim.take(b), vec![room_change(RoomChange::Back, "a", 2000)]);
        assert_eq!(
            sim.take(q),
            vec![Event::MemberJoined {
                channel: channel.as_str().into(),
                user: "p".into()
            }]
        );
    }
}

#[test]
fn after_a_restart_the_restarted_node_s_presence_and_channels_are_right_again() {
    for seed in 1..10 {
        let mut sim = Sim::cluster(2, 2, seed);
        let user = owned_by(sim.placement, 1, "u");
        let channel = owned_by(sim.placement, 1, "turntable:c");
        let u = sim.identified(0, &user);
        let _also_u = sim.identified(1, &user);
        sim.settle();
        sim.cmd(u, Command::User(UserCommand::SetStatus(Status::Busy)));
        let watcher = sim.identified(1, "w");
        sim.cmd(watcher, watch(&[&user]));
        sim.cmd(u, join(&channel, None));
        sim.settle();
        sim.take(watcher);
        sim.take(u);
        sim.kill(1);
        sim.restart(1);
        assert_eq!(
            last_status(&sim.take(watcher), &user).unwrap_or(Status::Busy),
            Status::Busy,
            "seed {seed}"
        );
        let fresh = sim.identified(2, "fresh");
        sim.settle();
        sim.cmd(fresh, watch(&[&user]));
        sim.cmd(fresh, join(&channel, None));
        sim.settle();
        assert_eq!(
            sim.take(fresh),
            vec![
                Event::Identified {
                    user: "fresh".into()
                },
                presence(&[(&user, Status::Busy)]),
                Event::Joined {
                    channel: channel.as_str().into(),
                    members: ids(&[&user, "fresh"]),
                    receipt: None
                },
            ],
            "seed {seed}"
        );
        sim.cmd(
            u,
            Command::Channel(ChannelCommand::Publish {
                channel: channel.as_str().into(),
                data: "[1]".into(),
                mode: echoed(),
            }),
        );
        sim.settle();
        for c in [u, fresh] {
            let events = sim.take(c);
            assert!(
                matches!(events.last(), Some(Event::Message { data, .. }) if &**data == "[1]"),
                "seed {seed}: {events:?}"
            );
        }
    }
}

#[test]
fn commands_for_a_dead_node_s_objects_are_refused_until_it_is_back() {
    let mut sim = Sim::cluster(2, 1, 3);
    let theirs = owned_by(sim.placement, 1, "turntable:c");
    let ours = owned_by(sim.placement, 0, "turntable:c");
    let user = owned_by(sim.placement, 1, "u");
    let c = sim.identified(0, &owned_by(sim.placement, 0, "me"));
    sim.settle();
    sim.take(c);
    // Waiting for node 1 when it dies: a join is refused, a room connect too, an
    // identification is acknowledged.
    let waiting = sim.identified(0, &user);
    sim.cmd(waiting, join(&theirs, None));
    let seated = sim.connect(0);
    let room = owned_by(sim.placement, 1, "room");
    sim.cmd(
        seated,
        Command::Room(RoomCommand::Connect {
            room: room.as_str().into(),
            member: member("m"),
        }),
    );
    sim.kill(1);
    let refused_now = Event::Error {
        code: ErrorCode::OwnerUnavailable,
        receipt: None,
    };
    assert_eq!(
        sim.take(waiting),
        vec![
            refused_now.clone(),
            Event::Identified {
                user: user.as_str().into()
            }
        ]
    );
    assert_eq!(sim.take(seated), vec![refused_now]);
    assert!(!sim.engines[0].in_room(seated.1));
    sim.close(waiting);
    sim.settle();
    let refused = |code, receipt: Option<&str>| Event::Error {
        code,
        receipt: receipt.map(Into::into),
    };
    sim.cmd(c, join(&theirs, Some("1")));
    sim.cmd(c, watch(&[&user]));
    let other = sim.connect(0);
    sim.cmd(
        other,
        Command::Identify {
            user: user.as_str().into(),
        },
    );
    sim.cmd(c, join(&ours, Some("2")));
    sim.settle();
    let unavailable = ErrorCode::OwnerUnavailable;
    assert_eq!(
        sim.take(c),
        vec![
            refused(unavailable, Some("1")),
            refused(unavailable, None),
            Event::Joined {
                channel: ours.as_str().into(),
                members: ids(&[&*sim.engines[0].user_of(c.1).unwrap().to_owned()]),
                receipt: Some("2".into())
            },
        ]
    );
    assert_eq!(sim.take(other), vec![refused(unavailable, None)]);
    assert!(!sim.engines[0].node_reachable(1) && sim.engines[0].node_reachable(0));
    sim.restart(1);
    assert!(sim.engines[0].node_reachable(1));
    sim.cmd(c, join(&theirs, Some("3")));
    sim.settle();
    assert!(matches!(&sim.take(c)[..], [Event::Joined { .. }]));
}

#[test]
fn after_an_outage_the_sweep_drops_what_was_lost_without_flapping_the_rest() {
    for seed in 1..10 {
        let mut sim = Sim::cluster(2, 2, seed);
        let gone = owned_by(sim.placement, 0, "gone");
        let stays = owned_by(sim.placement, 0, "stays");
        let remote = owned_by(sim.placement, 1, "turntable:c");
        let local = owned_by(sim.placement, 0, "turntable:c");
        let watcher = sim.identified(0, "w");
        sim.cmd(watcher, watch(&[&gone, &stays]));
        let gone_conn = sim.identified(2, &gone);
        let stays_conn = sim.identified(3, &stays);
        sim.cmd(stays_conn, join(&local, None));
        sim.settle();
        sim.take(watcher);
        sim.outage();
        sim.close(gone_conn);
        sim.cmd(watcher, join(&remote, Some("1")));
        sim.cmd(watcher, join(&local, Some("2")));
        sim.settle();
        assert_eq!(
            sim.take(watcher),
            vec![
                Event::Error {
                    code: ErrorCode::ClusterUnavailable,
                    receipt: Some("1".into())
                },
                Event::Joined {
                    channel: local.as_str().into(),
                    members: ids(&[&stays, "w"]),
                    receipt: Some("2".into())
                },
            ],
            "seed {seed}: this node's channels work, the other's are refused"
        );
        sim.heal();
        assert_eq!(
            sim.take(watcher),
            vec![presence(&[(&gone, Status::Offline)])],
            "seed {seed}: only the lost close changes anything"
        );
        sim.close(stays_conn);
        sim.settle();
        let events = sim.take(watcher);
        assert_eq!(
            last_status(&events, &stays),
            Some(Status::Offline),
            "seed {seed}"
        );
        assert!(events.contains(&Event::MemberLeft {
            channel: local.as_str().into(),
            user: stays.as_str().into()
        }));
    }
}

#[test]
fn re_announcing_to_a_live_owner_does_not_double_count() {
    let mut sim = Sim::cluster(2, 1, 9);
    let user = owned_by(sim.placement, 0, "u");
    let channel = owned_by(sim.placement, 0, "turntable:c");
    let watcher = sim.identified(0, "w");
    sim.cmd(watcher, watch(&[&user]));
    let u = sim.identified(1, &user);
    sim.cmd(u, join(&channel, None));
    sim.cmd(watcher, join(&channel, None));
    sim.settle();
    sim.take(watcher);
    for _ in 0..2 {
        sim.on_all(0..2, |e, out| {
            let other = 1 - e.placement.addr(e.shard()).node;
            e.node_up(other, out);
        });
        sim.on_all(0..2, |e, out| e.sweep_stale(out));
    }
    assert!(sim.take(watcher).is_empty(), "nothing changed");
    sim.close(u);
    sim.settle();
    let events = sim.take(watcher);
    assert_eq!(last_status(&events, &user), Some(Status::Offline));
    assert!(events.contains(&Event::MemberLeft {
        channel: channel.as_str().into(),
        user: user.as_str().into()
    }));
    sim.close(watcher);
    sim.settle();
    assert_eq!(sim.totals(), (0, 0, 0));
}

/// Fails unless every watcher's last word of each user matches the open connections
/// that identified as them.
fn check_presence(
    sim: &mut Sim,
    watchers: &[Client],
    heard: &mut [BTreeMap<Box<str>, Status>],
    users: &[String],
    open: &[(usize, Client)],
    when: &str,
) {
    for (w, heard) in watchers.iter().zip(heard.iter_mut()) {
        for event in sim.take(*w) {
            if let Event::Presence { statuses } = event {
                heard.extend(statuses);
            }
        }
        for (u, name) in users.iter().enumerate() {
            let online = open
                .iter()
                .any(|(x, c)| *x == u && sim.engines[c.0].user_of(c.1) == Some(name));
            let expected = if online {
                Status::Online
            } else {
                Status::Offline
            };
            assert_eq!(heard.get(name.as_str()), Some(&expected), "{when}: {name}");
        }
    }
    for channel in CHURN_CHANNELS {
        let mut expected: Vec<&str> = open
            .iter()
            .filter(|(_, c)| {
                let local = sim.engines[c.0].conns.get(&c.1);
                local.is_some_and(|l| l.tie(channel).is_some())
            })
            .map(|(u, _)| users[*u].as_str())
            .collect();
        expected.sort();
        expected.dedup();
        let owner = sim.engines[0].owner_of(channel);
        let (engine, mut out) = sim.out(0);
        let query = Query::Members {
            channel: channel.into(),
        };
        engine.ask(owner, 0, query, &mut out);
        sim.settle();
        let Some((_, _, Answer::Members(mut members))) = sim.answers.pop() else {
            panic!("{when}: no answer");
        };
        members.sort();
        assert_eq!(members, ids(&expected), "{when}: {channel}");
    }
}

/// Channels the churn joins: one owned by each node of a 2 x 2 cluster.
const CHURN_CHANNELS: [&str; 2] = ["turntable:room0", "turntable:room4"];

#[test]
fn presence_and_members_converge_after_outages_and_a_restart() {
    for seed in 1..12 {
        let mut sim = Sim::cluster(2, 2, seed);
        let nodes = CHURN_CHANNELS.map(|c| sim.placement.owner(c).node);
        assert_eq!(nodes, [0, 1], "a channel owned by each node");
        let users: Vec<String> = (0..12).map(|i| format!("u{i}")).collect();
        let list: Vec<&str> = users.iter().map(String::as_str).collect();
        let watchers: Vec<Client> = (0..2)
            .map(|s| sim.identified(s, &format!("w{s}")))
            .collect();
        for &w in &watchers {
            sim.cmd(w, watch(&list));
        }
        sim.settle();
        let mut heard = vec![BTreeMap::new(); watchers.len()];
        let mut open: Vec<(usize, Client)> = Vec::new();
        let mut rng = Rng(seed * 7919);
        for phase in 0..5 {
            match phase {
                1 | 3 => sim.outage(),
                2 | 4 => sim.heal(),
                _ => {}
            }
            if phase == 3 {
                // Node 1 dies during the second outage and comes back after it.
                sim.kill(1);
                open.retain(|(_, c)| sim.placement.addr(c.0).node == 0);
            }
            if phase == 4 {
                sim.restart(1);
            }
            let when = format!("seed {seed} phase {phase}");
            if phase == 2 || phase == 4 {
                check_presence(&mut sim, &watchers, &mut heard, &users, &open, &when);
            }
            let shards = if phase == 3 { 2 } else { 4 };
            let mut pick = Rng(rng.0 ^ 0x9e37_79b9);
            sim.churn(&mut rng, 60, &users, shards, &mut open, |sim, c| {
                sim.cmd(c, join(CHURN_CHANNELS[pick.below(2)], None));
            });
        }
        let when = format!("seed {seed} at the end");
        check_presence(&mut sim, &watchers, &mut heard, &users, &open, &when);
    }
}

#[test]
fn re_announcements_from_a_node_declared_down_wait_for_its_node_up() {
    let mut sim = Sim::cluster(2, 1, 1);
    let user = owned_by(sim.placement, 0, "u");
    sim.kill(1);
    let from_the_dead = ShardMsg::Resync(Resync::User {
        user: user.as_str().into(),
        from: 1,
        conn: Some(ConnId(1)),
        status: None,
        watching: true,
    });
    let (engine, mut out) = sim.out(0);
    engine.shard_msg(from_the_dead, &mut out);
    assert_eq!(sim.totals(), (0, 0, 0));
    sim.restart(1);
    let c = sim.identified(1, &user);
    sim.settle();
    assert!(sim.has_identified(c));
    assert_eq!(sim.engines[0].stats().owned_users, 1);
}

#[test]
fn after_a_restart_rooms_claims_and_documents_are_re_announced() {
    let mut sim = Sim::cluster(2, 1, 7);
    let room = owned_by(sim.placement, 1, "room");
    let user = owned_by(sim.placement, 1, "u");
    let document = (0..)
        .map(|i| document_channel("default", &format!("notes{i}")))
        .find(|d| sim.placement.owner(d).node == 1)
        .unwrap();
    sim.tick(1_000_000);
    let a = sim.enter(0, &room, "a");
    let claimed: Vec<Client> = (0..2).map(|_| sim.identified(0, &user)).collect();
    for &c in &claimed {
        sim.cmd(c, Command::User(UserCommand::Claim { max: 2, since: 1 }));
    }
    sim.cmd(claimed[0], open_document(&document, "1"));
    sim.settle();
    for c in [a, claimed[0], claimed[1]] {
        sim.take(c);
    }
    sim.kill(1);
    sim.restart(1);
    sim.tick(1_000_000);
    assert!(sim.take(a).is_empty(), "a's seat came back quietly");

    let b = sim.enter(1, &room, "b");
    let Event::RoomUsers { profiles } = &sim.take(b)[1] else {
        panic!("users expected");
    };
    assert_eq!(profiles.len(), 2, "a is in the room again");
    assert_eq!(sim.take(a), vec![room_change(RoomChange::Join, "b", 1000)]);

    let third = sim.identified(1, &user);
    sim.cmd(
        third,
        Command::User(UserCommand::Claim { max: 2, since: 2 }),
    );
    sim.settle();
    let replaced = claimed
        .iter()
        .filter(|&&c| sim.take(c).contains(&Event::Replaced))
        .count();
    assert_eq!(replaced, 1, "the claims were counted again");

    let editor = sim.identified(1, "editor");
    sim.cmd(editor, open_document(&document, "2"));
    sim.settle();
    sim.take(editor);
    let mut delta = Delta::default();
    delta.push(Op::Insert("hi".into()));
    let edit = DocumentCommand::Edit {
        document: document.clone(),
        base: 0,
        delta,
        receipt: None,
    };
    sim.cmd(editor, Command::Document(edit));
    sim.settle();
    assert!(
        matches!(
            &sim.take(claimed[0])[..],
            [Event::DocumentEdited { revision: 1, .. }]
        ),
        "the open document's listener was re-registered"
    );
}
