//! Failed calls as the client and the operator see them, against the real daemon binary:
//! the status code, the ErrorInfo reason and cause, and a warning log line that names the
//! pool, the method and the code with no traces turned on.
//! Needs `target/debug/dbpool` (and nothing listening on 127.0.0.1 port 1).
#[path = "common/daemon.rs"]
mod daemon;

use daemon::Daemon;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

/// How long the daemon gets to write a log line.
const LOG_WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn an_unreachable_database_is_unavailable_and_logged_with_pool_method_and_code() {
    let daemon = Daemon::start(None);
    let mut pools = PoolServiceClient::new(daemon.channel().await);
    pools
        .create_pool(pb::CreatePoolRequest {
            pool_id: "down".into(),
            // Nothing listens on port 1; the password must never show up anywhere.
            url: "postgres://app:s3cret-pw@127.0.0.1:1/app".into(),
            lazy: true,
            ..Default::default()
        })
        .await
        .unwrap();
    let e = pools
        .query(pb::QueryRequest {
            pool_id: "down".into(),
            sql: "SELECT 1".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    let info = e.get_details_error_info().unwrap();
    assert_eq!(info.reason, "DATABASE_UNAVAILABLE");
    assert_eq!(info.metadata["cause"], "CONNECT");
    assert!(!e.message().contains("s3cret-pw"), "{}", e.message());
    let line = daemon
        .wait_for_line(
            &[
                "call failed",
                "pool=down",
                "method=dbpool.v1.PoolService/Query",
                "code=\"UNAVAILABLE\"",
            ],
            LOG_WAIT,
        )
        .unwrap_or_else(|| panic!("no such log line in:\n{}", daemon.log_tail()));
    assert!(line.contains("WARN"), "{line}");

    // A write is never retried, and its failure names its own method.
    let e = pools
        .execute(pb::ExecuteRequest {
            pool_id: "down".into(),
            sql: "DELETE FROM t".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    daemon
        .wait_for_line(
            &[
                "call failed",
                "pool=down",
                "method=dbpool.v1.PoolService/Execute",
            ],
            LOG_WAIT,
        )
        .unwrap_or_else(|| panic!("no such log line in:\n{}", daemon.log_tail()));
    let leak = daemon.wait_for_line(&["s3cret-pw"], Duration::ZERO);
    assert!(leak.is_none(), "the password was logged: {leak:?}");
}
