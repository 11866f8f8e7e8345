"""The partition's forwarder on plain sockets: it forwards, a cut silences it with the connections
left open (new ones held), and a restore delivers what was held, in order."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator

import pytest

from ejsika_runtime.embedded import free_port

from .partition import Blackhole, through


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[Blackhole]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", free_port()), _Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    proxy = Blackhole("127.0.0.1", server.server_address[1]).start()
    try:
        yield proxy
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()


def connect(proxy: Blackhole) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", proxy.listen_port), timeout=5)
    sock.settimeout(5)
    return sock


def received(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def silent(sock: socket.socket, wait_s: float = 1.0) -> bool:
    sock.settimeout(wait_s)
    try:
        return sock.recv(1) == b"x"  # never: b"" is a close, anything else an answer
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5)


def test_a_cut_keeps_connections_open_and_silent_and_a_restore_delivers_what_was_held(proxy):
    before = connect(proxy)
    before.sendall(b"ping")
    assert received(before, 4) == b"ping"

    proxy.cut()
    before.sendall(b"held-1")
    during = connect(proxy)  # accepted, as a silent network would leave a connect pending
    during.sendall(b"held-2")
    assert silent(before) and silent(during)
    assert proxy.open_connections() == 2

    proxy.restore()
    assert received(before, 6) == b"held-1"
    assert received(during, 6) == b"held-2"
    before.sendall(b"after")
    assert received(before, 5) == b"after"
    before.close()
    during.close()


def test_a_connection_one_end_gave_up_on_during_the_cut_is_closed_on_the_other_end_after_it(proxy):
    sock = connect(proxy)
    sock.sendall(b"a")
    assert received(sock, 1) == b"a"
    proxy.cut()
    sock.close()
    proxy.restore()
    for _ in range(50):
        if proxy.open_connections() == 0:
            break
        threading.Event().wait(0.1)
    assert proxy.open_connections() == 0


def test_a_database_url_goes_through_the_proxy_with_its_credentials_and_database():
    proxy = Blackhole("127.0.0.1", 5432, listen_port=40001)
    assert through("postgresql://ejsika_eligibility:p%40ss@127.0.0.1:55432/ejsika?sslmode=disable", proxy) == \
        "postgresql://ejsika_eligibility:p%40ss@127.0.0.1:40001/ejsika?sslmode=disable"
