"""Tests of sio_redis_streams (a package: helpers import as tests.support)."""
