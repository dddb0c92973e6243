"""The benchmark's results: kept per workload, group (an async mode, or
``once`` for what does not depend on it: Node, the receivers' check) and
peer; summarized as the median of the rounds; printed as tables, written
as JSON and as Markdown."""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any, Iterable

from bench.peers import OURS
from bench.workloads import Metric, Workload

#: the group of the peers that run once, whatever the Python async mode
ONCE = 'once'
#: summed over the rounds, not their median
COUNTS = ('lost', 'dup')
#: peers that are no peer: shown, never compared
NOT_COMPARED = ('bare-ws',)
#: peers compared with others than ours, as ``peer / reference``: what the
#: cluster costs against one Redis, what WAIT costs on the cluster
REFERENCES = {'streams@cluster': ('streams',),
              'streams@cluster+acks': ('streams@cluster', 'streams')}
NOTES = {'bare-ws': 'the receivers fed by a bare WebSocket server (one '
                    'Node process) as fast as it can: a lower bound of '
                    'what they can take',
         'node': 'Node.js: run once, not in a Python async mode',
         'ceiling': "one server, python-socketio's in-process Manager, "
                    'no Redis',
         'streams@cluster': 'ours on a Redis Cluster of 3 primaries with a '
                            'replica each (loopback, no persistence, like '
                            'the single redis-server)',
         'streams@cluster+acks': 'the same with replica_acks=1: a batch '
                                 'is written once a replica has it (WAIT)'}


def median_of(rounds: list[dict]) -> dict:
    """One figure per key: counts summed, numbers' median, ``levelled``
    only if every round levelled, anything else from the last round."""
    good = [r for r in rounds if 'error' not in r]
    summary: dict[str, Any] = {'rounds': len(good),
                               'errors': len(rounds) - len(good)}
    for key in {key for r in good for key in r}:
        values = [r[key] for r in good if r.get(key) is not None]
        if key in COUNTS:
            summary[key] = sum(values)
        elif key == 'levelled':
            summary[key] = bool(values) and all(values)
        elif values and all(isinstance(v, (int, float)) for v in values):
            summary[key] = statistics.median(values)
        else:
            summary[key] = values[-1] if values else None
    return summary


class Results:
    """Every round of every peer; what checks found on the servers."""

    def __init__(self, config: dict) -> None:
        self.config = config
        self.data: dict[str, dict[str, dict[str, dict]]] = {}

    def _entry(self, workload: str, group: str, peer: str) -> dict:
        return self.data.setdefault(workload, {}).setdefault(
            group, {}).setdefault(peer, {'rounds': [], 'checks': {}})

    def add(self, workload: str, group: str, peer: str,
            figures: dict) -> None:
        self._entry(workload, group, peer)['rounds'].append(figures)

    def check(self, workload: str, group: str, peer: str,
              checks: dict) -> None:
        self._entry(workload, group, peer)['checks'] = checks

    def medians(self, workload: str) -> dict[str, dict[str, dict]]:
        return {group: {peer: median_of(entry['rounds'])
                        for peer, entry in peers.items()}
                for group, peers in self.data.get(workload, {}).items()}

    def write_json(self, path: Path, workloads: Iterable[Workload]) -> None:
        document = {'config': self.config, 'workloads': {}}
        for workload in workloads:
            document['workloads'][workload.name] = {
                'title': workload.title, 'sizes': workload.describe(),
                'settings': workload.settings.describe(),
                'median': self.medians(workload.name),
                'raw': self.data.get(workload.name, {})}
        path.write_text(json.dumps(document, indent=1, default=str) + '\n')


def _cell(value: Any, metric: Metric | None = None) -> str:
    if value is None:
        return 'n/a'
    return metric.format.format(value) if metric else f'{value:,}'


def bad_losses(workload: Workload, peer: str, figures: dict) -> bool:
    """Lost messages that should not be: any, except those of pubsub (no
    stream) in an outage."""
    return bool(figures.get('lost', 0)) and not (workload.outage and
                                                 peer == 'pubsub')


def flagged(workload: Workload, peer: str, figures: dict) -> bool:
    """Losses that should not be, duplicates, or failed rounds."""
    return (bad_losses(workload, peer, figures) or
            bool(figures.get('dup', 0) or figures.get('errors')))


