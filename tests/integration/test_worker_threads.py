"""`celery -A worker.celery_app worker -c N` sizes torch threads per pool process (issue 11 #8)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cli.stack import wait_until


@pytest.mark.timeout(180)
def test_the_celery_command_shares_the_cores_between_pool_processes(stack_factory) -> None:
    stack = stack_factory("celery-c2").start_api()
    log = stack.tmp / "worker-celery.log"
    stack.logs.append(log)
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "worker.celery_app", "worker", "-c", "2",
         "-Q", stack.env["NST_QUEUE"], "--without-gossip", "--without-mingle"],
        env={**stack.env, "NST_TORCH_THREADS": "0"}, cwd=stack.tmp, stdout=log.open("wb"),
        stderr=subprocess.STDOUT, start_new_session=True)
    stack.adopt(proc)
    wait_until(lambda: len(stack.events("worker", "engine loaded")) == 2, 150, proc)
    expected = max(1, (os.cpu_count() or 1) // 2)
    assert {(e["pool_size"], e["torch_threads"]) for e in stack.events("worker", "engine loaded")} \
        == {(2, expected)}
