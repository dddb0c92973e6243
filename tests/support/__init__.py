"""Test helpers around real processes: Redis servers, TCP proxies,
Socket.IO servers and clients."""
