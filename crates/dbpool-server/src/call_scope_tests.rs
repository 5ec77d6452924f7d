//! Tests of the call scope: what a call sees, and callers refused before a handler.
use super::*;
use crate::conn::Transport;
use std::convert::Infallible;

/// Answers with what the call's scope says, in its response headers.
#[derive(Clone)]
struct Probe;

impl Service<Request<()>> for Probe {
    type Response = Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<()>) -> Self::Future {
        // Like a tonic handler: the work runs in the future, inside the scope.
        Box::pin(async {
            let seen = format!(
                "{:?} {} {:?}",
                current_conn_and_caller().0,
                call_spans(),
                dbpool_core::call::describe()
            );
            let mut r = Response::new(tonic::body::Body::empty());
            r.headers_mut().insert("seen", seen.parse().unwrap());
            Ok(r)
        })
    }
}

async fn seen(req: Request<()>, call_spans: bool) -> String {
    let r = InCall::new(Probe, call_spans, Access::default())
        .call(req)
        .await
        .unwrap();
    r.headers()["seen"].to_str().unwrap().to_string()
}

#[tokio::test]
async fn a_call_runs_in_its_connections_and_servers_scope() {
    assert_eq!(
        (current_conn_and_caller().0, call_spans()),
        (None, true),
        "outside a call"
    );
    let conn = ConnInfo {
        id: 7,
        peer: Some("127.0.0.1:4000".parse().unwrap()),
        transport: Transport::Tcp,
        client_subject: None,
        memo: Arc::default(),
    };
    let mut req = Request::builder()
        .uri("/dbpool.v1.PoolService/Query")
        .body(())
        .unwrap();
    req.extensions_mut().insert(conn.clone());
    assert_eq!(
        seen(req, false).await,
        format!(
            "{:?} false (\"dbpool.v1.PoolService/Query\", \"\")",
            Some(conn)
        )
    );
    assert_eq!(seen(Request::new(()), true).await, "None true (\"\", \"\")");
}

#[tokio::test]
async fn with_tenants_a_call_without_credentials_never_reaches_the_handler() {
    let text = format!(
        "[tenants.app]\ntoken_sha256 = [\"{}\"]\n",
        "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" // sha256("test")
    );
    let config = dbpool_config::load_str(&text, "t.toml").unwrap();
    let access = Access {
        tenants: Tenants::from_config(&config).unwrap(),
        audit: None,
    };
    let request = |auth: Option<&str>| {
        let mut r = Request::builder().uri("/dbpool.v1.PoolService/Query");
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        r.body(()).unwrap()
    };
    for auth in [None, Some("Bearer wrong"), Some("Basic dGVzdA==")] {
        let r = InCall::new(Probe, true, access.clone())
            .call(request(auth))
            .await
            .unwrap();
        assert!(
            r.headers().get("seen").is_none(),
            "{auth:?} reached the handler"
        );
        assert_eq!(
            r.headers()["grpc-status"],
            "16",
            "{auth:?}: UNAUTHENTICATED"
        );
    }
    let r = InCall::new(Probe, true, access.clone())
        .call(request(Some("Bearer test")))
        .await
        .unwrap();
    assert!(r.headers().get("seen").is_some());
    let (_, caller) = SCOPE
        .scope(
            Scope {
                conn: None,
                caller: access
                    .tenants
                    .as_ref()
                    .unwrap()
                    .bearer("test")
                    .ok()
                    .map(Arc::new),
                call_spans: true,
                note: None,
            },
            async { current_conn_and_caller() },
        )
        .await;
    assert_eq!(&*caller.unwrap().tenant.name, "app");
}
