// Reference server for validating the interop harness (tests/interop/socketcluster.mjs).
// Runs the real socketcluster-server@14.7.2 (npm alias `scserver14`, installed into .cache/node by
// scripts/setup-node.sh) on 127.0.0.1 with an ephemeral port, authKey = --secret (default
// "interop-secret"), pingInterval 500 ms, pingTimeout 1500 ms, and no custom event handlers.
// Prints `PORT <n>` on stdout once listening, then runs until killed.
// --log-frames: print every WebSocket frame to stderr as `<socket#> >> <frame>` (client to
// server) / `<socket#> << <frame>` (server to client), plus close codes; keepalive `#1`/`#2` are
// left out unless --log-pings is also given. Used to capture what the real clients send.
'use strict';
const path = require('path');
const http = require('http');
const { createRequire } = require('module');
const requireCache = createRequire(path.resolve(__dirname, '../../.cache/node/package.json'));
const scServer = requireCache('scserver14');

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const secret = opt('--secret', 'interop-secret');
const logFrames = args.includes('--log-frames');
const logPings = args.includes('--log-pings');

const httpServer = http.createServer((req, res) => { res.writeHead(404); res.end(); });
const server = scServer.attach(httpServer, {
  authKey: secret,
  pingInterval: Number(opt('--ping-interval', 500)),
  pingTimeout: Number(opt('--ping-timeout', 1500)),
});

let nextSocket = 1;
server.on('handshake', (socket) => {
  if (!logFrames) return;
  const n = nextSocket++;
  const log = (dir, frame) => {
    const s = String(frame);
    if (!logPings && (s === '#1' || s === '#2')) return;
    process.stderr.write(`${n} ${dir} ${s}\n`);
  };
  const ws = socket.socket;
  ws.prependListener('message', (m) => log('>>', m)); // before the server's own handler
  const send = ws.send.bind(ws);
  ws.send = (data, ...rest) => { log('<<', data); return send(data, ...rest); };
  const close = ws.close.bind(ws);
  let closing = false; // ws also calls close() itself to echo a client's close frame: log the first call only
  ws.close = (code, reason) => {
    if (!closing) log('<<', `[server sends close frame: ${code}${reason ? ' ' + reason : ''}]`);
    closing = true;
    return close(code, reason);
  };
  ws.on('close', (code, reason) => log('--', `[closed: code ${code}${reason && reason.length ? ' reason ' + reason : ''}]`));
});
server.on('error', (err) => { if (logFrames) process.stderr.write(`server error: ${err.name}: ${err.message}\n`); });

httpServer.listen(0, '127.0.0.1', () => {
  process.stdout.write(`PORT ${httpServer.address().port}\n`);
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
