"""What the nodes of a Redis Cluster report, and whether they agree."""

from __future__ import annotations

from typing import Any, Callable, Mapping, NamedTuple, Sequence

import redis

from tests.support.redis_server import RedisServer

SLOT_COUNT = 16384
#: Flags of CLUSTER NODES that mean a node is not (yet) a healthy member.
UNHEALTHY = frozenset({'fail', 'fail?', 'handshake', 'noaddr'})


class SlotRange(NamedTuple):
    """One range of CLUSTER SLOTS and the ports of its primary and of the
    primary's healthy replicas (from CLUSTER NODES: CLUSTER SLOTS leaves
    out a replica until it has heard of its replication offset, which
    takes until something is written)."""

    start: int
    end: int
    primary: int
    replicas: tuple[int, ...]


SlotMap = tuple[SlotRange, ...]


class NodeView(NamedTuple):
    """One line of CLUSTER NODES."""

    id: str
    port: int
    flags: frozenset[str]
    master_id: str
    slots: tuple[tuple[int, int], ...]


def survey(
    live: Sequence[RedisServer], admin: Callable[[RedisServer], redis.Redis]
) -> tuple[str | None, SlotMap | None]:
    """Why the cluster is not stable (None if it is) and its slot map.

    Stable means: every node of ``live`` reports ``cluster_state:ok``, sees
    every other one as healthy, is in sync with its primary if it is a
    replica, and returns the same CLUSTER SLOTS, covering every slot. The
    reason is text for the message of a wait that timed out.
    """
    if not live:
        return 'no node is running', None
    maps: dict[int, SlotMap] = {}
    for node in live:
        try:
            problem, maps[node.port] = _node_survey(node, live, admin(node))
        except redis.RedisError as exc:
            problem = f'{node.name}: {exc!r}'
        if problem is not None:
            return problem, None
    distinct = set(maps.values())
    if len(distinct) > 1:
        return f'the nodes disagree on the slots: {maps}', None
    slot_map = distinct.pop()
    covered = sum(r.end - r.start + 1 for r in slot_map)
    if covered != SLOT_COUNT:
        return f'{covered} slots covered', None
    return None, slot_map


def _node_survey(
    node: RedisServer, live: Sequence[RedisServer], admin: redis.Redis
) -> tuple[str | None, SlotMap]:
    if 'cluster_state:ok' not in text(admin, 'CLUSTER', 'INFO'):
        return f'{node.name}: cluster_state is not ok', ()
    views = parse_nodes(text(admin, 'CLUSTER', 'NODES'))
    seen = {v.port: v for v in views}
    for other in live:
        view = seen.get(other.port)
        if view is None or view.flags & UNHEALTHY:
            flags = ','.join(sorted(view.flags)) if view else 'unknown'
            return f'{node.name} sees :{other.port} as {flags}', ()
    if 'slave' in seen[node.port].flags:
        # A replica that has not synced yet would lose the data it has not
        # received if it took over.
        link = admin.info('replication').get('master_link_status')
        if link != 'up':
            return f'{node.name}: link to its primary is {link}', ()
    return None, slot_map(
        admin.execute_command('CLUSTER', 'SLOTS'), replica_ports(views)
    )


def text(admin: redis.Redis, *command: str) -> str:
    """A command's bulk string reply, decoded. (Admin connections return
    bytes, so that MIGRATE can pass back key names that are not UTF-8.)"""
    return admin.execute_command(*command).decode()


def parse_nodes(reply: str) -> list[NodeView]:
    """The lines of a CLUSTER NODES reply."""
    views = []
    for line in reply.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        # ip:port@cport[,hostname]
        port = int(fields[1].split('@')[0].rsplit(':', 1)[1])
        slots = []
        for item in fields[8:]:
            if item.startswith('['):  # a slot being imported or migrated
                continue
            start, _, end = item.partition('-')
            slots.append((int(start), int(end or start)))
        views.append(NodeView(
            fields[0], port, frozenset(fields[2].split(',')), fields[3],
            tuple(slots),
        ))
    return views


def first_slot(view: NodeView) -> int:
    """The lowest slot a node owns (sort key of the primaries)."""
    return min(start for start, _ in view.slots)


def replica_ports(views: Sequence[NodeView]) -> dict[int, list[int]]:
    """Ports of the healthy replicas of each primary, by its port."""
    ports = {view.id: view.port for view in views}
    replicas: dict[int, list[int]] = {}
    for view in views:
        if (
            'slave' in view.flags
            and not view.flags & UNHEALTHY
            and view.master_id in ports
        ):
            replicas.setdefault(ports[view.master_id], []).append(view.port)
    return replicas


def slot_map(
    reply: list[Any], replicas: Mapping[int, Sequence[int]]
) -> SlotMap:
    """A CLUSTER SLOTS reply, with ``replicas`` of each primary, in a form
    that compares equal when two nodes agree: sorted throughout."""
    return tuple(sorted(
        SlotRange(
            int(start), int(end), int(primary[1]),
            tuple(sorted(replicas.get(int(primary[1]), ()))),
        )
        for start, end, primary, *_ in reply
    ))


def owner_port(slots: SlotMap, slot: int) -> int:
    """Port of the primary that serves ``slot`` according to ``slots``."""
    for slot_range in slots:
        if slot_range.start <= slot <= slot_range.end:
            return slot_range.primary
    raise LookupError(f'slot {slot} is not served')
