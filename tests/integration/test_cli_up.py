"""`nst up` with no Redis configured (embedded redis-server) and `nst submit --wait`, as `make demo`
runs them; then SIGTERM stops the whole tree. And `nst up` on Redis Sentinels."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil
from PIL import Image

from cli.redis_servers import SentinelGroup
from cli.stack import free_port
from tests.support.stack import CONTENT, ROOT, STYLE, TINY


@contextmanager
def nst_up(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[int, list[psutil.Process]]]:
    """`nst up` on a free port until it says it is up; yields the port and its process tree,
    then SIGTERMs it and checks that the whole tree is gone."""
    port = free_port()
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--port", str(port)], env=env,
                          cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 90
        while "nst is up" not in (tmp_path / "up.log").read_text():
            assert up.poll() is None and time.monotonic() < deadline, (
                tmp_path / "up.log").read_text()[-3000:]
            time.sleep(0.2)
        children = psutil.Process(up.pid).children(recursive=True)
        yield port, children
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
    assert code == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NST_")}
    env.update(PYTHONPATH=str(ROOT), NST_DATA_DIR=str(tmp_path / "data"), NST_DEVICE="cpu")
    return env


def _redis_children(children: list[psutil.Process]) -> list[psutil.Process]:
    return [c for c in children if "redis-server" in " ".join(c.cmdline())]


def test_up_submit_wait_and_stop(tmp_path: Path) -> None:
    env = _env(tmp_path)
    (tmp_path / "content.png").write_bytes(CONTENT)
    (tmp_path / "style.png").write_bytes(STYLE)
    with nst_up(tmp_path, env) as (port, children):
        assert _redis_children(children)
        submit = subprocess.run(
            [sys.executable, "-m", "cli.main", "submit", "content.png", "style.png", "--server",
             f"http://127.0.0.1:{port}", "--params", json.dumps(TINY), "--wait", "-o",
             "out/demo.png"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert submit.returncode == 0, submit.stderr[-3000:]
        assert "100%" in submit.stderr  # the progress bar reached the end
        assert Image.open(tmp_path / "out" / "demo.png").size == (64, 43)


def test_up_on_sentinels_starts_no_redis_of_its_own(tmp_path: Path) -> None:
    """It used to start one and set NST_REDIS_URL beside NST_REDIS_SENTINELS, which every child
    refuses."""
    group = SentinelGroup(tmp_path / "redis").start()
    try:
        with nst_up(tmp_path, {**_env(tmp_path), **group.env()}) as (port, children):
            assert not _redis_children(children)
            assert httpx.get(f"http://127.0.0.1:{port}/readyz").status_code == 200
    finally:
        group.stop()
