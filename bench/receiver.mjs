// The benchmark's receivers: N Socket.IO clients of one server in ONE Node
// process, cheap enough not to be what is measured (500 Python threads with
// websocket-client would be).
//
//   node bench/receiver.mjs --url http://127.0.0.1:PORT --clients 500 \
//     --room fan [--event bench] [--namespaces /,/chat,/dashboard]
//
// Each client speaks the raw Engine.IO v4 / Socket.IO v5 text protocol over
// a WebSocket (`ws` from tests/node/node_modules): it waits for the open
// packet, sends "40", answers the "2" pings with "3", joins --room with the
// `cmd` request enter_room of tests/apps/commands.py (the Node test server
// has the same op), then counts the '42["bench",{"run", "n", "t"...}]'
// frames. With --namespaces, each client also connects to the other
// namespaces over the same WebSocket (Socket.IO multiplexes them, as a
// browser client does) and joins --room in each: one client then receives
// the broadcasts of every namespace ('42/chat,["bench",...]'), so a
// workload spread over namespaces delivers as much to each client as one
// that is not. Once every client has joined it prints one JSON line
// {"ready": true, "sids": [...]} (the sids of "/").
//
// Then it answers requests on stdin, one JSON line each, with one JSON line:
//   {"op": "progress", "runs": [...]}
// the unique messages of the given runs received (all clients together),
// the fewest any client got, and how many clients are still connected;
//   {"op": "report", "runs": [...], "forget": false}
// the same, plus duplicates, first and last receipt (unix seconds), p50/p99
// of receipt - t in ms, and `busy`: the CPU time this process spent over
// the receipt window, divided by it (near 1: it was the bottleneck; near
// 0: idle most of the time). "forget" drops the runs.
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
import { parseArgs } from "node:util";
import { performance } from "node:perf_hooks";

// `ws` comes with socket.io in tests/node/node_modules; resolve it from there
const require = createRequire(new URL("../tests/node/package.json", import.meta.url));
const WebSocket = require("ws");

const { values: options } = parseArgs({
  options: {
    url: { type: "string" },
    clients: { type: "string", default: "1" },
    room: { type: "string" },
    event: { type: "string", default: "bench" },
    namespaces: { type: "string", default: "/" },
  },
  strict: true,
});
const CLIENTS = Number.parseInt(options.clients, 10);
const PREFIX = `["${options.event}",`;
// "/" is always connected: the cmd requests go there
const NAMESPACES = options.namespaces.split(",").filter(Boolean);
// Connecting 500 sockets at once would measure the server's accept queue
const CONNECT_CONCURRENCY = 25;
// Latency samples kept per run; enough for the percentiles of any workload
const MAX_SAMPLES = 200_000;

// Wall clock in unix seconds with sub-millisecond resolution, comparable
// with the "t" the servers put in each message (time.time(), Date.now()).
const now = () => (performance.timeOrigin + performance.now()) / 1000;
// CPU time, user and system, of this process (its threads included)
function cpuSeconds() {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}
// process.cpuUsage() costs microseconds: sampled at most this often
const CPU_EVERY_SECONDS = 0.02;

/** What the clients received of one run (one emit_sequence). */
class Run {
  constructor() {
    this.seen = new Array(CLIENTS).fill(null); // per client: n -> 1
    this.unique = new Int32Array(CLIENTS);
    this.previous = new Int32Array(CLIENTS);
    this.duplicates = 0;
    this.outOfOrder = 0;
    this.first = Infinity;
    this.last = 0;
    // [receipt time, CPU seconds of this process] at the first frame, and
    // at a frame every CPU_EVERY_SECONDS after it
    this.cpuFirst = null;
    this.cpuLast = null;
    this.latencies = new Float64Array(1024);
    this.samples = 0;
  }

