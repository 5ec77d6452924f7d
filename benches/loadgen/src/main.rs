//! `loadgen`: N concurrent clients run `SELECT … WHERE id = $1` for a fixed time through
//! the sidecar (gRPC Query or Flight DoGet), directly (tokio-postgres + bb8) or through
//! PgBouncer, and print one JSON line: QPS, p50/p99 latency and CPU per query.
//!
//! Lean on purpose: on the benchmark machine it shares the cores with the daemon and
//! PostgreSQL, so every client is a task on one small runtime and latencies go to a
//! per-task `Vec<u32>` of microseconds, merged once at the end.
use anyhow::{bail, ensure, Context, Result};
use arrow::datatypes::Schema;
use arrow::ipc::reader::StreamReader;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::utils::flight_data_to_arrow_batch;
use arrow_flight::Ticket;
use bb8_postgres::PostgresConnectionManager;
use clap::{Parser, ValueEnum};
use dbpool_proto::v1 as pb;
use prost::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_postgres::types::Type;
use tokio_postgres::NoTls;
use tonic::transport::{Channel, Endpoint};

/// What the clients talk to.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Mode {
    /// The sidecar's `PoolService/Query` (Arrow IPC chunks, decoded here).
    Grpc,
    /// The sidecar's Flight `DoGet` with a `google.protobuf.Any`-wrapped `QueryTicket`.
    Flight,
    /// tokio-postgres with a bb8 pool in this process.
    Direct,
    /// Same as `direct`, pointed at PgBouncer (transaction mode).
    Pgbouncer,
}

/// Command line.
#[derive(Parser, Debug)]
struct Args {
    /// grpc | flight | direct | pgbouncer
    #[arg(long, value_enum)]
    mode: Mode,
    /// Sidecar endpoint (grpc, flight), e.g. http://127.0.0.1:50051, or a Unix domain
    /// socket: unix:/path/dbpool.sock.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    endpoint: String,
    /// PostgreSQL URL (direct, pgbouncer).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/dbpool_bench"
    )]
    url: String,
    /// Sidecar pool id.
    #[arg(long, default_value = "pg")]
    pool_id: String,
    /// Concurrent clients (tasks).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Warm-up seconds: connections are opened and caches warmed, nothing is recorded.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Pool size of the direct / pgbouncer modes (the sidecar's own is in its config).
    #[arg(long, default_value_t = 20)]
    pool: u32,
    /// HTTP/2 connections to the sidecar, shared round-robin by the clients.
    #[arg(long, default_value_t = 1)]
    connections: usize,
    /// Rows in the table; ids are drawn from 1..=rows.
    #[arg(long, default_value_t = 100_000)]
    rows: i64,
    /// Table queried by id.
    #[arg(long, default_value = "bench_small")]
    table: String,
    /// Also report the CPU of this process (daemon, pgbouncer), from /proc/<pid>/stat.
    #[arg(long)]
    server_pid: Option<u32>,
    /// The `mode` written in the result line (default: the mode's name), e.g. to tell
    /// two sidecar pools apart.
    #[arg(long)]
    label: Option<String>,
    /// direct / pgbouncer: take connections from the bb8 pool first come, first served
    /// (a FIFO semaphore in front of it, as the daemon's pools do). Plain bb8 lets a task
    /// that just returned a connection take it straight back, and some clients starve.
    #[arg(long)]
    fair: bool,
    /// Every Nth query of each client (0: none) also changes its session: the same
    /// lookup with `set_config('application_name', …)` in its WHERE clause, so the
    /// sidecar resets that connection before reusing it (issue 17, dirty sessions).
    #[arg(long, default_value_t = 0)]
    dirty_every: u64,
    /// Runtime worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// A bearer token sent on every sidecar call (`authorization: Bearer …`), for a
    /// daemon with tenants.
    #[arg(long)]
    token: Option<String>,
}

/// `req` with the `authorization` header of `--token`, when given.
fn authorized<T>(args: &Args, req: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(req);
    if let Some(t) = &args.token {
        let v = format!("Bearer {t}")
            .parse()
            .expect("a token fit for a header");
        r.metadata_mut().insert("authorization", v);
    }
    r
}

/// One way of running the query; cheap to clone, one clone per client task.
#[derive(Clone)]
enum Target {
    Grpc(pb::pool_service_client::PoolServiceClient<Channel>),
    Flight(FlightServiceClient<Channel>),
    Pg(
        bb8::Pool<PostgresConnectionManager<NoTls>>,
        Option<Arc<tokio::sync::Semaphore>>,
    ),
}

/// Clock ticks per second of /proc/*/stat (`CLK_TCK`, 100 on every Linux we run on).
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `pid` (`self` for this process) in milliseconds.
fn cpu_ms(pid: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').context("bad /proc stat")? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>()? + f[12].parse::<f64>()?;
    Ok(ticks * 1000.0 / TICKS_PER_SEC)
}

/// CPU milliseconds of every PostgreSQL process (postmaster, backends, background
/// workers), summed from /proc; processes that exit in between are not counted.
fn postgres_cpu_ms() -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    dir.filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim_end() == "postgres")
        })
        .filter_map(|pid| cpu_ms(&pid).ok())
        .sum()
}

