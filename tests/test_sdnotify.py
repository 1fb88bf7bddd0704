"""callcenter.sdnotify: what systemd receives on its notify socket, over a real socket."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from callcenter import sdnotify


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(10)
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    with sock:
        yield sock


def test_nothing_is_sent_without_systemd(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert sdnotify.notify("READY=1") is False
    notifier = sdnotify.notify_when_ready(lambda: (True, "ready"), interval=0.01)
    assert not notifier.ready.wait(0.2)  # no thread was started
    notifier.stop()


def test_an_abstract_socket_name_is_used_as_systemd_gives_it() -> None:
    name = f"siaga112-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(10)
        assert sdnotify.notify("READY=1", "STATUS=ok", environ={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"READY=1\nSTATUS=ok"


def test_status_follows_the_check_and_ready_is_sent_once(notify_socket: socket.socket) -> None:
    answers = iter([(False, "ami: cannot reach Asterisk"), (True, "ready"), (True, "ready")])
    last = (True, "ready")
    notifier = sdnotify.notify_when_ready(lambda: next(answers, last), interval=0.01)
    assert notify_socket.recv(4096) == b"STATUS=ami: cannot reach Asterisk"
    assert notify_socket.recv(4096) == b"READY=1\nSTATUS=ready"
    assert notifier.ready.wait(5)
    notifier.stop()
    assert notify_socket.recv(4096) == b"STOPPING=1"  # nothing else in between


class _NotReady(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"ready": False, "checks": {"database": "ok", "ami": "connecting"}})
        self.send_response(503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *_args: object) -> None:
        pass


def test_readyz_check_reads_why_not_from_a_503() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotReady)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/readyz"
        assert sdnotify.readyz_check(url)() == (False, "ami: connecting")
    finally:
        server.shutdown()
        server.server_close()
    assert sdnotify.readyz_check(url, timeout=1)()[0] is False  # nothing listens any more
