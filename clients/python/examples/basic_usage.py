"""Basic, blocking use of db_pool_rs against the daemon's embedded SQLite pool `default`.

Start the daemon with no config (``dbpool serve``) and run::

    uv run python examples/basic_usage.py

The endpoint comes from ``DBPOOL_ENDPOINT`` (default ``grpc://127.0.0.1:50051``) and the
bearer token, for a daemon with ``[tenants.*]`` in its config, from ``DBPOOL_TOKEN``
(the client's default when no ``token=`` is given); without it no token is sent, which a
daemon without tenants does not need.
"""

from __future__ import annotations

from db_pool_rs import QueryError, SyncDatabasePool


def main() -> None:
    """Creates a table, writes rows three ways, and prints query results as Polars frames."""
    # Endpoint and token from DBPOOL_ENDPOINT and DBPOOL_TOKEN (the clients' defaults).
    with SyncDatabasePool() as db:
        db.execute("default", "DROP TABLE IF EXISTS example_users")
        db.execute(
            "default",
            "CREATE TABLE example_users (id INTEGER PRIMARY KEY, name TEXT, score REAL, active BOOLEAN)",
        )
        # One statement with bind parameters.
        db.execute("default", "INSERT INTO example_users VALUES (?, ?, ?, ?)", [1, "ada", 9.5, True])
        # Several statements, all-or-nothing, on one connection.
        counts = db.execute_batch(
            "default",
            [
                ("INSERT INTO example_users VALUES (?, ?, ?, ?)", [2, "grace", 8.25, True]),
                ("INSERT INTO example_users VALUES (?, ?, ?, ?)", [3, "linus", 7.0, False]),
                "UPDATE example_users SET score = score + 0.5 WHERE active",
            ],
        )
        print("rows affected per statement:", counts)

        df = db.query("default", "SELECT * FROM example_users ORDER BY id")
        print(df)

        top = db.query("default", "SELECT name, score FROM example_users WHERE score > ?", [8.0], lazy=True)
        print(top.sort("score", descending=True).collect())

        try:
            db.query("default", "SELECT * FROM no_such_table")
        except QueryError as e:
            print(f"QueryError (code {e.sqlstate}): {e}")

        status = db.pool_status("default")
        print(f"pool default: {status.size} connections, {status.queries_total} queries so far")


if __name__ == "__main__":
    main()
