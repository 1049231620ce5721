"""A TCP proxy that can make the server behind it look restarted (the database, in the chaos run).

The whole-system fault run must not restart the shared TimescaleDB server (other work uses it),
so the system reaches PostgreSQL through this proxy instead. ``outage(seconds)`` does to the
application what a server restart does: every open connection is reset (RST, not a polite FIN,
and the server side closed too, so PostgreSQL rolls back and releases the session's advisory
locks), and new connections are refused (nothing listens on the port) for that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any


@dataclass
class ProxyCounts:
    connections: int = 0
    outages: int = 0
    connections_reset: int = 0


class TcpProxy:
    """Forwards ``127.0.0.1:port`` to ``upstream``, on an event loop in a daemon thread."""

    def __init__(self, upstream_host: str, upstream_port: int, port: int = 0) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = port
        self.counts = ProxyCounts()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._pairs: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._closed_until = 0.0
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="tcp-proxy", daemon=True
        )

    # ----- control (any thread) ------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def outage(self, seconds: float) -> int:
        """Reset every connection and refuse new ones for ``seconds``; returns how many it reset."""
        return self._call(self._outage(seconds))

    @property
    def listening(self) -> bool:
        return self._server is not None

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self._call(self._close_all(listen_again=False))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def _call(self, coroutine: Coroutine[Any, Any, int]) -> int:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=30)

    # ----- the loop ------------------------------------------------------------------------------

    async def _listen(self) -> int:
        if self._server is not None or self._loop.time() + 0.05 < self._closed_until:
            return self.port
        self._server = await asyncio.start_server(
            self._connection, "127.0.0.1", self.port, reuse_address=True, backlog=256
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def _outage(self, seconds: float) -> int:
        self._closed_until = max(self._closed_until, self._loop.time() + seconds)
        reset = await self._close_all(listen_again=False)
        self.counts.outages += 1
        self.counts.connections_reset += reset
        self._loop.call_at(self._closed_until, lambda: asyncio.ensure_future(self._listen()))
        return reset

    async def _close_all(self, *, listen_again: bool) -> int:
        if self._server is not None:
            self._server.close()
            self._server = None
        pairs = list(self._pairs)
        self._pairs.clear()
        for client, server in pairs:
            for writer in (client, server):
                _reset(writer)
        if listen_again:
            await self._listen()
        return len(pairs)

    async def _connection(
        self, client_in: asyncio.StreamReader, client: asyncio.StreamWriter
    ) -> None:
        try:
            server_in, server = await asyncio.open_connection(*self.upstream)
        except OSError:
            _reset(client)
            return
        self.counts.connections += 1
        pair = (client, server)
        self._pairs.add(pair)
        try:
            await asyncio.gather(_pipe(client_in, server), _pipe(server_in, client))
        finally:
            self._pairs.discard(pair)
            for writer in pair:
                with contextlib.suppress(Exception):
                    writer.close()


async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            sink.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with an RST: SO_LINGER with a zero timeout, then an abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
