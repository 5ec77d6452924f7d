//! The scope of one call, set by [`InCall`] around every PoolService, Flight and
//! reflection call: its client connection, who is calling (the tenant its credentials
//! name, when tenants are configured), its server's per-call settings, and its log
//! context ([`Call`]: connection, method, pool). `InCall` is also where a caller is
//! recognised and its call quotas taken — a call without valid credentials gets
//! UNAUTHENTICATED before any handler runs — and where the audit line of a call is
//! written once its status is known.
use crate::audit::{AuditLog, AuditRecord};
use crate::auth::quota::CallPermit;
use crate::auth::{Caller, Tenants};
use crate::conn::ConnInfo;
use dbpool_core::call::Call;
use dbpool_core::Error;
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http::{HeaderMap, Request, Response};
use tonic::codegen::Service;
use tonic::server::NamedService;
use tonic::Code;

/// What a server checks and records around each call.
#[derive(Clone, Default)]
pub struct Access {
    /// The tenants callers must be one of; `None`: every caller is trusted.
    pub tenants: Option<Arc<Tenants>>,
    /// Where audited calls are written; `None`: no audit log.
    pub audit: Option<Arc<AuditLog>>,
}

/// What a call runs with.
struct Scope {
    conn: Option<ConnInfo>,
    caller: Option<Arc<Caller>>,
    /// The server's switch of per-call spans (see [`call_spans`]).
    call_spans: bool,
    /// What the audit line will say; only when the server keeps an audit log.
    note: Option<Arc<Mutex<Note>>>,
}

/// What the call layer tells the audit line of a call.
#[derive(Debug, Default)]
struct Note {
    sql: Option<String>,
    rows: Option<u64>,
    /// Refused by the tenant's rights, though the status does not say so (a pool it
    /// may not see answers NOT_FOUND).
    refused: bool,
    /// Admitted as a write (an Execute behind a Flight SQL prepared statement's DoGet
    /// is one, whatever the RPC).
    writes: bool,
}

tokio::task_local! {
    /// The scope of the call this task is serving.
    static SCOPE: Scope;
}

/// The client connection of the request being served, or `None` outside one (internal
/// callers, tests of the call layer), so the call layer knows the owner without each
/// handler passing it on.
pub fn current() -> Option<u64> {
    SCOPE
        .try_with(|s| s.conn.as_ref().map(|c| c.id))
        .ok()
        .flatten()
}

/// Who is calling, in the request being served (`None` when every caller is trusted).
pub fn current_caller() -> Option<Arc<Caller>> {
    SCOPE.try_with(|s| s.caller.clone()).ok().flatten()
}

/// The client connection and the caller of the request being served.
pub fn current_conn_and_caller() -> (Option<ConnInfo>, Option<Arc<Caller>>) {
    SCOPE
        .try_with(|s| (s.conn.clone(), s.caller.clone()))
        .unwrap_or_default()
}

/// Whether the server serving this call makes per-call spans (`grpc`, `db`): only
/// traces use them, and creating, entering and closing them was ~6 % of the daemon's
/// instructions on a small query. On outside a call.
pub fn call_spans() -> bool {
    SCOPE.try_with(|s| s.call_spans).unwrap_or(true)
}

fn with_note(f: impl FnOnce(&mut Note)) {
    let _ = SCOPE.try_with(|s| {
        if let Some(n) = &s.note {
            f(&mut n.lock());
        }
    });
}

/// Marks the current call as refused by its tenant's rights (for its audit line).
pub fn note_refused() {
    with_note(|n| n.refused = true);
}

/// Marks the current call as one that changes something (for its audit line).
pub fn note_write() {
    with_note(|n| n.writes = true);
}

/// Tells the audit line of the current call its statement (the first one noted) and
/// the rows it affected; nothing is copied when the server keeps no audit log.
pub fn note_statement(sql: Option<&str>, rows: Option<u64>) {
    with_note(|n| {
        if n.sql.is_none() {
            n.sql = sql.map(str::to_string);
        }
        if rows.is_some() {
            n.rows = rows;
        }
    });
}

/// Methods that need no credentials: the Flight handshake is how a client gets them.
fn open_method(method: &str) -> bool {
    method == "arrow.flight.protocol.FlightService/Handshake"
}

/// Methods that change something: each call of them is audited, whatever its outcome.
fn changes(method: &str) -> bool {
    let Some((service, name)) = method.split_once('/') else {
        return false;
    };
    match service {
        "dbpool.v1.PoolService" => matches!(
            name,
            "Execute"
                | "ExecuteBatch"
                | "BeginTransaction"
                | "Commit"
                | "Rollback"
                | "CreatePool"
                | "RemovePool"
        ),
        "arrow.flight.protocol.FlightService" => {
            matches!(name, "DoPut" | "DoAction" | "DoExchange")
        }
        _ => false,
    }
}

/// Wraps a tonic service so each call runs in its scope: its connection, its caller,
/// its server's per-call settings, and its [`Call`] for the log line of a failure. The
/// response body is polled in the call's scope too, so an error met mid-stream is told
/// apart, and holds the caller's quota permit until the result ends. One layer, one
/// boxed future per call.
#[derive(Clone)]
pub struct InCall<S> {
    inner: S,
    call_spans: bool,
    access: Access,
}

impl<S> InCall<S> {
    /// Wraps `inner` for a server that makes per-call spans when `call_spans` and
    /// checks and records calls as `access` says.
    pub fn new(inner: S, call_spans: bool, access: Access) -> Self {
        InCall {
            inner,
            call_spans,
            access,
        }
    }
}

