"""A daemon with ``[tenants.*]`` (issue 18), driven by the Python client and ADBC.

No token or a wrong one: AuthenticationError on gRPC, Flight DoGet and DoPut, sync and
async. A read tenant queries but cannot write (PermissionDeniedError, also on DoPut and
a read-write transaction). A tenant sees only its own pools: another's is NOT_FOUND,
like a pool that does not exist. Quotas (concurrent calls, calls per second, result
rows) raise QuotaExceededError naming the quota and its limit. Health answers without
credentials. ADBC Flight SQL connects with username/password (basic auth in the Flight
handshake) or an authorization header, and fails without. The examples read the token
from DBPOOL_TOKEN. Under mutual TLS a client certificate's subject names its tenant.
Every tenant's token is new for each run (``secrets.token_hex``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import adbc_driver_flightsql
import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import grpc
import pyarrow as pa
import pytest
from conftest import _free_port, adbc_select, own_daemon, unique, wait_until
from pki import Pair, Pki

from db_pool_rs import (
    AuthenticationError,
    DatabasePool,
    DbPoolError,
    PermissionDeniedError,
    PoolNotFoundError,
    QuotaExceededError,
    SyncDatabasePool,
)

TENANTS = {
    "writer": '{ a = "write", default = "write" }',
    "reader": '{ a = "read" }',
    "other": '{ b = "write" }',
    "limited": '{ a = "read" }',
    "paced": '{ a = "read" }',
    "capped": '{ a = "read" }',
}
QUOTAS = {
    "limited": "max_concurrent_calls = 1",
    "paced": "calls_per_second = 1\nburst = 1",
    "capped": "max_result_rows = 5",
}
POOL_OPTION = adbc_driver_flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value + "x-dbpool-pool"
AUTH_HEADER_OPTION = "adbc.flight.sql.authorization_header"
UNAUTHENTICATED = adbc_driver_manager.AdbcStatusCode.UNAUTHENTICATED
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
#: A result far larger than the HTTP/2 windows: its DoGet stays running until read.
ENDLESS = (
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 5000000) "
    "SELECT i, printf('%0200d', i) AS pad FROM r"
)


def sha256(token: str) -> str:
    """The ``token_sha256`` entry of ``token``."""
    return hashlib.sha256(token.encode()).hexdigest()


def tenants_config(tokens: dict[str, str]) -> str:
    """Three SQLite pools, a, b and default, and one tenant per entry of TENANTS."""
    out = "".join(f'[pools.{p}]\nurl = "sqlite://{p}.db"\n\n' for p in ("a", "b", "default"))
    for name, pools in TENANTS.items():
        out += f'[tenants.{name}]\ntoken_sha256 = ["{sha256(tokens[name])}"]\npools = {pools}\n\n'
        if name in QUOTAS:
            out += f"[tenants.{name}.quotas]\n{QUOTAS[name]}\n\n"
    return out


@dataclass
class AuthDaemon:
    """The daemon of this module, its tenants' tokens and its working directory."""

    endpoint: str
    tokens: dict[str, str]
    workdir: Path

    def client(self, tenant: Optional[str] = None, **kwargs) -> SyncDatabasePool:
        """A client as ``tenant`` (None: no token at all)."""
        return SyncDatabasePool(
            self.endpoint, token=self.tokens[tenant] if tenant else "", timeout=30, **kwargs
        )


@pytest.fixture(scope="module")
def auth(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthDaemon]:
    workdir = tmp_path_factory.mktemp("dbpool-auth")
    tokens = {name: secrets.token_hex(32) for name in TENANTS}
    port = _free_port()
    endpoint = f"grpc://127.0.0.1:{port}"
    config = tenants_config(tokens)
    with own_daemon(workdir, [f"127.0.0.1:{port}"], endpoint, config, token=tokens["writer"]):
        yield AuthDaemon(endpoint, tokens, workdir)


@pytest.fixture(autouse=True)
def _no_token_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBPOOL_TOKEN", raising=False)


def _refusals(db: SyncDatabasePool) -> dict[str, pytest.ExceptionInfo]:
    """The error of each kind of call: gRPC, Flight DoGet, DoPut, a transaction."""
    calls = {
        "list_pools": db.list_pools,
        "execute": lambda: db.execute("a", "SELECT 1"),
        "query": lambda: db.query("a", "SELECT 1 AS v"),
        "query_batches": lambda: list(db.query_batches("a", "SELECT 1 AS v")),
        "bulk_insert": lambda: db.bulk_insert("a", unique("t"), pa.table({"v": [1]}), mode="create"),
        "transaction": lambda: db.transaction("a", read_only=True),
    }
    out = {}
    for name, call in calls.items():
        with pytest.raises(DbPoolError) as info:
            call()
        out[name] = info
    return out


