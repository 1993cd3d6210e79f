"""A real webhook receiver for the notification tests: an http.server on 127.0.0.1 that keeps what
it was sent and refuses the first ``fail`` requests with a 500."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.conftest import http_server


@dataclass
class Hook:
    """What the receiver got, and how many requests it still refuses."""

    url: str = ""
    fail: int = 0
    received: list[dict[str, Any]] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def messages(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.received)


@contextmanager
def webhook(fail: int = 0) -> Iterator[Hook]:
    hook = Hook(fail=fail)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with hook.lock:
                refuse = hook.fail > 0
                if refuse:
                    hook.fail -= 1
                    hook.refused += 1
                else:
                    hook.received.append({"path": self.path, "headers": dict(self.headers),
                                          "body": json.loads(body or b"{}")})
            self.send_response(500 if refuse else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    with http_server(Handler) as base:
        hook.url = base
        yield hook
