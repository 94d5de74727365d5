"""Several worker processes for ``codesuggest serve``, each with its own listening socket.

uvicorn's ``--workers`` binds one socket in the parent and shares it: every idle worker wakes on a
new connection and the first to run accepts all that are waiting. Connections opened together (a
connection pool, a load generator) then often all land on one worker, which codes every note while
the other sits idle: measured with wrk and 8 keep-alive connections, 21 notes/s on one busy worker
against 41 when the connections were spread (docs/benchmarks.md). Here each worker binds its own
socket to the port with ``SO_REUSEPORT``, so the kernel spreads new connections over the workers.

The parent starts the workers, starts a replacement when one dies after it was serving, and stops
them all on SIGINT or SIGTERM (each finishes its requests in flight). A worker that cannot start
(a bad model, a port in use) stops the whole service with exit code 2.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import sys
import threading
import time
from multiprocessing.process import BaseProcess
from typing import Any

logger = logging.getLogger(__name__)

#: uvicorn's exit code for a server that did not start.
STARTUP_FAILURE = 3
#: a worker that dies sooner than this after its start is not restarted (it would only die again).
MIN_UPTIME_S = 60.0


def listening_socket(host: str, port: int, backlog: int = 2048, *, reuse_port: bool = True) -> socket.socket:
    """A TCP socket bound to ``(host, port)`` and listening.

    Args:
        host: address to bind.
        port: port.
        backlog: listen queue length.
        reuse_port: set ``SO_REUSEPORT`` so that each worker can bind its own socket to the port.

    Returns:
        The socket (protocol ``IPPROTO_TCP``, so asyncio also sets ``TCP_NODELAY`` on its connections).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock


def check_port_free(host: str, port: int) -> None:
    """Fail now if something already listens on the port.

    A probe without ``SO_REUSEPORT``: with it, a second service on the same port (a forgotten
    earlier run) would be joined silently instead of refused.

    Raises:
        OSError: the port is taken.
    """
    listening_socket(host, port, reuse_port=False).close()


def _worker(config_kwargs: dict[str, Any]) -> None:
    """Run one uvicorn server on its own ``SO_REUSEPORT`` socket (in a spawned process)."""
    import uvicorn

    config = uvicorn.Config(**config_kwargs)
    sock = listening_socket(config.host, config.port, config.backlog)
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def serve_workers(config_kwargs: dict[str, Any], workers: int) -> int:
    """Run ``workers`` uvicorn servers on one port until SIGINT or SIGTERM.

    Args:
        config_kwargs: keyword arguments of ``uvicorn.Config`` (an import string for the app, so
            that each worker builds its own).
        workers: number of worker processes (at least 1).

    Returns:
        0 after a clean stop; 2 when a worker could not start.
    """
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    host, port = str(config_kwargs.get("host", "127.0.0.1")), int(config_kwargs.get("port", 8000))
    try:
        check_port_free(host, port)
    except OSError as exc:
        sys.stderr.write(f"codesuggest: error: cannot listen on {host}:{port}: {exc.strerror or exc}\n")
        return 2
    context = multiprocessing.get_context("spawn")
    stop = threading.Event()
    received: list[int] = []

    def on_signal(number: int, _frame: Any) -> None:
        received.append(number)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start() -> tuple[BaseProcess, float]:
        process = context.Process(target=_worker, args=(config_kwargs,), name="codesuggest-worker")
        process.start()
        logger.info("started worker process %d", process.pid)
        return process, time.monotonic()

    running = [start() for _ in range(workers)]
    logger.info("serving on http://%s:%d with %d worker processes (SO_REUSEPORT)", host, port, workers)
    status = 0
    try:
        while not stop.wait(0.5):
            for index, (process, started) in enumerate(running):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE or time.monotonic() - started < MIN_UPTIME_S:
                    sys.stderr.write(
                        f"codesuggest: error: worker process {process.pid} stopped (exit code {process.exitcode}) "
                        "before or soon after it started serving; see the log above\n"
                    )
                    status = 2
                    stop.set()
                    break
                logger.error("worker process %d exited with %s; starting another", process.pid, process.exitcode)
                running[index] = start()
    finally:
        for process, _ in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests in flight
        deadline = time.monotonic() + float(config_kwargs.get("timeout_graceful_shutdown") or 30) + 10
        for process, _ in running:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        logger.info("stopped by signal %d", received[0])
    return status
