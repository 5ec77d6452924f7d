//! The bad-input corpus (issue 15) against the real daemon binary: every hostile request
//! of `bad_input/cases.rs` gets its expected gRPC status, the daemon answers a normal
//! call right after each, and after every case ran several times its resident memory is
//! within a stated bound of the warmed-up baseline ("holds no extra memory").
//! Needs PostgreSQL and Redis (the test services) and `target/debug/dbpool`.
#[path = "bad_input/cases.rs"]
mod cases;
#[path = "common/daemon.rs"]
mod daemon;
#[path = "bad_input/flight_cases.rs"]
mod flight_cases;
#[path = "bad_input/raw.rs"]
mod raw;

use arrow::util::display::{ArrayFormatter, FormatOptions};
use cases::Ctx;
use daemon::Daemon;
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_testkit::PgDb;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::{Code, Status};

/// Rounds over every case before the baseline is taken: the first checks the codes; by
/// the end of the second the allocator holds what the largest requests need.
const WARMUP: usize = 2;
/// Rounds over every case after the baseline.
const ROUNDS: usize = 3;
/// Growth of resident memory over the baseline that still counts as "no extra memory":
/// a leak of the 2 MiB SQL or the 70,000 params per call would pass it within the rounds.
const MEMORY_BOUND: u64 = 32 * 1024 * 1024;
/// Longest a case may take (the 20,000-statement batch runs them when unbounded).
const CASE_TIMEOUT: Duration = Duration::from_secs(60);
/// Pools the daemon may hold: `pg` and `redis` from the config, one more by CreatePool.
const MAX_POOLS: usize = 3;

/// The first column of the first row of `sql` on `pg`, as text.
pub async fn query_text(ch: &Channel, sql: &str) -> Result<String, Status> {
    let mut stream = PoolServiceClient::new(ch.clone())
        .query(pb::QueryRequest {
            pool_id: "pg".into(),
            sql: sql.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(msg) = stream.message().await? {
        if let Some(pb::query_response::Payload::ArrowIpc(b)) = msg.payload {
            bytes.extend(b);
        }
    }
    let reader = arrow::ipc::reader::StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| Status::internal(format!("not Arrow IPC: {e}")))?;
    for batch in reader {
        let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
        if batch.num_rows() > 0 {
            let f = ArrayFormatter::try_new(batch.column(0), &FormatOptions::default())
                .map_err(|e| Status::internal(e.to_string()))?;
            return Ok(f.value(0).to_string());
        }
    }
    Err(Status::internal(format!("`{sql}` returned no rows")))
}

fn config(pg_url: &str) -> String {
    format!(
        "[server.limits]\nmax_pools = {MAX_POOLS}\n\n\
         [pools.pg]\nurl = \"{pg_url}\"\nmax_connections = 4\n\n\
         [pools.redis]\nurl = \"redis://127.0.0.1:6379/0\"\n"
    )
}

/// The normal call every case is followed by.
async fn answers_normally(ch: &Channel) -> Result<(), String> {
    match tokio::time::timeout(CASE_TIMEOUT, query_text(ch, "SELECT 41 + 1")).await {
        Ok(Ok(v)) if v == "42" => Ok(()),
        Ok(Ok(v)) => Err(format!("SELECT 41 + 1 returned {v}")),
        Ok(Err(s)) => Err(format!(
            "SELECT 41 + 1 failed: {:?} {}",
            s.code(),
            s.message()
        )),
        Err(_) => Err("SELECT 41 + 1 timed out".into()),
    }
}

fn short(s: &str) -> String {
    let cut: String = s.chars().take(200).collect();
    if cut.len() < s.len() {
        format!("{cut}… ({} bytes)", s.len())
    } else {
        cut
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_status_and_the_daemon_carries_on() {
    let db = PgDb::create().await;
    db.exec("CREATE TABLE t (id int8, name text)").await;
    let cfg = config(&db.url);
    let mut d = Daemon::start(Some(&cfg));
    let mut ctx = Ctx {
        ch: d.channel().await,
    };
    let cases = cases::all();
    let mut failures: Vec<String> = Vec::new();
    let mut baseline = 0;
    for round in 0..WARMUP + ROUNDS {
        for case in &cases {
            let got = tokio::time::timeout(CASE_TIMEOUT, (case.run)(ctx.clone())).await;
            let outcome = match &got {
                Ok(Ok(())) => Ok(Code::Ok),
                Ok(Err(s)) => Err((s.code(), short(s.message()))),
                Err(_) => Err((Code::DeadlineExceeded, "the case timed out".to_string())),
            };
            let code = *outcome.as_ref().unwrap_or_else(|(c, _)| c);
            if round == 0 && !case.expect.contains(&code) {
                failures.push(format!(
                    "{}: expected {:?}, got {:?}{}",
                    case.name,
                    case.expect,
                    code,
                    outcome
                        .err()
                        .map(|(_, m)| format!(" `{m}`"))
                        .unwrap_or_default()
                ));
            }
            // The daemon is up and serves the next call; a crash is a failure of the
            // case, and the rest run against a new daemon.
            if let Some(exit) = d.exited() {
                failures.push(format!(
                    "{}: the daemon died ({exit}): {}",
                    case.name,
                    d.log_tail()
                ));
                d = Daemon::start(Some(&cfg));
                ctx.ch = d.channel().await;
                baseline = 0;
            } else if let Err(e) = answers_normally(&ctx.ch).await {
                failures.push(format!("{}: the next call did not work: {e}", case.name));
            }
        }
        if round + 1 == WARMUP {
            baseline = d.rss();
        }
    }
    let grown = d.rss().saturating_sub(baseline);
    eprintln!(
        "bad_input: {} cases × {} rounds; resident memory {} MiB over the warmed-up baseline of {} MiB",
        cases.len(),
        ROUNDS,
        grown / (1024 * 1024),
        baseline / (1024 * 1024)
    );
    if baseline > 0 && grown >= MEMORY_BOUND {
        failures.push(format!(
            "resident memory grew by {grown} bytes over {ROUNDS} rounds (bound {MEMORY_BOUND})"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
