"""A real receiving HTTP server for the webhook tests, on 127.0.0.1: it checks every delivery's
signature with the ``standardwebhooks`` package (the reference verifier, not our code), answers
500 to the first ``fail_first`` deliveries on purpose, then 200. With ``hang_first``, it reads the
first deliveries and never answers them (``arrived`` is set when the first has come): a sender
caught mid-delivery."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import Webhook


@dataclass
class Receiver:
    url: str
    secret: str = ""  # set once the endpoint is registered
    fail_first: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)  # every request, verified or not
    verified: list[dict[str, Any]] = field(default_factory=list)  # bodies whose signature checked
    raw: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)  # every body and its headers
    hang_first: int = 0
    arrived: threading.Event = field(default_factory=threading.Event)  # a hung delivery has come

    def ids(self) -> list[str]:
        return [s["id"] for s in self.seen]


@contextmanager
def receiver(*, fail_first: int = 0, hang_first: int = 0, path: str = "/hook") -> Iterator[Receiver]:
    """A receiver listening until the block ends."""
    lock = threading.Lock()
    state: dict[str, Receiver] = {}
    closing = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            r = state["r"]
            with lock:
                r.seen.append({"id": self.headers.get("webhook-id"), "path": self.path})
                r.raw.append((body, dict(self.headers.items())))
                hang = len(r.seen) <= r.hang_first
            if hang:
                r.arrived.set()
                closing.wait()  # never answered: the sender is stopped before, or the block ends
                return
            with lock:
                try:
                    r.verified.append(Webhook(r.secret).verify(body, dict(self.headers.items())))
                    ok = True
                except Exception:  # the verifier's own error types: any of them is a bad signature
                    ok = False
                status = 500 if len(r.seen) <= r.fail_first or not ok else 200
            self.send_response(status)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:  # quiet test output
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state["r"] = Receiver(
        url=f"http://127.0.0.1:{server.server_address[1]}{path}", fail_first=fail_first, hang_first=hang_first
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state["r"]
    finally:
        closing.set()
        server.shutdown()
        server.server_close()
        thread.join()


def event(r: Receiver, n: int = -1) -> dict[str, Any]:
    """The n-th verified body."""
    return json.loads(json.dumps(r.verified[n]))
