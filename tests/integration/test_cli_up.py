"""`nst up` with no Redis configured (embedded redis-server) and `nst submit --wait`, as `make demo`
runs them; then SIGTERM stops the whole tree."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
from PIL import Image

from cli.stack import free_port
from tests.support.stack import CONTENT, ROOT, STYLE, TINY


def test_up_submit_wait_and_stop(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NST_")}
    env.update(PYTHONPATH=str(ROOT), NST_DATA_DIR=str(tmp_path / "data"), NST_DEVICE="cpu")
    (tmp_path / "content.png").write_bytes(CONTENT)
    (tmp_path / "style.png").write_bytes(STYLE)
    port = free_port()
    log = (tmp_path / "up.log").open("w+")
    up = subprocess.Popen([sys.executable, "-m", "cli.main", "up", "--port", str(port)], env=env,
                          cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while "nst is up" not in (tmp_path / "up.log").read_text():
            assert up.poll() is None and time.monotonic() < deadline, (
                tmp_path / "up.log").read_text()[-3000:]
            time.sleep(0.2)
        children = psutil.Process(up.pid).children(recursive=True)
        assert any("redis-server" in " ".join(c.cmdline()) for c in children)

        submit = subprocess.run(
            [sys.executable, "-m", "cli.main", "submit", "content.png", "style.png", "--server",
             f"http://127.0.0.1:{port}", "--params", json.dumps(TINY), "--wait", "-o",
             "out/demo.png"],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=180)
        assert submit.returncode == 0, submit.stderr[-3000:]
        assert "100%" in submit.stderr  # the progress bar reached the end
        assert Image.open(tmp_path / "out" / "demo.png").size == (64, 43)
    finally:
        up.send_signal(signal.SIGTERM)
        code = up.wait(60)
    assert code == 0
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
