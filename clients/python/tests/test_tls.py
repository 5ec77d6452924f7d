"""TLS on the daemon's port (``[server.tls]``): the sync and async clients, Arrow
Flight, grpcurl and the ADBC Flight SQL driver with the test's CA; mutual TLS with a
client certificate, and without one refused; plaintext to the TLS port refused with a
clear error while the daemon stays up; a rotated certificate served to new connections
without a restart while an open connection (its transaction) keeps working."""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import adbc_driver_flightsql
import pytest
from conftest import adbc_select, own_daemon, wait_until
from pki import Pair, Pki, install

from db_pool_rs import DatabasePool, DbPoolError, SyncDatabasePool

OPT = adbc_driver_flightsql.DatabaseOptions


@dataclass
class TlsDaemon:
    port: int
    pki: Pki
    served: Pair
    client: Pair
    log: Path

    @property
    def endpoint(self) -> str:
        return f"grpcs://127.0.0.1:{self.port}"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(tmp_path: Path, mutual: bool) -> Iterator[TlsDaemon]:
    pki = Pki.create(tmp_path / "pki")
    server = pki.issue("dbpool-server-1", 1)
    client = pki.issue("orders-app", 10, client=True)
    served = Pair(tmp_path / "tls.crt", tmp_path / "tls.key")
    install(server, served)
    config = f'[server.tls]\ncert_file = "{served.cert}"\nkey_file = "{served.key}"\n'
    probe = {"tls_root_certs": pki.ca.cert}
    if mutual:
        config += f'client_ca_file = "{pki.ca.cert}"\n'
        probe |= {"tls_cert_chain": client.cert, "tls_private_key": client.key}
    port = _port()
    with own_daemon(tmp_path, [f"127.0.0.1:{port}"], f"grpcs://127.0.0.1:{port}", config, **probe):
        yield TlsDaemon(port, pki, served, client, tmp_path / "dbpool.log")


@pytest.fixture
def tls_daemon(tmp_path: Path) -> Iterator[TlsDaemon]:
    yield from _start(tmp_path, mutual=False)


@pytest.fixture
def mtls_daemon(tmp_path: Path) -> Iterator[TlsDaemon]:
    yield from _start(tmp_path, mutual=True)


def _grpcurl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["grpcurl", "-max-time", "20", *args], capture_output=True, text=True, check=False)


def _server_cn(port: int, ca: Path) -> str:
    """The CN of the certificate a new TLS connection is served."""
    ctx = ssl.create_default_context(cafile=str(ca))
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            cert = s.getpeercert()
    return next(v for rdn in cert["subject"] for k, v in rdn if k == "commonName")


def test_server_tls_sync_async_flight(tls_daemon: TlsDaemon) -> None:
    ca = tls_daemon.pki.ca.cert
    with SyncDatabasePool(tls_daemon.endpoint, tls_root_certs=ca, timeout=30) as db:
        assert db.endpoint == tls_daemon.endpoint
        assert [p.pool_id for p in db.list_pools()] == ["default"]
        # query(): pyarrow Flight over grpc+tls://.
        assert db.query("default", "SELECT 41 + 1 AS v")["v"].to_list() == [42]
    # Without the CA the daemon's certificate is not trusted.
    with SyncDatabasePool(tls_daemon.endpoint, timeout=10) as untrusting:
        with pytest.raises(DbPoolError):
            untrusting.list_pools()


async def test_server_tls_async(tls_daemon: TlsDaemon) -> None:
    pem = tls_daemon.pki.ca.cert.read_bytes()
    async with DatabasePool(tls_daemon.endpoint, tls_root_certs=pem, timeout=30) as adb:
        assert (await adb.query("default", "SELECT 6 * 7 AS v"))["v"].to_list() == [42]


def test_server_tls_grpcurl_and_adbc(tls_daemon: TlsDaemon) -> None:
    ca = tls_daemon.pki.ca.cert
    out = _grpcurl("-cacert", str(ca), f"127.0.0.1:{tls_daemon.port}", "dbpool.v1.PoolService/ListPools")
    assert out.returncode == 0, out.stderr
    assert [p["poolId"] for p in json.loads(out.stdout)["pools"]] == ["default"]
    uri = f"grpc+tls://127.0.0.1:{tls_daemon.port}"
    assert adbc_select(uri, "SELECT 40 + 2 AS v", **{OPT.TLS_ROOT_CERTS.value: ca.read_text()}) == [42]


