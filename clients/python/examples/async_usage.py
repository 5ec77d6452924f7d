"""Asyncio use of db_pool_rs: concurrent queries and a streamed result on `default`.

Start the daemon with no config (``dbpool serve``) and run::

    uv run python examples/async_usage.py

The endpoint comes from ``DBPOOL_ENDPOINT`` (default ``grpc://127.0.0.1:50051``) and the
bearer token, for a daemon with ``[tenants.*]`` in its config, from ``DBPOOL_TOKEN``
(the client's default when no ``token=`` is given); without it no token is sent, which a
daemon without tenants does not need.
"""

from __future__ import annotations

import asyncio

from db_pool_rs import DatabasePool


async def main() -> None:
    """Fills a table, runs queries concurrently, and streams a result batch by batch."""
    # Endpoint and token from DBPOOL_ENDPOINT and DBPOOL_TOKEN (the clients' defaults).
    async with DatabasePool(timeout=30) as db:
        await db.execute_batch(
            "default",
            [
                "DROP TABLE IF EXISTS example_events",
                "CREATE TABLE example_events (id INTEGER PRIMARY KEY, kind TEXT, amount REAL)",
            ],
        )
        rows = [(i, ["click", "view", "buy"][i % 3], i * 1.5) for i in range(1, 1001)]
        await db.execute_batch(
            "default", [("INSERT INTO example_events VALUES (?, ?, ?)", list(r)) for r in rows]
        )

        by_kind, total = await asyncio.gather(
            db.query(
                "default",
                "SELECT kind, count(*) AS n, sum(amount) AS amount "
                "FROM example_events GROUP BY kind ORDER BY kind",
            ),
            db.query("default", "SELECT count(*) AS events FROM example_events"),
        )
        print(by_kind)
        print(total)

        seen = 0
        async for batch in db.query_batches("default", "SELECT * FROM example_events", batch_size=250):
            seen += batch.num_rows
            print(f"batch of {batch.num_rows} rows (total {seen})")


if __name__ == "__main__":
    asyncio.run(main())
