"""W3C trace context (``traceparent`` / ``tracestate``) for outgoing calls.

When ``opentelemetry-api`` is installed, the headers of the current OpenTelemetry context
come from ``opentelemetry.propagate.inject`` (the globally configured propagator), so the
daemon's server span becomes a child of the caller's span. Without the package, or
without an active span, no header is added. The import is lazy: opentelemetry stays an
optional dependency (``pip install db-pool-rs[otel]``).
"""

from __future__ import annotations

from typing import Any, Optional

_UNSET: Any = object()
_inject: Any = _UNSET


def _injector() -> Optional[Any]:
    global _inject  # noqa: PLW0603 - resolved once, on the first call
    if _inject is _UNSET:
        try:
            from opentelemetry.propagate import inject
        except ImportError:
            inject = None
        _inject = inject
    return _inject


def trace_headers() -> list[tuple[str, str]]:
    """The propagation headers of the current context, as lower-case ``(key, value)`` pairs."""
    inject = _injector()
    if inject is None:
        return []
    carrier: dict[str, str] = {}
    try:
        inject(carrier)
    except Exception:  # a misbehaving propagator must not break the call
        return []
    return [(key.lower(), value) for key, value in carrier.items()]
