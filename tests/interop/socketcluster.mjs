// SocketCluster protocol v1 interop checks, driven by the REAL npm clients.
//
//   bash scripts/setup-node.sh      # once: installs the pinned packages into .cache/node
//   node tests/interop/socketcluster.mjs --url ws://127.0.0.1:PORT/socketcluster/ \
//        --secret SECRET --client sc14|sc20 [--api http://127.0.0.1:PORT --api-key KEY]
//        [--reference] [--verbose]
//
// sc14 = socketcluster-client@14.3.2 (V1 only); sc20 = socketcluster-client@20.0.2 created with
// protocolVersion: 1. Packages are loaded with createRequire() anchored at
// <repo>/.cache/node/package.json (found relative to this file), so no NODE_PATH and any cwd work.
// The server must announce a short keepalive (turntable: --socketcluster-ping-interval 500ms
// --socketcluster-ping-timeout 1500ms; tests/interop/reference-server.cjs does the same) and verify HS256 JWTs
// with SECRET. Run by tests/socketcluster_npm.rs against an in-process 2-shard turntable.
//
// Every check asserts only what the client itself observes (its events, callbacks, state, its
// token store, and the close frames and upgrade response its WebSocket receives). Where turntable
// serves several shards it says which in the `X-Turntable-Shard` response header; the harness reads
// it from the client's WebSocket upgrade response to put the second client on another shard (the
// reference server sends none, so there any second client will do).
//
// --reference validates the harness against socketcluster-server@14.7.2
// (`node tests/interop/reference-server.cjs --secret S` prints `PORT n`, then serves until killed)
// and switches the expectations where turntable deliberately differs from it:
//   * an unknown event with a cid gets NoHandlerError from turntable (no application code runs
//     there), nothing at all from the reference (the client's ackTimeout gives a TimeoutError);
//   * turntable refuses the channel names "" and names over 256 bytes with BrokerError, the
//     reference accepts them;
//   * turntable renews a token past half its lifetime with #setAuthToken; the reference does not
//     (those two checks are skipped there).
// Prints `ok - NAME` / `not ok - NAME: DETAIL` per check and a closing `N passed, N failed`; exits
// 0 only if every check passed; gives up after 30 s (--timeout MS; exit 1).
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../../.cache/node/package.json'));
const jwt = require('jsonwebtoken');

// ---- arguments ----
const argv = process.argv.slice(2);
const arg = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt; };
const url = new URL(arg('--url', 'ws://127.0.0.1:8080/socketcluster/'));
const secret = arg('--secret', 'interop-secret');
const kind = arg('--client', 'sc14');
const reference = argv.includes('--reference');
// turntable's HTTP API (base URL and key), to have the server kick a socket out of a channel.
const api = arg('--api', null);
const apiKey = arg('--api-key', '');
const verbose = argv.includes('--verbose');
const ACK_TIMEOUT = 2000;
if (kind !== 'sc14' && kind !== 'sc20') { console.error('--client must be sc14 or sc20'); process.exit(2); }
const scClient = require(kind);

const globalMs = Number(arg('--timeout', 30000));
const globalTimer = setTimeout(() => {
  console.log(`not ok - global timeout: the checks did not finish within ${globalMs} ms`);
  process.exit(1);
}, globalMs);

// ---- small helpers ----
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
function within(ms, promise, what) {
  let t;
  const timeout = new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`no ${what} within ${ms} ms`)), ms); });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}
const describe = (e) => (e && e.name ? `${e.name}: ${e.message}` : JSON.stringify(e));
const token = (payload, key = secret, opts = { expiresIn: 3600 }) => jwt.sign(payload, key, { algorithm: 'HS256', ...opts });
// Settles with the error a promise rejects with; fails if it resolves instead.
const failure = (promise, what) => promise.then((d) => { throw new Error(`expected ${what}, got ${JSON.stringify(d)}`); }, (e) => e);