def test_plaintext_to_the_tls_port_fails_clearly(tls_daemon: TlsDaemon) -> None:
    out = _grpcurl("-plaintext", f"127.0.0.1:{tls_daemon.port}", "dbpool.v1.PoolService/ListPools")
    assert out.returncode != 0
    assert "requires TLS" in out.stderr, out.stderr
    with SyncDatabasePool(f"grpc://127.0.0.1:{tls_daemon.port}", timeout=10) as plain:
        with pytest.raises(DbPoolError) as e:
            plain.list_pools()
    assert e.value.code.name == "UNAVAILABLE" and "requires TLS" in str(e.value), e.value
    # The daemon is still up for TLS clients.
    with SyncDatabasePool(tls_daemon.endpoint, tls_root_certs=tls_daemon.pki.ca.cert, timeout=30) as db:
        assert [p.pool_id for p in db.list_pools()] == ["default"]


def test_mutual_tls(mtls_daemon: TlsDaemon) -> None:
    ca, client = mtls_daemon.pki.ca.cert, mtls_daemon.client
    with SyncDatabasePool(
        mtls_daemon.endpoint, tls_root_certs=ca, tls_cert_chain=client.cert, tls_private_key=client.key, timeout=30
    ) as db:
        assert db.query("default", "SELECT 1 AS v")["v"].to_list() == [1]
    # No client certificate: refused in the handshake.
    with SyncDatabasePool(mtls_daemon.endpoint, tls_root_certs=ca, timeout=10) as anonymous:
        with pytest.raises(DbPoolError) as e:
            anonymous.list_pools()
        assert e.value.code.name == "UNAVAILABLE"
    target = f"127.0.0.1:{mtls_daemon.port}"
    out = _grpcurl("-cacert", str(ca), target, "dbpool.v1.PoolService/ListPools")
    assert out.returncode != 0, out.stdout
    out = _grpcurl("-cacert", str(ca), "-cert", str(client.cert), "-key", str(client.key), target, "list")
    assert out.returncode == 0 and "dbpool.v1.PoolService" in out.stdout, out.stderr
    mtls = {
        OPT.TLS_ROOT_CERTS.value: ca.read_text(),
        OPT.MTLS_CERT_CHAIN.value: client.cert.read_text(),
        OPT.MTLS_PRIVATE_KEY.value: client.key.read_text(),
    }
    assert adbc_select(f"grpc+tls://{target}", "SELECT 2 AS v", **mtls) == [2]


def test_a_rotated_certificate_is_served_without_a_restart(tls_daemon: TlsDaemon) -> None:
    ca = tls_daemon.pki.ca.cert
    assert _server_cn(tls_daemon.port, ca) == "dbpool-server-1"
    with SyncDatabasePool(tls_daemon.endpoint, tls_root_certs=ca, timeout=30) as db:
        db.execute("default", "CREATE TABLE rotation (v INTEGER)")
        # A transaction belongs to the connection that began it: it still answering
        # after the rotation shows that connection was not dropped.
        with db.transaction("default") as tx:
            tx.execute("INSERT INTO rotation VALUES (1)")
            install(tls_daemon.pki.issue("dbpool-server-2", 2), tls_daemon.served)
            wait_until(lambda: _server_cn(tls_daemon.port, ca) == "dbpool-server-2", "the new certificate served")
            assert tx.query("SELECT v FROM rotation")["v"].to_list() == [1]
        assert db.query("default", "SELECT count(*) AS n FROM rotation")["n"].to_list() == [1]
    # A bad file keeps the current certificate (once the daemon has looked at it).
    tls_daemon.served.cert.write_text("not a certificate")
    wait_until(lambda: "new TLS files refused" in tls_daemon.log.read_text(), "the bad file refused")
    with SyncDatabasePool(tls_daemon.endpoint, tls_root_certs=ca, timeout=30) as fresh:
        assert [p.pool_id for p in fresh.list_pools()] == ["default"]
    assert _server_cn(tls_daemon.port, ca) == "dbpool-server-2"
