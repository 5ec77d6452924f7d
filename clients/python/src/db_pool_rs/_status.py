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

Without the details a Flight error also loses the ErrorInfo reason and metadata. Where
the class depends on them (an unknown transaction, a tenant's quota) the daemon's
message, whose form it documents, stands in for them; over gRPC the details decide.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, Optional

import grpc
import pyarrow as pa
from google.rpc import error_details_pb2, status_pb2
from pyarrow import flight

from .errors import DbPoolError, TransactionNotFoundError, error_class

STATUS_DETAILS_KEY = "grpc-status-details-bin"
ERROR_DOMAIN = "dbpool"

# PostgreSQL sends 5-character SQLSTATEs, SQLite its numeric extended result codes.
_SQLSTATE_RE = re.compile(r"\(SQLSTATE ([0-9A-Za-z_-]+)\)")
# ErrorInfo reasons of the database's own errors, with or without a code.
_DATABASE_REASONS = ("DATABASE_ERROR", "TRANSACTION_ABORTED")
# The daemon's NOT_FOUND for an unknown transaction: ErrorInfo reason over gRPC, the
# message over Flight (pyarrow drops the details).
_TX_NOT_FOUND_REASON = "TRANSACTION_NOT_FOUND"
_TX_NOT_FOUND_RE = re.compile(r"^transaction `[^`]*` not found")
# A tenant's quota: ErrorInfo reason QUOTA_EXCEEDED with metadata `quota` and `limit`
# over gRPC; over Flight the message "tenant `a` reached its quota <quota> (<limit>)".
_QUOTA_REASON = "QUOTA_EXCEEDED"
_QUOTA_RE = re.compile(r"reached its quota (?P<quota>[a-z_]+) \((?P<limit>\d+)\)")
# "... with message: <msg>. gRPC client debug context: <context>. Client context: ..."
_FLIGHT_MESSAGE_RE = re.compile(
    r"with message: (?P<msg>.*?)(?:\. gRPC client debug context: (?P<ctx>.*?))?"
    r"(?:\. Client context:|$)",
    re.DOTALL,
)
# The debug context names the code: newer gRPC as "<CODE>:<msg>", older as
# "... {grpc_message:"...", grpc_status:5, ...}".
_CONTEXT_NUMBER_RE = re.compile(r"grpc_status:(\d+)")
_CONTEXT_NAME_RE = re.compile(r"^(?P<code>[A-Z_]+):")
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


def parse_status_details(raw: Optional[bytes]) -> tuple[Optional[grpc.StatusCode], str, dict]:
    """Decodes ``grpc-status-details-bin`` into (code, message, ErrorInfo metadata).

    Returns ``(None, "", {})`` for missing or undecodable bytes.
    """
    if not raw:
        return None, "", {}
    try:
        status = status_pb2.Status.FromString(bytes(raw))
    except Exception:
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


def make_error(code: grpc.StatusCode, message: str, metadata: Optional[dict] = None) -> DbPoolError:
    """Builds the exception for a code, a message and ErrorInfo metadata."""
    metadata = dict(metadata or {})
    sqlstate = metadata.get("sqlstate") or sqlstate_from_message(message)
    if code is grpc.StatusCode.NOT_FOUND and (
        metadata.get("reason") == _TX_NOT_FOUND_REASON or _TX_NOT_FOUND_RE.match(message or "")
    ):
        return TransactionNotFoundError(message, code, None, metadata)
    from_database = bool(sqlstate) or metadata.get("reason") in _DATABASE_REASONS
    quota = code is grpc.StatusCode.RESOURCE_EXHAUSTED and _is_quota(message, metadata)
    return error_class(code, from_database, quota)(message, code, sqlstate, metadata)


def _is_quota(message: str, metadata: dict) -> bool:
    """Whether a RESOURCE_EXHAUSTED is a tenant's quota; fills ``quota`` and ``limit``
    of ``metadata`` from the message when the details are missing (Flight)."""
    if metadata.get("reason") == _QUOTA_REASON:
        return True
    if metadata.get("reason"):
        return False
    found = _QUOTA_RE.search(message or "")
    if found is None:
        return False
    metadata.setdefault("reason", _QUOTA_REASON)
    metadata.setdefault("quota", found.group("quota"))
    metadata.setdefault("limit", found.group("limit"))
    return True


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


def _code_from_context(context: str) -> Optional[grpc.StatusCode]:
    number = _CONTEXT_NUMBER_RE.search(context)
    if number:
        return _CODES_BY_NUMBER.get(int(number.group(1)))
    name = _CONTEXT_NAME_RE.match(context)
    code = getattr(grpc.StatusCode, name.group("code"), None) if name else None
    # "UNKNOWN:Error received from peer" is the old format's preamble, not a code.
    return None if code is grpc.StatusCode.UNKNOWN and "grpc_" in context else code


def from_flight_error(error: Exception) -> DbPoolError:
    """Maps an exception raised by pyarrow.flight to a DbPoolError subclass."""
    text = str(error)
    code: Optional[grpc.StatusCode] = None
    message = text
    detail_code, detail_message, metadata = parse_status_details(getattr(error, "extra_info", None))
    match = _FLIGHT_MESSAGE_RE.search(text)
    if match:
        message = match.group("msg")
        if match.group("ctx"):
            code = _code_from_context(match.group("ctx"))
    if code is None:
        code = next((c for prefix, c in _FLIGHT_PREFIXES if prefix in text), None)
    if code is None:
        code = next((c for cls, c in _FLIGHT_CLASSES if isinstance(error, cls)), None)
    if code is None:
        # Not a server status: a local Arrow failure (e.g. IPC decoding).
        local = isinstance(error, pa.ArrowException)
        code = grpc.StatusCode.INTERNAL if local else grpc.StatusCode.UNKNOWN
    return make_error(detail_code or code, detail_message or message, metadata)


def past_deadline(error: DbPoolError, deadline: Optional[float], started: float, now: float) -> DbPoolError:
    """Reports a server-side deadline expiry as DEADLINE_EXCEEDED.

    tonic answers a call whose ``grpc-timeout`` ran out with CANCELLED "Timeout expired",
    which can reach the client before its own timer fires; like grpc-dotnet, a CANCELLED
    status after the deadline has passed is treated as the deadline.
    """
    if error.code is not grpc.StatusCode.CANCELLED or deadline is None:
        return error
    if error.message != "Timeout expired" and now - started < deadline * 0.95:
        return error
    return make_error(grpc.StatusCode.DEADLINE_EXCEEDED, error.message, error.metadata)
