// A Socket.IO 4.8 server running the official @socket.io/redis-streams-adapter,
// the Node.js peer of tests/apps/cluster_app.py in the interop tests.
//
//   node node_server.mjs --port 0 --redis-url redis://127.0.0.1:7000/0 \
//     --name N1 [--options '{"streamName": "s"}'] \
//     [--recovery '{"maxDisconnectionDuration": 120000}']
//
// On a Redis Cluster, --redis-url lists some of its nodes:
// redis+cluster://127.0.0.1:7001,127.0.0.1:7002 (see redis_connection.mjs).
//
// It prints "READY <port>" once it listens AND its adapters have joined the
// cluster (see waitUntilJoined), answers GET /health with "ok", accepts the
// namespaces /, /chat and /other, and executes the "cmd" requests of
// tests/apps/commands.py, and more, sent on "/" (see `operations` below).

import { createServer } from "node:http";
import { parseArgs } from "node:util";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-streams-adapter";
import { connectRedis, onEveryNode } from "./redis_connection.mjs";

const NAMESPACES = ["/", "/chat", "/other"];
// Socket.IO offers no catch-all for server-side events, so the ones the tests
// use are listed.
const SERVER_EVENTS = ["ping-servers", "announce"];
const SHUTDOWN_GRACE_MS = 5000;
const JOIN_TIMEOUT_MS = 15000;

function parseCommandLine() {
  const { values } = parseArgs({
    options: {
      port: { type: "string", default: "0" },
      "redis-url": { type: "string" },
      name: { type: "string", default: "node" },
      options: { type: "string", default: "{}" },
      recovery: { type: "string" },
    },
    strict: true,
  });
  if (!values["redis-url"]) {
    throw new Error("--redis-url is required");
  }
  const options = JSON.parse(values.options);
  if (options === null || typeof options !== "object" || Array.isArray(options)) {
    throw new Error("--options must be a JSON object");
  }
  return {
    port: Number.parseInt(values.port, 10),
    redisUrl: values["redis-url"],
    name: values.name,
    adapterOptions: options,
    recovery: values.recovery === undefined ? undefined : JSON.parse(values.recovery),
  };
}

const config = parseCommandLine();

// The adapter duplicates this client for its stream readers and its
// subscriber; the duplicates inherit the connection name, which is how
// waitUntilJoined finds them in CLIENT LIST.
const clientName = `sio-node-${config.name}-${process.pid}`;
const redisClient = await connectRedis(config.redisUrl, clientName, (line) =>
  console.error(line),
);

// Socket.IO takes the /socket.io/ requests before this handler sees them.
const httpServer = createServer((request, response) => {
  const [status, body] = request.url === "/health" ? [200, "ok"] : [404, "not found"];
  response.writeHead(status, { "Content-Type": "text/plain" }).end(body);
});

const io = new Server(httpServer, {
  adapter: createAdapter(redisClient, config.adapterOptions),
  ...(config.recovery === undefined ? {} : { connectionStateRecovery: config.recovery }),
});

const serverEvents = new Map(NAMESPACES.map((namespace) => [namespace, []]));

function splitCallback(args) {
  return typeof args.at(-1) === "function" ? [args.slice(0, -1), args.at(-1)] : [args, undefined];
}

for (const namespace of NAMESPACES) {
  const nsp = io.of(namespace);
  nsp.on("connection", (socket) => {
    const auth = socket.handshake.auth;
    // A recovered socket already carries its restored data; its handshake
    // auth also holds the client's pid and offset.
    if (!socket.recovered && auth && Object.keys(auth).length > 0) {
      socket.data.auth = auth;
    }
    socket.on("echo", (...received) => {
      const [args, callback] = splitCallback(received);
      callback?.(...args);
    });
    if (namespace === "/") {
      socket.on("cmd", async (request, callback) => {
        const reply = await runCommand(request);
        if (typeof callback === "function") {
          callback(reply);
        }
      });
    }
  });
  for (const event of SERVER_EVENTS) {
    nsp.on(event, (...received) => {
      const [args, callback] = splitCallback(received);
      serverEvents.get(namespace).push({ event, args });
      if (event === "ping-servers") {
        callback?.(`pong-from-${config.name}`);
      }
    });
  }
}

// ---- cmd operations ---------------------------------------------------------

const isGiven = (value) => value !== undefined && value !== null;
const milliseconds = (seconds) => Math.round(seconds * 1000);
const of = (namespace) => io.of(namespace ?? "/");

function operator(namespace, to, skip) {
  let target = of(namespace);
  if (isGiven(to)) target = target.to(to);
  if (isGiven(skip)) target = target.except(skip);
  return target;
}

// The sockets a cmd addresses, as the adapter methods take them.
function selection(to, skip) {
  const set = (value) => new Set(isGiven(value) ? [value].flat() : []);
  return { rooms: set(to), except: set(skip), flags: {} };
}

