"""`nst api` refuses to start on settings that would turn auth off (issue 11 #4)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from tests.support.stack import ROOT


def start_api(host: str, **env: str) -> subprocess.CompletedProcess:
    """Run `nst api` briefly; a refused configuration exits at once."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NST_")}
    return subprocess.run([sys.executable, "-m", "cli.main", "api", "--host", host, "--port", "9"],
                          env={**clean, **env}, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("keys", [",", " , ", "k1:alice,k1:bob", "k1:"])
def test_malformed_keys_stop_the_api_with_a_message(keys: str) -> None:
    out = start_api("127.0.0.2", NST_API_KEYS=keys)
    assert out.returncode == 2 and "NST_API_KEYS item" in out.stderr, out.stderr


@pytest.mark.timeout(60)
def test_no_keys_without_open_mode_and_open_mode_off_loopback_are_refused() -> None:
    out = start_api("127.0.0.2")
    assert out.returncode == 2 and "NST_OPEN_MODE" in out.stderr, out.stderr
    out = start_api("0.0.0.0", NST_OPEN_MODE="true")
    assert out.returncode == 2 and "loopback only" in out.stderr, out.stderr


@pytest.mark.timeout(120)
def test_a_worker_that_does_not_see_the_apis_store_refuses_to_start(stack_factory,
                                                                     tmp_path) -> None:
    """Issue 11 #5: a worker started with another NST_DATA_DIR would fail every job it took."""
    stack = stack_factory("store-marker").start_api()  # the API writes the store marker
    stack.env["NST_DATA_DIR"] = str(tmp_path / "elsewhere")
    stray = stack.spawn("worker", "--concurrency", "1")
    assert stray.wait(90) == 2
    assert stack.events("worker", "refusing to start: ", exact=False)
    assert "NST_DATA_DIR" in stack.log_lines("worker", "refusing to start")[0]


@pytest.mark.timeout(90)
def test_a_connection_that_never_sends_a_byte_is_closed(stack_factory) -> None:
    """Issue 11 #7: uvicorn alone held such sockets forever; now the keep-alive timeout applies."""
    stack = stack_factory("idle", NST_KEEP_ALIVE_SECONDS="1").start_api()
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as idle:
        start = time.monotonic()
        assert idle.recv(1) == b""  # closed by the server, nothing sent
        assert time.monotonic() - start < 4
    with socket.create_connection((host, int(port)), timeout=10) as busy:  # a request still works
        busy.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert busy.recv(64).startswith(b"HTTP/1.1 200")
