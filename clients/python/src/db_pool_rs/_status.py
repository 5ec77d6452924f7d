"""Turns failed gRPC and Arrow Flight calls into db_pool_rs exceptions.

The daemon sends the gRPC code, a message ending in ``(SQLSTATE xxxxx)`` when the database
gave one, and ``grpc-status-details-bin``: an encoded ``google.rpc.Status`` whose details
hold a ``google.rpc.ErrorInfo`` (domain ``dbpool``, metadata ``{"sqlstate": ...}``).

grpcio exposes the trailers, so the details are parsed there. pyarrow.flight does not:
it only fills ``FlightError.extra_info`` when the server also sends Arrow's own
``x-arrow-status`` trailer, and it folds several gRPC codes into one Python class
(RESOURCE_EXHAUSTED, FAILED_PRECONDITION and OUT_OF_RANGE all raise ArrowInvalid). Its
message keeps the original code, though: ``"... with message: <msg>. gRPC client debug
context: <CODE>:<msg>..."``, which is what :func:`from_flight_error` reads first.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional, Tuple

import grpc
import pyarrow as pa
import pyarrow.flight as flight
from google.rpc import error_details_pb2, status_pb2

from .errors import DbPoolError, error_class

STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "dbpool"

_SQLSTATE_RE = re.compile(r"\(SQLSTATE ([0-9A-Za-z]{5})\)")
_FLIGHT_MESSAGE_RE = re.compile(
    r"with message: (?P<msg>.*?)\. gRPC client debug context: (?P<code>[A-Z_]+):", re.DOTALL
)
_FLIGHT_PLAIN_MESSAGE_RE = re.compile(r"with message: (?P<msg>.*?)(?:\. Client context:|$)", re.DOTALL)
# pyarrow's message prefixes, in case the gRPC debug context is missing.
_FLIGHT_PREFIXES = (
    ("Flight returned invalid argument error", grpc.StatusCode.INVALID_ARGUMENT),
    ("Flight returned not found error", grpc.StatusCode.NOT_FOUND),
    ("Flight returned already exists error", grpc.StatusCode.ALREADY_EXISTS),
    ("Flight returned timeout error", grpc.StatusCode.DEADLINE_EXCEEDED),
    ("Flight returned unauthorized error", grpc.StatusCode.PERMISSION_DENIED),
    ("Flight returned unauthenticated error", grpc.StatusCode.UNAUTHENTICATED),
    ("Flight returned unavailable error", grpc.StatusCode.UNAVAILABLE),
    ("Flight returned internal error", grpc.StatusCode.INTERNAL),
    ("Flight returned unimplemented error", grpc.StatusCode.UNIMPLEMENTED),
    ("Flight cancelled call", grpc.StatusCode.CANCELLED),
    ("gRPC returned resource exhausted error", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("gRPC returned precondition failed error", grpc.StatusCode.FAILED_PRECONDITION),
    ("gRPC returned aborted error", grpc.StatusCode.ABORTED),
    ("gRPC returned out-of-range error", grpc.StatusCode.OUT_OF_RANGE),
    ("gRPC returned data loss error", grpc.StatusCode.DATA_LOSS),
)
# Last resort: the pyarrow class, most specific first.
_FLIGHT_CLASSES = (
    (flight.FlightUnavailableError, grpc.StatusCode.UNAVAILABLE),
    (flight.FlightTimedOutError, grpc.StatusCode.DEADLINE_EXCEEDED),
    (flight.FlightCancelledError, grpc.StatusCode.CANCELLED),
    (flight.FlightUnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (flight.FlightUnauthorizedError, grpc.StatusCode.PERMISSION_DENIED),
    (flight.FlightInternalError, grpc.StatusCode.INTERNAL),
    (flight.FlightServerError, grpc.StatusCode.UNKNOWN),
    (pa.ArrowKeyError, grpc.StatusCode.NOT_FOUND),
    (pa.ArrowNotImplementedError, grpc.StatusCode.UNIMPLEMENTED),
)
_CODES_BY_NUMBER = {c.value[0]: c for c in grpc.StatusCode}


def parse_status_details(raw: Optional[bytes]) -> Tuple[Optional[grpc.StatusCode], str, dict]:
    """Decodes ``grpc-status-details-bin`` into (code, message, ErrorInfo metadata).

    Returns ``(None, "", {})`` for missing or undecodable bytes.
    """
    if not raw:
        return None, "", {}
    try:
        status = status_pb2.Status.FromString(bytes(raw))
    except Exception:  # noqa: BLE001 - garbage in the trailer must not hide the real error
        return None, "", {}
    metadata: dict = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain in ("", ERROR_DOMAIN):
                metadata.update(info.metadata)
                if info.reason:
                    metadata.setdefault("reason", info.reason)
    return _CODES_BY_NUMBER.get(status.code), status.message, metadata


def sqlstate_from_message(message: str) -> Optional[str]:
    """Finds ``(SQLSTATE xxxxx)`` in a message; the last one wins."""
    found = _SQLSTATE_RE.findall(message or "")
    return found[-1] if found else None


def make_error(
    code: grpc.StatusCode, message: str, metadata: Optional[dict] = None
) -> DbPoolError:
    """Builds the exception for a code, a message and ErrorInfo metadata."""
    metadata = metadata or {}
    sqlstate = metadata.get("sqlstate") or sqlstate_from_message(message)
    return error_class(code, sqlstate)(message, code, sqlstate, metadata)


def _trailer(metadata: Optional[Iterable[Any]], key: str) -> Optional[bytes]:
    for item in metadata or ():
        k, v = item[0], item[1]
        if k == key:
            return v if isinstance(v, bytes) else str(v).encode()
    return None


def from_grpc_error(error: grpc.RpcError) -> DbPoolError:
    """Maps a grpcio (sync or aio) RpcError to a DbPoolError subclass."""
    code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    message = (error.details() if hasattr(error, "details") else None) or str(error)
    trailers = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    _, detail_message, metadata = parse_status_details(_trailer(trailers, STATUS_DETAILS_KEY))
    return make_error(code or grpc.StatusCode.UNKNOWN, message or detail_message, metadata)


def from_flight_error(error: Exception) -> DbPoolError:
    """Maps an exception raised by pyarrow.flight to a DbPoolError subclass."""
    text = str(error)
    code: Optional[grpc.StatusCode] = None
    message = text
    metadata: dict = {}
    extra = getattr(error, "extra_info", None)
    detail_code, detail_message, metadata = parse_status_details(extra)
    match = _FLIGHT_MESSAGE_RE.search(text)
    if match:
        message = match.group("msg")
        code = getattr(grpc.StatusCode, match.group("code"), None)
    else:
        plain = _FLIGHT_PLAIN_MESSAGE_RE.search(text)
        if plain:
            message = plain.group("msg")
    if code is None:
        code = next((c for prefix, c in _FLIGHT_PREFIXES if prefix in text), None)
    if code is None:
        code = next((c for cls, c in _FLIGHT_CLASSES if isinstance(error, cls)), None)
    if code is None:
        # Not a server status: a local Arrow failure (e.g. IPC decoding).
        code = grpc.StatusCode.INTERNAL if isinstance(error, pa.ArrowException) else grpc.StatusCode.UNKNOWN
    return make_error(detail_code or code, detail_message or message, metadata)