def test_no_token_is_unauthenticated_everywhere(auth: AuthDaemon) -> None:
    with auth.client() as anonymous:
        for name, info in _refusals(anonymous).items():
            assert type(info.value) is AuthenticationError, (name, info.value)
            assert info.value.code is grpc.StatusCode.UNAUTHENTICATED, name


def test_a_wrong_token_is_unauthenticated_everywhere(auth: AuthDaemon) -> None:
    with SyncDatabasePool(auth.endpoint, token=secrets.token_hex(32), timeout=30) as stranger:
        for name, info in _refusals(stranger).items():
            assert type(info.value) is AuthenticationError, (name, info.value)
    # A token of a tenant with a letter changed.
    almost = auth.tokens["writer"][:-1] + ("0" if auth.tokens["writer"][-1] != "0" else "1")
    with SyncDatabasePool(auth.endpoint, token=almost, timeout=30) as db:
        with pytest.raises(AuthenticationError):
            db.query("a", "SELECT 1 AS v")


async def test_async_client_with_and_without_token(auth: AuthDaemon) -> None:
    async with DatabasePool(auth.endpoint, token=auth.tokens["reader"], timeout=30) as db:
        assert (await db.query("a", "SELECT 6 * 7 AS v"))["v"].to_list() == [42]
        with pytest.raises(PermissionDeniedError):
            await db.execute("a", "CREATE TABLE nope (v INTEGER)")
        with pytest.raises(PermissionDeniedError):
            await db.bulk_insert("a", "nope", pa.table({"v": [1]}), mode="create")
    async with DatabasePool(auth.endpoint, token="", timeout=30) as db:
        with pytest.raises(AuthenticationError):
            await db.query("a", "SELECT 1 AS v")
        with pytest.raises(AuthenticationError):
            await db.list_pools()


