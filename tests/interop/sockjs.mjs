// SockJS interop checks, driven by the REAL sockjs-client (1.6.1, installed into .cache/node by
// scripts/setup-node.sh) against turntable's SockJS prefixes:
//
//   node tests/interop/sockjs.mjs --base http://127.0.0.1:PORT [--transport websocket]
//
// Each check opens `new SockJS(base + prefix, null, {transports: [TRANSPORT]})` and speaks a
// dialect through it (turntable v1 at /sockjs/turntable, World at /sockjs/world/default), asserting
// only what the client's events show. Prints `ok - NAME` / `not ok - NAME: DETAIL` and a closing
// `N passed, N failed`; exits 0 only if every check passed; gives up after 20 s.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.resolve(here, '../../.cache/node/package.json'));
const SockJS = require('sockjs-client');

const argv = process.argv.slice(2);
const arg = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 && i + 1 < argv.length ? argv[i + 1] : dflt; };
const base = arg('--base', 'http://127.0.0.1:7400');
const transport = arg('--transport', 'websocket');
const globalTimer = setTimeout(() => { console.log('not ok - global timeout (20 s)'); process.exit(1); }, 20000);

let passed = 0; let failed = 0;
async function check(name, fn) {
  try { await fn(); passed++; console.log(`ok - ${name}`); } catch (e) { failed++; console.log(`not ok - ${name}: ${e.message}`); }
}
function assert(cond, msg) { if (!cond) throw new Error(msg); }

// A SockJS client whose messages arrive in a queue; next() waits for the next one.
function open(prefix) {
  const sock = new SockJS(base + prefix, null, { transports: [transport], timeout: 3000 });
  const queue = []; const waiters = [];
  let closed = null;
  const closedP = new Promise((res) => sock.onclose = (e) => { closed = { code: e.code, reason: e.reason }; res(closed); for (const w of waiters.splice(0)) w(); });
  sock.onmessage = (e) => { queue.push(e.data); for (const w of waiters.splice(0)) w(); };
  const opened = new Promise((res, rej) => { sock.onopen = () => res(); closedP.then((c) => rej(new Error(`closed before open: ${c.code} ${c.reason}`))); });
  const next = async (ms = 3000) => {
    const deadline = Date.now() + ms;
    while (queue.length === 0) {
      if (closed) throw new Error(`closed ${closed.code} ${closed.reason} while waiting`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('no message in time');
      await new Promise((res) => { waiters.push(res); setTimeout(res, left); });
    }
    return JSON.parse(queue.shift());
  };
  return { sock, opened, next, closedP, transportName: () => sock.transport };
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

await check(`turntable v1 over SockJS (${transport}): greeting, identify, a game round trip`, async () => {
  const c = open('/sockjs/turntable');
  await c.opened;
  assert(c.transportName() === transport, `transport ${c.transportName()}`);
  const greeting = await c.next();
  assert(same(greeting, { command: 'idyou', data: {} }), `greeting ${JSON.stringify(greeting)}`);
  c.sock.send(JSON.stringify({ command: 'idme', data: 'sockjs-user' }));
  const identified = await c.next();
  assert(same(identified, { command: 'identified', data: { id: 'sockjs-user' } }), JSON.stringify(identified));
  c.sock.send(JSON.stringify({ command: 'joingame', data: { channel: 'sj', self: 'sockjs-user' } }));
  assert((await c.next()).command === 'joined', 'joined');
  const text = 'héllo 😀 100% \u2028 "quoted"';
  c.sock.send(JSON.stringify({ command: 'game', data: { channel: 'sj', actions: [{ from: 'sockjs-user', data: { text } }] } }));
  const game = await c.next();
  assert(game.command === 'game' && game.data.actions[0].data.text === text, `game ${JSON.stringify(game)}`);
  c.sock.close(1000, 'done');
  const closed = await c.closedP;
  assert(closed.code === 1000, `close ${closed.code}`);
});

await check(`World over SockJS (${transport}): authenticate and RPC`, async () => {
  const c = open('/sockjs/world/default');
  await c.opened;
  c.sock.send(JSON.stringify(['authenticate', { user: { id: 'sj-ann' } }]));
  const auth = await c.next();
  assert(auth[0] === 'authenticated', JSON.stringify(auth));
  c.sock.send(JSON.stringify(['ping', 42]));
  assert(same(await c.next(), ['pong', 42]), 'pong');
  c.sock.close();
  await c.closedP;
});

await check(`a server close reaches the client with its code (${transport})`, async () => {
  const c = open('/sockjs/world/nowhere');
  await c.opened;
  const err = await c.next();
  assert(same(err, ['error', { code: 'world.unknown_world' }]), JSON.stringify(err));
  const closed = await c.closedP;
  assert(closed.code === 4404 && closed.reason === 'unknown world', `close ${closed.code} ${closed.reason}`);
});

clearTimeout(globalTimer);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
