"""Fixtures: the real dbpool daemon on a free port, clients, and throwaway databases.

The daemon binary comes from ``$DBPOOL_BIN`` (default ``../../target/debug/dbpool``
relative to clients/python; build it with ``cargo build -p dbpool``). A missing binary
fails every test that needs it: nothing is skipped. PostgreSQL comes from
``$DBPOOL_PG_URL`` (default ``postgres://postgres@127.0.0.1:5432/postgres``); each test
that needs it gets its own database, dropped afterwards, so runs can overlap and repeat.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, Optional
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from stand_in import recorder, stand_in  # noqa: F401  (the stand-in server fixtures)

from db_pool_rs import DatabasePool, DbPoolError, SyncDatabasePool

CLIENT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BIN = CLIENT_ROOT / ".." / ".." / "target" / "debug" / "dbpool"
PG_URL = os.environ.get("DBPOOL_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
STARTUP_SECONDS = 60


WAIT_SECONDS = 30.0
"""How long a test waits for an event before it fails (only a failing test waits it out)."""
POLL_SECONDS = 0.02


def poll_until(cond: Callable[[], bool], timeout: float = WAIT_SECONDS) -> bool:
    """Asks ``cond`` until it holds; False when ``timeout`` seconds pass first. For a
    condition no event announces (a pool's status, a session in pg_stat_activity)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_SECONDS)  # the poll interval, not a synchronisation
    return True


def wait_until(cond: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    """``poll_until`` that fails the test naming ``what``."""
    if not poll_until(cond, timeout):
        pytest.fail(f"gave up after {timeout}s waiting for: {what}")


async def async_wait_until(
    cond: Callable[[], Awaitable[bool]], what: str, timeout: float = WAIT_SECONDS
) -> None:
    """``wait_until`` for a condition that must be awaited."""
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() >= deadline:
            pytest.fail(f"gave up after {timeout}s waiting for: {what}")
        await asyncio.sleep(POLL_SECONDS)  # the poll interval, not a synchronisation


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, endpoint: str, log: Path, **client: Any) -> None:
    last: list[Exception] = []
    with SyncDatabasePool(endpoint, timeout=2, **client) as db:

        def answers() -> bool:
            if proc.poll() is not None:
                pytest.fail(f"dbpool exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
            try:
                db.list_pools()
                return True
            except DbPoolError as e:
                last[:] = [e]
                return False

        if poll_until(answers, STARTUP_SECONDS):
            return
    proc.kill()
    why = last[-1] if last else None
    pytest.fail(f"dbpool not ready after {STARTUP_SECONDS}s ({why}):\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Starts the real daemon on a free port; yields its ``grpc://`` endpoint."""
    binary = Path(os.environ.get("DBPOOL_BIN", DEFAULT_BIN)).resolve()
    if not binary.is_file():
        pytest.fail(
            f"dbpool binary not found at {binary}: run `cargo build -p dbpool` in the "
            "repository root or set DBPOOL_BIN",
            pytrace=False,
        )
    workdir = tmp_path_factory.mktemp("dbpool")
    port = _free_port()
    endpoint = f"grpc://127.0.0.1:{port}"
    log = workdir / "dbpool.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [str(binary), "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(workdir / "data")],
            cwd=workdir,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(proc, endpoint, log)
        yield endpoint
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Terminates a daemon, killing it if it has not exited within 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def adbc_select(uri: str, sql: str, *, autocommit: bool = False, **db_kwargs: str) -> list:
    """Column ``v`` of ``sql`` run through the ADBC Flight SQL driver at ``uri``
    (``autocommit``: no transaction around it, which a read-only tenant needs)."""
    from adbc_driver_flightsql import dbapi as flight_sql

    conn = flight_sql.connect(uri, db_kwargs=db_kwargs or None, autocommit=autocommit)
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table().column("v").to_pylist()
    finally:
        conn.close()


def dbpool_binary() -> Path:
    """The daemon binary under test; fails the test when it is missing."""
    binary = Path(os.environ.get("DBPOOL_BIN", DEFAULT_BIN)).resolve()
    if not binary.is_file():
        pytest.fail(f"dbpool binary not found at {binary}: run `cargo build -p dbpool`", pytrace=False)
    return binary


@contextmanager
def own_daemon(
    workdir: Path, listen: list[str], endpoint: str, config: Optional[str] = None, **client: Any
) -> Iterator[subprocess.Popen]:
    """A daemon of the test's own (``--listen`` each of ``listen``, ``config`` as its
    TOML), ready once ``endpoint`` answers (``client``: TLS options of the probe);
    terminated at the end."""
    args = [str(dbpool_binary()), "serve", "--data-dir", str(workdir / "data")]
    for addr in listen:
        args += ["--listen", addr]
    if config is not None:
        (workdir / "dbpool.toml").write_text(config)
        args += ["--config", str(workdir / "dbpool.toml")]
    log = workdir / "dbpool.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
    try:
        _wait_ready(proc, endpoint, log, **client)
        yield proc
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def db(daemon: str) -> Iterator[SyncDatabasePool]:
    """One blocking client for the whole session (it is thread-safe)."""
    with SyncDatabasePool(daemon, timeout=60) as client:
        yield client


@pytest.fixture
async def adb(daemon: str):
    """An asyncio client bound to the test's event loop."""
    async with DatabasePool(daemon, timeout=60) as client:
        yield client


def unique(prefix: str) -> str:
    """A name no other test (or run) uses."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sqlite_pool(db: SyncDatabasePool, tmp_path: Path) -> Iterator[str]:
    """A fresh SQLite pool on its own file; yields the pool id. The path is relative: a
    pool created at run time opens files only in the daemon's data directory."""
    pool_id = unique("lite")
    db.create_pool(pool_id, f"sqlite://{tmp_path.name}/test.db")
    yield pool_id
    db.remove_pool(pool_id)


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def pg_admin(db: SyncDatabasePool) -> Iterator[str]:
    """A pool on PostgreSQL's maintenance database (to create and drop databases)."""
    pool_id = unique("pgadmin")
    db.create_pool(pool_id, PG_URL, max_connections=2)
    yield pool_id
    db.remove_pool(pool_id)


@pytest.fixture
def pg_database(db: SyncDatabasePool, pg_admin: str) -> Iterator[str]:
    """A brand-new PostgreSQL database; yields its URL and drops it afterwards."""
    name = unique("t")
    db.execute(pg_admin, f'CREATE DATABASE "{name}"')
    try:
        yield _with_database(PG_URL, name)
    finally:
        db.execute(pg_admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg_pool(db: SyncDatabasePool, pg_database: str) -> Iterator[str]:
    """A pool on a brand-new PostgreSQL database; yields the pool id."""
    pool_id = unique("pg")
    db.create_pool(pool_id, pg_database, max_connections=4)
    try:
        yield pool_id
    finally:
        db.remove_pool(pool_id)
