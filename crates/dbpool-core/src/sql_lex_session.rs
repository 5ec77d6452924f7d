//! Which SQL may change the state of the session it runs on — a setting, a temporary
//! object, a lock held past the transaction, a subscription, an open cursor, an attached
//! file — so the connection is reset before another caller gets it.
//!
//! Conservative by design: a false positive costs one reset (or one reconnect), a false
//! negative leaks state, so anything that might is counted (a column named `temp` too).
//! What the text cannot show (a function that calls `set_config`) is what the pool
//! option `reset_sessions = "always"` is for.
use super::{Dialect, Lexer, Token};

/// Whether `sql` may change the session state of the connection it runs on.
pub fn changes_session(sql: &str, dialect: Dialect) -> bool {
    let clean = match dialect {
        Dialect::Postgres => surely_clean(sql, PG_LEADS, PG_ANYWHERE),
        Dialect::Sqlite => surely_clean(sql, SQLITE_LEADS, SQLITE_ANYWHERE),
        Dialect::Mssql => false,
    };
    !clean && lexed(sql, dialect)
}

/// PostgreSQL statements that change the session when they lead (see [`postgres`]).
const PG_LEADS: &[&str] = &[
    "SET", "RESET", "DISCARD", "LISTEN", "PREPARE", "DECLARE", "LOAD", "DO",
];
/// Lower-case text that every word [`postgres`] finds anywhere contains.
const PG_ANYWHERE: &[&[u8]] = &[b"temp", b"set_config", b"advisory", b"dblink"];
/// SQLite statements that change the connection when they lead (see [`sqlite`]).
const SQLITE_LEADS: &[&str] = &["PRAGMA", "ATTACH"];
/// Lower-case text that every word [`sqlite`] finds anywhere contains.
const SQLITE_ANYWHERE: &[&[u8]] = &[b"temp", b"load_extension"];

/// The first look, without the lexer (which was ~2 % of a small query's instructions):
/// true when `sql` is one statement (no `;`) led by a plain word that is none of `leads`,
/// and none of `anywhere` occurs in its text, in any case, even inside a literal or a
/// comment. Every word the lexer would judge dirty is then absent, so the answer is
/// exact; anything else goes to the lexer.
fn surely_clean(sql: &str, leads: &[&str], anywhere: &[&[u8]]) -> bool {
    let b = sql.trim_start().as_bytes();
    if !b.first().is_some_and(u8::is_ascii_alphabetic) || b.contains(&b';') {
        return false;
    }
    let first = b
        .iter()
        .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
        .unwrap_or(b.len());
    let lead = std::str::from_utf8(&b[..first]).unwrap_or_default();
    if any(lead, leads) {
        return false;
    }
    // Each needle's first letter found in either case by a SIMD search, the rest
    // compared there: a few dozen instructions for a short statement.
    !anywhere.iter().any(|n| {
        let first = n[0];
        memchr::memchr2_iter(first, first.to_ascii_uppercase(), b)
            .any(|i| b[i..].len() >= n.len() && b[i..i + n.len()].eq_ignore_ascii_case(n))
    })
}

/// The lexer's judgement, word by word.
fn lexed(sql: &str, dialect: Dialect) -> bool {
    let mut lex = Lexer::new(sql, dialect);
    // Whether the next word leads a statement (PostgreSQL and SQLite split on `;`).
    let mut leads = true;
    while let Some(t) = lex.next() {
        match t {
            Token::Semi => leads = true,
            Token::Word(w) => {
                let next = || match lex.clone().next() {
                    Some(Token::Word(n)) => Some(n),
                    _ => None,
                };
                let dirty = match dialect {
                    Dialect::Postgres => postgres(w, leads),
                    Dialect::Sqlite => sqlite(w, leads),
                    Dialect::Mssql => tsql(w, next),
                };
                if dirty {
                    return true;
                }
                leads = false;
            }
            _ => leads = false,
        }
    }
    false
}

fn any(w: &str, words: &[&str]) -> bool {
    words.iter().any(|k| w.eq_ignore_ascii_case(k))
}

fn starts(w: &str, prefixes: &[&str]) -> bool {
    prefixes
        .iter()
        .any(|p| w.len() >= p.len() && w.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes()))
}

