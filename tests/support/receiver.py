"""A real webhook receiver on loopback for the process suites: records every request and answers
as scripted (a status, or hanging), verifying nothing itself: tests verify with the library."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    """One request as it arrived."""

    headers: dict[str, str]
    body: str
    answered: int | None  # the status sent back; None while hanging

    @property
    def payload(self) -> dict[str, Any]:
        """The JSON body."""
        return json.loads(self.body)


@dataclass
class Receiver:
    """Answers the n-th request with `script[n]` (an HTTP status, or `hang` seconds as a float),
    then 200 for every request past the script."""

    script: list[int | float] = field(default_factory=list)
    got: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    def start(self) -> Receiver:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                seen = Received({k.lower(): v for k, v in self.headers.items()}, body, None)
                n = len(outer.got)
                outer.got.append(seen)
                answer = outer.script[n] if n < len(outer.script) else 200
                if isinstance(answer, float):  # hang: the sender gives up or dies meanwhile
                    time.sleep(answer)
                    answer = 200
                seen.answered = answer
                self.send_response(answer)
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    @property
    def url(self) -> str:
        """Where to send webhooks."""
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, condition, timeout: float = 60) -> list[Received]:
        """Wait until `condition(self.got)` holds; returns what was received."""
        deadline = time.monotonic() + timeout
        while not condition(self.got):
            if time.monotonic() > deadline:
                raise AssertionError(f"receiver: condition not met; got {len(self.got)} requests")
            time.sleep(0.05)
        return self.got

    def stop(self) -> None:
        """Stop serving."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
