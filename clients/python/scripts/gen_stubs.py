"""Regenerates the checked-in gRPC/protobuf stubs of db_pool_rs from ../../proto.

Run from anywhere with ``uv run python scripts/gen_stubs.py``. The stubs land in
``src/db_pool_rs/_proto/`` (or the directory given as the first argument, which is how
``tests/test_stubs_fresh.py`` checks them for drift). protoc names the imports after the
proto path (``from dbpool.v1 import pool_pb2``); they are rewritten to relative imports
so the generated modules find each other inside the package. Never edit the output by
hand: change the .proto files and run this script again.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

HERE = Path(__file__).resolve().parent
CLIENT_ROOT = HERE.parent
PROTO_ROOT = (CLIENT_ROOT / ".." / ".." / "proto").resolve()
DEFAULT_OUT = CLIENT_ROOT / "src" / "db_pool_rs" / "_proto"
PROTO_FILES = ("dbpool/v1/pool.proto", "dbpool/v1/flight.proto")
# Only pool.proto declares a service; flight.proto holds messages only.
SERVICE_FILES = ("dbpool/v1/pool.proto",)

_IMPORT_RE = re.compile(r"^from dbpool\.v1 import ", re.MULTILINE)
_INIT = '"""Generated protobuf and gRPC modules of dbpool.v1 (see scripts/gen_stubs.py)."""\n'


def _protoc(args: list[str]) -> None:
    """Runs the bundled protoc with the well-known types on the include path."""
    well_known = Path(protoc.__file__).resolve().parent / "_proto"
    argv = ["grpc_tools.protoc", f"-I{PROTO_ROOT}", f"-I{well_known}", *args]
    if protoc.main(argv) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(argv)}")


def generate(out_dir: Path) -> list[Path]:
    """Writes the stubs into ``out_dir`` (flat, one module per proto) and returns their paths."""
    out_dir = Path(out_dir)
    with tempfile.TemporaryDirectory() as tmp:
        _protoc([f"--python_out={tmp}", f"--pyi_out={tmp}", *PROTO_FILES])
        _protoc([f"--grpc_python_out={tmp}", *SERVICE_FILES])
        generated = sorted((Path(tmp) / "dbpool" / "v1").glob("*.py*"))
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for src in generated:
            text = _IMPORT_RE.sub("from . import ", src.read_text(encoding="utf-8"))
            dst = out_dir / src.name
            dst.write_text(text, encoding="utf-8")
            written.append(dst)
    init = out_dir / "__init__.py"
    init.write_text(_INIT, encoding="utf-8")
    written.append(init)
    return sorted(written)


def main(argv: list[str]) -> int:
    """Entry point: ``gen_stubs.py [OUT_DIR]``."""
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    if out == DEFAULT_OUT and out.exists():
        shutil.rmtree(out)
    for path in generate(out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
