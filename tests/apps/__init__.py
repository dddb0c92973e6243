"""Socket.IO server applications run as separate processes by the tests
and the benchmark."""
