// Official socket.io-client sockets, driven by the Python tests through
// stdin/stdout: one JSON request per line in, one JSON reply per line out
// ({id, result} or {id, error}). Binary values travel as {"$bytes": base64}.
import { createInterface } from "node:readline";
import { io } from "socket.io-client";

const sockets = new Map();

function toJson(value) {
  if (Buffer.isBuffer(value) || value instanceof ArrayBuffer || ArrayBuffer.isView(value)) {
    return { $bytes: Buffer.from(value).toString("base64") };
  }
  if (Array.isArray(value)) return value.map(toJson);
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
}

function fromJson(value) {
  if (Array.isArray(value)) return value.map(fromJson);
  if (value && typeof value === "object") {
    if (typeof value.$bytes === "string") return Buffer.from(value.$bytes, "base64");
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
}

function entry(name) {
  const record = sockets.get(name);
  if (!record) throw new Error(`no socket named ${name}`);
  return record;
}

function state(record) {
  const { socket } = record;
  return {
    connected: socket.connected,
    sid: socket.id ?? null,
    recovered: socket.recovered ?? false,
    pid: socket._pid ?? null,
    connects: record.connects,
  };
}

const operations = {
  // a socket of one namespace; resolves once connected
  connect: ({ name, url, namespace = "/", auth }) =>
    new Promise((resolve, reject) => {
      const socket = io(url + namespace, {
        transports: ["websocket"],
        forceNew: true,
        reconnectionDelay: 100,
        reconnectionDelayMax: 300,
        randomizationFactor: 0,
        auth,
      });
      const record = { socket, events: [], connects: 0 };
      sockets.set(name, record);
      socket.onAny((event, ...args) => record.events.push(toJson([event, ...args])));
      socket.on("connect", () => {
        record.connects += 1;
        record.events.push(["$connect", socket.id, socket.recovered]);
        if (record.connects === 1) resolve(state(record));
      });
      socket.on("connect_error", (err) => {
        if (record.connects === 0) reject(err);
      });
      socket.on("disconnect", (reason) => record.events.push(["$disconnect", reason]));
    }),

  // drop the transport without a Socket.IO disconnect: the server sees a
  // transport close, the client reconnects by itself
  drop: ({ name }) => {
    entry(name).socket.io.engine.close();
    return { ok: true };
  },

  state: ({ name }) => state(entry(name)),

  events: ({ name }) => entry(name).events,

  emit: ({ name, event, args = [] }) =>
    entry(name).socket.timeout(10000).emitWithAck(event, ...fromJson(args)).then(toJson),

  // many sockets at once, named prefix0, prefix1...; resolves once all are
  // connected
  connectMany: async ({ prefix, count, url, namespace = "/" }) => {
    const names = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
    await Promise.all(names.map((name) => operations.connect({ name, url, namespace })));
    return { ok: true };
  },

  // drop the transports of all the sockets named prefix...
  dropMany: ({ prefix }) => {
    for (const [name, record] of sockets) {
      if (name.startsWith(prefix)) record.socket.io.engine.close();
    }
    return { ok: true };
  },

  // for each socket named prefix...: its sid now and at its first connect,
  // whether its last connect recovered its session, and the "n" of each
  // received event named event, in order
  summary: ({ prefix, event }) => {
    const result = {};
    for (const [name, record] of sockets) {
      if (!name.startsWith(prefix)) continue;
      const connects = record.events.filter((e) => e[0] === "$connect");
      result[name] = {
        connected: record.socket.connected,
        firstSid: connects.length ? connects[0][1] : null,
        sid: record.socket.id ?? null,
        connects: record.connects,
        recovered: connects.length ? connects[connects.length - 1][2] : false,
        numbers: record.events.filter((e) => e[0] === event).map((e) => e[1]?.n),
      };
    }
    return result;
  },

  close: ({ name }) => {
    entry(name).socket.disconnect();
    sockets.delete(name);
    return { ok: true };
  },
};

const lines = createInterface({ input: process.stdin });
lines.on("line", async (line) => {
  let request;
  try {
    request = JSON.parse(line);
  } catch {
    return;
  }
  const { id, op, args = {} } = request;
  try {
    const handler = operations[op];
    if (!handler) throw new Error(`unknown op ${op}`);
    const result = await handler(args);
    process.stdout.write(JSON.stringify({ id, result }) + "\n");
  } catch (err) {
    process.stdout.write(JSON.stringify({ id, error: String(err?.message ?? err) }) + "\n");
  }
});
lines.on("close", () => {
  for (const { socket } of sockets.values()) socket.disconnect();
  process.exit(0);
});
process.stdout.write(JSON.stringify({ ready: true }) + "\n");
