"""Network helpers for tests that start servers: everything on 127.0.0.1."""

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
