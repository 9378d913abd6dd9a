"""The chaos soak (bench/chaos.py), short: a minute of random faults (workers and pool processes
SIGKILLed, a worker frozen past its lease, Redis SIGKILLed and restarted on its AOF, the API
restarted) under client load, then every invariant."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.stack import ROOT

pytestmark = pytest.mark.fault


@pytest.mark.timeout(330)
def test_a_minute_of_chaos_breaks_no_invariant() -> None:
    run = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "chaos.py"), "--minutes", "1", "--interval", "4", "8",
         "--drain-seconds", "120"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    report = run.stdout + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert "| invariant | result |" in run.stdout and "VIOLATED" not in run.stdout, report
    print(run.stdout)
