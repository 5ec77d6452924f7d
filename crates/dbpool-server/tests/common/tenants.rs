//! A server with tenants: SQLite pools in a temp dir, a token per tenant, and clients
//! that send a token (or none) on every call.
#![allow(dead_code)]
use super::TestServer;
use dbpool_config::{Config, PoolConfig, Secret, TenantConfig};
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// A PoolService client that sends `authorization` on every call.
pub type Client = PoolServiceClient<InterceptedService<Channel, Auth>>;

/// Adds `authorization: <value>` (nothing when `None`).
#[derive(Clone)]
pub struct Auth(pub Option<String>);

impl tonic::service::Interceptor for Auth {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut()
                .insert("authorization", v.parse().unwrap());
        }
        Ok(req)
    }
}

/// The token of tenant `name` in these tests.
pub fn token(name: &str) -> String {
    format!("token-of-{name}-{}", std::process::id())
}

/// A server with `pools` (id → SQLite file in a temp dir) and `tenants` (name → the
/// TOML of its table; each gets `token_sha256` of [`token`]).
pub struct TenantServer {
    pub server: TestServer,
    pub dir: tempfile::TempDir,
}

impl TenantServer {
    /// Starts it; `tweak` adjusts the config last.
    pub async fn start(
        pools: &[&str],
        tenants: &[(&str, &str)],
        tweak: impl FnOnce(&mut Config),
    ) -> TenantServer {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let server = TestServer::start_with(&[], |c| {
            for id in pools {
                let url = format!("sqlite://{}/{id}.db", path.display());
                c.pools.insert(
                    id.to_string(),
                    PoolConfig {
                        url: Some(Secret::new(url)),
                        ..Default::default()
                    },
                );
            }
            for (name, table) in tenants {
                let hash = dbpool_server::auth::token_sha256(&token(name));
                let text = format!("token_sha256 = [\"{hash}\"]\n{table}");
                let t: TenantConfig = toml::from_str(&text).unwrap();
                c.tenants.insert(name.to_string(), t);
            }
            tweak(c)
        })
        .await;
        TenantServer { server, dir }
    }

    /// A client of tenant `name`.
    pub async fn client(&self, name: &str) -> Client {
        self.client_with(Some(format!("Bearer {}", token(name))))
            .await
    }

    /// A client that sends `authorization` as given.
    pub async fn client_with(&self, auth: Option<String>) -> Client {
        PoolServiceClient::with_interceptor(self.server.channel().await, Auth(auth))
    }

    /// A Flight client of tenant `name` (`None`: no token).
    pub async fn flight(&self, name: Option<&str>) -> arrow_flight::FlightClient {
        let mut f = self.server.flight().await;
        if let Some(n) = name {
            f.add_header("authorization", &format!("Bearer {}", token(n)))
                .unwrap();
        }
        f
    }
}

/// Runs `sql` on `pool`: rows affected, or the status.
pub async fn exec(c: &mut Client, pool: &str, sql: &str) -> Result<u64, tonic::Status> {
    c.execute(pb::ExecuteRequest {
        pool_id: pool.into(),
        sql: sql.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().rows_affected)
}

/// Runs a query on `pool` to its end: the Arrow bytes it streamed, or the status.
pub async fn query(c: &mut Client, pool: &str, sql: &str) -> Result<usize, tonic::Status> {
    let mut s = c
        .query(pb::QueryRequest {
            pool_id: pool.into(),
            sql: sql.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let mut n = 0;
    while let Some(m) = s.message().await? {
        if let Some(pb::query_response::Payload::ArrowIpc(b)) = m.payload {
            n += b.len();
        }
    }
    Ok(n)
}

/// The pool ids ListPools shows.
pub async fn listed(c: &mut Client) -> Result<Vec<String>, tonic::Status> {
    let pools = c
        .list_pools(pb::ListPoolsRequest {})
        .await?
        .into_inner()
        .pools;
    Ok(pools.into_iter().map(|p| p.pool_id).collect())
}

/// The ErrorInfo reason of a status.
pub fn reason(s: &tonic::Status) -> String {
    use tonic_types::StatusExt;
    s.get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}