def tables(results: Results, workload: Workload,
           modes: list[str]) -> list[tuple[str, list[list[str]]]]:
    """(title, rows with the header first) of one workload: the figures,
    then ours / each peer, and each peer of :data:`REFERENCES` / its
    references."""
    medians = results.medians(workload.name)
    groups = [g for g in [*modes, ONCE] if g in medians]
    header = ['mode', 'peer', *(m.label for m in workload.metrics),
              'lost', 'dup', 'rx busy']
    rows = [header]
    for group in groups:
        for peer, figures in medians[group].items():
            busy = figures.get('busy')
            rows.append([
                group, peer + (' !' if figures.get('errors') else ''),
                *(_cell(figures.get(m.key), m) for m in workload.metrics),
                _cell(figures.get('lost', 0)) +
                (' !' if bad_losses(workload, peer, figures) else ''),
                _cell(figures.get('dup', 0)) +
                (' !' if figures.get('dup', 0) else ''),
                'n/a' if busy is None else f'{busy:.0%}'])
    title = (f'{workload.title}: {workload.describe()} '
             f'({workload.settings.describe()}; median of '
             f'{results.config["rounds"]} round(s))')
    found = [(title, rows)]
    compared = [m for m in workload.metrics if m.higher_is_better is not None]
    ratio_rows = [['mode', 'ratio', *(
        f'{m.label} ({"higher" if m.higher_is_better else "lower"} is '
        'better)' for m in compared)]]
    for mode in modes:
        figures = {**medians.get(mode, {}),
                   **{p: f for p, f in medians.get(ONCE, {}).items()
                      if p not in NOT_COMPARED}}
        pairs = [(OURS, peer) for peer in figures
                 if peer not in (OURS, *REFERENCES)]
        pairs += [(peer, reference) for peer in figures
                  for reference in REFERENCES.get(peer, ())]
        for top, bottom in pairs:
            if top in figures and bottom in figures:
                ratio_rows.append([mode, f'{top} / {bottom}', *(
                    _ratio(figures[top].get(m.key),
                           figures[bottom].get(m.key))
                    for m in compared)])
    if compared and len(ratio_rows) > 1:
        found.append((f'{workload.title}: ratios', ratio_rows))
    return found


def _ratio(ours: float | None, theirs: float | None) -> str:
    return f'x{ours / theirs:.2f}' if ours and theirs else 'n/a'


def notes(results: Results, workload: Workload) -> list[str]:
    """Lines under a workload's tables: flagged losses, what the servers'
    counters found, the frozen client's RSS over time, who is who."""
    lines = []
    for group, peers in results.medians(workload.name).items():
        for peer, figures in peers.items():
            where = f'{peer} ({group})'
            entry = results.data[workload.name][group][peer]
            if flagged(workload, peer, figures):
                errors = [r['error'] for r in entry['rounds'] if 'error' in r]
                lines.append(f'! {where}: {figures.get("lost", 0)} lost, '
                             f'{figures.get("dup", 0)} duplicated, '
                             f'{len(errors)} failed round(s)' +
                             (f' ({errors[0]})' if errors else ''))
            checks = entry['checks']
            bad = {k: v for k, v in checks.items() if v}
            if bad:
                lines.append(f'! {where}: server counters {bad}')
            if 'series' in figures:
                series = ', '.join(f'{t:g}s {mb:.0f}' for t, mb in
                                   figures['series'])
                verdict = ('yes' if figures['levelled'] else
                           'NO' if figures.get('dropped_after') is not None
                           else 'NO, the client was never dropped')
                lines.append(f'  {where} frozen client, B RSS MB: {series}; '
                             f'levels off: {verdict}')
    if workload.settings.outbox_size:
        groups = results.data.get(workload.name, {}).values()
        dropped = sum(entry['checks'].get('outbox_dropped', 0)
                      for peers in groups for entry in peers.values())
        lines.append(f'  outbox_size raised to '
                     f'{workload.settings.outbox_size:,} for this workload;'
                     f' outbox_dropped, all peers: {dropped}')
    lines += [f'  {note}' for note in workload.notes]
    shown = {p for g in results.data.get(workload.name, {}).values()
             for p in g}
    lines += [f'  {peer}: {note}' for peer, note in NOTES.items()
              if peer in shown]
    return lines


def render_text(title: str, rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [title]
    for row in rows:
        lines.append('  '.join(
            cell.ljust(width) if i < 2 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))).rstrip())
    return '\n'.join(lines)


def render_markdown(title: str, rows: list[list[str]]) -> str:
    lines = [f'**{title}**', '',
             '| ' + ' | '.join(rows[0]) + ' |',
             '|' + '|'.join(['---', '---'] + ['---:'] * (len(rows[0]) - 2))
             + '|']
    lines += ['| ' + ' | '.join(row) + ' |' for row in rows[1:]]
    return '\n'.join(lines)
