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


class _Recorder:
    """A socket stand-in that records the options set on it."""

    def __init__(self, family: socket.AddressFamily, kind: socket.SocketKind) -> None:
        self.family, self.type = family, kind
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options.append((level, option, value))


class _Extra(asyncio.BaseTransport):
    """A transport that hands out one socket (or none)."""

    def __init__(self, sock: Any) -> None:
        super().__init__()
        self.sock = sock

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.sock if name == "socket" else default


@pytest.mark.parametrize(
    ("family", "kind", "expected"),
    [
        (socket.AF_INET, socket.SOCK_STREAM, [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]),
        (socket.AF_INET6, socket.SOCK_STREAM, [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]),
        (socket.AF_UNIX, socket.SOCK_STREAM, []),
        (socket.AF_INET, socket.SOCK_DGRAM, []),
    ],
    ids=["tcp", "tcp6", "unix", "udp"],
)
def test_set_nodelay_sets_the_option_on_tcp_sockets_only(
    family: socket.AddressFamily, kind: socket.SocketKind, expected: list[tuple[int, int, int]]
) -> None:
    sock = _Recorder(family, kind)
    set_nodelay(_Extra(sock))
    assert sock.options == expected


def test_set_nodelay_without_a_socket_does_nothing() -> None:
    transport = _Extra(None)
    set_nodelay(transport)
    assert transport.get_extra_info("socket") is None


def test_protocol_sets_nodelay_when_a_connection_opens(accepted: socket.socket) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("no request is sent")

    config = uvicorn.Config(app=app, http=PROTOCOL)
    config.load()
    assert config.http_protocol_class is NoDelayH11Protocol
    protocol = NoDelayH11Protocol(config=config, server_state=ServerState(), app_state={})
    protocol.connection_made(Transport(accepted))
    assert nodelay(accepted) == 1
