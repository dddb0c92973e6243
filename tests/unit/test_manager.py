"""The manager's own decisions (the cluster is tested end to end)."""
from bidict import bidict

from tests.unit.sync.fakes import manager


def test_an_emit_without_recipients_here_encodes_nothing(monkeypatch):
    """python-socketio encodes a packet before it looks for recipients; in
    a cluster most emits have none on a given server."""
    mgr = manager()
    mgr.rooms['/'] = {None: bidict({'s1': 'e1'}), 'empty': bidict()}
    encoded = []
    monkeypatch.setattr(mgr.server.packet_class, 'encode',
                        lambda packet: encoded.append(packet) or '2[]')
    monkeypatch.setattr(mgr._driver, 'submit', lambda message: None)
    monkeypatch.setattr(mgr.server, '_send_eio_packet',
                        lambda eio_sid, packet: None)
    mgr.emit('e', 1, room='empty')
    mgr.emit('e', 1, room=['empty', 'nowhere'])
    mgr.emit('e', 1, namespace='/chat')
    assert encoded == []
    mgr.emit('e', 1)
    assert len(encoded) == 1
