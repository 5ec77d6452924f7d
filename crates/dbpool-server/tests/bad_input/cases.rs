//! The bad-input table: each case one hostile request (PoolService or Flight) and the
//! gRPC status code(s) it must get: the requests issue 15 lists, and what writing and
//! running the fuzz targets of fuzz/ turned up (cases named `fuzz (<target>)`).
use super::raw::{bytes_field, unary, varint_field};
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use futures::future::BoxFuture;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// What a case runs against: the daemon's pools `pg` (PostgreSQL, with table `t`) and
/// `redis` (default settings), over one client connection.
#[derive(Clone)]
pub struct Ctx {
    /// The client connection.
    pub ch: Channel,
}

impl Ctx {
    fn pools(&self) -> PoolServiceClient<Channel> {
        PoolServiceClient::new(self.ch.clone())
    }
}

/// One hostile request and the codes it may get.
pub struct Case {
    /// What is sent.
    pub name: &'static str,
    /// The acceptable status codes (`Ok` for a request that must succeed).
    pub expect: &'static [Code],
    /// Sends it; an extra check of the case that fails returns [`check_failed`].
    pub run: fn(Ctx) -> BoxFuture<'static, Result<(), Status>>,
}

/// A case's own check (a value, a message) failed: DATA_LOSS, a code no case expects.
pub fn check_failed(what: String) -> Status {
    Status::data_loss(format!("case check failed: {what}"))
}

macro_rules! case {
    ($name:expr, [$($code:ident),+], |$c:ident| $body:block) => {
        Case {
            name: $name,
            expect: &[$(Code::$code),+],
            run: |$c: Ctx| Box::pin(async move $body),
        }
    };
}
pub(crate) use case;

async fn query(c: &Ctx, r: pb::QueryRequest) -> Result<(), Status> {
    let mut s = c.pools().query(r).await?.into_inner();
    while s.message().await?.is_some() {}
    Ok(())
}

fn q(sql: impl Into<String>) -> pb::QueryRequest {
    pb::QueryRequest {
        pool_id: "pg".into(),
        sql: sql.into(),
        ..Default::default()
    }
}

async fn execute(c: &Ctx, pool: &str, sql: &str, tx: &str) -> Result<(), Status> {
    c.pools()
        .execute(pb::ExecuteRequest {
            pool_id: pool.into(),
            sql: sql.into(),
            transaction_id: tx.into(),
            ..Default::default()
        })
        .await
        .map(drop)
}

/// BeginTransaction on `pg` with the fields of `r`; the transaction's id.
async fn begin(c: &Ctx, r: pb::BeginTransactionRequest) -> Result<String, Status> {
    let r = pb::BeginTransactionRequest {
        pool_id: "pg".into(),
        ..r
    };
    Ok(c.pools()
        .begin_transaction(r)
        .await?
        .into_inner()
        .transaction_id)
}

/// Rolls `tx` back, whatever that answers (cleanup only).
async fn roll_back(c: &Ctx, tx: String) {
    let r = pb::EndTransactionRequest { transaction_id: tx };
    let _ = c.pools().rollback(r).await;
}

/// BeginTransaction on `pg` with the fields of `r`; rolled back if it began.
async fn begin_and_roll_back(c: &Ctx, r: pb::BeginTransactionRequest) -> Result<(), Status> {
    let tx = begin(c, r).await?;
    roll_back(c, tx).await;
    Ok(())
}

/// Runs `sql` inside a fresh interactive transaction on `pg`, then rolls it back.
async fn in_transaction(c: &Ctx, sql: &str) -> Result<(), Status> {
    let tx = begin(c, Default::default()).await?;
    let r = execute(c, "pg", sql, &tx).await;
    roll_back(c, tx).await;
    r
}

/// Sends a hand-encoded request `body` to PoolService method `path`.
async fn raw(c: &Ctx, path: &'static str, body: Vec<u8>) -> Result<(), Status> {
    unary(&c.ch, path, body).await.map(drop)
}

/// CreatePool, then RemovePool whatever happened (a case must not leave pools behind).
async fn create_pool(c: &Ctx, r: pb::CreatePoolRequest) -> Result<String, Status> {
    let id = r.pool_id.clone();
    let out = c.pools().create_pool(r).await;
    if out.is_ok() {
        let _ = c
            .pools()
            .remove_pool(pb::RemovePoolRequest { pool_id: id })
            .await;
    }
    out.map(|_| String::new())
}