// BroadcastOperator's socketsJoin(), socketsLeave() and disconnectSockets()
// return nothing, yet the cluster adapter applies the change to this server's
// sockets only once its stream entry is written. These call the adapter and
// wait, so that a cmd is acknowledged once the change is done here (as on the
// Python server) and a following fetchSockets() or emitWithAck() sees it.
function addSockets(namespace, to, skip, rooms) {
  return of(namespace).adapter.addSockets(selection(to, skip), [rooms].flat());
}

function delSockets(namespace, to, skip, rooms) {
  return of(namespace).adapter.delSockets(selection(to, skip), [rooms].flat());
}

function disconnectSockets(namespace, to, skip, close) {
  return of(namespace).adapter.disconnectSockets(selection(to, skip), close);
}

function localSocket(sid, namespace) {
  const socket = of(namespace).sockets.get(sid);
  if (!socket) {
    throw new Error(`no socket ${sid} on ${namespace ?? "/"} of this server`);
  }
  return socket;
}

function describeSocket(socket) {
  const { address, query, auth, url, headers } = socket.handshake;
  const userAgent = headers?.["user-agent"];
  return {
    id: socket.id,
    rooms: [...socket.rooms].sort(),
    data: socket.data,
    handshake: {
      address,
      query,
      auth,
      url,
      headers: userAgent === undefined ? {} : { "user-agent": userAgent },
    },
  };
}

function emitSequence(event, count, interval, to, namespace, fields) {
  const start = Date.now();
  let n = 0;
  const next = () => {
    // a burst (interval 0) emits synchronously; a paced one keeps to its
    // schedule against the start, so that the rate does not drift
    do {
      n += 1;
      operator(namespace, to).emit(event, { n, t: Date.now() / 1000, ...fields });
    } while (n < count && interval === 0);
    if (n < count) {
      setTimeout(next, Math.max(0, start + n * milliseconds(interval) - Date.now()));
    }
  };
  next();
}

// Rejections of the *WithAck helpers carry the answers that did arrive.
function failure(err) {
  return { error: err.message, responses: err.responses ?? [] };
}

const operations = {
  ping: () => ({ name: config.name, pid: process.pid }),

  emit: ({ event, args = [], to, skip_sid, namespace }) => {
    operator(namespace, to, skip_sid).emit(event, ...args);
    return { ok: true };
  },

  // A broadcast ack carries only the first argument of each client's answer
  // (also across servers: BROADCAST_ACK has a single `packet`).
  call: async ({ event, to, args = [], namespace, timeout = 10 }) => {
    try {
      const responses = await operator(namespace, to)
        .timeout(milliseconds(timeout))
        .emitWithAck(event, ...args);
      return responses.length > 0 ? responses[0] : { error: `no client ${to}` };
    } catch (err) {
      // Only the timeout rejection carries responses.
      if (!Array.isArray(err.responses)) throw err;
      return err.responses.length > 0 ? err.responses[0] : { error: "timeout" };
    }
  },

  enter_room: async ({ sid, room, namespace }) => {
    await addSockets(namespace, sid, undefined, room);
    return { ok: true };
  },

  leave_room: async ({ sid, room, namespace }) => {
    await delSockets(namespace, sid, undefined, room);
    return { ok: true };
  },

  close_room: async ({ room, namespace }) => {
    await delSockets(namespace, room, undefined, room);
    return { ok: true };
  },

  disconnect: async ({ sid, namespace, close = false }) => {
    await disconnectSockets(namespace, sid, undefined, close);
    return { ok: true };
  },

  rooms: ({ sid, namespace }) => [...localSocket(sid, namespace).rooms],

  emit_sequence: ({ event, count, interval = 0, to, namespace, fields = {} }) => {
    emitSequence(event, count, interval, to, namespace, fields);
    return { ok: true };
  },

  fetch_sockets: async ({ namespace, to, skip, timeout }) => {
    let target = operator(namespace, to, skip);
    if (isGiven(timeout)) target = target.timeout(milliseconds(timeout));
    const sockets = await target.fetchSockets();
    return sockets.map(describeSocket).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  },

  sockets_join: async ({ rooms, namespace, to, skip }) => {
    await addSockets(namespace, to, skip, rooms);
    return { ok: true };
  },

  sockets_leave: async ({ rooms, namespace, to, skip }) => {
    await delSockets(namespace, to, skip, rooms);
    return { ok: true };
  },

  disconnect_sockets: async ({ namespace, to, skip, close = false }) => {
    await disconnectSockets(namespace, to, skip, close);
    return { ok: true };
  },

  set_data: ({ sid, namespace, data }) => {
    const socket = localSocket(sid, namespace);
    Object.assign(socket.data, data);
    return { ok: true };
  },

  server_side_emit: ({ event, args = [], namespace }) => {
    of(namespace).serverSideEmit(event, ...args);
    return { ok: true };
  },

  // The adapter waits a fixed 5 s for the other servers and ignores any
  // timeout flag; `timeout` only bounds how long this command waits, and
  // answers that arrived before it expires are then unknown.
  server_side_call: async ({ event, args = [], namespace, timeout }) => {
    const call = of(namespace)
      .serverSideEmitWithAck(event, ...args)
      .then((responses) => ({ responses }), failure);
    if (!isGiven(timeout)) return call;
    let timer;
    const expiry = new Promise((resolve) => {
      timer = setTimeout(
        () => resolve({ error: `no complete answer within ${timeout}s` }),
        milliseconds(timeout),
      );
    });
    try {
      return await Promise.race([call, expiry]);
    } finally {
      clearTimeout(timer);
    }
  },

  emit_with_ack: async ({ event, args = [], to, skip_sid, namespace, timeout = 5 }) => {
    try {
      const responses = await operator(namespace, to, skip_sid)
        .timeout(milliseconds(timeout))
        .emitWithAck(event, ...args);
      return { responses };
    } catch (err) {
      return failure(err);
    }
  },

  server_count: ({ namespace }) => of(namespace).adapter.serverCount(),

  // The two ops below keep the interface of the Python test server: the
  // adapter keeps no counters, and its live-server count is serverCount().
  stats: () => ({}),

  live_servers: ({ namespace }) => of(namespace).adapter.serverCount(),

  server_events: ({ namespace }) => serverEvents.get(namespace ?? "/") ?? [],

  recovered: ({ sid, namespace }) => localSocket(sid, namespace).recovered,
};

