"""The job commands of `nst` (submit, status, result, cancel, list) against the main stack: real
processes and HTTP, piped and under a pseudo-terminal (pexpect)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pexpect
import pytest
from PIL import Image

from api.schemas import JobView
from cli.stack import free_port
from client import NstClient
from tests.support.stack import CONTENT, ROOT, STYLE, TINY, Stack, long_params

KEY = "key-dave"  # a tenant of its own: the other suites' unfinished jobs do not count here


@pytest.fixture
def env(stack: Stack, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment: the server and key from NST_SERVER / NST_API_KEY, images in cwd."""
    (tmp_path / "content.png").write_bytes(CONTENT)
    (tmp_path / "style.png").write_bytes(STYLE)
    base = {k: v for k, v in os.environ.items() if not k.startswith("NST_")}
    return {**base, "PYTHONPATH": str(ROOT), "NST_SERVER": stack.url, "NST_API_KEY": KEY}


def nst(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `nst ARGS` to the end, piped."""
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def assert_one_line_error(run: subprocess.CompletedProcess[str], *needles: str) -> None:
    """Failed with exactly one stderr line holding every needle, and no traceback."""
    assert run.returncode != 0
    assert "Traceback" not in run.stderr and len(run.stderr.strip().splitlines()) == 1, run.stderr
    for needle in needles:
        assert needle in run.stderr, run.stderr


def wait_status(client: NstClient, job_id: str, *statuses: str, timeout: float = 60) -> JobView:
    """Poll until the job is in one of `statuses`."""
    deadline = time.monotonic() + timeout
    while (view := client.get(job_id)).status not in statuses:
        assert time.monotonic() < deadline, view
        time.sleep(0.1)
    return view


@pytest.mark.timeout(180)
def test_submit_wait_then_status_result_list_cancel(env: dict[str, str], tmp_path: Path) -> None:
    run = nst(env, tmp_path, "submit", "content.png", "style.png", "--params", json.dumps(TINY),
              "--wait", "-o", "out/a.png")
    assert run.returncode == 0, run.stderr[-2000:]
    job_id = run.stdout.splitlines()[0]
    assert len(job_id) >= 16 and " " not in job_id  # the id alone, first
    assert Image.open(tmp_path / "out" / "a.png").size == (64, 43)
    assert "done" in run.stderr and "100%" in run.stderr and ", " not in run.stderr.split("100%")[-1]

    status = nst(env, tmp_path, "status", job_id)
    assert status.returncode == 0 and "succeeded" in status.stdout and job_id in status.stdout
    view = json.loads(nst(env, tmp_path, "status", job_id, "--json").stdout)
    assert view["id"] == job_id and view["status"] == "succeeded"

    result = nst(env, tmp_path, "result", job_id, "-o", "b.jpg")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "b.jpg").format == "JPEG"

    listed = nst(env, tmp_path, "list", "--status", "succeeded", "--limit", "1")
    assert listed.returncode == 0 and listed.stdout.split()[0] == job_id  # newest first
    assert nst(env, tmp_path, "cancel", job_id).stdout.split() == [job_id, "succeeded"]


@pytest.mark.timeout(120)
def test_result_before_success_is_409_and_cancel_ends_it(env: dict[str, str], tmp_path: Path,
                                                         stack: Stack) -> None:
    run = nst(env, tmp_path, "submit", "content.png", "style.png", "--params",
              json.dumps(long_params()))
    job_id = run.stdout.strip()
    assert_one_line_error(nst(env, tmp_path, "result", job_id), "409 job_not_succeeded")
    assert nst(env, tmp_path, "cancel", job_id).returncode == 0
    with stack.client(KEY) as client:
        wait_status(client, job_id, "canceled")
    assert "canceled" in nst(env, tmp_path, "list", "--limit", "5").stdout


@pytest.mark.timeout(60)
def test_connection_refused_and_4xx_are_one_line(env: dict[str, str], tmp_path: Path) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    assert_one_line_error(nst(env, tmp_path, "status", "abc", "--server", nowhere),
                          "cannot reach", nowhere)
    assert_one_line_error(nst(env, tmp_path, "status", "no-such-job"), "404 job_not_found")
    assert_one_line_error(nst(env, tmp_path, "list", "--key", "wrong"), "401")
    assert_one_line_error(nst(env, tmp_path, "submit", "missing.png", "style.png"), "missing.png")


@pytest.mark.timeout(180)
def test_ctrl_c_on_a_terminal_offers_to_cancel(env: dict[str, str], tmp_path: Path,
                                               stack: Stack) -> None:
    child = pexpect.spawn(sys.executable, ["-m", "cli.main", "submit", "content.png", "style.png",
                                           "--params", json.dumps(long_params(2000)), "--wait"],
                          env=env, cwd=str(tmp_path), encoding="utf-8", timeout=90)
    child.expect(r"([0-9a-f-]{16,})\r\n")
    job_id = child.match.group(1)
    child.expect("painting scale 1/1")  # the bar shows the running stage
    child.sendintr()
    child.expect(f"nst status {job_id}")
    child.expect(f"nst cancel {job_id}")
    child.expect(r"Cancel the job\? \[y/N\]")
    child.sendline("y")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, child.before
    assert "Traceback" not in child.before
    with stack.client(KEY) as client:
        wait_status(client, job_id, "canceled")


@pytest.mark.timeout(180)
def test_ctrl_c_piped_prints_the_hint_and_leaves_the_job(env: dict[str, str], tmp_path: Path,
                                                         stack: Stack) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "submit", "content.png", "style.png",
                             "--params", json.dumps(long_params(2000)), "--wait"],
                            env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    job_id = proc.stdout.readline().strip()
    with stack.client(KEY) as client:
        try:
            wait_status(client, job_id, "running", timeout=90)
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=30)
            assert proc.returncode == 130, err
            assert f"nst result {job_id} -o {job_id}.png" in err and "Cancel the job" not in err
            assert "Traceback" not in err
            assert client.get(job_id).status == "running"  # not canceled
        finally:
            client.cancel(job_id)
            wait_status(client, job_id, "canceled")
