"""The steps a plan of the sans-io core asks its client to perform.

Every operation of the clients (create a pool, run a query, commit a transaction...) is
written once, in :mod:`._core` and :mod:`._transaction`, as a *plan*: a generator that
builds the requests, yields each step it needs performed (a PoolService call, a
transaction's whole query result or its query stream, a blocking Arrow Flight read),
receives the step's result (or has the step's exception raised at the ``yield``) and
returns the operation's result. The
blocking client performs the steps in the calling thread, the asyncio client awaits them;
that is all either shell does (see ``_drive`` in sync_client.py and async_client.py).
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Callable, Optional, TypeVar, Union

import grpc

from ._proto import pool_pb2
from ._status import from_grpc_error, past_deadline
from .errors import DbPoolError

T = TypeVar("T")


@dataclass(frozen=True)
class Rpc:
    """Make one unary PoolService call; the plan receives the reply message."""

    method: str
    request: Any
    deadline: Optional[float]

    def failed(self, error: grpc.RpcError, started: float) -> DbPoolError:
        """The exception to raise for the call's failed status."""
        return past_deadline(from_grpc_error(error), self.deadline, started, time.monotonic())


@dataclass(frozen=True)
class Blocking:
    """Call a blocking function (Arrow Flight, an IPC read); the plan receives its result.

    The asyncio client runs it in its worker threads.
    """

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ReadQuery:
    """Run ``PoolService.Query`` (a transaction's query) on the client's channel and read
    the whole response; the plan receives its Arrow IPC chunks (see :mod:`._fast`). The
    asyncio client awaits them on its loop, the blocking one reads them in the caller."""

    request: pool_pb2.QueryRequest
    deadline: Optional[float]

    def failed(self, error: grpc.RpcError, started: float) -> DbPoolError:
        """The exception to raise for the call's failed status."""
        return past_deadline(from_grpc_error(error), self.deadline, started, time.monotonic())


@dataclass(frozen=True)
class TxQuery:
    """Start ``PoolService.Query`` inside a transaction; the plan receives an IpcStream."""

    request: pool_pb2.QueryRequest
    deadline: Optional[float]


#: What a plan yields.
Step = Union[Rpc, Blocking, ReadQuery, TxQuery]
#: An operation written once: yields steps, receives their results, returns a ``T``.
Plan = Generator[Step, Any, T]


def advance(
    plan: Plan[T], value: Any = None, error: Optional[BaseException] = None
) -> tuple[Optional[Step], Optional[T]]:
    """Resumes ``plan`` with the last step's result, or raises the step's ``error`` in it.

    Returns ``(next step, None)``, or ``(None, result)`` once the plan has returned.
    An exception the plan does not handle propagates from here.
    """
    try:
        return (plan.throw(error) if error is not None else plan.send(value)), None
    except StopIteration as done:
        return None, done.value
