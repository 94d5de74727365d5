"""The HTTP protocol the service runs under uvicorn: h11 with Nagle's algorithm turned off.

With ``--workers`` above 1, uvicorn binds the listening socket itself (``socket.socket(family)``,
protocol number 0) and hands it to the worker processes. asyncio sets ``TCP_NODELAY`` on an
accepted connection only when the socket's protocol number is ``IPPROTO_TCP``, so on those
connections Nagle's algorithm held back the last small segment of each answer until the client's
delayed acknowledgement: every request, even ``/health/live``, took 44 ms instead of about 1 ms
(measured; see docs/benchmarks.md). This protocol sets the option on every TCP connection itself,
whatever socket the server made. ``codesuggest serve`` binds its workers' sockets with
``IPPROTO_TCP`` itself (:mod:`service.workers`), where asyncio sets the option too; the protocol
matters when the app runs under plain ``uvicorn --workers`` or another server.
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol

#: What ``codesuggest serve`` passes to uvicorn as ``http=`` (an import string, for worker processes).
PROTOCOL = "service.transport:NoDelayH11Protocol"


def set_nodelay(transport: asyncio.BaseTransport) -> None:
    """Turn off Nagle's algorithm on a TCP transport's socket (other transports are left alone)."""
    sock = transport.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class NoDelayH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with ``TCP_NODELAY`` on each connection."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
