"""Unit tests of the Python value -> dbpool.v1.Param conversion (no daemon needed)."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid

import pytest

from db_pool_rs import InvalidArgumentError, ParamTypeError
from db_pool_rs._params import to_param, to_params


def _kind(param) -> str:
    return param.WhichOneof("value")


def test_scalars_map_to_their_oneof_fields() -> None:
    assert _kind(to_param(None)) == "null"
    assert (_kind(to_param(True)), to_param(True).bool) == ("bool", True)
    assert (_kind(to_param(False)), to_param(False).bool) == ("bool", False)
    assert (_kind(to_param(-(2**63))), to_param(-(2**63)).int64) == ("int64", -(2**63))
    assert to_param(1.5).double == 1.5 and _kind(to_param(1.5)) == "double"
    assert to_param("héllo").string == "héllo"
    assert to_param(b"\x00\xff").bytes == b"\x00\xff"
    assert to_param(bytearray(b"ab")).bytes == b"ab"
    assert to_param(memoryview(b"cd")).bytes == b"cd"


def test_bool_is_not_sent_as_int() -> None:
    assert _kind(to_param(True)) == "bool"
    assert _kind(to_param(1)) == "int64"


def test_datetimes_become_utc_timestamps() -> None:
    naive = to_param(dt.datetime(2024, 2, 29, 12, 30, 15, 123456)).timestamp
    assert (naive.seconds, naive.nanos) == (1709209815, 123456000)
    plus_two = dt.timezone(dt.timedelta(hours=2))
    aware = to_param(dt.datetime(2024, 2, 29, 14, 30, 15, 123456, tzinfo=plus_two)).timestamp
    assert (aware.seconds, aware.nanos) == (1709209815, 123456000)
    before_epoch = to_param(dt.datetime(1969, 12, 31, 23, 59, 59, 500000)).timestamp
    assert (before_epoch.seconds, before_epoch.nanos) == (-1, 500000000)


def test_dates_decimals_and_uuids_travel_as_text() -> None:
    assert to_param(dt.date(2024, 1, 2)).string == "2024-01-02"
    assert to_param(dt.time(3, 4, 5, 6)).string == "03:04:05.000006"
    assert to_param(decimal.Decimal("-12.3400")).decimal == "-12.3400"
    assert to_param(decimal.Decimal("1E+5")).decimal == "100000"
    assert to_param(decimal.Decimal("1E-7")).decimal == "0.0000001"
    u = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert to_param(u).string == "12345678-1234-5678-1234-567812345678"


@pytest.mark.parametrize("value", [object(), {1, 2}, [1], {"a": 1}, 1j])
def test_unsupported_types_name_the_position(value) -> None:
    with pytest.raises(ParamTypeError, match=r"params\[2\]") as info:
        to_params([1, "x", value])
    assert isinstance(info.value, TypeError) and isinstance(info.value, InvalidArgumentError)


def test_out_of_range_values_are_rejected() -> None:
    with pytest.raises(InvalidArgumentError, match=r"params\[0\].*64 bits"):
        to_params([2**63])
    with pytest.raises(InvalidArgumentError, match=r"params\[1\].*not finite"):
        to_params([1, decimal.Decimal("NaN")])


def test_params_must_be_a_sequence() -> None:
    assert to_params(None) == []
    assert [p.int64 for p in to_params((1, 2))] == [1, 2]
    with pytest.raises(ParamTypeError):
        to_params("abc")
    with pytest.raises(ParamTypeError):
        to_params({"a": 1})
