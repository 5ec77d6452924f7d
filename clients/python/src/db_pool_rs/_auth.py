"""The bearer token of a client: given as ``token=``, else from ``DBPOOL_TOKEN``.

A daemon with ``[tenants.*]`` in its config wants ``authorization: Bearer <token>`` on
every PoolService and Arrow Flight call (or a client certificate it knows). The token
is checked here only for what would break the header; the daemon decides whether it is
right. It never appears in a message or a ``repr``.
"""

from __future__ import annotations

import os
from typing import Optional

import grpc

from .errors import InvalidArgumentError

#: The environment variable ``token=None`` (the default) reads.
TOKEN_ENV = "DBPOOL_TOKEN"


def resolve_token(token: Optional[str]) -> Optional[str]:
    """The token to send: ``token``, or ``$DBPOOL_TOKEN`` when ``token`` is None; None
    for an empty one (``token=""`` sends none even when the variable is set).

    Surrounding whitespace (a newline left by ``cat token-file``) is dropped. Raises
    InvalidArgumentError for a token an HTTP/2 header cannot carry.
    """
    source = "token"
    if token is None:
        token, source = os.environ.get(TOKEN_ENV), TOKEN_ENV
    if token is None:
        return None
    if not isinstance(token, str):
        raise InvalidArgumentError(
            f"{source} must be a str, not {type(token).__name__}", grpc.StatusCode.INVALID_ARGUMENT
        )
    token = token.strip()
    if not token:
        return None
    if not all("\x21" <= c <= "\x7e" for c in token):
        raise InvalidArgumentError(
            f"{source} holds characters a header cannot carry (only printable ASCII, no spaces)",
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    return token


def bearer(token: Optional[str]) -> Optional[str]:
    """The ``authorization`` header value for ``token`` (None: no header)."""
    return f"Bearer {token}" if token else None
