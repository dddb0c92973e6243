"""Socket.IO clustering for python-socketio and Flask-SocketIO over Redis
Streams, wire-compatible with ``@socket.io/redis-streams-adapter``."""
from .core.messages import MalformedMessage, MessageType
from .core.stats import COUNTERS
from .exceptions import ClusterTimeoutError
from .manager import RedisStreamsManager
from .remote import RemoteSocket

__version__ = '0.1.0'

__all__ = ['RedisStreamsManager', 'RemoteSocket', 'ClusterTimeoutError',
           'MessageType', 'MalformedMessage', 'COUNTERS', '__version__']