/// A channel to `endpoint`: `http://host:port` over TCP, or `unix:/path` over a Unix
/// domain socket (tonic dials TCP itself; a socket needs a connector).
async fn channel(endpoint: &str) -> Result<Channel> {
    let Some(path) = endpoint.strip_prefix("unix:") else {
        return Ok(Endpoint::from_shared(endpoint.to_string())?
            .tcp_nodelay(true)
            .connect()
            .await?);
    };
    let path = std::path::PathBuf::from(path.strip_prefix("//").unwrap_or(path));
    // The URI is not dialled: the connector opens the socket for every connection.
    Ok(Endpoint::from_static("http://localhost")
        .connect_with_connector(UnixConnector(Arc::new(path)))
        .await?)
}

/// Opens a Unix domain socket for each connection of a channel.
#[derive(Clone)]
struct UnixConnector(Arc<std::path::PathBuf>);

impl tonic::codegen::Service<tonic::codegen::http::Uri> for UnixConnector {
    type Response = hyper_util::rt::TokioIo<tokio::net::UnixStream>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = std::io::Result<Self::Response>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: tonic::codegen::http::Uri) -> Self::Future {
        let path = self.0.clone();
        Box::pin(async move {
            let s = tokio::net::UnixStream::connect(&*path).await?;
            Ok(hyper_util::rt::TokioIo::new(s))
        })
    }
}

impl Target {
    async fn connect(args: &Args) -> Result<Vec<Target>> {
        match args.mode {
            Mode::Grpc | Mode::Flight => {
                let mut out = Vec::new();
                for _ in 0..args.connections.max(1) {
                    let ch = channel(&args.endpoint)
                        .await
                        .with_context(|| format!("connecting to {}", args.endpoint))?;
                    out.push(match args.mode {
                        Mode::Grpc => Target::Grpc(
                            pb::pool_service_client::PoolServiceClient::new(ch)
                                .max_decoding_message_size(64 << 20),
                        ),
                        _ => Target::Flight(FlightServiceClient::new(ch)),
                    });
                }
                Ok(out)
            }
            Mode::Direct | Mode::Pgbouncer => {
                let mgr = PostgresConnectionManager::new_from_stringlike(&args.url, NoTls)?;
                let pool = bb8::Pool::builder()
                    .max_size(args.pool)
                    .min_idle(Some(args.pool))
                    .build(mgr)
                    .await?;
                let turns = args
                    .fair
                    .then(|| Arc::new(tokio::sync::Semaphore::new(args.pool as usize)));
                Ok(vec![Target::Pg(pool, turns)])
            }
        }
    }

    /// Runs the query for `id`; returns the number of rows it got back.
    async fn run(&mut self, args: &Args, sql: &str, id: i64) -> Result<usize> {
        match self {
            Target::Grpc(c) => {
                let req = pb::QueryRequest {
                    pool_id: args.pool_id.clone(),
                    sql: sql.to_owned(),
                    params: vec![param(id)],
                    ..Default::default()
                };
                let mut stream = c.query(authorized(args, req)).await?.into_inner();
                let mut ipc = Vec::new();
                while let Some(msg) = stream.message().await? {
                    if let Some(pb::query_response::Payload::ArrowIpc(b)) = msg.payload {
                        ipc.extend_from_slice(&b);
                    }
                }
                let mut n = 0;
                for batch in StreamReader::try_new(std::io::Cursor::new(ipc), None)? {
                    n += batch?.num_rows();
                }
                Ok(n)
            }
            Target::Flight(c) => {
                let ticket = pb::QueryTicket {
                    pool_id: args.pool_id.clone(),
                    sql: sql.to_owned(),
                    params: vec![param(id)],
                    ..Default::default()
                };
                let any = prost_types::Any {
                    type_url: "type.googleapis.com/dbpool.v1.QueryTicket".into(),
                    value: ticket.encode_to_vec(),
                };
                let mut data = c
                    .do_get(authorized(args, Ticket::new(any.encode_to_vec())))
                    .await?
                    .into_inner();
                // Decoded message by message, as a lean client does (pyarrow's reader
                // works the same way in C++): the schema, then one batch per message.
                let head = data.message().await?.context("DoGet sent no schema")?;
                let schema = Arc::new(Schema::try_from(&head)?);
                let mut n = 0;
                while let Some(message) = data.message().await? {
                    n += flight_data_to_arrow_batch(&message, schema.clone(), &HashMap::new())?
                        .num_rows();
                }
                Ok(n)
            }
            Target::Pg(pool, turns) => {
                let _turn = match turns {
                    Some(t) => Some(t.clone().acquire_owned().await?),
                    None => None,
                };
                let conn = pool.get().await.map_err(|e| anyhow::anyhow!("{e}"))?;
                // query_typed: Parse/Bind/Execute of an unnamed statement in one round
                // trip, so the same client code works through PgBouncer's transaction mode.
                let rows = conn.query_typed(sql, &[(&id, Type::INT8)]).await?;
                Ok(rows.len())
            }
        }
    }
}

