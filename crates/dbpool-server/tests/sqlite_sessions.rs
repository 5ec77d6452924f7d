//! Issue 17 for SQLite, end to end: a pool created at run time opens files only inside
//! the daemon's data directory (`..`, absolute paths and symbolic links leading out are
//! refused, nothing is created there; a relative path lands inside), ATTACH outside it
//! and VACUUM INTO outside are refused; and on a one-connection pool a PRAGMA, a
//! temporary table or an attached database of caller A is gone for caller B.
mod common;

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use common::*;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use std::path::{Path, PathBuf};
use tonic::transport::Channel;
use tonic::Code;
use tonic_types::StatusExt;

type Client = PoolServiceClient<Channel>;

/// A daemon whose data directory the test knows.
async fn server_in(data: &Path) -> (TestServer, Client) {
    let dir = data.to_path_buf();
    let server = TestServer::start_with(&[], move |c| c.server.data_dir = dir).await;
    let c = server.pools().await;
    (server, c)
}

async fn create(c: &mut Client, id: &str, url: &str) -> Result<pb::PoolInfo, tonic::Status> {
    create_pool_of_one(c, id, url).await
}

fn assert_invalid_field(r: Result<impl std::fmt::Debug, tonic::Status>, field: &str, want: &str) {
    let e = r.expect_err(want);
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    let info = e.get_details_error_info().expect("ErrorInfo");
    assert_eq!(info.metadata["field"], field, "{e:?}");
    assert!(e.message().contains(want), "{e:?}");
}

fn entries(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[tokio::test]
async fn a_runtime_pool_outside_the_data_directory_is_refused_and_nothing_is_created() {
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (_server, mut c) = server_in(data.path()).await;
    let abs = outside.path().join("sub/evil.db");
    let r = create(&mut c, "abs", &format!("sqlite://{}", abs.display())).await;
    assert_invalid_field(r, "url", "outside the data directory");
    let r = create(&mut c, "up", "sqlite://../../evil.db").await;
    assert_invalid_field(r, "url", "`..`");
    let root = data.path().canonicalize().unwrap();
    std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
    let r = create(&mut c, "link", "sqlite://link/evil.db").await;
    assert_invalid_field(r, "url", "symbolic link");
    // The field form names its field.
    let r = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "fields".into(),
            db_type: "sqlite".into(),
            database: abs.display().to_string(),
            ..Default::default()
        })
        .await;
    assert_invalid_field(r, "database", "outside the data directory");
    assert_eq!(entries(outside.path()), 0, "something was created outside");
    // A request may not set the confinement itself.
    let r = c
        .create_pool(pb::CreatePoolRequest {
            pool_id: "unconfined".into(),
            url: "sqlite://x.db".into(),
            settings: [("confine_to_dir".to_string(), "/".to_string())].into(),
            ..Default::default()
        })
        .await;
    assert_invalid_field(r, "settings.confine_to_dir", "config file");
}

#[tokio::test]
async fn a_relative_path_lands_inside_the_data_directory() {
    let data = tempfile::tempdir().unwrap();
    let (_server, mut c) = server_in(data.path()).await;
    create(&mut c, "rel", "sqlite://nested/app.db")
        .await
        .unwrap();
    execute(&mut c, "rel", "CREATE TABLE t (a)").await.unwrap();
    let file: PathBuf = data.path().canonicalize().unwrap().join("nested/app.db");
    assert!(file.exists(), "{} was not created", file.display());
}

async fn int(c: &mut Client, pool: &str, sql: &str) -> i64 {
    let b = query_ipc(c, pool, sql, vec![])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    b[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test]
async fn attach_and_vacuum_into_outside_the_data_directory_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let (_server, mut c) = server_in(data.path()).await;
    create(&mut c, "lite", "sqlite://app.db").await.unwrap();
    execute(&mut c, "lite", "CREATE TABLE t (a)").await.unwrap();
    let out = outside.path().join("stolen.db");
    for sql in [
        format!("ATTACH DATABASE '{}' AS o", out.display()),
        "ATTACH DATABASE 'relative.db' AS o".to_string(),
        format!("VACUUM INTO '{}'", out.display()),
    ] {
        let e = execute(&mut c, "lite", &sql).await.expect_err(&sql);
        assert_eq!(e.code(), Code::PermissionDenied, "{sql}: {e:?}");
        assert!(e.message().contains("outside the data directory"), "{e:?}");
    }
    // Refused when the statement is prepared, with SQLite's own message.
    let sql = "SELECT load_extension('libm')";
    let e = execute(&mut c, "lite", sql).await.expect_err(sql);
    assert!(
        e.message()
            .contains("not authorized to use function: load_extension"),
        "{e:?}"
    );
    assert_eq!(entries(outside.path()), 0, "something was created outside");
    // Inside the directory ATTACH works.
    let inside = data.path().canonicalize().unwrap().join("other.db");
    execute(
        &mut c,
        "lite",
        &format!("ATTACH DATABASE '{}' AS i", inside.display()),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn pragmas_temp_tables_and_attachments_do_not_reach_the_next_caller() {
    let data = tempfile::tempdir().unwrap();
    let (_server, mut c) = server_in(data.path()).await;
    create(&mut c, "lite", "sqlite://clean.db").await.unwrap();
    let fk = "SELECT foreign_keys AS v FROM pragma_foreign_keys";
    assert_eq!(int(&mut c, "lite", fk).await, 1);
    execute(&mut c, "lite", "PRAGMA foreign_keys = OFF")
        .await
        .unwrap();
    assert_eq!(int(&mut c, "lite", fk).await, 1, "the PRAGMA leaked");
    execute(&mut c, "lite", "CREATE TEMP TABLE leaked (a)")
        .await
        .unwrap();
    let temp = "SELECT count(*) AS n FROM temp.sqlite_master WHERE name = 'leaked'";
    assert_eq!(int(&mut c, "lite", temp).await, 0, "the temp table leaked");
    let other = data.path().canonicalize().unwrap().join("other.db");
    execute(
        &mut c,
        "lite",
        &format!("ATTACH DATABASE '{}' AS a", other.display()),
    )
    .await
    .unwrap();
    let attached = "SELECT count(*) AS n FROM pragma_database_list WHERE name = 'a'";
    assert_eq!(
        int(&mut c, "lite", attached).await,
        0,
        "the attachment leaked"
    );
}

/// The operator's config file may still name any path.
#[tokio::test]
async fn a_config_file_pool_may_name_any_path() {
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("operator.db");
    let url = format!("sqlite://{}", file.display());
    let server = TestServer::start(&[("op", &url)]).await;
    let mut c = server.pools().await;
    execute(&mut c, "op", "CREATE TABLE t (a)").await.unwrap();
    assert!(file.exists());
}
