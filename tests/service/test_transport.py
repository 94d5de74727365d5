"""TCP_NODELAY on the service's connections (uvicorn with several workers leaves it off)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import uvicorn
from uvicorn.server import ServerState

from service.transport import PROTOCOL, NoDelayH11Protocol, set_nodelay


class Transport(asyncio.Transport):
    """The parts of an asyncio transport that the h11 protocol reads when a connection opens."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        extra = {"socket": self.sock, "peername": self.sock.getpeername(), "sockname": self.sock.getsockname()}
        return extra.get(name, default)


@pytest.fixture
def accepted() -> Iterator[socket.socket]:
    """A server-side TCP connection accepted on a socket made as uvicorn's multi-worker mode makes it."""
    with socket.socket(socket.AF_INET) as listener, socket.socket(socket.AF_INET) as client:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client.connect(listener.getsockname())
        conn, _ = listener.accept()
        with conn:
            yield conn


def nodelay(sock: socket.socket) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def test_uvicorns_multi_worker_socket_leaves_nagle_on(accepted: socket.socket) -> None:
    # the reason for the protocol: protocol number 0, so asyncio does not set TCP_NODELAY
    assert accepted.proto == 0 and nodelay(accepted) == 0


def test_set_nodelay_turns_nagle_off(accepted: socket.socket) -> None:
    set_nodelay(Transport(accepted))
    assert nodelay(accepted) == 1


def test_set_nodelay_leaves_other_sockets_alone() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        set_nodelay(Transport(left))  # no TCP option on a Unix socket: nothing to set, no error


def test_protocol_sets_nodelay_when_a_connection_opens(accepted: socket.socket) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("no request is sent")

    config = uvicorn.Config(app=app, http=PROTOCOL)
    config.load()
    assert config.http_protocol_class is NoDelayH11Protocol
    protocol = NoDelayH11Protocol(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(Transport(accepted))
    assert nodelay(accepted) == 1
