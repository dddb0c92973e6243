"""Connection state recovery, the bookkeeping of one server: the private id
(``pid``) of each socket, the sessions being brought back, and the packets
held back for a socket until its replay has been sent.

The state is touched by the server's request handlers and by the stream
reader at once (threads, under ``threading``), so every change happens
under one lock; nothing here waits or does I/O. The one long hold is
:meth:`RecoveryBook.flush`, by design: the replay and the packets held back
are handed to the socket under the lock, so that no newer packet overtakes
them (handing over is a local enqueue, no Redis round trip).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from .addressing import BroadcastOptions, Room
from .replay import Session, receives

Key = Tuple[str, str]  # (namespace, sid)


@dataclass
class _Held:
    rooms: List[Room]
    packets: List[List[Any]] = field(default_factory=list)


@dataclass
class Restored:
    """A session taken back, with the packets its client missed (each
    ``[event, *args, offset]``; ``None`` once they were sent)."""
    session: Session
    missed: Optional[List[List[Any]]] = field(default_factory=list)


class RecoveryBook:
    """Who is who, and who waits for what."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self._pids: Dict[Key, str] = {}
        self._restoring: Dict[Tuple[str, str], Restored] = {}
        self._restored: Dict[Key, Restored] = {}
        self._held: Dict[str, Dict[str, _Held]] = {}

    # -- private ids -------------------------------------------------------

    def set_pid(self, namespace: str, sid: str, pid: str) -> None:
        with self.lock:
            self._pids[(namespace, sid)] = pid

    def pid_of(self, namespace: str, sid: str) -> Optional[str]:
        with self.lock:
            return self._pids.get((namespace, sid))

    # -- sessions being restored -------------------------------------------

    def restoring(self, eio_sid: str, namespace: str,
                  restored: Restored) -> None:
        """A session was taken back for connection ``eio_sid``; its CONNECT
        is being handled."""
        with self.lock:
            self._restoring[(eio_sid, namespace)] = restored

    def take_restoring(self, eio_sid: str,
                       namespace: str) -> Optional[Restored]:
        with self.lock:
            return self._restoring.pop((eio_sid, namespace), None)

    def restored(self, namespace: str, sid: str, restored: Restored) -> None:
        with self.lock:
            self._pids[(namespace, sid)] = restored.session.pid
            self._restored[(namespace, sid)] = restored

    def is_recovered(self, namespace: str, sid: str) -> bool:
        with self.lock:
            return (namespace, sid) in self._restored

    def take_replay(self, namespace: str,
                    sid: str) -> Optional[List[List[Any]]]:
        """The missed packets of a recovered socket, once: ``None`` if there
        is nothing (left) to replay."""
        with self.lock:
            restored = self._restored.get((namespace, sid))
            if restored is None or restored.missed is None:
                return None
            missed, restored.missed = restored.missed, None
            return missed

    def forget(self, namespace: str, sid: str) -> None:
        """A socket is gone for good."""
        with self.lock:
            self._pids.pop((namespace, sid), None)
            self._restored.pop((namespace, sid), None)
            self._release(namespace, sid)

    # -- packets held back -------------------------------------------------

    def hold(self, namespace: str, session: Session) -> None:
        """Hold back the packets for the socket of ``session`` (matched by
        the session's rooms: the socket may not have joined them yet) until
        :meth:`flush`."""
        with self.lock:
            self._held.setdefault(namespace, {}).setdefault(
                session.sid, _Held(session.rooms))

    def divert(self, namespace: str, opts: BroadcastOptions,
               packet: List[Any]) -> Set[str]:
        """Keep ``packet`` for each held socket that ``opts`` addresses;
        returns those sockets (the caller skips them)."""
        with self.lock:
            held = self._held.get(namespace)
            if not held:
                return set()
            diverted = set()
            for sid, socket in held.items():
                if receives(socket.rooms, opts):
                    socket.packets.append(packet)
                    diverted.add(sid)
            return diverted

    def flush(self, namespace: str, sid: str,
              send: Callable[[List[Any]], None],
              first: Optional[List[List[Any]]] = None) -> None:
        """Stop holding packets for ``sid`` and send, under the lock so that
        no newer packet can overtake them, ``first`` and then what was held
        back."""
        with self.lock:
            for packet in (first or []) + self._release(namespace, sid):
                send(packet)

    def release(self, namespace: str, sid: str) -> None:
        """Stop holding packets for ``sid``, dropping them (the session was
        not used)."""
        with self.lock:
            self._release(namespace, sid)

    def _release(self, namespace: str, sid: str) -> List[List[Any]]:
        held = self._held.get(namespace, {})
        socket = held.pop(sid, None)
        if not held:
            self._held.pop(namespace, None)
        return socket.packets if socket is not None else []
