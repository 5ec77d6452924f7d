//! SQLite pools created at run time (CreatePool) are confined to the daemon's data
//! directory (`server.data_dir`): their file resolves inside it (relative paths there;
//! `..`, absolute paths elsewhere and symbolic links leading out refused), and on every
//! connection an authorizer refuses `ATTACH` of a file outside it (which `VACUUM INTO`
//! uses too) and `load_extension()`. Pools of the operator's config file may name any
//! path. The server passes the directory as the operator-only setting `confine_to_dir`.
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// The setting that confines a pool to a directory (set by the server, never a request).
pub const CONFINE_SETTING: &str = "confine_to_dir";

/// `path` resolved inside `dir` (created if missing): relative to it, or absolute and
/// under it; every part that exists already is followed and must stay inside. Returns
/// why not otherwise, for an INVALID_ARGUMENT naming the request's field. An in-memory
/// database (`:memory:`) opens no file and stays as it is.
pub fn confined_path(path: &Path, dir: &Path) -> Result<PathBuf, String> {
    if path == Path::new(":memory:") {
        return Ok(path.to_path_buf());
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("the data directory cannot be created: {e}"))?;
    let root = dir
        .canonicalize()
        .map_err(|e| format!("the data directory cannot be resolved: {e}"))?;
    let relative = if path.is_absolute() {
        path.strip_prefix(&root)
            .or_else(|_| path.strip_prefix(dir))
            .map_err(|_| outside("is an absolute path outside the data directory"))?
    } else {
        path
    };
    let mut at = root.clone();
    for part in relative.components() {
        match part {
            Component::Normal(p) => at.push(p),
            Component::CurDir => {}
            Component::ParentDir => return Err(outside("may not contain `..`")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(outside("is an absolute path outside the data directory"))
            }
        }
        match std::fs::symlink_metadata(&at) {
            // Exists: follow it (a symbolic link may lead anywhere) and check where.
            Ok(_) => {
                let real = at
                    .canonicalize()
                    .map_err(|e| format!("cannot be resolved: {e}"))?;
                if !real.starts_with(&root) {
                    return Err(outside(
                        "leads outside the data directory (a symbolic link)",
                    ));
                }
                at = real;
            }
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(format!("cannot be checked: {e}")),
        }
    }
    if at == root {
        return Err("names the data directory itself, not a file in it".into());
    }
    Ok(at)
}

fn outside(why: &str) -> String {
    format!(
        "{why}: a pool created at run time may only open SQLite files inside the \
         daemon's data directory (server.data_dir); relative paths resolve there"
    )
}

/// Installs the authorizer that keeps `conn` inside `dir`: ATTACH only of an absolute
/// path inside it (or an in-memory or temporary database), never `load_extension()`.
pub fn install(conn: &Connection, dir: PathBuf) -> rusqlite::Result<()> {
    conn.authorizer(Some(move |ctx: AuthContext<'_>| match ctx.action {
        AuthAction::Attach { filename } if attachable(filename, &dir) => Authorization::Allow,
        // An ATTACH whose file is not a string literal (a parameter, an expression)
        // reaches the authorizer without its name: refused too.
        AuthAction::Attach { .. } => Authorization::Deny,
        AuthAction::Unknown { code, .. } if code == rusqlite::ffi::SQLITE_ATTACH => {
            Authorization::Deny
        }
        AuthAction::Function { function_name }
            if function_name.eq_ignore_ascii_case("load_extension") =>
        {
            Authorization::Deny
        }
        _ => Authorization::Allow,
    }))
}

/// Whether ATTACH may open `filename`: a temporary (`''`) or in-memory database, or an
/// absolute path inside `dir` (a relative one would resolve against the daemon's working
/// directory; a `file:` URI could carry anything).
fn attachable(filename: &str, dir: &Path) -> bool {
    if filename.is_empty() || filename == ":memory:" {
        return true;
    }
    let path = Path::new(filename);
    path.is_absolute() && confined_path(path, dir).is_ok_and(|p| p == path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(r: Result<PathBuf, String>, want: &str) {
        let why = r.expect_err("refused");
        assert!(why.contains(want), "{why}");
    }

    #[test]
    fn paths_resolve_inside_the_directory_or_are_refused() {
        let data = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let root = data.path().canonicalize().unwrap();
        let inside = confined_path(Path::new("sub/app.db"), data.path()).unwrap();
        assert_eq!(inside, root.join("sub/app.db"));
        let abs = root.join("x.db");
        assert_eq!(confined_path(&abs, data.path()).unwrap(), abs);
        refused(confined_path(Path::new("../x.db"), data.path()), "`..`");
        refused(
            confined_path(Path::new("a/../../x.db"), data.path()),
            "`..`",
        );
        refused(
            confined_path(&other.path().join("x.db"), data.path()),
            "absolute path outside",
        );
        // A symbolic link inside that leads out.
        std::os::unix::fs::symlink(other.path(), root.join("link")).unwrap();
        refused(
            confined_path(Path::new("link/x.db"), data.path()),
            "symbolic link",
        );
        refused(
            confined_path(Path::new("."), data.path()),
            "data directory itself",
        );
        assert_eq!(
            confined_path(Path::new(":memory:"), data.path()).unwrap(),
            Path::new(":memory:")
        );
        // Nothing was created outside.
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
    }

    fn auth_denied(conn: &Connection, sql: &str) {
        let e = conn.execute_batch(sql).expect_err(sql);
        assert_eq!(
            e.sqlite_error_code(),
            Some(rusqlite::ErrorCode::AuthorizationForStatementDenied),
            "{sql}: {e}"
        );
    }

    #[test]
    fn attach_outside_vacuum_into_outside_and_extensions_are_refused() {
        let data = tempfile::tempdir().unwrap();
        let other = tempfile::tempdir().unwrap();
        let root = data.path().canonicalize().unwrap();
        let conn = Connection::open(root.join("main.db")).unwrap();
        install(&conn, root.clone()).unwrap();
        conn.execute_batch("CREATE TABLE t (a); INSERT INTO t VALUES (1)")
            .unwrap();
        let out = other.path().join("out.db");
        auth_denied(&conn, &format!("ATTACH '{}' AS o", out.display()));
        auth_denied(&conn, "ATTACH 'relative.db' AS o");
        auth_denied(&conn, &format!("ATTACH 'file:{}' AS o", out.display()));
        auth_denied(&conn, &format!("ATTACH '{}' || '' AS o", out.display()));
        auth_denied(&conn, &format!("VACUUM INTO '{}'", out.display()));
        // Refused when prepared, with SQLite's own message.
        let e = conn
            .execute_batch("SELECT load_extension('libm')")
            .unwrap_err();
        assert!(e.to_string().contains("not authorized"), "{e}");
        assert!(!out.exists());
        assert_eq!(std::fs::read_dir(other.path()).unwrap().count(), 0);
        // Inside the directory, in memory, and a plain VACUUM still work.
        conn.execute_batch(&format!("ATTACH '{}' AS i", root.join("in.db").display()))
            .unwrap();
        conn.execute_batch("ATTACH ':memory:' AS m; DETACH m; DETACH i; VACUUM")
            .unwrap();
        conn.execute_batch(&format!("VACUUM INTO '{}'", root.join("copy.db").display()))
            .unwrap();
        assert!(root.join("copy.db").exists());
    }
}
