// The Redis connection of node_server.mjs: node-redis `createClient` for one
// Redis, `createCluster` for a Redis Cluster given as
//
//   redis+cluster://[user[:password]@]host1:port1,host2:port2[/0]
//
// (valkey+cluster:// too), the URL form of the Python manager. The hosts are
// the root nodes the cluster client discovers the others from.

import { createClient, createCluster } from "redis";

const CLUSTER_URL = /^(?:redis|valkey)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]*)(\/[^?#]*)?$/i;

// The root nodes and credentials of a cluster URL; undefined for any other
// URL (createClient takes those as they are).
export function parseClusterUrl(url) {
  if (!/^[a-z]+\+cluster:/i.test(url)) {
    return undefined;
  }
  const match = CLUSTER_URL.exec(url);
  if (!match) {
    throw new Error(`unsupported cluster URL ${url} (redis+cluster://h1:p1,h2:p2)`);
  }
  const [, userinfo, hosts, path] = match;
  if (path !== undefined && !["", "/", "/0"].includes(path)) {
    throw new Error(`a Redis Cluster has only database 0: ${url}`);
  }
  const rootNodes = hosts
    .split(",")
    .filter((host) => host !== "")
    .map((host) => ({ url: `redis://${host}` }));
  if (rootNodes.length === 0) {
    throw new Error(`no node in cluster URL ${url}`);
  }
  const credentials = {};
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(":");
    const [user, password] =
      colon < 0 ? [userinfo, undefined] : [userinfo.slice(0, colon), userinfo.slice(colon + 1)];
    if (user !== "") credentials.username = decodeURIComponent(user);
    if (password !== undefined) credentials.password = decodeURIComponent(password);
  }
  return { rootNodes, credentials };
}

// A connected client for `url`. Every connection it opens, and those of its
// duplicates (the adapter's stream readers and subscriber), is named `name`.
// `log` gets its errors, and on a cluster those of every node connection.
export async function connectRedis(url, name, log) {
  const cluster = parseClusterUrl(url);
  let client;
  if (cluster === undefined) {
    client = createClient({ url, name });
  } else {
    // The cluster client applies `defaults` to every node connection,
    // including those to the root nodes while it discovers the slots.
    client = createCluster({
      rootNodes: cluster.rootNodes,
      defaults: { name, ...cluster.credentials },
    });
    client.on("node-error", (err, node) =>
      log(`redis client error (node ${node.host}:${node.port}): ${err.message}`),
    );
  }
  client.on("error", (err) => log(`redis client error: ${err.message}`));
  await client.connect();
  return client;
}

// Whether `client` is a cluster client (the test the adapter uses too).
export const isCluster = (client) => Array.isArray(client.masters);

// The replies of `args` sent to every node the adapter's connections can be
// on: the one Redis, or every master of the cluster (the node-redis cluster
// client reads and subscribes on masters only, as no `useReplicas` is set).
export async function onEveryNode(client, args) {
  if (!isCluster(client)) {
    return [await client.sendCommand(args)];
  }
  return Promise.all(
    client.masters.map(async (node) => (await client.nodeClient(node)).sendCommand(args)),
  );
}
