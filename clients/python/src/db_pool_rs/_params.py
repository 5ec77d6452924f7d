"""Converts Python values to ``dbpool.v1.Param`` bind parameters.

None -> null, bool -> bool, int -> int64, float -> double, str -> string,
bytes/bytearray/memoryview -> bytes, datetime -> timestamp (naive means UTC),
date / time -> ISO string, Decimal -> exact decimal string, UUID -> string.
Anything else raises :class:`~db_pool_rs.errors.ParamTypeError` naming the position.
"""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from collections.abc import Iterable
from typing import Any, Optional

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from ._proto import pool_pb2
from .errors import InvalidArgumentError, ParamTypeError

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _timestamp(value: dt.datetime) -> Timestamp:
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    delta = value - _EPOCH  # exact: timedelta keeps microseconds, days may be negative
    return Timestamp(seconds=delta.days * 86_400 + delta.seconds, nanos=delta.microseconds * 1_000)


def _invalid(position: int, message: str) -> InvalidArgumentError:
    return InvalidArgumentError(f"params[{position}]: {message}", grpc.StatusCode.INVALID_ARGUMENT)


def to_param(value: Any, position: int = 0) -> pool_pb2.Param:
    """Converts one Python value; ``position`` only names it in errors."""
    if value is None:
        return pool_pb2.Param(null=True)
    if isinstance(value, bool):  # before int: bool is an int subclass
        return pool_pb2.Param(bool=value)
    if isinstance(value, int):
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise _invalid(position, f"integer {value} does not fit in 64 bits")
        return pool_pb2.Param(int64=value)
    if isinstance(value, float):
        return pool_pb2.Param(double=value)
    if isinstance(value, str):
        return pool_pb2.Param(string=value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return pool_pb2.Param(bytes=bytes(value))
    if isinstance(value, dt.datetime):  # before date: datetime is a date subclass
        return pool_pb2.Param(timestamp=_timestamp(value))
    if isinstance(value, (dt.date, dt.time)):
        return pool_pb2.Param(string=value.isoformat())
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            raise _invalid(position, f"decimal {value} is not finite")
        return pool_pb2.Param(decimal=format(value, "f"))
    if isinstance(value, uuid.UUID):
        return pool_pb2.Param(string=str(value))
    raise ParamTypeError(
        f"params[{position}]: unsupported parameter type {type(value).__name__}",
        grpc.StatusCode.INVALID_ARGUMENT,
    )


def to_params(params: Optional[Iterable[Any]]) -> list[pool_pb2.Param]:
    """Converts a sequence of Python values (or None for no parameters)."""
    if params is None:
        return []
    if isinstance(params, (str, bytes, bytearray, memoryview, dict)):
        raise ParamTypeError(
            f"params must be a sequence of values, not {type(params).__name__}",
            grpc.StatusCode.INVALID_ARGUMENT,
        )
    return [to_param(value, i) for i, value in enumerate(params)]
