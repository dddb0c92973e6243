"""``tests/node/node_server.mjs`` (Socket.IO 4.8 with the official
``@socket.io/redis-streams-adapter``) run as a separate process, with the same
interface as :class:`tests.support.processes.ServerProcess`."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.support.processes import ReadyProcess

NODE_DIR = Path(__file__).resolve().parent.parent / 'node'
NODE_SERVER = NODE_DIR / 'node_server.mjs'
REQUIRE_NODE_VARIABLE = 'SIO_REQUIRE_NODE'


def node_binary() -> str | None:
    """Path of ``node``, if installed."""
    return shutil.which('node')


def _pinned_packages() -> dict[str, str]:
    manifest = json.loads((NODE_DIR / 'package.json').read_text())
    return manifest['dependencies']


def _missing_packages() -> list[str]:
    missing = []
    for package, version in _pinned_packages().items():
        manifest = NODE_DIR / 'node_modules' / package / 'package.json'
        try:
            installed = json.loads(manifest.read_text())['version']
        except (OSError, ValueError, KeyError):
            installed = None
        if installed != version:
            missing.append(f'{package}@{version} (found: {installed})')
    return missing


def node_modules_ready() -> bool:
    """Whether tests/node/node_modules holds the pinned packages."""
    return not _missing_packages()


def require_node() -> None:
    """Skip the calling test when Node.js or the pinned packages are missing;
    fail it instead when ``SIO_REQUIRE_NODE=1`` (CI), so that a broken Node
    setup cannot pass as a run of skipped tests."""
    problems = []
    if node_binary() is None:
        problems.append('no `node` on PATH')
    missing = _missing_packages()
    if missing:
        problems.append(
            f'missing npm packages {", ".join(missing)};'
            f' run `npm ci --prefix {NODE_DIR}`'
        )
    if not problems:
        return
    message = 'Node.js interop side unavailable: ' + '; '.join(problems)
    if os.environ.get(REQUIRE_NODE_VARIABLE) == '1':
        pytest.fail(f'{message} ({REQUIRE_NODE_VARIABLE}=1)', pytrace=False)
    pytest.skip(message)


class NodeServerProcess(ReadyProcess):
    """One Node.js Socket.IO server in its own process group, running in and
    logging to ``workdir``.

    ``options`` are the adapter options (``streamName``, ``maxLen``...);
    ``recovery``, when given, turns on ``connectionStateRecovery`` with it.
    The first start takes any free port (the server reports it); later starts
    reuse it so reconnecting clients find the server again.
    """

    def __init__(
        self,
        port: int | None = None,
        *,
        redis_url: str,
        name: str = 'node',
        options: dict[str, Any] | None = None,
        recovery: dict[str, Any] | None = None,
        workdir: Path,
    ) -> None:
        # Node resolves the packages from the script's folder; the cwd only
        # keeps stray files out of the repository
        super().__init__(name, workdir, port, cwd=workdir)
        self.redis_url = redis_url
        self.options = dict(options or {})
        self.recovery = recovery
        self.workdir = workdir

    def argv(self) -> list[str]:
        """The command line."""
        argv = [
            node_binary() or 'node',
            str(NODE_SERVER),
            '--port',
            str(self._port or 0),
            '--redis-url',
            self.redis_url,
            '--name',
            self.name,
            '--options',
            json.dumps(self.options),
        ]
        if self.recovery is not None:
            argv += ['--recovery', json.dumps(self.recovery)]
        return argv