async function runCommand(request) {
  const { op, ...args } = request ?? {};
  const operation = Object.hasOwn(operations, op) ? operations[op] : undefined;
  if (!operation) {
    return { error: `unknown op in ${JSON.stringify(request)}` };
  }
  try {
    return await operation(args);
  } catch (err) {
    console.error(`cmd ${JSON.stringify(request)} failed:`, err);
    return { error: `${err.name}: ${err.message}` };
  }
}

// ---- start and stop ---------------------------------------------------------

// The adapter subscribes and starts its stream readers in the background, so
// a server that merely listens could miss what is published right after
// READY, or be left out of serverCount(). Wait until every namespace's
// private channel is subscribed and every stream has a blocked reader. On a
// cluster, the subscriber and the readers are connected to any of the
// masters (the streams' and the channels' ones, or a random one), and each
// master counts only its own connections.
async function waitUntilJoined() {
  const sharded = Boolean(config.adapterOptions.useShardedPubSub);
  const prefix = config.adapterOptions.channelPrefix ?? "socket.io";
  const streamCount = config.adapterOptions.streamCount ?? 1;
  const privateChannels = NAMESPACES.map(
    (namespace) => `${prefix}#${namespace}#${io.of(namespace).adapter.uid}#`,
  );
  const deadline = Date.now() + JOIN_TIMEOUT_MS;
  for (;;) {
    const subscriptions = await onEveryNode(redisClient, [
      "PUBSUB",
      sharded ? "SHARDNUMSUB" : "NUMSUB",
      ...privateChannels,
    ]);
    // each reply: [channel1, count1, channel2, count2...]
    const subscribed = privateChannels.every((_, i) =>
      subscriptions.some((reply) => Number(reply[2 * i + 1]) > 0),
    );
    const readers = (await onEveryNode(redisClient, ["CLIENT", "LIST"]))
      .flatMap((reply) => String(reply).split("\n"))
      .filter((line) => line.includes(` name=${clientName} `) && line.includes(" cmd=xread "));
    if (subscribed && readers.length >= streamCount) {
      return;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `adapter not joined after ${JOIN_TIMEOUT_MS} ms ` +
          `(subscribed: ${subscribed}, stream readers: ${readers.length}/${streamCount})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let stopping = false;

async function shutdown(signal) {
  if (stopping) return;
  stopping = true;
  setTimeout(() => {
    console.error(`still stopping ${SHUTDOWN_GRACE_MS} ms after ${signal}; forcing exit`);
    process.exit(1);
  }, SHUTDOWN_GRACE_MS).unref();
  // Not awaited: the promise of io.close() waits until every client has
  // closed its TCP connection, and python-engineio clients do not answer the
  // WebSocket close frame (the server would wait for ws's 30 s close
  // timeout). The server's own part (sockets closed with "server shutting
  // down", sessions written, adapters and engine closed) is done
  // synchronously or in the microtasks that follow the call.
  io.close();
  try {
    // close() lets pending commands finish, such as those session writes.
    await redisClient.close();
  } catch (err) {
    console.error("error while stopping:", err);
  }
  // The adapter's stream readers stay blocked in XREAD for up to
  // blockTimeInMs before they notice the shutdown; nothing is left to wait for.
  process.exit(0);
}

process.on("SIGTERM", () => shutdown("SIGTERM"));
process.on("SIGINT", () => shutdown("SIGINT"));
process.on("unhandledRejection", (reason) => console.error("unhandled rejection:", reason));

await new Promise((resolve, reject) => {
  httpServer.once("error", reject);
  httpServer.listen(config.port, "127.0.0.1", resolve);
});
await waitUntilJoined();
process.stdout.write(`READY ${httpServer.address().port}\n`);
