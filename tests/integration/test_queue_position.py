"""queue_position on real processes: an API with no worker, so submitted jobs stay queued in order;
the SDK, `nst status` and `nst submit --wait` show where each job is."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stack import CONTENT, ROOT, STYLE, Stack

MINI = {"size": 32, "scales": [32], "iterations": [1], "optimizer": "adam"}


def nst(stack: Stack, key: str, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `nst ARGS` against the stack as `key`'s tenant, piped."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("NST_")},
           "PYTHONPATH": str(ROOT), "NST_SERVER": stack.url, "NST_API_KEY": key}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.timeout(60)
def test_three_queued_jobs_are_1_2_3_and_move_up(idle: Stack) -> None:
    with idle.client("key-alice") as alice, idle.client("key-bob") as bob:
        # Two tenants: the position counts every queued job, whoever submitted it.
        jobs = [alice.submit(CONTENT, STYLE, MINI), bob.submit(CONTENT, STYLE, MINI),
                alice.submit(CONTENT, STYLE, MINI)]
        clients = [alice, bob, alice]
        try:
            assert [j.queue_position for j in jobs] == [1, 2, 3]  # the 202 answers
            assert [c.get(j.id).queue_position for c, j in zip(clients, jobs, strict=True)
                    ] == [1, 2, 3]
            listed = {j.id: j.queue_position for j in alice.list().jobs}
            assert listed == {jobs[0].id: 1, jobs[2].id: 3}

            canceled = alice.cancel(jobs[0].id)
            assert canceled.status == "canceled" and canceled.queue_position is None
            assert [bob.get(jobs[1].id).queue_position, alice.get(jobs[2].id).queue_position
                    ] == [1, 2]
        finally:
            for client, job in zip(clients, jobs, strict=True):
                client.cancel(job.id)
        assert [c.get(j.id).queue_position for c, j in zip(clients, jobs, strict=True)
                ] == [None, None, None]


@pytest.mark.timeout(90)
def test_the_cli_shows_the_queue_position(idle: Stack, tmp_path: Path) -> None:
    (tmp_path / "c.png").write_bytes(CONTENT)
    (tmp_path / "s.png").write_bytes(STYLE)
    params = json.dumps(MINI)
    first = nst(idle, "key-carol", tmp_path, "submit", "c.png", "s.png", "--params", params)
    job_id = first.stdout.strip()
    try:
        status = nst(idle, "key-carol", tmp_path, "status", job_id)
        assert status.returncode == 0 and "position 1 (1: next to run)" in status.stdout, status
        listed = nst(idle, "key-carol", tmp_path, "list")
        assert f"{job_id}  queued     queued (position 1)" in listed.stdout, listed.stdout

        waited = nst(idle, "key-carol", tmp_path, "submit", "c.png", "s.png", "--params", params,
                     "--wait", "--timeout", "1.5")
        second = waited.stdout.splitlines()[0]
        assert waited.returncode == 1 and "queued (position 2)" in waited.stderr, waited.stderr
        assert waited.stderr.strip().splitlines()[-1] == (
            f"nst submit: job {second} is still queued after 1.5 s; it goes on: "
            f"nst status {second}"), waited.stderr
    finally:
        with idle.client("key-carol") as carol:
            for job in carol.list(status="queued").jobs:
                carol.cancel(job.id)
