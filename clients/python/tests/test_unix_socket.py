"""The daemon on a Unix domain socket (``--listen unix:/path``): the sync and async
clients, Arrow Flight, grpcurl ``-unix`` and the ADBC Flight SQL driver over it; the
socket file's mode; a stale socket file replaced, a live one refused; the file removed
at exit."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import adbc_select, dbpool_binary, own_daemon, wait_until

from db_pool_rs import DatabasePool, SyncDatabasePool


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for sockets (a socket path has at most 107 bytes)."""
    d = Path(tempfile.mkdtemp(prefix="dbpool-sock-", dir="/tmp"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def unix_daemon(sockdir: Path) -> Iterator[Path]:
    """A daemon listening only on ``sockdir/d.sock`` with mode 0640."""
    sock = sockdir / "d.sock"
    config = '[server]\nunix_socket_mode = "0640"\n'
    with own_daemon(sockdir, [f"unix:{sock}"], f"unix:{sock}", config):
        yield sock


def test_sync_client_and_flight_over_the_socket(unix_daemon: Path) -> None:
    mode = os.stat(unix_daemon).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o640
    with SyncDatabasePool(f"unix:{unix_daemon}", timeout=30) as db:
        assert db.endpoint == f"unix:{unix_daemon}"
        assert [p.pool_id for p in db.list_pools()] == ["default"]
        # query() reads over Arrow Flight (grpc+unix://), execute() over PoolService.
        assert db.query("default", "SELECT 41 + 1 AS answer")["answer"].to_list() == [42]
        with db.transaction("default") as tx:
            assert tx.query("SELECT 7 AS v")["v"].to_list() == [7]


async def test_async_client_over_the_socket(unix_daemon: Path) -> None:
    async with DatabasePool(f"unix://{unix_daemon}", timeout=30) as adb:
        assert [p.pool_id for p in await adb.list_pools()] == ["default"]
        assert (await adb.query("default", "SELECT 6 * 7 AS v"))["v"].to_list() == [42]


def test_grpcurl_over_the_socket(unix_daemon: Path) -> None:
    out = subprocess.run(
        # -authority: grpcurl would send the socket's path, not a valid HTTP/2 authority.
        [
            "grpcurl", "-plaintext", "-unix", "-authority", "localhost", "-max-time", "20",
            str(unix_daemon), "dbpool.v1.PoolService/ListPools",
        ],  # fmt: skip
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert [p["poolId"] for p in json.loads(out.stdout)["pools"]] == ["default"]


def test_adbc_flight_sql_over_the_socket(unix_daemon: Path) -> None:
    assert adbc_select(f"grpc+unix://{unix_daemon}", "SELECT 40 + 2 AS v") == [42]


def test_stale_socket_replaced_live_one_refused_file_removed(sockdir: Path) -> None:
    sock = sockdir / "d.sock"
    # What a killed daemon leaves: a socket file nobody listens on.
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock))
    stale.close()
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    first = sockdir / "first"
    first.mkdir()
    with own_daemon(first, [f"unix:{sock}"], f"unix:{sock}") as proc:
        # The default mode: owner and group.
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o660
        second = subprocess.run(
            [str(dbpool_binary()), "serve", "--listen", f"unix:{sock}", "--data-dir", str(sockdir / "d2")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert second.returncode != 0
        assert "already listening" in second.stderr and str(sock) in second.stderr, second.stderr
        with SyncDatabasePool(f"unix:{sock}", timeout=30) as db:
            assert db.query("default", "SELECT 1 AS v")["v"].to_list() == [1]
        proc.terminate()
        proc.wait(30)
    wait_until(lambda: not sock.exists(), "the socket file removed at exit")


def test_a_tcp_and_a_socket_listener_serve_the_same_pools(sockdir: Path) -> None:
    sock = sockdir / "d.sock"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with own_daemon(sockdir, [f"127.0.0.1:{port}", f"unix:{sock}"], f"unix:{sock}"):
        with SyncDatabasePool(f"grpc://127.0.0.1:{port}", timeout=30) as tcp:
            tcp.execute("default", "CREATE TABLE both_ways (v INTEGER)")
            tcp.execute("default", "INSERT INTO both_ways VALUES (5)")
        with SyncDatabasePool(f"unix:{sock}", timeout=30) as unix:
            assert unix.query("default", "SELECT v FROM both_ways")["v"].to_list() == [5]
