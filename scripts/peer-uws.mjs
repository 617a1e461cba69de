// uWebSockets.js (native pub/sub) speaking the part of the turntable v1 dialect the load
// generator uses (src/bin/loadgen: idme, subscribe, joingame, game), as the comparison peer of
// scripts/bench-peers.sh. The same frames as turntable's, built the way turntable builds them:
// each action's `from` checked and `timestamp` stamped, `seq` per channel, every member (the
// sender included) gets each game message, presence watches as topics. Single-threaded.
// Usage: node scripts/peer-uws.mjs [PORT]   (0, the default, picks a free port); prints
// "listening on 127.0.0.1:PORT (uWebSockets.js ...)" once accepting. Install: scripts/setup-uws.sh.
import { createRequire } from "node:module";
import { dirname } from "node:path";

// The native addon itself, never the package's entry point, which falls back to a pure-JS
// server (on `ws`) with only a warning when the addon does not load.
const require = createRequire(new URL("../.cache/uws/package.json", import.meta.url));
const abi = `${process.platform}_${process.arch}_${process.versions.modules}`;
let uws, addon = `uws_${abi}.node`;
try {
  addon = `${dirname(require.resolve("@trufflesuite/uws-js-unofficial/package.json"))}/binaries/${addon}`;
  uws = require(addon);
} catch (e) {
  console.error(`peer-uws: the uWebSockets.js native addon does not load (no fallback is used; scripts/setup-uws.sh installs it): ${e.message}`);
  process.exit(1);
}

const online = new Map(); // user -> open identified connections
const seqs = new Map(); // channel -> last seq
const frame = (command, data) => JSON.stringify({ command, data });
const send = (ws, command, data) => ws.send(frame(command, data));
const app = uws.App();
const fail = (ws, code, message) => send(ws, "error", { code, message });

function onMessage(ws, buf, isBinary) {
  const s = ws.getUserData();
  if (isBinary) return fail(ws, "protocol.binary_unsupported", "text frames only");
  let m;
  try { m = JSON.parse(Buffer.from(buf).toString()); } catch { return fail(ws, "protocol.malformed", "not JSON"); }
  const d = m.data;
  if (m.command === "idme") {
    if (s.id !== undefined) return fail(ws, "auth.already_identified", "identified already");
    s.id = String(d);
    const n = (online.get(s.id) ?? 0) + 1;
    online.set(s.id, n);
    if (n === 1) app.publish(`u:${s.id}`, frame("userchange", { [s.id]: "online" }));
    return send(ws, "identified", { id: s.id });
  }
  if (s.id === undefined) return fail(ws, "auth.not_identified", "idme first");
  if (m.command === "subscribe") {
    const now = {};
    for (const u of d) { ws.subscribe(`u:${u}`); now[u] = online.has(u) ? "online" : "offline"; }
    return send(ws, "userchange", now);
  }
  if (m.command === "joingame") {
    const c = d.channel;
    if (!s.channels?.has(c)) {
      app.publish(`g:${c}`, frame("memberjoined", { channel: c, user: s.id }));
      ws.subscribe(`g:${c}`);
      (s.channels ??= new Set()).add(c);
    }
    // turntable lists every member; uWS keeps only a count (app.numSubscribers).
    return send(ws, "joined", { channel: c, members: [s.id] });
  }
  if (m.command === "game") {
    const c = d.channel;
    if (!s.channels?.has(c)) return fail(ws, "game.not_member", "join first");
    const now = Date.now();
    for (const a of d.actions) {
      if (a.from !== s.id) return fail(ws, "game.spoofed_from", "each action's from must be your own id");
      if ("timestamp" in a) a.client_timestamp = a.timestamp;
      a.timestamp = now;
    }
    const seq = (seqs.get(c) ?? 0) + 1;
    seqs.set(c, seq);
    app.publish(`g:${c}`, frame("game", { channel: c, seq, from: s.id, actions: d.actions }));
    return;
  }
  fail(ws, "protocol.unknown_command", `unknown command ${m.command}`);
}

app.ws("/turntable", {
  // turntable's defaults: idle_timeout 1m (pings after half), max_message_bytes 65536,
  // max_outbound_bytes 1 MiB; no permessage-deflate.
  compression: uws.DISABLED,
  idleTimeout: 60,
  sendPingsAutomatically: true,
  maxPayloadLength: 65536,
  maxBackpressure: 1 << 20,
  open: (ws) => send(ws, "idyou", {}),
  message: onMessage,
  close: (ws) => {
    const s = ws.getUserData();
    if (s.id === undefined) return;
    for (const c of s.channels ?? []) app.publish(`g:${c}`, frame("memberleft", { channel: c, user: s.id }));
    const n = online.get(s.id) - 1;
    if (n > 0) return online.set(s.id, n);
    online.delete(s.id);
    app.publish(`u:${s.id}`, frame("userchange", { [s.id]: "offline" }));
  },
});

const port = Number(process.argv[2] ?? 0);
app.listen("127.0.0.1", port, (listening) => {
  if (!listening) { console.error(`peer-uws: cannot listen on 127.0.0.1:${port}`); process.exit(1); }
  console.log(`listening on 127.0.0.1:${uws.us_socket_local_port(listening)} (uWebSockets.js ${addon.split("/").pop()}, node ${process.version}, 1 thread)`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
