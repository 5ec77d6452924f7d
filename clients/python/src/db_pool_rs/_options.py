"""The keywords of ``create_pool``, defined once for both clients.

:class:`PoolOptionArgs` lists the pool options. The same names are the fields of
:class:`~db_pool_rs.models.PoolOptions`, of ``dbpool.v1.PoolOptions`` (proto/), of the
daemon's config (crates/dbpool-config/src/options.rs) and of docs/configuration.md's
table; crates/dbpool-server/tests/pool_options.rs fails when one of them lacks an option.
Both clients take them as ``**fields: Unpack[CreatePoolArgs]`` (type checkers and IDEs
see every keyword) and :func:`spelled_out` gives their ``create_pool`` the signature with
every keyword written out, for ``help()`` and runtime completion.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Callable, ForwardRef, Optional, TypedDict, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class PoolOptionArgs(TypedDict, total=False):
    """The pool options of ``create_pool``; None (or absent) takes the daemon's default."""

    max_connections: Optional[int]
    min_connections: Optional[int]
    acquire_timeout_ms: Optional[int]
    idle_timeout_ms: Optional[int]
    max_lifetime_ms: Optional[int]
    statement_timeout_ms: Optional[int]
    batch_size: Optional[int]
    max_waiters: Optional[int]
    breaker_threshold: Optional[int]
    breaker_cooldown_ms: Optional[int]
    statement_cache_size: Optional[int]
    prepared_statements: Optional[str]
    reset_sessions: Optional[str]


class ConnectionArgs(TypedDict, total=False):
    """Where the database is, when ``create_pool`` gets no ``url``."""

    db_type: Optional[str]
    host: Optional[str]
    port: Optional[int]
    database: Optional[str]
    username: Optional[str]
    password: Optional[str]


class CreatePoolArgs(ConnectionArgs, PoolOptionArgs, total=False):
    """Every keyword of ``create_pool`` but ``url`` and ``timeout``."""

    backup_urls: Optional[Sequence[str]]
    settings: Optional[Mapping[str, str]]
    lazy: bool


#: The pool options' names, in the order of the proto message.
POOL_OPTION_NAMES: tuple[str, ...] = tuple(PoolOptionArgs.__annotations__)
#: The connection fields' names.
CONNECTION_NAMES: tuple[str, ...] = tuple(ConnectionArgs.__annotations__)
_DEFAULTS: Mapping[str, Any] = {"lazy": False}


def check_keywords(fields: Mapping[str, Any]) -> None:
    """Refuses a keyword ``create_pool`` does not take, as Python would."""
    for name in fields:
        if name not in CreatePoolArgs.__annotations__:
            raise TypeError(f"create_pool() got an unexpected keyword argument {name!r}")


def _annotation(hint: Any) -> Any:
    # TypedDict turns the string annotations of this module into ForwardRefs.
    return hint.__forward_arg__ if isinstance(hint, ForwardRef) else hint


def spelled_out(create_pool: F) -> F:
    """Replaces the ``**fields`` of ``create_pool(self, pool_id, url, *, timeout, **fields)``
    in its signature by one keyword-only parameter per :class:`CreatePoolArgs` key."""
    signature = inspect.signature(create_pool)
    head = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    keywords = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=_DEFAULTS.get(name), annotation=hint)
        for name, hint in ((n, _annotation(h)) for n, h in CreatePoolArgs.__annotations__.items())
    ]
    timeout = [p for p in head if p.kind is p.KEYWORD_ONLY]
    positional = [p for p in head if p.kind is not p.KEYWORD_ONLY]
    create_pool.__signature__ = signature.replace(parameters=[*positional, *keywords, *timeout])  # type: ignore[attr-defined]
    return create_pool
