"""Test certificates made with the ``openssl`` command: a CA, server certificates for
127.0.0.1 and localhost, client certificates; EC P-256 keys, PEM files."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


def _openssl(*args: str) -> None:
    out = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)}: {out.stderr}")


@dataclass(frozen=True)
class Pair:
    """A certificate and its key."""

    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    """A CA in ``dir`` that signs leaf certificates."""

    dir: Path
    ca: Pair

    @staticmethod
    def create(dir: Path, name: str = "dbpool test CA") -> Pki:
        dir.mkdir(parents=True, exist_ok=True)
        ca = Pair(dir / f"{name.replace(' ', '_')}.pem", dir / f"{name.replace(' ', '_')}.key")
        _openssl(
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(ca.key), "-out", str(ca.cert), "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        )  # fmt: skip
        return Pki(dir, ca)

    def issue(self, cn: str, serial: int, client: bool = False) -> Pair:
        """A leaf certificate for ``cn``: a server's (SAN 127.0.0.1, localhost) or a
        client's (``client``)."""
        pair = Pair(self.dir / f"{cn}.pem", self.dir / f"{cn}.key")
        csr, ext = self.dir / f"{cn}.csr", self.dir / f"{cn}.ext"
        usage = "clientAuth" if client else "serverAuth"
        ext.write_text(
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage={usage}\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
        )
        _openssl(
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(pair.key), "-out", str(csr), "-subj", f"/O=dbpool tests/CN={cn}",
        )  # fmt: skip
        _openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca.cert), "-CAkey", str(self.ca.key),
            "-set_serial", str(serial), "-days", "2", "-out", str(pair.cert), "-extfile", str(ext),
        )  # fmt: skip
        return pair


def install(src: Pair, dst: Pair) -> None:
    """Puts ``src`` where ``dst`` is, each file replaced at once (as a rotation does)."""
    for a, b in ((src.key, dst.key), (src.cert, dst.cert)):
        tmp = b.with_suffix(b.suffix + ".new")
        tmp.write_bytes(a.read_bytes())
        os.replace(tmp, b)
