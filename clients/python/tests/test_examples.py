"""The examples run against the test daemon and print real frames."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name: str, endpoint: str, **env_vars: str) -> str:
    env = {**os.environ, "DBPOOL_ENDPOINT": endpoint, **env_vars}
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.mark.parametrize("run", [1, 2])  # twice: the examples are idempotent
def test_basic_usage(daemon: str, run: int) -> None:
    out = _run("basic_usage.py", daemon)
    assert "shape: (3, 4)" in out and "grace" in out
    assert "rows affected per statement: [1, 1, 2]" in out
    assert "QueryError" in out


def test_async_usage(daemon: str) -> None:
    out = _run("async_usage.py", daemon)
    assert "shape: (3, 3)" in out and "│ 1000   │" in out
    assert "batch of 250 rows (total 1000)" in out


def test_multi_db_usage(daemon: str, pg_database: str) -> None:
    out = _run("multi_db_usage.py", daemon, DBPOOL_PG_URL=pg_database)
    assert "shape: (3, 4)" in out and "62.49" in out
    assert "example_pg: postgresql" in out


@pytest.mark.parametrize("run", [1, 2])  # twice: "replace" makes it idempotent
def test_writes_usage(daemon: str, run: int) -> None:
    out = _run("writes_usage.py", daemon)
    assert "bulk_insert: 4 rows" in out and "appended: 1 row" in out
    assert "total stock inside the transaction: 28" in out
    assert "rolled back: the DELETE never happened" in out
    assert "shape: (5, 4)" in out and "│ 4   ┆ fig   ┆ 3   ┆ 2.0   │" in out