/// PostgreSQL statements that change the session (`SET`, `RESET`, `SET ROLE`, `SET
/// SESSION AUTHORIZATION`, `DISCARD`, `LISTEN`, SQL-level `PREPARE`, `DECLARE` cursors,
/// `LOAD`, `DO` blocks), and words that do wherever they stand: temporary objects,
/// `set_config()`, session-level advisory locks (`pg_advisory_lock*`,
/// `pg_try_advisory_lock*`; the `_xact_` ones end with the transaction), dblink's
/// named connections.
fn postgres(w: &str, leads: bool) -> bool {
    (leads && any(w, PG_LEADS))
        || any(w, &["TEMP", "TEMPORARY", "SET_CONFIG"])
        || starts(
            w,
            &[
                "PG_TEMP",
                "PG_ADVISORY_LOCK",
                "PG_TRY_ADVISORY_LOCK",
                "DBLINK_CONNECT",
                "DBLINK_OPEN",
            ],
        )
}

/// SQLite: `PRAGMA` (most change the connection), `ATTACH`, temporary objects (`CREATE
/// TEMP …`, the `temp` schema) and extension loading.
fn sqlite(w: &str, leads: bool) -> bool {
    (leads && any(w, SQLITE_LEADS)) || any(w, &["TEMP", "TEMPORARY", "LOAD_EXTENSION"])
}

/// T-SQL session options, the words after `SET` that change the session (a `SET` in an
/// UPDATE is followed by a column; a column named like an option is a false positive).
const TSQL_SET_OPTIONS: &[&str] = &[
    "ARITHABORT",
    "ARITHIGNORE",
    "CONCAT_NULL_YIELDS_NULL",
    "CONTEXT_INFO",
    "CURSOR_CLOSE_ON_COMMIT",
    "DATEFIRST",
    "DATEFORMAT",
    "DEADLOCK_PRIORITY",
    "FIPS_FLAGGER",
    "FMTONLY",
    "FORCEPLAN",
    "IDENTITY_INSERT",
    "IMPLICIT_TRANSACTIONS",
    "LANGUAGE",
    "LOCK_TIMEOUT",
    "NOCOUNT",
    "NOEXEC",
    "NUMERIC_ROUNDABORT",
    "OFFSETS",
    "PARSEONLY",
    "QUERY_GOVERNOR_COST_LIMIT",
    "QUOTED_IDENTIFIER",
    "REMOTE_PROC_TRANSACTIONS",
    "ROWCOUNT",
    "STATISTICS",
    "TEXTSIZE",
    "TRANSACTION",
    "XACT_ABORT",
];

