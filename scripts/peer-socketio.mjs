// One Socket.IO server with the Redis adapter (@socket.io/redis-adapter over node-redis), the
// cluster comparison peer of scripts/bench.sh cluster: run several against one Redis and a
// broadcast on any reaches the room's members on all. Events (the load generator's
// `--dialect socketio`, src/bin/loadgen/socketio.rs): `join` ROOM joins the room and answers
// `joined` ROOM; `publish` {room, ...} broadcasts the object as `game` to every member of the
// room on every server (the sender included, as turntable echoes a game message to its
// sender). WebSocket transport only, no compression (Socket.IO's default).
// Usage: node scripts/peer-socketio.mjs PORT REDIS_URL; prints "listening on 127.0.0.1:PORT
// (...)" once accepting. Install: scripts/setup-socketio.sh.
import { createServer } from "node:http";
import { createRequire } from "node:module";

const require = createRequire(new URL("../.cache/socketio/package.json", import.meta.url));
const { Server } = require("socket.io");
const { createAdapter } = require("@socket.io/redis-adapter");
const { createClient } = require("redis");

const [port, url] = [Number(process.argv[2]), process.argv[3]];
if (!port || !url) {
  console.error("usage: node scripts/peer-socketio.mjs PORT REDIS_URL");
  process.exit(2);
}
const pub = createClient({ url });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);
const io = new Server({ transports: ["websocket"], adapter: createAdapter(pub, sub) });
io.on("connection", (socket) => {
  socket.on("join", (room) => {
    socket.join(String(room));
    socket.emit("joined", room);
  });
  socket.on("publish", (data) => io.to(String(data.room)).emit("game", data));
});
const http = createServer();
io.attach(http);
http.listen(port, "127.0.0.1", () => {
  const v = require("./package-lock.json").packages["node_modules/socket.io"].version;
  console.log(`listening on 127.0.0.1:${port} (socket.io ${v}, redis adapter, node ${process.version}, 1 thread)`);
});
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(0));
