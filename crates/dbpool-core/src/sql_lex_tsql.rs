//! T-SQL, where statements need no `;` between them: every top-level word is judged,
//! with the next two words for context (`BEGIN TRAN` is a transaction, `BEGIN TRY` not).
use super::{is, savepoint, tx, Dialect, Lexer, Token, TxControl, TxControlKind};

/// T-SQL words that end a statement where a savepoint name could stand.
const TSQL_STATEMENT_WORDS: [&str; 24] = [
    "SELECT",
    "INSERT",
    "UPDATE",
    "DELETE",
    "MERGE",
    "IF",
    "ELSE",
    "END",
    "BEGIN",
    "COMMIT",
    "ROLLBACK",
    "SAVE",
    "SET",
    "DECLARE",
    "EXEC",
    "EXECUTE",
    "WHILE",
    "RETURN",
    "PRINT",
    "RAISERROR",
    "THROW",
    "WITH",
    "CREATE",
    "DROP",
];

/// The first refused transaction-control statement anywhere in a T-SQL batch.
pub(super) fn find_tsql(
    sql: &str,
    in_transaction: bool,
    refused: impl Fn(&TxControl) -> bool,
) -> Option<TxControl> {
    let mut lex = Lexer::new(sql, Dialect::Mssql);
    let mut first = true;
    while let Some(t) = lex.next() {
        let Token::Word(w) = t else {
            first = false;
            continue;
        };
        let mut ahead = lex.clone();
        let mut next_word = || match ahead.next() {
            Some(Token::Word(w)) => Some(w),
            _ => None,
        };
        let kw = |k: &str| w.eq_ignore_ascii_case(k);
        if first && (kw("CREATE") || kw("ALTER")) {
            // A module's body is the rest of the batch; defining it runs nothing.
            let mut next = next_word();
            if is(next, "OR") {
                next_word();
                next = next_word();
            }
            if ["PROC", "PROCEDURE", "FUNCTION", "TRIGGER"]
                .iter()
                .any(|k| is(next, k))
            {
                return None;
            }
        }
        first = false;
        let found = if kw("BEGIN") {
            let n = next_word();
            (is(n, "TRAN") || is(n, "TRANSACTION") || is(n, "DISTRIBUTED")).then_some(TxControl {
                statement: "BEGIN TRANSACTION",
                kind: TxControlKind::Transaction,
            })
        } else if kw("COMMIT") {
            tx("COMMIT TRANSACTION")
        } else if kw("ROLLBACK") {
            let n = next_word();
            let named = (is(n, "TRAN") || is(n, "TRANSACTION"))
                && next_word().is_some_and(|name| {
                    !TSQL_STATEMENT_WORDS
                        .iter()
                        .any(|k| name.eq_ignore_ascii_case(k))
                });
            // Inside a transaction the daemon began without a name, a named rollback
            // can only go back to a savepoint.
            if named && in_transaction {
                savepoint("ROLLBACK TRANSACTION TO SAVEPOINT")
            } else {
                tx("ROLLBACK TRANSACTION")
            }
        } else if kw("SAVE") {
            let n = next_word();
            (is(n, "TRAN") || is(n, "TRANSACTION")).then_some(TxControl {
                statement: "SAVE TRANSACTION",
                kind: TxControlKind::Savepoint,
            })
        } else if kw("SET") {
            // Implicit transactions leave every later statement's transaction open.
            let (opt, on) = (next_word(), next_word());
            ((is(opt, "IMPLICIT_TRANSACTIONS") || is(opt, "ANSI_DEFAULTS")) && is(on, "ON"))
                .then_some(TxControl {
                    statement: "SET IMPLICIT_TRANSACTIONS ON",
                    kind: TxControlKind::Transaction,
                })
        } else {
            None
        };
        if found.as_ref().is_some_and(&refused) {
            return found;
        }
    }
    None
}
