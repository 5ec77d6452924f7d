//! The `dbpool` binary: parses the command line, sets up logging, builds the runtime
//! and serves a `dbpool_server::Server` on it; exits non-zero when the server fails.
use clap::{Parser, Subcommand};
use dbpool_config::{Config, LogFormat};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::path::PathBuf;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// mimalloc: many small, short-lived allocations per call (protobuf, HTTP/2 frames,
/// Arrow buffers) cost about half as much as with glibc's malloc (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Database connection pools behind one gRPC / Arrow Flight port.
#[derive(Parser)]
#[command(name = "dbpool", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the daemon.
    Serve {
        /// TOML config file (also DBPOOL_CONFIG). Without one, pool `default` is an
        /// embedded SQLite database in the data directory.
        #[arg(long, env = "DBPOOL_CONFIG")]
        config: Option<PathBuf>,
        /// Address to listen on, `host:port` or `unix:/path/dbpool.sock`; overrides
        /// `server.listen`. Given again, the further ones replace `server.extra_listen`.
        #[arg(long)]
        listen: Vec<String>,
        /// Directory of the embedded SQLite database; overrides `server.data_dir`.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Log as JSON lines; overrides `server.log_format`.
        #[arg(long)]
        log_json: bool,
    },
    /// Validates a config file without starting anything: every key, the tenants'
    /// rights and token hashes, their token files and variables, the JWKS file.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Prints a new random bearer token and the `token_sha256` line that admits it.
    Token,
}

/// The runtime's blocking threads (tokio's default), stated so that the server sizes
/// what SQLite may hold of them by the same number.
const BLOCKING_THREADS: usize = dbpool_server::DEFAULT_BLOCKING_THREADS;

/// Logs (text or JSON) plus, when the `OTEL_*` variables ask for it, OTLP traces.
/// Returns the trace provider to flush at exit.
fn init_tracing(format: LogFormat) -> anyhow::Result<Option<SdkTracerProvider>> {
    let filter = EnvFilter::try_from_env("DBPOOL_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only on a terminal: log files and collectors get plain text.
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    // The per-call spans (`grpc`, `db`) are for traces. Formatting their fields into
    // every call's log context cost ~9 % of the daemon's CPU on small queries
    // (callgrind), so the log layer leaves them out; OTLP traces keep them.
    let per_call = filter_fn(|m| !(m.is_span() && matches!(m.name(), "grpc" | "db")));
    let fmt = match format {
        LogFormat::Json => fmt
            .json()
            .with_current_span(true)
            .with_filter(per_call)
            .boxed(),
        LogFormat::Text => fmt.with_filter(per_call).boxed(),
    };
    let provider = dbpool_server::telemetry::otlp_from_env()?;
    let otel = provider.as_ref().map(dbpool_server::telemetry::layer);
    tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .init();
    Ok(provider)
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Serves until SIGTERM/SIGINT; `traces`: an OTLP exporter takes the per-call spans.
async fn serve(mut config: Config, traces: bool) -> anyhow::Result<()> {
    let listener = dbpool_server::Listener::bind(&config.server).await?;
    config.server.listen = listener.addr();
    dbpool_server::Server::builder(config)
        .blocking_threads(BLOCKING_THREADS)
        // Without an exporter the per-call spans would go nowhere.
        .call_spans(traces)
        .build()
        .await?
        .serve(listener, shutdown_signal())
        .await?;
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { file } => {
            let cfg = dbpool_config::load(Some(&file))?;
            dbpool_server::auth::Tenants::from_config(&cfg).map_err(anyhow::Error::msg)?;
            println!("{}: ok ({} pools)", file.display(), cfg.pools.len());
            for (id, pool) in &cfg.pools {
                let r = pool.resolve(&format!("pools.{id}."))?;
                println!("  {id}: {} {}", r.kind.name(), r.redacted_url());
            }
            for (name, t) in &cfg.tenants {
                let rights: Vec<String> =
                    t.pools.iter().map(|(p, r)| format!("{p}={r:?}")).collect();
                let admin = if t.admin { " admin" } else { "" };
                println!(
                    "  tenant {name}:{admin} {}",
                    rights.join(" ").to_lowercase()
                );
            }
            if cfg.tenants.is_empty() {
                println!("  no tenants: every caller is trusted (loopback and Unix sockets only)");
            }
            Ok(())
        }
        Command::Token => {
            let token = dbpool_server::auth::new_token();
            println!("token:        {token}");
            println!(
                "config line:  token_sha256 = [\"{}\"]",
                dbpool_server::auth::token_sha256(&token)
            );
            Ok(())
        }
        Command::Serve {
            config,
            listen,
            data_dir,
            log_json,
        } => {
            let mut cfg = dbpool_config::load(config.as_deref())?;
            let mut listen = listen.into_iter();
            if let Some(l) = listen.next() {
                cfg.server.listen = l;
                cfg.server.extra_listen = listen.collect();
            }
            if let Some(d) = data_dir {
                cfg.server.data_dir = d;
            }
            if log_json {
                cfg.server.log_format = LogFormat::Json;
            }
            // The command line's values pass the checks of the file's.
            cfg.server.validate()?;
            let rt = tokio::runtime::Builder::new_multi_thread()
                .max_blocking_threads(BLOCKING_THREADS)
                .enable_all()
                .build()?;
            // The OTLP exporter needs the runtime.
            let provider = rt.block_on(async { init_tracing(cfg.server.log_format) })?;
            let result = rt.block_on(serve(cfg, provider.is_some()));
            if let Some(p) = provider {
                let _ = p.shutdown();
            }
            result
        }
    }
}
