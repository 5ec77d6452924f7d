"""Fails when the checked-in stubs in src/db_pool_rs/_proto drift from ../../proto.

Regenerates them into a temporary directory with scripts/gen_stubs.py and compares the
bytes; fix a failure with ``uv run python scripts/gen_stubs.py``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

CLIENT_ROOT = Path(__file__).resolve().parent.parent
CHECKED_IN = CLIENT_ROOT / "src" / "db_pool_rs" / "_proto"


def _load_generator():
    spec = importlib.util.spec_from_file_location("gen_stubs", CLIENT_ROOT / "scripts" / "gen_stubs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checked_in_stubs_match_the_protos(tmp_path: Path) -> None:
    """Every generated file exists in the package with identical bytes, and no extra ones."""
    fresh = _load_generator().generate(tmp_path)
    fresh_names = sorted(p.name for p in fresh)
    checked_in = sorted(p.name for p in CHECKED_IN.iterdir() if p.is_file())
    assert checked_in == fresh_names
    for path in fresh:
        assert (CHECKED_IN / path.name).read_bytes() == path.read_bytes(), (
            f"{path.name} is stale: run `uv run python scripts/gen_stubs.py`"
        )


def test_generated_modules_import_each_other_inside_the_package() -> None:
    """The rewrite leaves no absolute `dbpool.v1` import behind."""
    for path in CHECKED_IN.glob("*.py*"):
        assert "from dbpool.v1 import" not in path.read_text(encoding="utf-8"), path.name
    from db_pool_rs._proto import flight_pb2, pool_pb2, pool_pb2_grpc

    ticket = flight_pb2.QueryTicket(pool_id="p", params=[pool_pb2.Param(int64=7)])
    assert flight_pb2.QueryTicket.FromString(ticket.SerializeToString()).params[0].int64 == 7
    assert hasattr(pool_pb2_grpc, "PoolServiceStub")
