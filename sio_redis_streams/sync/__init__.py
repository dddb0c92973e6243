"""The sync I/O driver, for python-socketio's ``Server`` under threading,
gevent or eventlet: redis-py (or valkey) clients and background tasks
around the protocol core of :mod:`sio_redis_streams.core`."""
