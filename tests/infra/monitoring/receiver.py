"""A real HTTP server on loopback that records what alerting sends it (Slack webhooks and the
PagerDuty Events API v2)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    path: str
    body: dict[str, Any]


@dataclass
class Receiver:
    base_url: str
    received: list[Received] = field(default_factory=list)
    failures_left: int = 0
    """Answer this many requests with 503 first (a receiver having a bad moment)."""
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[dict[str, Any]]:
        with self.lock:
            return [item.body for item in self.received if item.path == path]

    def wait_for(
        self, path: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20.0
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for body in self.at(path):
                if predicate(body):
                    return body
            time.sleep(0.05)
        raise AssertionError(f"nothing matching arrived at {path}; got {self.at(path)!r}")


@contextmanager
def http_receiver() -> Iterator[Receiver]:
    receiver: Receiver

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = json.loads(self.rfile.read(length) or b"{}")
            with receiver.lock:
                receiver.attempts += 1
                failing = receiver.failures_left > 0
                if failing:
                    receiver.failures_left -= 1
                else:
                    receiver.received.append(Received(self.path, body))
            if failing:
                self.send_response(503)
                self.send_header("content-length", "0")
                self.end_headers()
                return
            reply = b'{"status":"success","message":"Event processed"}'
            self.send_response(202)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver = Receiver(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