impl<S: NamedService> NamedService for InCall<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, B> Service<Request<B>> for InCall<S>
where
    S: Service<Request<B>, Response = Response<tonic::body::Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let conn = req.extensions().get::<ConnInfo>().cloned();
        let path = req.uri().path();
        let call = Call::new(
            conn.as_ref().map(|c| c.id),
            path.strip_prefix('/').unwrap_or(path),
        );
        let mut audit = self.access.audit.clone().map(|log| Pending {
            log,
            started: Instant::now(),
            caller: None,
            peer: conn.as_ref().and_then(|c| c.peer),
            call: call.clone(),
            note: Arc::new(Mutex::new(Note::default())),
            code: None,
        });
        let (caller, permit) = match admit(&self.access, &call.method, req.headers(), &conn) {
            Ok(admitted) => admitted,
            Err((caller, e)) => {
                let status = call.clone().sync_scope(|| tonic::Status::from(e));
                if let Some(mut a) = audit {
                    a.caller = caller;
                    a.finish(Some(status.code()), Code::Unknown);
                }
                return Box::pin(std::future::ready(Ok(status.into_http())));
            }
        };
        if let Some(a) = &mut audit {
            a.caller = caller.clone();
        }
        let scope = Scope {
            conn,
            caller,
            call_spans: self.call_spans,
            note: audit.as_ref().map(|a| a.note.clone()),
        };
        let response = SCOPE.scope(scope, call.clone().scope(self.inner.call(req)));
        Box::pin(async move {
            let response = response.await?;
            if let Some(a) = &mut audit {
                // A trailers-only response (an error before any message) says it here.
                a.code = status_of(response.headers());
            }
            Ok(response.map(|inner| {
                tonic::body::Body::new(CallBody {
                    call,
                    inner,
                    _permit: permit,
                    audit,
                })
            }))
        })
    }
}

/// A refusal, with the caller when one was recognised (a quota refused it).
type Refusal = (Option<Arc<Caller>>, Error);

/// Who is calling and its place in its quotas; a call without valid credentials, or
/// over a quota, is refused here.
fn admit(
    access: &Access,
    method: &str,
    headers: &HeaderMap,
    conn: &Option<ConnInfo>,
) -> Result<(Option<Arc<Caller>>, Option<CallPermit>), Refusal> {
    let Some(tenants) = &access.tenants else {
        return Ok((None, None));
    };
    if open_method(method) {
        return Ok((None, None));
    }
    let caller = tenants
        .authenticate_on(headers, conn.as_ref())
        .map_err(|e| (None, e))?;
    match caller.tenant.quotas.enter() {
        Ok(permit) => Ok((Some(caller), Some(permit))),
        Err(e) => Err((Some(caller), e)),
    }
}

/// The `grpc-status` of headers or trailers.
fn status_of(headers: &HeaderMap) -> Option<Code> {
    let v = headers.get("grpc-status")?.to_str().ok()?;
    Some(Code::from_i32(v.parse().ok()?))
}

/// The audit line of a call, written when its status is known.
struct Pending {
    log: Arc<AuditLog>,
    started: Instant,
    caller: Option<Arc<Caller>>,
    peer: Option<std::net::SocketAddr>,
    call: Arc<Call>,
    note: Arc<Mutex<Note>>,
    code: Option<Code>,
}

impl Pending {
    /// Writes the line if the call changed something or was refused; `code` is the
    /// status, else the one of the response's headers, else `otherwise`.
    fn finish(self, code: Option<Code>, otherwise: Code) {
        let code = code.or(self.code).unwrap_or(otherwise);
        let note = self.note.lock();
        let refused = matches!(
            code,
            Code::Unauthenticated | Code::PermissionDenied | Code::ResourceExhausted
        );
        if !(refused || note.refused || note.writes || changes(&self.call.method)) {
            return;
        }
        // Strangers' refusals have a budget of their own (audit/budget.rs).
        if code == Code::Unauthenticated && !self.log.admits_anonymous() {
            return;
        }
        let pool = self.call.pool().unwrap_or_default();
        self.log.record(&AuditRecord {
            tenant: self.caller.as_ref().map(|c| &*c.tenant.name),
            principal: self.caller.as_ref().map_or("none", |c| c.principal.name()),
            peer: self.peer,
            pool: &pool,
            method: &self.call.method,
            sql: note.sql.as_deref(),
            rows: note.rows,
            code: dbpool_core::grpc::code_name(code),
            duration: self.started.elapsed(),
        });
    }
}

/// A response body whose frames are produced inside its call's scope; it holds the
/// call's quota permit and writes its audit line when the status passes.
struct CallBody {
    call: Arc<Call>,
    inner: tonic::body::Body,
    _permit: Option<CallPermit>,
    audit: Option<Pending>,
}

impl http_body::Body for CallBody {
    type Data = bytes::Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = &mut *self;
        let inner = &mut this.inner;
        let polled = this
            .call
            .clone()
            .sync_scope(|| Pin::new(inner).poll_frame(cx));
        if this.audit.is_some() {
            let code = match &polled {
                Poll::Ready(Some(Ok(f))) => f.trailers_ref().map(status_of),
                Poll::Ready(None) => Some(None),
                Poll::Ready(Some(Err(s))) => Some(Some(s.code())),
                Poll::Pending => None,
            };
            if let Some(code) = code {
                if let Some(a) = this.audit.take() {
                    a.finish(code, Code::Unknown);
                }
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for CallBody {
    fn drop(&mut self) {
        if let Some(a) = self.audit.take() {
            // The client went away before the status.
            a.finish(None, Code::Cancelled);
        }
    }
}

#[cfg(test)]
#[path = "call_scope_tests.rs"]
mod tests;