// In-memory token store usable by both client generations: sc14 passes a trailing callback,
// sc20 awaits the returned promise. Seeding it is how a "stored" token reaches #handshake in node
// (neither client has localStorage here). `removals` counts removeToken() calls: the clients call
// it on the server's #removeAuthToken and on deauthenticate(), never on a refused token alone.
class MemoryAuthEngine {
  constructor(initial) { this.token = initial ?? null; this.removals = 0; }
  #done(args, value) { const cb = args[args.length - 1]; if (typeof cb === 'function') cb(null, value); return Promise.resolve(value); }
  saveToken(name, tok, ...rest) { this.token = tok; return this.#done(rest, tok); }
  removeToken(name, ...rest) { const old = this.token; this.token = null; this.removals++; return this.#done(rest, old); }
  loadToken(name, ...rest) { return this.#done(rest, this.token); }
}

// ---- one adapter per client generation, same promise-based surface ----
function common(storedToken) {
  const engine = new MemoryAuthEngine(storedToken);
  return [engine, {
    hostname: url.hostname, port: Number(url.port || 80), path: url.pathname, secure: url.protocol === 'wss:',
    autoReconnect: false, ackTimeout: ACK_TIMEOUT, authEngine: engine,
  }];
}

// State both adapters share: errors, pings, the shard from the upgrade response.
function observe(c, s) {
  c.errors = []; c.expectedErrors = []; c.pings = 0; c.shard = undefined;
  // The WebSocket is created synchronously by create(); its 'upgrade' comes before 'open'.
  s.transport.socket.once('upgrade', (res) => { c.shard = res.headers['x-turntable-shard']; });
}

// What both adapters read straight off the client socket.
class Adapter {
  get id() { return this.s.id; }
  get state() { return this.s.state; }
  get authState() { return this.s.authState; }
  get authToken() { return this.s.authToken; }
  get ws() { return this.s.transport.socket; }
}

class Sc14 extends Adapter {
  constructor(storedToken) {
    super();
    const [engine, opts] = common(storedToken);
    // multiplex:false, or a second create() for the same URL returns the same socket.
    const s = this.s = scClient.create({ ...opts, multiplex: false });
    this.engine = engine;
    observe(this, s);
    s.on('error', (e) => { this.errors.push(e); if (verbose) console.log(`# ${kind} error event: ${describe(e)}`); });
    s.on('message', (m) => { if (m === '#1') this.pings++; });
    this.connected = new Promise((res, rej) => {
      s.on('connect', (status) => res(status));
      s.on('connectAbort', (code, reason) => rej(new Error(`connectAbort ${code} ${reason ?? ''}`)));
    });
    this.closed = new Promise((res) => s.on('close', (code, reason) => res({ code, reason })));
  }
  subscribe(ch) {
    const c = this.s.subscribe(ch);
    return new Promise((res, rej) => { c.on('subscribe', () => res()); c.on('subscribeFail', (e) => rej(e)); });
  }
  watch(ch, fn) { this.s.watch(ch, fn); }
  nextKickOut() { return new Promise((res) => this.s.once('kickOut', (message, channel) => res({ message, channel }))); }
  isSubscribed(ch) { return this.s.isSubscribed(ch, true); }
  unsubscribe(ch) { this.s.unsubscribe(ch); }
  transmitPublish(ch, data) { this.s.publish(ch, data); }
  invokePublish(ch, data) { return new Promise((res, rej) => this.s.publish(ch, data, (e, d) => (e ? rej(e) : res(d)))); }
  invoke(ev, data) { return new Promise((res, rej) => this.s.emit(ev, data, (e, d) => (e ? rej(e) : res(d)))); }
  authenticate(t) { return new Promise((res, rej) => this.s.authenticate(t, (e, st) => (e ? rej(e) : res(st)))); }
  deauthenticate() { return new Promise((res, rej) => this.s.deauthenticate((e) => (e ? rej(e) : res()))); }
  disconnect(code, reason) { this.s.disconnect(code, reason); }
  // A bare #disconnect event, the WebSocket left open (socket.disconnect() also closes it).
  transmitDisconnect(code, data) { this.s.transport.emit('#disconnect', { code, data }, {}); }
  destroy() { this.s.destroy(); }
}

class Sc20 extends Adapter {
  constructor(storedToken) {
    super();
    const [engine, opts] = common(storedToken);
    const s = this.s = scClient.create({ ...opts, protocolVersion: 1 });
    this.engine = engine;
    observe(this, s);
    (async () => { for await (const { error } of s.listener('error')) { this.errors.push(error); if (verbose) console.log(`# ${kind} error event: ${describe(error)}`); } })();
    (async () => { for await (const { message } of s.listener('message')) if (message === '#1') this.pings++; })();
    this.connected = Promise.race([
      s.listener('connect').once(),
      s.listener('connectAbort').once().then(({ code, reason }) => { throw new Error(`connectAbort ${code} ${reason ?? ''}`); }),
    ]);
    this.closed = s.listener('close').once();
    this.channels = new Map();
  }
  subscribe(ch) {
    const c = this.s.subscribe(ch);
    this.channels.set(ch, c);
    return Promise.race([
      c.listener('subscribe').once(),
      c.listener('subscribeFail').once().then(({ error }) => { throw error; }),
    ]);
  }
  watch(ch, fn) { const c = this.channels.get(ch) ?? this.s.channel(ch); (async () => { for await (const d of c) fn(d); })(); }
  nextKickOut() { return this.s.listener('kickOut').once(); }
  isSubscribed(ch) { return this.s.isSubscribed(ch, true); }
  unsubscribe(ch) { this.s.unsubscribe(ch); }
  transmitPublish(ch, data) { this.s.transmitPublish(ch, data); }
  invokePublish(ch, data) { return this.s.invokePublish(ch, data); }
  invoke(ev, data) { return this.s.invoke(ev, data); }
  authenticate(t) { return this.s.authenticate(t); }
  deauthenticate() { return this.s.deauthenticate(); }
  // socket.disconnect(code, reason) in 20.x only closes the WebSocket with that code and reason;
  // it sends no #disconnect event.
  disconnect(code, reason) { this.s.disconnect(code, reason); }
  transmitDisconnect(code, data) { this.s.transport.transmit('#disconnect', { code, data }, {}); }
  destroy() { this.s.disconnect(); this.s.killAllListeners(); }
}

const clients = [];
function client(storedToken) { const c = kind === 'sc14' ? new Sc14(storedToken) : new Sc20(storedToken); clients.push(c); return c; }
async function connected(storedToken) { const c = client(storedToken); return [c, await within(3000, c.connected, 'connect event')]; }

// A connected client on another shard than `other` when the server tells shards apart (turntable:
// X-Turntable-Shard; the kernel spreads connections over the shards' SO_REUSEPORT sockets, so a few
// attempts do); any second client when it does not (the reference server).
async function connectedElsewhere(other) {
  if (other.shard === undefined) return connected();
  for (let i = 0; i < 24; i++) {
    const [c, st] = await connected();
    if (c.shard === undefined) throw new Error('a connection without X-Turntable-Shard');
    if (c.shard !== other.shard) return [c, st];
    c.destroy();
  }
  throw new Error(`24 connections all landed on shard ${other.shard} (does the server run 2 shards?)`);
}

// Collects what a client receives on a channel, and waits for the next matching delivery.
function inbox(c, ch) {
  const got = []; const waiters = [];
  c.watch(ch, (d) => { got.push(d); for (const w of waiters.splice(0)) w(); });
  const next = async (pred, ms, what) => within(ms, (async () => {
    for (;;) { const hit = got.find(pred); if (hit !== undefined) { got.splice(got.indexOf(hit), 1); return hit; } await new Promise((r) => waiters.push(r)); }
  })(), what);
  return { got, next };
}

// ---- check runner ----
let passed = 0; let failed = 0;
async function check(name, fn) {
  try {
    const note = await fn();
    passed++; console.log(`ok - ${name}${note ? ` # ${note}` : ''}`);
  } catch (e) {
    failed++; console.log(`not ok - ${name}: ${e && e.name && e.name !== 'Error' ? describe(e) : e && e.message ? e.message : describe(e)}`);
  }
}
function skip(name, why) { passed++; console.log(`ok - ${name} # SKIP ${why}`); }
function assert(cond, msg) { if (!cond) throw new Error(msg); }
function finish() {
  for (const c of clients) { try { c.destroy(); } catch {} }
  clearTimeout(globalTimer);
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed === 0 ? 0 : 1);
}

// ---- the checks ----
const channel = `interop-${Math.random().toString(36).slice(2, 10)}`;
let a; let b;

await check('connect + handshake', async () => {
  let status;
  [a, status] = await connected();
  assert(typeof a.id === 'string' && a.id.length === 20, `socket.id should be a 20-char string, got ${JSON.stringify(a.id)}`);
  assert(status.id === a.id, `handshake id ${status.id} != socket.id ${a.id}`);
  assert(status.isAuthenticated === false, `isAuthenticated should be false, got ${status.isAuthenticated}`);
  assert(a.authState === 'unauthenticated', `authState should be unauthenticated, got ${a.authState}`);
  assert(status.pingTimeout === 1500, `pingTimeout should be the server's 1500 ms, got ${status.pingTimeout}`);
  return `id ${a.id}, pingTimeout ${status.pingTimeout}${a.shard === undefined ? '' : `, shard ${a.shard}`}`;
});
if (!a) finish();

let aBox;
await check('subscribe gets its ack', async () => {
  await within(ACK_TIMEOUT, a.subscribe(channel), '#subscribe ack');
  aBox = inbox(a, channel);
});

await check('publish reaches the publisher itself (object and string)', async () => {
  const obj = { n: 1, s: 'x', nested: { list: [1, 'two', null, true] } };
  a.transmitPublish(channel, obj);
  a.transmitPublish(channel, 'plain string');
  await aBox.next((d) => isDeepStrictEqual(d, obj), 2000, 'object delivery');
  await aBox.next((d) => d === 'plain string', 2000, 'string delivery');
});

let bBox;
await check('a client on the other shard receives publications, and its own reach the first', async () => {
  [b] = await connectedElsewhere(a);
  await within(ACK_TIMEOUT, b.subscribe(channel), '#subscribe ack for the second client');
  bBox = inbox(b, channel);
  a.transmitPublish(channel, { from: 'a', seq: 2 });
  await Promise.all([
    bBox.next((d) => d && d.seq === 2, 2000, 'delivery to the second client'),
    aBox.next((d) => d && d.seq === 2, 2000, 'delivery to the publisher'),
  ]);
  b.transmitPublish(channel, { from: 'b', seq: 3 });
  await Promise.all([
    aBox.next((d) => d && d.seq === 3, 2000, "delivery of the second client's publication to the first"),
    bBox.next((d) => d && d.seq === 3, 2000, 'delivery to the second client itself'),
  ]);
  return a.shard === undefined ? 'no shard header (reference server)' : `shards ${a.shard} and ${b.shard}`;
});

await check('publish with callback gets the ack', async () => {
  const ack = await within(ACK_TIMEOUT + 500, a.invokePublish(channel, 'acked'), '#publish ack');
  assert(ack === undefined, `ack data should be undefined, got ${JSON.stringify(ack)}`);
  await aBox.next((d) => d === 'acked', 2000, 'delivery of the acked publication');
  await bBox.next((d) => d === 'acked', 2000, 'delivery of the acked publication to the second client');
});

await check('a non-subscriber may publish; subscribers get it', async () => {
  const [c] = await connected();
  const ack = await within(ACK_TIMEOUT + 500, c.invokePublish(channel, 'from outside'), '#publish ack');
  assert(ack === undefined, `ack data should be undefined, got ${JSON.stringify(ack)}`);
  await Promise.all([
    aBox.next((d) => d === 'from outside', 2000, 'delivery to the first client'),
    bBox.next((d) => d === 'from outside', 2000, 'delivery to the second client'),
  ]);
  c.destroy();
});

await check('after unsubscribe nothing arrives', async () => {
  a.unsubscribe(channel);
  await sleep(100); // #unsubscribe is fire-and-forget: give the server time to act on it
  aBox.got.length = 0;
  b.transmitPublish(channel, 'after-unsubscribe');
  await bBox.next((d) => d === 'after-unsubscribe', 2000, 'delivery to the still-subscribed client');
  await sleep(300);
  assert(aBox.got.length === 0, `unsubscribed client got ${JSON.stringify(aBox.got)}`);
});

await check('invalid channel names (non-strings) get BrokerError; the connection stays usable', async () => {
  const [c] = await connected();
  for (const bad of [123, null]) {
    const sub = await within(ACK_TIMEOUT + 500, failure(c.subscribe(bad), 'subscribeFail'), `subscribeFail for ${bad}`);
    assert(sub.name === 'BrokerError', `subscribe(${bad}): expected BrokerError, got ${describe(sub)}`);
    const pub = await within(ACK_TIMEOUT + 500, failure(c.invokePublish(bad, 1), 'a publish error'), `#publish error for ${bad}`);
    assert(pub.name === 'BrokerError', `publish(${bad}): expected BrokerError, got ${describe(pub)}`);
  }
  assert(c.state === 'open', `connection should stay open, state ${c.state}`);
  const ok = `ok-${channel}`;
  await within(ACK_TIMEOUT, c.subscribe(ok), '#subscribe ack for a valid channel afterwards');
  c.destroy();
});

const longName = 'x'.repeat(257);
if (reference) {
  await check('"" and a 257-byte channel name are accepted (reference only; turntable refuses them)', async () => {
    const [c] = await connected();
    for (const name of ['', longName]) {
      await within(ACK_TIMEOUT, c.subscribe(name), `#subscribe ack for a ${name.length}-byte name`);
      await within(ACK_TIMEOUT, c.invokePublish(name, 1), `#publish ack for a ${name.length}-byte name`);
    }
    c.destroy();
  });
} else {
  await check('"" and a 257-byte channel name get BrokerError', async () => {
    const [c] = await connected();
    for (const name of ['', longName]) {
      const sub = await within(ACK_TIMEOUT + 500, failure(c.subscribe(name), 'subscribeFail'), `subscribeFail for a ${name.length}-byte name`);
      assert(sub.name === 'BrokerError', `subscribe: expected BrokerError, got ${describe(sub)}`);
      const pub = await within(ACK_TIMEOUT + 500, failure(c.invokePublish(name, 1), 'a publish error'), `#publish error for a ${name.length}-byte name`);
      assert(pub.name === 'BrokerError', `publish: expected BrokerError, got ${describe(pub)}`);
    }
    assert(c.state === 'open', `connection should stay open, state ${c.state}`);
    c.destroy();
  });
}

if (reference) {
  await check('unknown event gets no response (reference only: client TimeoutError)', async () => {
    const t0 = Date.now();
    const err = await within(ACK_TIMEOUT + 1000, failure(a.invoke('noSuchEvent', 1), 'no response'), 'client timeout');
    assert(err.name === 'TimeoutError', `expected TimeoutError, got ${describe(err)}`);
    assert(a.state === 'open', `connection should stay open, state ${a.state}`);
    return `after ${Date.now() - t0} ms`;
  });
} else {
  await check('custom event with a callback gets NoHandlerError promptly', async () => {
    const t0 = Date.now();
    const err = await within(ACK_TIMEOUT + 1000, failure(a.invoke('noSuchEvent', 1), 'an error'), 'response');
    const ms = Date.now() - t0;
    assert(err.name === 'NoHandlerError', `expected NoHandlerError, got ${describe(err)}`);
    assert(ms < ACK_TIMEOUT / 2, `took ${ms} ms`);
    assert(a.state === 'open', `connection should stay open, state ${a.state}`);
    return `after ${ms} ms`;
  });
}

const valid = token({ sub: 'alice', name: 'Alice' });
await check('authenticate with a valid token', async () => {
  const st = await within(ACK_TIMEOUT + 500, a.authenticate(valid), '#authenticate response');
  assert(st && st.isAuthenticated === true, `isAuthenticated should be true, got ${JSON.stringify(st)}`);
  assert(a.authState === 'authenticated', `authState ${a.authState}`);
  assert(a.authToken && a.authToken.sub === 'alice' && a.authToken.name === 'Alice', `authToken ${JSON.stringify(a.authToken)}`);
});

await check('deauthenticate', async () => {
  await a.deauthenticate();
  assert(a.authState === 'unauthenticated', `authState ${a.authState}`);
  assert(a.authToken === null, `authToken should be null, got ${JSON.stringify(a.authToken)}`);
  assert(a.engine.token === null, 'the stored token should be gone');
  // The client sent #removeAuthToken without a cid: nothing comes back, the connection stays.
  await sleep(100);
  assert(a.state === 'open', `connection should stay open, state ${a.state}`);
  const st = await within(ACK_TIMEOUT + 500, a.authenticate(valid), '#authenticate response after deauthenticating');
  assert(st && st.isAuthenticated === true, `re-authenticating: isAuthenticated should be true, got ${JSON.stringify(st)}`);
});

// `a` is authenticated again here; a refused token must take it back to unauthenticated, and the
// server's #removeAuthToken must empty the client's token store.
async function rejected(tok, wantName) {
  const removals = a.engine.removals;
  const err = await within(ACK_TIMEOUT + 500, failure(a.authenticate(tok), wantName), '#authenticate response');
  assert(err.name === wantName, `expected ${wantName}, got ${describe(err)}`);
  assert(a.authState === 'unauthenticated', `authState ${a.authState}`);
  assert(a.authToken === null, `authToken should be null, got ${JSON.stringify(a.authToken)}`);
  await sleep(50);
  assert(a.engine.removals > removals, 'no #removeAuthToken from the server (the token store was not emptied)');
  assert(a.engine.token === null, 'the stored token should be gone');
  assert(a.state === 'open', `connection should stay open, state ${a.state}`);
}
await check('authenticate with a bad signature -> AuthTokenInvalidError', () =>
  rejected(token({ sub: 'alice', name: 'Alice' }, `${secret}-wrong`), 'AuthTokenInvalidError'));
await check('authenticate with an expired token -> AuthTokenExpiredError', () => {
  const now = Math.floor(Date.now() / 1000);
  return rejected(token({ sub: 'alice', name: 'Alice', iat: now - 7200, exp: now - 3600 }, secret, {}), 'AuthTokenExpiredError');
});

await check('handshake with a stored valid token is authenticated', async () => {
  const [c, st] = await connected(valid);
  assert(st.isAuthenticated === true, `isAuthenticated should be true, got ${JSON.stringify(st)}`);
  assert(c.authState === 'authenticated', `authState ${c.authState}`);
  assert(c.authToken && c.authToken.sub === 'alice', `authToken ${JSON.stringify(c.authToken)}`);
  await sleep(50);
  assert(c.engine.removals === 0 && c.engine.token === valid, 'the stored token should be kept');
  c.destroy();
});

await check('handshake with a stored bad token: #removeAuthToken, unauthenticated', async () => {
  const [c, st] = await connected(token({ sub: 'alice' }, `${secret}-wrong`));
  assert(st.isAuthenticated === false, `isAuthenticated should be false, got ${JSON.stringify(st)}`);
  assert(st.authError && st.authError.name === 'AuthTokenInvalidError', `authError ${describe(st.authError)}`);
  await sleep(50); // #removeAuthToken may come after the handshake response (20.x servers)
  assert(c.engine.removals === 1 && c.engine.token === null, 'no #removeAuthToken from the server (the stored token is still there)');
  assert(c.authState === 'unauthenticated', `authState ${c.authState}`);
  assert(c.authToken === null, `authToken should be null, got ${JSON.stringify(c.authToken)}`);
  assert(c.state === 'open', `connection should stay open, state ${c.state}`);
  c.destroy();
});

// turntable renews a token with less than half its lifetime left (#setAuthToken after the
// client's next #2, i.e. within a ping interval); the client must store and use the new one.
async function renewed(c, old, sub, now) {
  const signed = await within(2000, (async () => { while (c.engine.token === old) await sleep(10); return c.engine.token; })(), 'renewed token in the store (it still holds the old one)');
  await sleep(50);
  assert(signed, `the stored token was removed instead of renewed`);
  const claims = jwt.verify(signed, secret, { algorithms: ['HS256'] });
  assert(claims.sub === sub && claims.exp >= now + 3500, `renewed claims ${JSON.stringify(claims)}`);
  assert(c.authState === 'authenticated', `authState ${c.authState}`);
  assert(c.authToken && c.authToken.exp === claims.exp, `socket.authToken should be the renewed token, got ${JSON.stringify(c.authToken)}`);
  assert(c.engine.token === signed, 'the renewed token should stay stored');
}
const aging = (sub, now) => token({ sub, iat: now - 3000, exp: now + 600 }, secret, {});
if (reference) {
  skip('handshake with a stored token past half its lifetime: renewed via #setAuthToken', 'the reference server does not renew tokens');
  skip('authenticate with a token past half its lifetime: renewed via #setAuthToken', 'the reference server does not renew tokens');
} else {
  await check('handshake with a stored token past half its lifetime: renewed via #setAuthToken', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = aging('carol', now);
    const [c, st] = await connected(old);
    assert(st.isAuthenticated === true, `isAuthenticated should be true, got ${JSON.stringify(st)}`);
    await renewed(c, old, 'carol', now);
    c.destroy();
  });
  await check('authenticate with a token past half its lifetime: renewed via #setAuthToken', async () => {
    const now = Math.floor(Date.now() / 1000);
    const old = aging('dave', now);
    const [c] = await connected();
    const st = await within(ACK_TIMEOUT + 500, c.authenticate(old), '#authenticate response');
    assert(st && st.isAuthenticated === true, `isAuthenticated should be true, got ${JSON.stringify(st)}`);
    await sleep(20); // 20.x stores the token it authenticated with asynchronously
    await renewed(c, old, 'dave', now);
    c.destroy();
  });
}

if (api) {
  await check('#kickOut from the server unsubscribes the client with the message', async () => {
    const [c] = await connected();
    const ch = `kick-${Math.random().toString(36).slice(2, 8)}`;
    await within(ACK_TIMEOUT, c.subscribe(ch), 'subscribe ack');
    const kicked = c.nextKickOut();
    const res = await fetch(`${api}/api/channels/${encodeURIComponent(ch)}/kick`, {
      method: 'POST',
      headers: { authorization: `apikey ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ message: 'bye now' }),
    });
    assert(res.status === 200, `the API answered ${res.status}: ${await res.text()}`);
    const got = await within(2000, kicked, 'kickOut event');
    assert(got.channel === ch && got.message === 'bye now', `kickOut ${JSON.stringify(got)}`);
    assert(!c.isSubscribed(ch), 'the client still counts itself subscribed');
    c.destroy();
  });
} else {
  skip('#kickOut from the server unsubscribes the client with the message', 'no --api (the reference server has no HTTP API)');
}

await check('keepalive: an idle connection stays open for 4 s (8 ping intervals)', async () => {
  const [c, st] = await connected();
  let closedWith = null;
  c.closed.then((v) => { closedWith = v; });
  await sleep(4000);
  assert(closedWith === null, `closed with ${JSON.stringify(closedWith)} (4000: no #1 from the server within pingTimeout ${st.pingTimeout} ms; 4001: the server missed the client's #2)`);
  assert(c.state === 'open', `state ${c.state}`);
  assert(c.pings >= 4, `only ${c.pings} #1 pings in 4 s`);
  c.destroy();
  return `${c.pings} pings`;
});

await check('the server honors a bare #disconnect {code: 4322}', async () => {
  const [c] = await connected();
  const serverClose = new Promise((res) => c.ws.on('close', (code, reason) => res({ code, reason: String(reason ?? '') })));
  c.transmitDisconnect(4322, 'bye');
  const srv = await within(2000, serverClose, 'close frame from the server');
  assert(srv.code === 4322, `the server's close frame has code ${srv.code}`);
  const seen = await within(1000, c.closed, 'close event');
  assert(seen.code === 4322, `client reported close code ${seen.code}`);
  c.expectedErrors.push(/status code 4322/); // the client reports a 4xxx close as an error event too
});

await check('socket.disconnect(4321, "bye") closes with 4321', async () => {
  // 14.x sends #disconnect {code, data} and then closes its WebSocket with the code; 20.x only
  // closes its WebSocket with code and reason. Either way the server's close frame must say 4321.
  const serverClose = new Promise((res) => a.ws.on('close', (code, reason) => res({ code, reason: String(reason ?? '') })));
  a.disconnect(4321, 'bye');
  const seen = await within(1000, a.closed, 'close event');
  assert(seen.code === 4321, `client reported close code ${seen.code}`);
  assert(seen.reason === 'bye', `client reported close reason ${JSON.stringify(seen.reason)}`);
  const srv = await within(2000, serverClose, 'close frame from the server');
  assert(srv.code === 4321, `server's close frame has code ${srv.code}`);
  a.expectedErrors.push(/status code 4321/);
  return `server close frame ${srv.code}${srv.reason ? ` "${srv.reason}"` : ''}`;
});

await check('no unexpected client error events', async () => {
  await sleep(50);
  const left = clients.flatMap((c) => c.errors.filter((e) => !c.expectedErrors.some((re) => re.test(e.message))).map(describe));
  assert(left.length === 0, left.join('; '));
});

finish();