def test_the_token_may_come_from_dbpool_token(auth: AuthDaemon, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBPOOL_TOKEN", auth.tokens["reader"])
    with SyncDatabasePool(auth.endpoint, timeout=30) as db:
        assert db.query("a", "SELECT 1 AS v")["v"].to_list() == [1]
    with SyncDatabasePool(auth.endpoint, token="", timeout=30) as db, pytest.raises(AuthenticationError):
        db.query("a", "SELECT 1 AS v")


def test_a_writer_writes(auth: AuthDaemon) -> None:
    table = unique("w")
    with auth.client("writer") as db:
        db.execute("a", f"CREATE TABLE {table} (v INTEGER)")
        assert db.bulk_insert("a", table, pa.table({"v": [1, 2, 3]})) == 3
        assert db.execute_batch("a", [f"INSERT INTO {table} VALUES (4)"]) == [1]
        with db.transaction("a") as tx:
            tx.execute(f"DELETE FROM {table} WHERE v = 1")
        assert db.query("a", f"SELECT v FROM {table} ORDER BY v")["v"].to_list() == [2, 3, 4]


def test_a_reader_reads_but_cannot_write(auth: AuthDaemon) -> None:
    table = unique("r")
    with auth.client("writer") as writer:
        writer.execute("a", f"CREATE TABLE {table} (v INTEGER)")
        writer.execute("a", f"INSERT INTO {table} VALUES (7)")
    denied = "tenant `reader` may only read pool `a`"
    with auth.client("reader") as db:
        assert db.query("a", f"SELECT v FROM {table}")["v"].to_list() == [7]
        assert [b.num_rows for b in db.query_batches("a", f"SELECT v FROM {table}")] == [1]
        with db.transaction("a", read_only=True) as tx:
            assert tx.query(f"SELECT v FROM {table}")["v"].to_list() == [7]
        for call in (
            lambda: db.execute("a", f"INSERT INTO {table} VALUES (8)"),
            lambda: db.execute_batch("a", [f"INSERT INTO {table} VALUES (8)"]),
            lambda: db.bulk_insert("a", table, pa.table({"v": [8]})),
            lambda: db.transaction("a"),
        ):
            with pytest.raises(PermissionDeniedError) as info:
                call()
            assert info.value.code is grpc.StatusCode.PERMISSION_DENIED
            assert denied in info.value.message, info.value.message
        assert db.query("a", f"SELECT count(*) AS n FROM {table}")["n"].to_list() == [1]


def test_a_tenant_sees_only_its_pools(auth: AuthDaemon) -> None:
    with auth.client("writer") as writer:
        assert sorted(p.pool_id for p in writer.list_pools()) == ["a", "default"]
    with auth.client("other") as db:
        assert [p.pool_id for p in db.list_pools()] == ["b"]
        assert [m.pool_id for m in db.metrics().pools] == ["b"]
        assert db.query("b", "SELECT 1 AS v")["v"].to_list() == [1]
        for pool in ("a", unique("nosuch")):  # another's pool, and one that does not exist
            for call in (
                lambda p=pool: db.query(p, "SELECT 1"),
                lambda p=pool: db.execute(p, "SELECT 1"),
                lambda p=pool: db.pool_status(p),
                lambda p=pool: db.bulk_insert(p, "t", pa.table({"v": [1]})),
            ):
                with pytest.raises(PoolNotFoundError) as info:
                    call()
                assert info.value.message == f"pool `{pool}` not found", info.value.message


def test_max_concurrent_calls(auth: AuthDaemon) -> None:
    with auth.client("limited") as db:
        running = db.query_batches("a", ENDLESS, batch_size=1000)
        try:
            assert next(iter(running)).num_rows == 1000
            for call in (lambda: db.query("a", "SELECT 1 AS v"), lambda: db.pool_status("a")):
                with pytest.raises(QuotaExceededError) as info:
                    call()
                assert (info.value.quota, info.value.limit) == ("max_concurrent_calls", 1)
                assert info.value.code is grpc.StatusCode.RESOURCE_EXHAUSTED
                assert "tenant `limited` reached its quota max_concurrent_calls (1)" in info.value.message
        finally:
            running.close()

        def answers() -> bool:
            try:
                return db.query("a", "SELECT 1 AS v")["v"].to_list() == [1]
            except QuotaExceededError:
                return False

        wait_until(answers, "the slot of the cancelled query to be free again")


def test_calls_per_second(auth: AuthDaemon) -> None:
    """A bucket of one call refilled once a second: of a few calls in a row, one is
    refused, on gRPC and on Flight alike."""
    with auth.client("paced") as db:
        for call in (lambda: db.pool_status("a"), lambda: db.query("a", "SELECT 1 AS v")):
            refused = []
            for _ in range(5):
                try:
                    call()
                except QuotaExceededError as e:
                    refused.append(e)
                    break
            assert refused, "five calls in a row were all let through"
            assert (refused[0].quota, refused[0].limit) == ("calls_per_second", 1)


def test_max_result_rows(auth: AuthDaemon) -> None:
    rows = "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < {}) SELECT i FROM r"
    with auth.client("capped") as db:
        assert db.query("a", rows.format(3))["i"].to_list() == [1, 2, 3]
        with pytest.raises(QuotaExceededError) as info:
            db.query("a", rows.format(100), batch_size=2)
        assert (info.value.quota, info.value.limit) == ("max_result_rows", 5)


def test_health_answers_without_credentials(auth: AuthDaemon) -> None:
    target = auth.endpoint.removeprefix("grpc://")
    with grpc.insecure_channel(target) as channel:
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        serving = b"\x08\x01"  # HealthCheckResponse{status: SERVING}
        wait_until(lambda: check(b"", timeout=10) == serving, "the daemon to report SERVING")
        pool_a = b"\x0a" + bytes([len("dbpool.pool.a")]) + b"dbpool.pool.a"
        assert check(pool_a, timeout=10) == serving
        with pytest.raises(grpc.RpcError) as info:
            channel.unary_unary("/dbpool.v1.PoolService/ListPools")(b"", timeout=10)
        assert info.value.code() is grpc.StatusCode.UNAUTHENTICATED


#: Tenants whose ``tenant:token`` is 70, 71 and 72 bytes: base64 with two, one and no
#: padding characters (the ADBC Go driver sends it unpadded).
BASIC_TENANTS = {"other": "b", "writer": "a", "limited": "a"}


@pytest.mark.parametrize("tenant", sorted(BASIC_TENANTS))
def test_adbc_flight_sql_username_and_password(auth: AuthDaemon, tenant: str) -> None:
    """username/password: basic auth in the Flight handshake, traded for a bearer token."""
    creds = {"username": tenant, "password": auth.tokens[tenant], POOL_OPTION: BASIC_TENANTS[tenant]}
    assert adbc_select(auth.endpoint, "SELECT 40 + 2 AS v", autocommit=True, **creds) == [42]


def test_adbc_flight_sql_authorization_header_and_refusals(auth: AuthDaemon) -> None:
    uri, pool = auth.endpoint, {POOL_OPTION: "a"}
    writer = auth.tokens["writer"]
    # The default DB-API connection (autocommit off) begins a transaction: a writer's.
    assert adbc_select(uri, "SELECT 43 AS v", **{AUTH_HEADER_OPTION: f"Bearer {writer}"}, **pool) == [43]
    wrong_password = {"username": "limited", "password": secrets.token_hex(32)}
    for creds in ({}, wrong_password, {AUTH_HEADER_OPTION: "Bearer nope"}):
        with pytest.raises(adbc_driver_manager.Error) as info:
            adbc_select(uri, "SELECT 1 AS v", autocommit=True, **creds, **pool)
        assert info.value.status_code == UNAUTHENTICATED, (sorted(creds), info.value)


def _example(name: str, endpoint: str, token: Optional[str]) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DBPOOL_TOKEN"}
    env["DBPOOL_ENDPOINT"] = endpoint
    if token is not None:
        env["DBPOOL_TOKEN"] = token
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_examples_take_the_token_from_dbpool_token(auth: AuthDaemon) -> None:
    for name in ("basic_usage.py", "writes_usage.py"):
        ran = _example(name, auth.endpoint, auth.tokens["writer"])
        assert ran.returncode == 0, ran.stderr
        refused = _example(name, auth.endpoint, None)
        assert refused.returncode != 0 and "AuthenticationError" in refused.stderr, refused.stderr
    assert "grace" in _example("basic_usage.py", auth.endpoint, auth.tokens["writer"]).stdout


def test_client_certificate_subjects_are_principals(tmp_path: Path) -> None:
    """mTLS with tenants: a certificate whose subject a tenant lists is that tenant on
    gRPC and Flight without a token; a wrong bearer is refused even beside it; an
    unknown subject needs a token."""
    pki = Pki.create(tmp_path / "pki")
    server = pki.issue("dbpool-server", 1)
    orders, stranger = pki.issue("orders", 10, client=True), pki.issue("stranger", 11, client=True)
    token = secrets.token_hex(32)
    config = (
        f'[server.tls]\ncert_file = "{server.cert}"\nkey_file = "{server.key}"\n'
        f'client_ca_file = "{pki.ca.cert}"\n\n[pools.a]\nurl = "sqlite://a.db"\n\n'
        '[tenants.orders]\nsubjects = ["CN=orders,O=dbpool tests"]\npools = { a = "write" }\n\n'
        f'[tenants.tokened]\ntoken_sha256 = ["{sha256(token)}"]\npools = {{ a = "read" }}\n'
    )

    def tls(pair: Pair, bearer: str = "") -> dict:
        return {
            "tls_root_certs": pki.ca.cert,
            "tls_cert_chain": pair.cert,
            "tls_private_key": pair.key,
            "token": bearer,
        }

    port = _free_port()
    endpoint = f"grpcs://127.0.0.1:{port}"
    with own_daemon(tmp_path, [f"127.0.0.1:{port}"], endpoint, config, **tls(orders)):
        with SyncDatabasePool(endpoint, timeout=30, **tls(orders)) as db:
            assert [p.pool_id for p in db.list_pools()] == ["a"]
            db.execute("a", "CREATE TABLE certified (v INTEGER)")
            assert db.bulk_insert("a", "certified", pa.table({"v": [5]})) == 1
            assert db.query("a", "SELECT v FROM certified")["v"].to_list() == [5]
        with SyncDatabasePool(endpoint, timeout=30, **tls(orders, secrets.token_hex(32))) as db:
            with pytest.raises(AuthenticationError):
                db.list_pools()
            with pytest.raises(AuthenticationError):
                db.query("a", "SELECT 1 AS v")
        with SyncDatabasePool(endpoint, timeout=30, **tls(stranger)) as db:
            with pytest.raises(AuthenticationError):
                db.query("a", "SELECT 1 AS v")
        with SyncDatabasePool(endpoint, timeout=30, **tls(stranger, token)) as db:
            assert db.query("a", "SELECT v FROM certified")["v"].to_list() == [5]
            with pytest.raises(PermissionDeniedError):
                db.execute("a", "DELETE FROM certified")