fn redis_pool(id: &str, url: &str, settings: &[(&str, &str)]) -> pb::CreatePoolRequest {
    pb::CreatePoolRequest {
        pool_id: id.into(),
        url: url.into(),
        lazy: true,
        settings: settings
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// CreatePool (then RemovePool) of a lazy Redis pool `id` with one setting.
async fn create_redis(c: &Ctx, id: &str, setting: (&str, &str)) -> Result<(), Status> {
    let r = redis_pool(id, "redis://127.0.0.1:6379/0", &[setting]);
    create_pool(c, r).await.map(drop)
}

fn param() -> pb::Param {
    pb::Param {
        value: Some(pb::param::Value::Int64(1)),
    }
}

/// Every case, in the order they run.
pub fn all() -> Vec<Case> {
    let mut cases = vec![
        case!(
            "Query SELECT 0.001::numeric(3,5) on PostgreSQL: the exact value",
            [Ok],
            |c| {
                let v = super::query_text(&c.ch, "SELECT 0.001::numeric(3,5) AS v").await?;
                if v.trim_end_matches('0') != "0.001" {
                    return Err(check_failed(format!("got `{v}`, not 0.00100")));
                }
                Ok(())
            }
        ),
        case!(
            "Execute BEGIN inside a transaction",
            [InvalidArgument],
            |c| { in_transaction(&c, "BEGIN").await }
        ),
        case!(
            "Execute `BEGIN; SELECT 1` inside a transaction",
            [InvalidArgument],
            |c| { in_transaction(&c, "BEGIN; SELECT 1").await }
        ),
        case!(
            "Execute COMMIT inside a transaction",
            [InvalidArgument],
            |c| { in_transaction(&c, "COMMIT").await }
        ),
        case!("Query batch_size 4294967295", [InvalidArgument], |c| {
            query(
                &c,
                pb::QueryRequest {
                    batch_size: u32::MAX,
                    ..q("SELECT 1")
                },
            )
            .await
        }),
        case!("Query with 70,000 params", [InvalidArgument], |c| {
            query(
                &c,
                pb::QueryRequest {
                    params: vec![param(); 70_000],
                    ..q("SELECT $1::int8")
                },
            )
            .await
        }),
        case!(
            "ExecuteBatch of 20,000 statements",
            [InvalidArgument],
            |c| {
                let st = pb::Statement {
                    sql: "SELECT 1".into(),
                    params: vec![],
                };
                c.pools()
                    .execute_batch(pb::ExecuteBatchRequest {
                        pool_id: "pg".into(),
                        statements: vec![st; 20_000],
                        transaction: false,
                    })
                    .await
                    .map(drop)
            }
        ),
        case!("Query with 2 MiB of SQL", [InvalidArgument], |c| {
            let sql = format!("SELECT 1 -- {}", "x".repeat(2 * 1024 * 1024));
            query(&c, q(sql)).await
        }),
        case!(
            "Query on a pool id of 10,000 chars: message under 1 KiB",
            [InvalidArgument, NotFound],
            |c| {
                let r = query(
                    &c,
                    pb::QueryRequest {
                        pool_id: "p".repeat(10_000),
                        ..q("SELECT 1")
                    },
                )
                .await;
                match r {
                    Err(s) if s.message().len() >= 1024 => Err(check_failed(format!(
                        "{:?} with a message of {} bytes",
                        s.code(),
                        s.message().len()
                    ))),
                    other => other,
                }
            }
        ),
        case!(
            "BeginTransaction idle_timeout_ms 18446744073709551615",
            [InvalidArgument],
            |c| {
                let r = pb::BeginTransactionRequest {
                    idle_timeout_ms: u64::MAX,
                    ..Default::default()
                };
                begin_and_roll_back(&c, r).await
            }
        ),
        case!(
            "CreatePool field form with port 70968",
            [InvalidArgument],
            |c| {
                create_pool(
                    &c,
                    pb::CreatePoolRequest {
                        pool_id: "bad_port".into(),
                        db_type: "postgresql".into(),
                        host: "127.0.0.1".into(),
                        port: 70_968,
                        lazy: true,
                        ..Default::default()
                    },
                )
                .await
                .map(drop)
            }
        ),
        case!(
            "Execute with invalid UTF-8 in `sql` (hand-encoded)",
            [InvalidArgument],
            |c| {
                let body = [bytes_field(1, b"pg"), bytes_field(2, b"SELECT '\xff\xfe'")].concat();
                raw(&c, "/dbpool.v1.PoolService/Execute", body).await
            }
        ),
        case!(
            "CreatePool with invalid UTF-8 in `pool_id` (hand-encoded)",
            [InvalidArgument],
            |c| {
                let body = [
                    bytes_field(1, b"bad\xc3\x28id"),
                    bytes_field(2, b"redis://127.0.0.1:6379/0"),
                    varint_field(10, 1),
                ]
                .concat();
                raw(&c, "/dbpool.v1.PoolService/CreatePool", body).await
            }
        ),
        case!(
            "Execute with undecodable protobuf (field length past the end)",
            [InvalidArgument],
            |c| {
                let body = vec![0x12, 0xff, 0xff, 0xff, 0x0f, b'S'];
                raw(&c, "/dbpool.v1.PoolService/Execute", body).await
            }
        ),
        case!(
            "BeginTransaction with undecodable protobuf (wire type 7)",
            [InvalidArgument],
            |c| {
                raw(
                    &c,
                    "/dbpool.v1.PoolService/BeginTransaction",
                    vec![0x0f, 0x01],
                )
                .await
            }
        ),
        case!("Query with format = 99", [InvalidArgument], |c| {
            query(
                &c,
                pb::QueryRequest {
                    format: 99,
                    ..q("SELECT 1")
                },
            )
            .await
        }),
        case!(
            "BeginTransaction with isolation = 42",
            [InvalidArgument],
            |c| {
                let r = pb::BeginTransactionRequest {
                    isolation: 42,
                    ..Default::default()
                };
                begin_and_roll_back(&c, r).await
            }
        ),
        case!(
            "CreatePool Redis with settings.denied_commands = \"\"",
            [InvalidArgument],
            |c| { create_redis(&c, "r_deny_none", ("denied_commands", "")).await }
        ),
        case!(
            "CreatePool Redis with settings.allowed_commands = \"CONFIG\"",
            [InvalidArgument],
            |c| { create_redis(&c, "r_allow_cfg", ("allowed_commands", "CONFIG")).await }
        ),
        case!(
            "Execute FLUSHALL on a default Redis pool",
            [PermissionDenied],
            |c| { execute(&c, "redis", "FLUSHALL", "").await }
        ),
        case!(
            "Execute CONFIG SET on a default Redis pool",
            [PermissionDenied],
            |c| { execute(&c, "redis", "CONFIG SET maxmemory-policy noeviction", "").await }
        ),
        case!(
            "Execute DEBUG SLEEP 0 on a default Redis pool",
            [PermissionDenied],
            |c| { execute(&c, "redis", "DEBUG SLEEP 0", "").await }
        ),
        case!(
            "CreatePool tls_ca_file=/etc/passwd and =/nonexistent: one message",
            [InvalidArgument],
            |c| {
                let url = "rediss://127.0.0.1:6379/0";
                let a = create_pool(
                    &c,
                    redis_pool("r_ca_a", url, &[("tls_ca_file", "/etc/passwd")]),
                )
                .await;
                let b = create_pool(
                    &c,
                    redis_pool("r_ca_b", url, &[("tls_ca_file", "/nonexistent")]),
                )
                .await;
                match (a, b) {
                    (Err(a), Err(b)) if a.code() == b.code() && a.message() != b.message() => {
                        Err(check_failed(format!(
                            "the messages tell the files apart: `{}` / `{}`",
                            a.message(),
                            b.message()
                        )))
                    }
                    (Err(a), Err(b)) if a.code() != b.code() => Err(check_failed(format!(
                        "codes differ: {:?} / {:?}",
                        a.code(),
                        b.code()
                    ))),
                    (Ok(_), Err(_)) | (Err(_), Ok(_)) => Err(check_failed(
                        "one CA file was refused, the other accepted".into(),
                    )),
                    (a, b) => a.and(b).map(drop),
                }
            }
        ),
        case!(
            "More pools than server.limits.max_pools",
            [ResourceExhausted],
            |c| {
                let mk = |id: &str| redis_pool(id, "redis://127.0.0.1:6379/0", &[]);
                // The config holds 2 pools and allows 3: the first fits, the second does not.
                let first = c.pools().create_pool(mk("extra_a")).await;
                let second = c.pools().create_pool(mk("extra_b")).await;
                for id in ["extra_a", "extra_b"] {
                    let _ = c
                        .pools()
                        .remove_pool(pb::RemovePoolRequest { pool_id: id.into() })
                        .await;
                }
                first?;
                second.map(drop)
            }
        ),
    ];
    cases.extend(super::flight_cases::all());
    cases
}
