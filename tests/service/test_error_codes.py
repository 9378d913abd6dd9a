"""docs/API.md's error tables list exactly the ErrorCode and JobErrorCode members, each once."""

from __future__ import annotations

import re
from pathlib import Path

from service.error_codes import ErrorCode, JobErrorCode

DOCS = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def documented_codes() -> list[str]:
    """The codes of the Errors section's table: backticked words outside parentheses."""
    section = DOCS.read_text().split("\n## Errors\n", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d{3}) \| (.+) \|$", section, re.MULTILINE)
    assert rows, "no error table under ## Errors"
    return [code for _, cell in rows for code in re.findall(r"`(\w+)`", re.sub(r"\([^)]*\)", "", cell))]


def test_docs_error_table_lists_exactly_the_enum() -> None:
    codes = documented_codes()
    assert len(codes) == len(set(codes)), "a code is listed twice"
    assert set(codes) == {code.value for code in ErrorCode}


def test_docs_job_error_table_lists_exactly_the_job_error_codes() -> None:
    table = DOCS.read_text().split("| job error code |", 1)[1].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| .+ \|$", table, re.MULTILINE)
    assert sorted(rows) == sorted(code.value for code in JobErrorCode)
