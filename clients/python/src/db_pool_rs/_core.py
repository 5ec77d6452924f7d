"""The sans-io core of both clients: one plan per operation of the pool client.

Each method returns a plan (see :mod:`._steps`): it validates the arguments, builds the
request, yields the call to make and decodes the reply. :class:`~db_pool_rs.SyncDatabasePool`
and :class:`~db_pool_rs.DatabasePool` only perform the steps, so the two clients cannot
drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional, Union

import polars as pl
import pyarrow as pa

from ._flight import FlightQueries, FlightStream
from ._proto import pool_pb2
from ._requests import (
    StatementLike,
    TableLike,
    batch_results,
    bulk_insert_command,
    create_pool_request,
    execute_batch_request,
    execute_request,
    query_ticket,
    to_arrow_table,
)
from ._steps import Blocking, Plan, Rpc
from .models import Metrics, PoolInfo, PoolStatus, StatementResult

if TYPE_CHECKING:
    from ._options import CreatePoolArgs

#: Query results of ``query``: an eager frame, or a lazy one with ``lazy=True``.
Frame = Union[pl.DataFrame, pl.LazyFrame]
#: Query parameters: positional values, converted by ``_params.to_params``.
Params = Optional[Iterable[Any]]


def _major(version: str) -> int:
    return int(version.split(".", 1)[0])


#: Whether ``query`` asks the daemon for text as Arrow string views (``Utf8View``):
#: Polars keeps strings as views and adopts such columns without a copy. Needs pyarrow 16
#: and Polars 1; ``query_arrow`` and ``query_batches`` keep plain ``utf8``.
STRING_VIEWS = _major(pa.__version__) >= 16 and _major(pl.__version__) >= 1


class _ArrowStream:
    """Hands a table to Polars through the Arrow C stream interface (``__arrow_c_stream__``)."""

    __slots__ = ("_table",)

    def __init__(self, table: pa.Table) -> None:
        self._table = table

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        return self._table.__arrow_c_stream__(requested_schema)


#: Whether Polars takes Arrow C streams in its constructor (Polars 1, pyarrow 14). For a
#: one-batch table that costs about half of ``pl.from_arrow`` (~25 of ~50 µs, a tenth of a
#: small query's client time) and gives the same frame, sharing the same buffers.
C_STREAM = _major(pl.__version__) >= 1 and hasattr(pa.Table, "__arrow_c_stream__")


def to_polars(table: pa.Table, lazy: bool) -> Frame:
    """Wraps an Arrow table in Polars without copying the column buffers."""
    if C_STREAM and all(column.num_chunks <= 1 for column in table.columns):
        frame = pl.DataFrame(_ArrowStream(table))
    else:
        frame = pl.from_arrow(table, rechunk=False)
    assert isinstance(frame, pl.DataFrame)
    return frame.lazy() if lazy else frame


class Core:
    """The client's default deadline and Flight side, and a plan per operation."""

    def __init__(self, timeout: Optional[float], flight: FlightQueries) -> None:
        self._timeout = timeout
        self._flight = flight

    def deadline(self, timeout: Optional[float]) -> Optional[float]:
        """A call's deadline in seconds: its own ``timeout``, else the client's default."""
        return self._timeout if timeout is None else timeout

    def _rpc(self, method: str, request: Any, timeout: Optional[float]) -> Plan[Any]:
        return (yield Rpc(method, request, self.deadline(timeout)))

    # -- pools -----------------------------------------------------------------------

    def create_pool(
        self, pool_id: str, url: Optional[str], timeout: Optional[float], fields: CreatePoolArgs
    ) -> Plan[PoolInfo]:
        """``CreatePool``; ``fields``: the keywords of ``create_pool``."""
        request = create_pool_request(pool_id, url, **fields)
        return PoolInfo.from_proto((yield from self._rpc("CreatePool", request, timeout)).pool)

    def remove_pool(self, pool_id: str, timeout: Optional[float]) -> Plan[None]:
        """``RemovePool``."""
        yield from self._rpc("RemovePool", pool_pb2.RemovePoolRequest(pool_id=pool_id), timeout)

    def list_pools(self, timeout: Optional[float]) -> Plan[list[PoolInfo]]:
        """``ListPools``."""
        reply = yield from self._rpc("ListPools", pool_pb2.ListPoolsRequest(), timeout)
        return [PoolInfo.from_proto(p) for p in reply.pools]

    def pool_status(self, pool_id: str, timeout: Optional[float]) -> Plan[PoolStatus]:
        """``GetPoolStatus``."""
        request = pool_pb2.GetPoolStatusRequest(pool_id=pool_id)
        return PoolStatus.from_proto((yield from self._rpc("GetPoolStatus", request, timeout)))

    def metrics(self, pool_id: Optional[str], timeout: Optional[float]) -> Plan[Metrics]:
        """``GetMetrics`` of every pool, or of ``pool_id`` only."""
        request = pool_pb2.GetMetricsRequest(pool_id=pool_id or "")
        return Metrics.from_proto((yield from self._rpc("GetMetrics", request, timeout)))

    # -- queries ---------------------------------------------------------------------

    def read_table(
        self,
        pool_id: str,
        sql: str,
        params: Params,
        timeout: Optional[float],
        batch_size: Optional[int],
        *,
        string_view: bool = False,
    ) -> Plan[pa.Table]:
        """A query over Flight ``DoGet``, read whole."""
        ticket = query_ticket(pool_id, sql, params, batch_size, string_view=string_view)
        return (yield Blocking(self._flight.read_table, (ticket, self.deadline(timeout))))

    def query(
        self,
        pool_id: str,
        sql: str,
        params: Params,
        *,
        timeout: Optional[float],
        lazy: bool,
        batch_size: Optional[int],
    ) -> Plan[Frame]:
        """A query as a polars frame (text as string views where both libraries can)."""
        table = yield from self.read_table(
            pool_id, sql, params, timeout, batch_size, string_view=STRING_VIEWS
        )
        return to_polars(table, lazy)

    def open_batches(
        self, pool_id: str, sql: str, params: Params, timeout: Optional[float], batch_size: Optional[int]
    ) -> Plan[FlightStream]:
        """A query over Flight ``DoGet``, opened for reading batch by batch."""
        ticket = query_ticket(pool_id, sql, params, batch_size)
        return (yield Blocking(self._flight.open, (ticket, self.deadline(timeout))))

    # -- writes ----------------------------------------------------------------------

    def execute(self, pool_id: str, sql: str, params: Params, timeout: Optional[float]) -> Plan[int]:
        """``Execute``: the rows the statement affected."""
        reply = yield from self._rpc("Execute", execute_request(pool_id, sql, params), timeout)
        return int(reply.rows_affected)

    def execute_batch(
        self, pool_id: str, statements: Iterable[StatementLike], transaction: bool, timeout: Optional[float]
    ) -> Plan[Union[list[int], list[StatementResult]]]:
        """``ExecuteBatch``: rows per statement, or one StatementResult each."""
        request = execute_batch_request(pool_id, statements, transaction)
        return batch_results((yield from self._rpc("ExecuteBatch", request, timeout)), transaction)

    def bulk_insert(
        self, pool_id: str, table: str, data: TableLike, mode: str, timeout: Optional[float]
    ) -> Plan[int]:
        """A bulk insert over Flight ``DoPut``: the rows inserted."""
        command = bulk_insert_command(pool_id, table, mode)
        arrow = to_arrow_table(data)
        return (yield Blocking(self._flight.bulk_insert, (command, arrow, self.deadline(timeout))))