/// T-SQL, every word judged (statements need no `;`): `SET <option>`, `#temp` objects,
/// `USE`, `EXECUTE AS`/`REVERT`, cursors, `OPEN SYMMETRIC KEY`, `DBCC` (trace flags),
/// and the procedures that keep session state (application roles, application locks,
/// session context, API cursors and prepared handles).
fn tsql<'a>(w: &str, next: impl Fn() -> Option<&'a str>) -> bool {
    if w.starts_with('#') {
        return true;
    }
    if w.eq_ignore_ascii_case("SET") {
        return next()
            .is_some_and(|o| any(o, TSQL_SET_OPTIONS) || starts(o, &["ANSI_", "SHOWPLAN_"]));
    }
    if any(w, &["EXEC", "EXECUTE"]) {
        return next().is_some_and(|n| n.eq_ignore_ascii_case("AS"));
    }
    any(w, &["USE", "REVERT", "CURSOR", "OPEN", "DBCC", "SETUSER"])
        || starts(
            w,
            &[
                "SP_SETAPPROLE",
                "SP_GETAPPLOCK",
                "SP_SET_SESSION_CONTEXT",
                "SP_PREPARE",
                "SP_PREPEXEC",
                "SP_CURSOR",
            ],
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(sql: &str) -> bool {
        changes_session(sql, Dialect::Postgres)
    }

    fn lite(sql: &str) -> bool {
        changes_session(sql, Dialect::Sqlite)
    }

    fn ms(sql: &str) -> bool {
        changes_session(sql, Dialect::Mssql)
    }

    #[test]
    fn postgres_session_changes_are_found() {
        for sql in [
            "SET application_name = 'x'",
            "set search_path to s",
            "SET ROLE r",
            "SET SESSION AUTHORIZATION u",
            "RESET ALL",
            "SELECT 1; SET statement_timeout = 5",
            "SELECT set_config('application_name', 'x', false)",
            "CREATE TEMP TABLE t (a int)",
            "create local temporary table t (a int)",
            "CREATE TABLE pg_temp.t (a int)",
            "SELECT 1 INTO TEMP t",
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_try_advisory_lock_shared(1, 2)",
            "LISTEN chan",
            "PREPARE p AS SELECT 1",
            "DECLARE c CURSOR WITH HOLD FOR SELECT 1",
            "DISCARD ALL",
            "LOAD 'auto_explain'",
            "DO $$ BEGIN PERFORM 1; END $$",
            "/* c */ SET x.y = 1",
        ] {
            assert!(pg(sql), "{sql}");
        }
    }

    #[test]
    fn ordinary_postgres_statements_are_clean() {
        for sql in [
            "SELECT 1",
            "SELECT $1::int",
            "UPDATE t SET a = 1 WHERE b = 2",
            "INSERT INTO t VALUES ('SET ROLE x', 'temp')",
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT pg_try_advisory_xact_lock(1)",
            "SELECT \"temp\" FROM t -- SET x = 1",
            "CREATE FUNCTION f() RETURNS int SET search_path = s AS $$ SET x = 1 $$ LANGUAGE sql",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "ALTER ROLE r SET search_path = s",
        ] {
            assert!(!pg(sql), "{sql}");
        }
    }

    #[test]
    fn the_first_look_never_contradicts_the_lexer() {
        let corpus = [
            "SELECT id, a, b, c FROM bench_small_100000 WHERE id = $1",
            "select 1",
            "  SELECT 2",
            "UPDATE t SET a = 1",
            "INSERT INTO t VALUES ('SET ROLE x', 'temp')",
            "SELECT \"temp\" FROM t",
            "SELECT Set_Config('a', 'b', false)",
            "SELECT pg_advisory_xact_lock(1)",
            "SELECT PG_ADVISORY_LOCK(1)",
            "SELECT dblink_connect('c')",
            "SET x = 1",
            "set_x",
            "Do $$ BEGIN END $$",
            "DO$$ BEGIN END $$",
            "-- c\nSET x = 1",
            "(SELECT 1)",
            "SELECT 1; SET x = 1",
            "PRAGMA foreign_keys = 1",
            "pragma_x",
            "SELECT load_extension('x')",
            "INSERT INTO temp.t VALUES (1)",
            "SELECT 'é' FROM t",
            "",
        ];
        for sql in corpus {
            for (d, leads, anywhere) in [
                (Dialect::Postgres, PG_LEADS, PG_ANYWHERE),
                (Dialect::Sqlite, SQLITE_LEADS, SQLITE_ANYWHERE),
            ] {
                if surely_clean(sql, leads, anywhere) {
                    assert!(!lexed(sql, d), "{d:?}: the first look says clean: {sql}");
                }
            }
        }
        // The hot statement of the benchmark never reaches the lexer.
        assert!(surely_clean(corpus[0], PG_LEADS, PG_ANYWHERE));
        assert!(!surely_clean("SELECT temp FROM t", PG_LEADS, PG_ANYWHERE));
    }

    #[test]
    fn sqlite_session_changes_are_found() {
        for sql in [
            "PRAGMA foreign_keys = OFF",
            "ATTACH DATABASE 'x.db' AS x",
            "CREATE TEMP TABLE t (a)",
            "CREATE TEMPORARY VIEW v AS SELECT 1",
            "INSERT INTO temp.t VALUES (1)",
            "SELECT load_extension('x')",
            "SELECT 1; pragma query_only = 1",
        ] {
            assert!(lite(sql), "{sql}");
        }
        for sql in ["SELECT 1", "UPDATE t SET a = 1", "SELECT 'PRAGMA x'"] {
            assert!(!lite(sql), "{sql}");
        }
    }

    #[test]
    fn tsql_session_changes_are_found() {
        for sql in [
            "SET NOCOUNT ON",
            "SET ANSI_NULLS OFF",
            "set transaction isolation level serializable",
            "SET LANGUAGE French",
            "SELECT 1 SET LOCK_TIMEOUT 100",
            "CREATE TABLE #t (a int)",
            "SELECT * INTO ##g FROM t",
            "USE other_db",
            "EXECUTE AS USER = 'u'",
            "EXEC sp_setapprole 'r', 'p'",
            "EXEC sp_getapplock @Resource = 'x', @LockMode = 'Exclusive', @LockOwner = 'Session'",
            "EXEC sp_set_session_context N'k', 1",
            "DECLARE c CURSOR FOR SELECT 1",
            "DBCC TRACEON (3604)",
        ] {
            assert!(ms(sql), "{sql}");
        }
        for sql in [
            "SELECT 1",
            "UPDATE t SET a = 1",
            "DECLARE @x int SET @x = 1 SELECT @x",
            "EXEC dbo.proc 1",
            "SELECT '#t', [#x] FROM t",
        ] {
            assert!(!ms(sql), "{sql}");
        }
    }
}