fn param(id: i64) -> pb::Param {
    pb::Param {
        value: Some(pb::param::Value::Int64(id)),
    }
}

fn sql(args: &Args) -> String {
    format!("SELECT id, a, b, c FROM {} WHERE id = $1", args.table)
}

/// The same lookup, changing a session setting on the way (still one row).
fn dirty_sql(args: &Args) -> String {
    format!(
        "SELECT id, a, b, c FROM {} WHERE id = $1 \
         AND set_config('application_name', 'loadgen_dirty', false) IS NOT NULL",
        args.table
    )
}

/// A small xorshift: random ids without a dependency, one state per client.
fn next_id(state: &mut u64, rows: i64) -> i64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state % rows as u64) as i64 + 1
}

/// One client: queries until `end`, recording latencies (µs) after `record_from`.
async fn client(
    mut target: Target,
    args: Arc<Args>,
    seed: u64,
    record_from: Instant,
    end: Instant,
) -> Result<(Vec<u32>, u64)> {
    let (sql, dirty) = (sql(&args), dirty_sql(&args));
    let mut n = 0u64;
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut lat = Vec::with_capacity(1 << 16);
    let mut errors = 0u64;
    loop {
        let t0 = Instant::now();
        if t0 >= end {
            break;
        }
        let id = next_id(&mut state, args.rows);
        n += 1;
        let q = if args.dirty_every > 0 && n.is_multiple_of(args.dirty_every) {
            &dirty
        } else {
            &sql
        };
        match target.run(&args, q, id).await {
            Ok(1) => {}
            Ok(n) => bail!("id {id}: expected 1 row, got {n}"),
            Err(e) => {
                errors += 1;
                if errors == 1 {
                    eprintln!("loadgen: first error: {e:#}");
                }
                continue;
            }
        }
        if t0 >= record_from {
            lat.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
    Ok((lat, errors))
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn run(args: Args) -> Result<serde_json::Value> {
    ensure!(args.clients > 0, "--clients must be > 0");
    let args = Arc::new(args);
    let targets = Target::connect(&args).await?;
    let start = Instant::now();
    let record_from = start + Duration::from_secs_f64(args.warmup);
    let end = record_from + Duration::from_secs_f64(args.duration);

    let tasks: Vec<_> = (0..args.clients)
        .map(|i| {
            let t = targets[i % targets.len()].clone();
            tokio::spawn(client(t, args.clone(), i as u64 + 1, record_from, end))
        })
        .collect();

    // CPU is sampled around the measured window only (the warm-up opens connections).
    tokio::time::sleep_until(record_from.into()).await;
    let server = args.server_pid.map(|p| p.to_string());
    let cpu0 = cpu_ms("self")?;
    let srv0 = server.as_deref().map(cpu_ms).transpose()?;
    let pg0 = postgres_cpu_ms();
    let wall0 = Instant::now();
    tokio::time::sleep_until(end.into()).await;
    let cpu1 = cpu_ms("self")?;
    let srv1 = server.as_deref().map(cpu_ms).transpose()?;
    let pg1 = postgres_cpu_ms();
    let wall = wall0.elapsed().as_secs_f64();

    let mut lat = Vec::new();
    let mut errors = 0;
    // Queries each client completed in the measured window: a pool that serves some
    // clients over and over while others wait shows as a wide spread here, and hides
    // its waiting clients from the percentiles (a query that never ends is no sample).
    let mut per_client = Vec::with_capacity(args.clients);
    for t in tasks {
        let (l, e) = t.await??;
        per_client.push(l.len());
        lat.extend(l);
        errors += e;
    }
    per_client.sort_unstable();
    lat.sort_unstable();
    let n = lat.len() as f64;
    ensure!(n > 0.0, "no successful queries ({errors} errors)");
    let per_query = |ms: f64| (ms / n * 1000.0).round() / 1000.0;
    Ok(serde_json::json!({
        "mode": args
            .label
            .clone()
            .unwrap_or_else(|| format!("{:?}", args.mode).to_lowercase()),
        "clients": args.clients,
        "queries": lat.len(),
        "errors": errors,
        "seconds": (wall * 1000.0).round() / 1000.0,
        "qps": (n / wall).round(),
        "p50_ms": percentile(&lat, 0.50),
        "p90_ms": percentile(&lat, 0.90),
        "p99_ms": percentile(&lat, 0.99),
        "p999_ms": percentile(&lat, 0.999),
        "mean_ms": (lat.iter().map(|&l| l as f64).sum::<f64>() / n / 10.0).round() / 100.0,
        "max_ms": percentile(&lat, 1.0),
        "client_queries_min": per_client.first().copied().unwrap_or(0),
        "client_queries_max": per_client.last().copied().unwrap_or(0),
        "cpu_ms_per_query": per_query(cpu1 - cpu0),
        "server_cpu_ms_per_query": srv0.zip(srv1).map(|(a, b)| per_query(b - a)),
        "postgres_cpu_ms_per_query": per_query(pg1 - pg0),
    }))
}

fn main() -> Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    let line = rt.block_on(run(args))?;
    println!("{line}");
    Ok(())
}