  record(client, message, at) {
    const { n, t } = message;
    if (this.cpuFirst === null) {
      this.cpuFirst = this.cpuLast = [at, cpuSeconds()];
      this.first = at;
    } else if (at - this.cpuLast[0] > CPU_EVERY_SECONDS) {
      this.cpuLast = [at, cpuSeconds()];
    }
    this.last = at;
    let seen = this.seen[client];
    if (seen === null || seen.length <= n) {
      // grown by doubling: one run can be a million messages
      const grown = new Uint8Array(Math.max(64, n + 1, seen ? seen.length * 2 : 0));
      if (seen) grown.set(seen);
      seen = this.seen[client] = grown;
    }
    if (seen[n]) {
      this.duplicates += 1;
    } else {
      seen[n] = 1;
      this.unique[client] += 1;
    }
    if (n < this.previous[client]) this.outOfOrder += 1;
    this.previous[client] = n;
    if (this.samples < MAX_SAMPLES) {
      if (this.samples === this.latencies.length) {
        const grown = new Float64Array(this.latencies.length * 2);
        grown.set(this.latencies);
        this.latencies = grown;
      }
      this.latencies[this.samples++] = (at - t) * 1000;
    }
  }
}

const runs = new Map();
const sockets = [];
let open = 0;

// The fields the benchmark needs, from the head of the frame only (the
// payload can be long): the servers write {"n":..,"t":..,"run":"..",...}
// in this order and without spaces; anything else goes through JSON.parse.
const HEAD_BYTES = 200;

function fieldsOf(head, data, start) {
  const n = head.indexOf('"n":', start);
  const t = head.indexOf('"t":', n);
  const run = head.indexOf('"run":"', t);
  const end = head.indexOf('"', run + 7);
  if (n < 0 || t < 0 || run < 0 || end < 0) {
    return JSON.parse(data.toString().slice(start - PREFIX.length))[1];
  }
  return {
    n: Number.parseInt(head.slice(n + 4, t), 10),
    t: Number.parseFloat(head.slice(t + 4, run)),
    run: head.slice(run + 7, end),
  };
}

// "4" and "2": a Socket.IO EVENT in an Engine.IO MESSAGE
const isEvent = (data) => data.length > PREFIX.length && data[0] === 0x34 && data[1] === 0x32;

function onMessage(client, data) {
  const at = now();
  // latin1 decodes the ASCII head byte for byte, without UTF-8 checks
  const head = data.toString("latin1", 0, HEAD_BYTES);
  // '42["bench",...' on "/", '42/chat,["bench",...' on another namespace
  const body = head[2] === "/" ? head.indexOf(",", 2) + 1 : 2;
  if (body < 2 || !head.startsWith(PREFIX, body)) return;
  const message = fieldsOf(head, data, body + PREFIX.length);
  let run = runs.get(message.run);
  if (run === undefined) runs.set(message.run, (run = new Run()));
  run.record(client, message, at);
}

/** Connect client `index` to every namespace and join the room in each;
 * resolves with its sid of "/". */
