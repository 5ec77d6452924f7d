"""Unit tests of endpoint parsing (no daemon needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from db_pool_rs import InvalidArgumentError, SyncDatabasePool
from db_pool_rs._endpoint import parse_endpoint


def test_default_and_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DBPOOL_ENDPOINT", raising=False)
    ep = parse_endpoint()
    assert (ep.grpc_target, ep.flight_location) == ("127.0.0.1:50051", "grpc+tcp://127.0.0.1:50051")
    monkeypatch.setenv("DBPOOL_ENDPOINT", "grpc://10.1.2.3:7000")
    assert parse_endpoint().grpc_target == "10.1.2.3:7000"
    assert parse_endpoint("grpc://localhost:9").grpc_target == "localhost:9"


def test_forms() -> None:
    assert parse_endpoint("localhost:1234").flight_location == "grpc+tcp://localhost:1234"
    assert parse_endpoint("grpc+tcp://h:1").grpc_target == "h:1"
    tls = parse_endpoint("grpcs://db.example:443")
    assert tls.tls and tls.flight_location == "grpc+tls://db.example:443"
    v6 = parse_endpoint("grpc://[::1]:50051")
    assert (v6.grpc_target, v6.flight_location) == ("[::1]:50051", "grpc+tcp://[::1]:50051")


@pytest.mark.parametrize("bad", ["ftp://h:1", "grpc://h", "grpc://h:notaport", "grpc://:5"])
def test_bad_endpoints(bad: str) -> None:
    with pytest.raises(InvalidArgumentError):
        parse_endpoint(bad)


def test_unix_socket_forms() -> None:
    for form in ("unix:/run/dbpool/d.sock", "unix:///run/dbpool/d.sock", "grpc+unix:///run/dbpool/d.sock"):
        ep = parse_endpoint(form)
        assert (ep.grpc_target, ep.flight_location, ep.url) == (
            "unix:/run/dbpool/d.sock",
            "grpc+unix:///run/dbpool/d.sock",
            "unix:/run/dbpool/d.sock",
        ), form
    rel = parse_endpoint("unix:d.sock")
    assert rel.unix_path is not None and rel.unix_path.startswith("/") and rel.unix_path.endswith("/d.sock")
    with pytest.raises(InvalidArgumentError, match="unix:/path"):
        parse_endpoint("unix:")


def test_unix_endpoints_send_a_valid_authority() -> None:
    assert parse_endpoint("unix:/x.sock").channel_options == [("grpc.default_authority", "localhost")]
    assert parse_endpoint("grpc://h:1").channel_options == []


def test_tls_options_are_checked_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="TLS options need a TLS endpoint"):
        SyncDatabasePool("grpc://127.0.0.1:1", tls_root_certs=b"pem")
    with pytest.raises(InvalidArgumentError, match="go together"):
        SyncDatabasePool("grpcs://127.0.0.1:1", tls_cert_chain=b"pem")
    with pytest.raises(InvalidArgumentError, match="cannot read"):
        SyncDatabasePool("grpcs://127.0.0.1:1", tls_root_certs=tmp_path / "missing.pem")
