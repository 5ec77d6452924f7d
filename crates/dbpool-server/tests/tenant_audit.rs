//! The audit log over the real server: a line per call that changes something and per
//! refused call (no credentials, no right, a hidden pool, a quota), none for plain
//! reads, none holding a token; statements fingerprinted.
mod common;

use common::tenants::*;
use dbpool_config::AuditConfig;
use serde_json::Value;
use tonic::Code;

#[tokio::test]
async fn writes_and_refusals_are_audited_without_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.jsonl");
    let mut s = TenantServer::start(
        &["p", "hidden"],
        &[
            ("writer", "pools = { p = \"write\" }\n"),
            (
                "reader",
                "pools = { p = \"read\" }\n[quotas]\ncalls_per_second = 1\nburst = 1\n",
            ),
        ],
        |c| {
            c.audit = Some(AuditConfig {
                path: path.display().to_string(),
                statements: Default::default(),
            })
        },
    )
    .await;
    let mut w = s.client("writer").await;
    exec(&mut w, "p", "CREATE TABLE t (v INTEGER, name TEXT)")
        .await
        .unwrap();
    exec(&mut w, "p", "INSERT INTO t VALUES (42, 'secret name')")
        .await
        .unwrap();
    query(&mut w, "p", "SELECT v FROM t").await.unwrap();
    let e = query(&mut w, "hidden", "SELECT 1").await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    let mut r = s.client("reader").await;
    let e = exec(&mut r, "p", "DELETE FROM t WHERE v = 42")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied);
    let e = query(&mut r, "p", "SELECT 1").await.unwrap_err();
    assert_eq!(
        e.code(),
        Code::ResourceExhausted,
        "the burst of one was used"
    );
    let mut anon = s.client_with(Some("Bearer wrong-token-value".into())).await;
    assert_eq!(
        listed(&mut anon).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    // Stopped, the server has written every line.
    s.server.shutdown().await.unwrap().unwrap();

    let text = std::fs::read_to_string(&path).unwrap();
    for secret in [token("writer"), token("reader"), "wrong-token-value".into()] {
        assert!(!text.contains(&secret), "a token in the audit log");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let seen: Vec<(String, String, String, String)> = lines
        .iter()
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or("-").to_string();
            (s("tenant"), s("method"), s("code"), s("statement"))
        })
        .collect();
    let m = |name: &str| format!("dbpool.v1.PoolService/{name}");
    let expected = [
        (
            "writer",
            m("Execute"),
            "OK",
            "CREATE TABLE t (v INTEGER, name TEXT)",
        ),
        ("writer", m("Execute"), "OK", "INSERT INTO t VALUES (?)"),
        ("writer", m("Query"), "NOT_FOUND", "SELECT ?"),
        (
            "reader",
            m("Execute"),
            "PERMISSION_DENIED",
            "DELETE FROM t WHERE v = ?",
        ),
        ("reader", m("Query"), "RESOURCE_EXHAUSTED", "-"),
        ("-", m("ListPools"), "UNAUTHENTICATED", "-"),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(t, m, c, s)| (t.to_string(), m.clone(), c.to_string(), s.to_string()))
        .collect();
    assert_eq!(seen, expected, "{text}");
    let insert = &lines[1];
    assert_eq!(
        (insert["pool"].as_str(), insert["rows"].as_u64()),
        (Some("p"), Some(1))
    );
    assert_eq!(insert["principal"], "token");
    assert_eq!(lines[5]["principal"], "none");
    assert!(lines
        .iter()
        .all(|l| l["duration_ms"].as_f64().is_some() && l["ts"].is_string()));
}