function connect(index) {
  const url = `${options.url.replace(/^http/, "ws")}/socket.io/?EIO=4&transport=websocket`;
  return new Promise((resolve, reject) => {
    // the frames come from the servers under test; checking that they are
    // valid UTF-8 would cost more than everything else here
    const ws = new WebSocket(url, { skipUTF8Validation: true, perMessageDeflate: false });
    let sid = null;
    let joined = 0;
    // namespaces connected before "/" was: their joins wait for it
    const waiting = [];
    // enter_room of namespace number `ack` (its ack id) as `nsSid`
    const join = (ack, nsSid) => {
      const request = { op: "enter_room", sid: nsSid, room: options.room, namespace: NAMESPACES[ack] };
      ws.send(`42${ack}${JSON.stringify(["cmd", request])}`);
    };
    ws.on("error", reject);
    ws.on("close", () => {
      open -= sid === null ? 0 : 1;
    });
    ws.on("message", (data) => {
      if (sid !== null && isEvent(data)) {
        onMessage(index, data);
        return;
      }
      const frame = data.toString();
      if (frame === "2") {
        ws.send("3");
      } else if (/^43\d+\[/.test(frame)) {
        joined += 1; // an enter_room's ack
        if (joined === NAMESPACES.length) resolve(sid);
      } else if (frame.startsWith("0{")) {
        ws.send("40");
        NAMESPACES.filter((ns) => ns !== "/").forEach((ns) => ws.send(`40${ns},`));
      } else if (frame.startsWith("40{")) {
        sid = JSON.parse(frame.slice(2)).sid;
        open += 1;
        if (NAMESPACES.includes("/")) join(NAMESPACES.indexOf("/"), sid);
        waiting.splice(0).forEach((args) => join(...args));
      } else if (frame.startsWith("40/")) {
        const comma = frame.indexOf(",");
        const args = [NAMESPACES.indexOf(frame.slice(2, comma)), JSON.parse(frame.slice(comma + 1)).sid];
        if (sid === null) waiting.push(args);
        else join(...args);
      }
    });
    sockets[index] = ws;
  });
}

function percentile(sorted, fraction) {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

/** What every client received of the given runs, together. */
function counts(selected) {
  const perClient = new Int32Array(CLIENTS);
  for (const run of selected) {
    for (let i = 0; i < CLIENTS; i += 1) perClient[i] += run.unique[i];
  }
  let received = 0;
  for (const got of perClient) received += got;
  return { clients: CLIENTS, open, received, fewest: CLIENTS > 0 ? Math.min(...perClient) : 0 };
}

/** The counts only: cheap enough to be asked every few milliseconds. */
function progress({ runs: names = [] }) {
  return counts(names.map((name) => runs.get(name)).filter(Boolean));
}

/** Counts, duplicates, receipt window, latency percentiles and CPU. */
function report({ runs: names = [], forget = false }) {
  const selected = names.map((name) => runs.get(name)).filter(Boolean);
  let duplicates = 0;
  let outOfOrder = 0;
  let first = Infinity;
  let last = 0;
  let cpuFirst = null;
  let cpuLast = null;
  let sampleCount = 0;
  for (const run of selected) {
    duplicates += run.duplicates;
    outOfOrder += run.outOfOrder;
    if (run.first < first) [first, cpuFirst] = [run.first, run.cpuFirst];
    if (run.cpuLast && (!cpuLast || run.cpuLast[0] > cpuLast[0])) cpuLast = run.cpuLast;
    last = Math.max(last, run.last);
    sampleCount += run.samples;
  }
  const latencies = new Float64Array(sampleCount);
  let offset = 0;
  for (const run of selected) {
    latencies.set(run.latencies.subarray(0, run.samples), offset);
    offset += run.samples;
  }
  latencies.sort();
  // the share of the receipt window this process was on a CPU
  const busy =
    cpuFirst && cpuLast[0] > cpuFirst[0]
      ? (cpuLast[1] - cpuFirst[1]) / (cpuLast[0] - cpuFirst[0])
      : null;
  const reply = {
    ...counts(selected),
    duplicates,
    out_of_order: outOfOrder,
    first: Number.isFinite(first) ? first : null,
    last: last || null,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    busy,
  };
  if (forget) names.forEach((name) => runs.delete(name));
  return reply;
}

const sids = new Array(CLIENTS);
for (let start = 0; start < CLIENTS; start += CONNECT_CONCURRENCY) {
  const batch = [];
  for (let i = start; i < Math.min(CLIENTS, start + CONNECT_CONCURRENCY); i += 1) {
    batch.push(connect(i).then((sid) => (sids[i] = sid)));
  }
  await Promise.all(batch);
}
process.stdout.write(`${JSON.stringify({ ready: true, sids })}\n`);

createInterface({ input: process.stdin }).on("line", (line) => {
  const request = JSON.parse(line);
  const operation = { progress, report }[request.op];
  const reply = operation ? operation(request) : { error: `unknown op ${line}` };
  process.stdout.write(`${JSON.stringify(reply)}\n`);
});
// The benchmark closes stdin (or kills the process group) when done
process.stdin.on("end", () => {
  sockets.forEach((ws) => ws.terminate());
  process.exit(0);
});
