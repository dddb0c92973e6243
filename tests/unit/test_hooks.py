"""The hooks into python-socketio's server are checked before any is
wrapped: a release that renamed or changed one fails at attach time, with
an error that names the member and the supported releases."""
import pytest
import socketio

from sio_redis_streams import hooks


def wants_everything(server):
    hooks.attach(server, on_shutdown=lambda: None,
                 before_connect=lambda e, n, a: None,
                 after_connect=lambda e, n: None,
                 send_packet=lambda send, e, p: send(),
                 connection_lost=lambda e: None)


def test_a_real_server_has_every_member():
    server = socketio.Server(async_mode='threading')
    wants_everything(server)
    assert server._send_packet.__wrapped__


class Renamed:
    """A server of a python-socketio release that renamed a member."""
    eio = socketio.Server(async_mode='threading').eio

    def shutdown(self):
        pass

    def _handle_connect(self, eio_sid, namespace, data):
        pass

    def _send_packet(self, eio_sid, pkt):
        pass

    def _handle_eio_disconnect(self, eio_sid, reason):
        pass


def without(name):
    server = Renamed()
    setattr(server, name, None)
    return server


@pytest.mark.parametrize('name', ['shutdown', '_handle_connect',
                                  '_send_packet', '_handle_eio_disconnect'])
def test_a_missing_member_fails_clearly(name):
    server = without(name)
    with pytest.raises(hooks.UnsupportedServer,
                       match=f'python-socketio 5.11 to 5.18.*{name}'):
        wants_everything(server)
    assert server.shutdown is None or \
        not hasattr(server.shutdown, '__wrapped__'), 'half attached'


def test_a_changed_signature_fails_clearly():
    server = Renamed()
    server._handle_connect = lambda sid, auth: None
    with pytest.raises(hooks.UnsupportedServer,
                       match=r'_handle_connect\(sid, auth\) is not '
                             r'_handle_connect\(eio_sid, namespace, data\)'):
        wants_everything(server)


def test_a_server_without_recovery_needs_fewer_members():
    server = without('_send_packet')
    hooks.attach(server, on_shutdown=lambda: None)
