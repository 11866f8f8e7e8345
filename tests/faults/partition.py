"""A network partition between one service and its PostgreSQL or Kafka: a TCP forwarder that can stop
forwarding while keeping every connection open, and forward again later.

Cut, it reads nothing from either end of any connection (the bytes stay where they are) and opens
nothing upstream for a connection that arrives: to the service, its peer has gone silent without a
word, a half-open connection, which is what the runtime's command timeouts and the server's
idle-in-transaction timeout are for (issue 11, finding 6). Restored, it forwards again, as TCP
delivers what it held after a partition shorter than its retransmission limit; a connection an end
gave up on during the cut is closed on the other end too once the forwarder sees it.

What it cannot show: the proxy's own kernel acknowledges the bytes and keepalives it receives, so
the TCP keepalives and user timeout of the service's sockets do not fire through it; a partition
below the TCP layer (network namespaces, iptables, `tc netem`) is not available on this machine.

Hand-written: no tool on this machine's package lists does a black-hole toggle. Toxiproxy (its
"timeout" toxic with timeout=0 is this) is not in the Go module list here, only its Python client,
which needs the server; `asynctcpproxy` on PyPI forwards but cannot stop forwarding.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from urllib.parse import urlsplit, urlunsplit

from ejsika_runtime.embedded import free_port


class _End(asyncio.Protocol):
    """One end of a forwarded connection: what it receives is written to its peer's end."""

    def __init__(self, pair: _Pair) -> None:
        self.pair = pair
        self.transport: asyncio.Transport | None = None
        self.peer: _End | None = None
        self.peer_full = False  # the peer's write buffer is full: stop reading here until it drains

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pair.flow()  # nothing is read before both ends exist (and the proxy forwards)

    def data_received(self, data: bytes) -> None:
        assert self.peer is not None and self.peer.transport is not None  # reading starts once both ends exist
        self.peer.transport.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pair.close()

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.peer_full = True
            self.pair.flow()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.peer_full = False
            self.pair.flow()


class _Pair:
    """A client's connection and the one opened for it upstream."""

    def __init__(self, proxy: Blackhole) -> None:
        self.proxy = proxy
        self.client = _End(self)
        self.upstream: _End | None = None
        self.closed = False
        self._reading: dict[int, bool] = {}

    def flow(self) -> None:
        """Read from an end only while forwarding, both ends are open and the other end can take it."""
        ends = [e for e in (self.client, self.upstream) if e is not None and e.transport is not None]
        for end in ends:
            wanted = (not self.proxy.is_cut and not self.closed and self.upstream is not None
                      and self.upstream.transport is not None and not end.peer_full)
            if self._reading.get(id(end), True) != wanted and not end.transport.is_closing():
                end.transport.resume_reading() if wanted else end.transport.pause_reading()
            self._reading[id(end)] = wanted

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, upstream = await loop.create_connection(lambda: _End(self), self.proxy.host, self.proxy.port)
        except OSError:
            self.close()
            return
        if self.closed:
            upstream.transport.close()
            return
        self.upstream, upstream.peer, self.client.peer = upstream, self.client, upstream
        self.flow()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.proxy.pairs.discard(self)
        for end in (self.client, self.upstream):
            if end is not None and end.transport is not None:
                end.transport.close()


class Blackhole:
    """Forwards 127.0.0.1:`listen_port` to `host`:`port`; `cut()` silences it, `restore()` forwards again.

    It runs on its own thread and event loop, so a test's blocking steps do not stall it.
    """

    def __init__(self, host: str, port: int, listen_port: int | None = None) -> None:
        self.host, self.port = host, port
        self.listen_port = listen_port or free_port()
        self.is_cut = False
        self.pairs: set[_Pair] = set()
        self.accepted = 0  # connections accepted, in all
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"blackhole-{self.listen_port}",
                                        daemon=True)
        self._server: asyncio.base_events.Server | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.listen_port}"

    def start(self) -> Blackhole:
        self._thread.start()
        self._server = self._call(lambda: self._loop.create_server(self._accept, "127.0.0.1", self.listen_port))
        return self

    def cut(self) -> None:
        """Stop forwarding: every connection stays open and silent, new ones are accepted and held."""
        self._call_soon(lambda: self._set(True))

    def restore(self) -> None:
        """Forward again, what was held first; held connections are opened upstream now."""
        self._call_soon(lambda: self._set(False))

    def open_connections(self) -> int:
        return self._call_soon(lambda: len(self.pairs))

    def stop(self) -> None:
        if not self._thread.is_alive():
            return

        async def close() -> None:
            if self._server is not None:
                self._server.close()
            for pair in list(self.pairs):
                pair.close()

        self._call(close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _accept(self) -> _End:
        pair = _Pair(self)
        self.pairs.add(pair)
        self.accepted += 1
        self._loop.call_soon(self._begin, pair)
        return pair.client

    def _begin(self, pair: _Pair) -> None:
        if not self.is_cut:
            self._loop.create_task(pair.connect())

    def _set(self, cut: bool) -> None:
        self.is_cut = cut
        for pair in list(self.pairs):
            if not cut and pair.upstream is None:
                self._loop.create_task(pair.connect())  # arrived during the cut
            pair.flow()

    def _call(self, make: Callable):  # type: ignore[no-untyped-def]
        """Run the coroutine `make()` on the proxy's loop and wait for its result."""
        async def run():  # type: ignore[no-untyped-def]
            return await make()
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)

    def _call_soon(self, action: Callable):  # type: ignore[no-untyped-def]
        """Run `action()` on the proxy's loop and wait for it (so that a cut is in force on return)."""
        async def run():  # type: ignore[no-untyped-def]
            return action()
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(30)


def through(database_url: str, proxy: Blackhole) -> str:
    """`database_url` with its host and port replaced by the proxy's."""
    parts = urlsplit(database_url)
    credentials = parts.netloc.rpartition("@")[0]
    return urlunsplit(parts._replace(netloc=f"{credentials}@{proxy.address}" if credentials else proxy.address))


def host_and_port(database_url: str) -> tuple[str, int]:
    parts = urlsplit(database_url)
    return parts.hostname or "127.0.0.1", parts.port or 5432
