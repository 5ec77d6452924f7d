"""Writes with db_pool_rs: bulk_insert a Polars frame, then an interactive transaction.

Runs against the daemon's embedded SQLite pool `default`: start the daemon with no config
(``dbpool serve``) and run::

    uv run python examples/writes_usage.py

The endpoint comes from ``DBPOOL_ENDPOINT`` (default ``grpc://127.0.0.1:50051``) and the
bearer token, for a daemon with ``[tenants.*]`` in its config, from ``DBPOOL_TOKEN``
(the client's default when no ``token=`` is given); without it no token is sent, which a
daemon without tenants does not need.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from db_pool_rs import SyncDatabasePool


class ChangedMyMind(Exception):
    """Raised inside a transaction block to roll it back."""


def main() -> None:
    """Loads a frame into a new table, moves stock in a transaction, shows a rollback."""
    orders = pl.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "item": ["apple", "pear", "plum", "fig"],
            "qty": [10, 4, 7, 0],
            "price": [0.5, 0.75, 1.25, 2.0],
            "ordered_at": [dt.datetime(2024, 5, d, 9, 30) for d in (1, 2, 3, 4)],
        }
    )
    # Endpoint and token from DBPOOL_ENDPOINT and DBPOOL_TOKEN (the clients' defaults).
    with SyncDatabasePool() as db:
        # The frame travels as Arrow record batches (Flight DoPut); "replace" drops the
        # table if it exists and creates it from the frame's schema. All rows or none.
        inserted = db.bulk_insert("default", "example_stock", orders, mode="replace")
        print(f"bulk_insert: {inserted} rows")
        # "append" (the default) adds rows to the existing table.
        extra = orders.head(1).with_columns(id=pl.lit(5))
        print(f"appended: {db.bulk_insert('default', 'example_stock', extra)} row")

        # An interactive transaction: every call runs on one pinned connection; the block
        # commits at its end, or rolls back if it raises.
        with db.transaction("default") as tx:
            tx.execute("UPDATE example_stock SET qty = qty - ? WHERE item = ?", [3, "apple"])
            tx.execute("UPDATE example_stock SET qty = qty + ? WHERE item = ?", [3, "fig"])
            total = tx.query("SELECT sum(qty) AS total FROM example_stock")["total"][0]
            print(f"total stock inside the transaction: {total}")

        try:
            with db.transaction("default") as tx:
                tx.execute("DELETE FROM example_stock")
                raise ChangedMyMind()
        except ChangedMyMind:
            print("rolled back: the DELETE never happened")

        df = db.query("default", "SELECT id, item, qty, price FROM example_stock ORDER BY id")
        print(df)


if __name__ == "__main__":
    main()
