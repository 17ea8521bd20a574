"""Free loopback ports for the local stack's child processes (benchmarks and tests start stacks side by side)."""

import socket


def free_port() -> int:
    """A port nothing listens on now: the kernel picks it (bind to 0), so parallel runs do not collide."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_free(port: int) -> bool:
    """Whether nothing accepts connections on `port` (a fixed port asked for on the command line)."""
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0
