"""One daemon, two databases: the embedded SQLite pool and a PostgreSQL pool.

Needs PostgreSQL at ``DBPOOL_PG_URL`` (default
``postgres://postgres@127.0.0.1:5432/postgres``)::

    uv run python examples/multi_db_usage.py

The endpoint comes from ``DBPOOL_ENDPOINT`` (default ``grpc://127.0.0.1:50051``) and the
bearer token, for a daemon with ``[tenants.*]`` in its config, from ``DBPOOL_TOKEN``
(the client's default when no ``token=`` is given); without it no token is sent, which a
daemon without tenants does not need.

The example creates a pool, so its tenant needs ``create_pools`` (or ``admin``).
"""

from __future__ import annotations

import datetime as dt
import decimal
import os

import polars as pl

from db_pool_rs import PoolNotFoundError, SyncDatabasePool

PG_URL = os.environ.get("DBPOOL_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_POOL = "example_pg"


def main() -> None:
    """Writes orders to PostgreSQL and customers to SQLite, then joins them in Polars."""
    # Endpoint and token from DBPOOL_ENDPOINT and DBPOOL_TOKEN (the clients' defaults).
    with SyncDatabasePool() as db:
        try:
            db.remove_pool(PG_POOL)
        except PoolNotFoundError:
            pass
        db.create_pool(PG_POOL, PG_URL, max_connections=4)
        try:
            db.execute_batch(
                PG_POOL,
                [
                    "DROP TABLE IF EXISTS example_orders",
                    "CREATE TABLE example_orders (id serial PRIMARY KEY, customer_id int, "
                    "total numeric(10,2), placed_at timestamptz)",
                    (
                        "INSERT INTO example_orders (customer_id, total, placed_at) "
                        "VALUES ($1, $2, $3), ($4, $5, $6), ($7, $8, $9)",
                        [
                            1,
                            decimal.Decimal("19.99"),
                            dt.datetime(2024, 5, 1, 9, 30),
                            2,
                            decimal.Decimal("5.00"),
                            dt.datetime(2024, 5, 2, 14, 0),
                            1,
                            decimal.Decimal("42.50"),
                            dt.datetime(2024, 5, 3, 18, 15),
                        ],
                    ),
                ],
            )
            db.execute_batch(
                "default",
                [
                    "DROP TABLE IF EXISTS example_customers",
                    "CREATE TABLE example_customers (id INTEGER PRIMARY KEY, name TEXT)",
                    ("INSERT INTO example_customers VALUES (?, ?), (?, ?)", [1, "ada", 2, "grace"]),
                ],
            )
            orders = db.query(PG_POOL, "SELECT * FROM example_orders ORDER BY id")
            customers = db.query("default", "SELECT id AS customer_id, name FROM example_customers")
            print(orders)
            report = (
                orders.join(customers, on="customer_id")
                .group_by("name")
                .agg(pl.len().alias("orders"), pl.col("total").sum().alias("spent"))
                .sort("name")
            )
            print(report)
            for pool in db.list_pools():
                print(f"{pool.pool_id}: {pool.backend} {pool.redacted_url}")
        finally:
            db.remove_pool(PG_POOL)


if __name__ == "__main__":
    main()
