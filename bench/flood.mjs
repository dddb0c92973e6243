// A bare WebSocket server that speaks just enough Engine.IO v4 / Socket.IO
// v5 for receiver.mjs and a cmd client: the open packet, "40", the cmd
// requests enter_room, emit_sequence (bursts only) and stats. It has no
// Socket.IO server behind it, so a burst goes out as fast as `ws` can write:
// what receiver.mjs then takes is its own capacity, which the benchmark
// shows next to the servers' figures.
//
//   node bench/flood.mjs --port 0      (prints "READY <port>")
import { createServer } from "node:http";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";

const require = createRequire(new URL("../tests/node/package.json", import.meta.url));
const { WebSocketServer } = require("ws");

const { values: options } = parseArgs({
  options: { port: { type: "string", default: "0" } },
  strict: true,
});

const rooms = new Map(); // room -> Set of WebSockets
let sids = 0;

function emitSequence({ count, to, fields = {} }) {
  const members = [...(rooms.get(to) ?? [])];
  for (let n = 1; n <= count; n += 1) {
    const t = (performance.timeOrigin + performance.now()) / 1000;
    const frame = `42${JSON.stringify(["bench", { n, t, ...fields }])}`;
    for (const ws of members) ws.send(frame);
  }
}

function command(ws, { op, ...args }) {
  if (op === "enter_room") {
    if (!rooms.has(args.room)) rooms.set(args.room, new Set());
    rooms.get(args.room).add(ws);
    ws.on("close", () => rooms.get(args.room).delete(ws));
    return { ok: true };
  }
  if (op === "emit_sequence") {
    // after the acknowledgement, as the real servers do
    setImmediate(() => emitSequence(args));
    return { ok: true };
  }
  if (op === "stats") return {};
  return { error: `unsupported op ${op}` };
}

const http = createServer((request, response) => response.writeHead(404).end());
const wss = new WebSocketServer({ server: http, path: "/socket.io/" });
wss.on("connection", (ws) => {
  ws.send('0{"sid":"flood","upgrades":[],"pingInterval":25000,"pingTimeout":20000}');
  ws.on("message", (data) => {
    const frame = data.toString();
    if (frame === "40") {
      sids += 1;
      ws.send(`40{"sid":"s${sids}"}`);
    } else if (frame.startsWith("42")) {
      // 42<ack id>["cmd", {...}]
      const bracket = frame.indexOf("[");
      const [, request] = JSON.parse(frame.slice(bracket));
      const reply = command(ws, request);
      ws.send(`43${frame.slice(2, bracket)}${JSON.stringify([reply])}`);
    }
  });
});
process.on("SIGTERM", () => process.exit(0));
http.listen(Number.parseInt(options.port, 10), "127.0.0.1", () => {
  process.stdout.write(`READY ${http.address().port}\n`);
});
