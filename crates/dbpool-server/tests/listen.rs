//! The daemon's port beyond plain TCP: a Unix domain socket (its mode, what a call sees
//! of the connection, the file gone at shutdown, TCP beside it with `extra_listen`, the
//! probe port), and TLS with client certificates (the verified subject reaches the
//! hooks; no certificate, no call). Certificates come from the `openssl` command.
mod common;

use common::*;
use dbpool_config::{Config, ServerTls};
use dbpool_proto::v1 as pb;
use dbpool_proto::v1::pool_service_client::PoolServiceClient;
use dbpool_server::hooks::{Call, ConnInfo, Middleware, Transport};
use hyper_util::rt::TokioIo;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tonic::codegen::http::Uri;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::health_client::HealthClient;

/// Keeps the connection info of every statement call.
#[derive(Default)]
struct Seen(Mutex<Vec<Option<ConnInfo>>>);

impl Middleware for Seen {
    fn before(&self, call: &mut Call<'_>) -> dbpool_core::Result<()> {
        self.0.lock().unwrap().push(call.conn.clone());
        Ok(())
    }
}

/// How a test client reaches the server.
#[derive(Clone)]
enum Dial {
    Unix(PathBuf),
    Tls(u16, Arc<rustls::ClientConfig>),
}

type Io = TokioIo<Box<dyn IoStream>>;
trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> IoStream for T {}

impl tonic::codegen::Service<Uri> for Dial {
    type Response = Io;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn std::future::Future<Output = std::io::Result<Io>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
        let dial = self.clone();
        Box::pin(async move {
            let s: Box<dyn IoStream> = match dial {
                Dial::Unix(p) => Box::new(tokio::net::UnixStream::connect(p).await?),
                Dial::Tls(port, config) => {
                    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
                    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
                    let tls = tokio_rustls::TlsConnector::from(config)
                        .connect(name, tcp)
                        .await?;
                    Box::new(tls)
                }
            };
            Ok(TokioIo::new(s))
        })
    }
}

async fn channel(dial: Dial) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_static("http://localhost")
        .connect_with_connector(dial)
        .await
}

/// Serves `config` with the `Seen` middleware until the returned sender fires.
async fn serve(
    config: Config,
    listener: dbpool_server::Listener,
) -> (
    Arc<Seen>,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), dbpool_server::ServerError>>,
) {
    let seen = Arc::new(Seen::default());
    let server = dbpool_server::Server::builder(config)
        .middleware(seen.clone())
        .build()
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(server.serve(listener, async {
        let _ = rx.await;
    }));
    (seen, tx, handle)
}

fn config(dir: &Path) -> Config {
    let mut config = Config::default();
    config.server.data_dir = dir.join("data");
    config
}

async fn one(c: &mut PoolServiceClient<Channel>) -> Result<i64, tonic::Status> {
    let batches = query_ipc(c, "default", "SELECT 40 + 2 AS v", vec![]).await?;
    use arrow::array::AsArray;
    Ok(batches[0]
        .column(0)
        .as_primitive::<arrow::datatypes::Int64Type>()
        .value(0))
}

#[tokio::test]
async fn a_unix_socket_serves_beside_tcp_and_goes_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("d.sock");
    let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (tcp_addr, probe_addr) = (tcp.local_addr().unwrap(), {
        let p = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        p.local_addr().unwrap()
    });
    drop(tcp);
    let mut config = config(dir.path());
    config.server.listen = format!("unix:{}", sock.display());
    config.server.unix_socket_mode = Some("0600".into());
    config.server.extra_listen = vec![tcp_addr.to_string()];
    config.server.probe_listen = Some(probe_addr.to_string());
    let listener = dbpool_server::Listener::bind(&config.server).await.unwrap();
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert!(meta.file_type().is_socket());
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let (seen, stop, handle) = serve(config, listener).await;

    let ch = wait_for(WAIT, "the socket to answer", || async {
        channel(Dial::Unix(sock.clone())).await.ok()
    })
    .await;
    assert_eq!(one(&mut PoolServiceClient::new(ch)).await.unwrap(), 42);
    let tcp_ch = Channel::from_shared(format!("http://{tcp_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    assert_eq!(one(&mut PoolServiceClient::new(tcp_ch)).await.unwrap(), 42);
    let conns = seen.0.lock().unwrap().clone();
    let kinds: Vec<_> = conns
        .iter()
        .map(|c| c.as_ref().map(|c| (c.transport, c.peer.is_some())))
        .collect();
    assert_eq!(
        kinds,
        [Some((Transport::Unix, false)), Some((Transport::Tcp, true))]
    );

    // The probe port answers health and nothing else.
    let probe = Channel::from_shared(format!("http://{probe_addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let status = HealthClient::new(probe.clone())
        .check(tonic_health::pb::HealthCheckRequest {
            service: "dbpool.v1.PoolService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status;
    assert_eq!(status, 1, "SERVING");
    let e = PoolServiceClient::new(probe)
        .list_pools(pb::ListPoolsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unimplemented);

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
    assert!(!sock.exists(), "the socket file is removed at shutdown");
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the openssl command");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`), a server certificate for localhost (`server.pem`/`.key`) and a
/// client certificate `CN=orders-app` (`client.pem`/`.key`) in `dir`.
fn pki(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=listen test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    for (name, usage, subj) in [
        ("server", "serverAuth", "/CN=localhost"),
        ("client", "clientAuth", "/O=dbpool tests/CN=orders-app"),
    ] {
        std::fs::write(
            dir.join(format!("{name}.ext")),
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n\
                 extendedKeyUsage={usage}\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n"
            ),
        )
        .unwrap();
        let (key, csr, pem, ext) = (
            format!("{name}.key"),
            format!("{name}.csr"),
            format!("{name}.pem"),
            format!("{name}.ext"),
        );
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend(["-keyout", &key, "-out", &csr, "-subj", subj]);
        openssl(dir, &req);
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "7",
                "-days",
                "2",
                "-out",
                &pem,
                "-extfile",
                &ext,
            ],
        );
    }
}

fn client_config(dir: &Path, with_cert: bool) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
        .unwrap();
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let mut config = if with_cert {
        let chain = vec![CertificateDer::from_pem_file(dir.join("client.pem")).unwrap()];
        let key = PrivateKeyDer::from_pem_file(dir.join("client.key")).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

#[tokio::test]
async fn mutual_tls_puts_the_client_subject_on_the_call() {
    let dir = tempfile::tempdir().unwrap();
    pki(dir.path());
    let mut config = config(dir.path());
    config.server.listen = "127.0.0.1:0".into();
    config.server.tls = Some(ServerTls {
        cert_file: dir.path().join("server.pem"),
        key_file: dir.path().join("server.key"),
        client_ca_file: Some(dir.path().join("ca.pem")),
    });
    config.server.limits.handshake_timeout_ms = 300;
    let listener = dbpool_server::Listener::bind(&config.server).await.unwrap();
    let port: u16 = listener.addr().rsplit(':').next().unwrap().parse().unwrap();
    let (seen, stop, handle) = serve(config, listener).await;

    let with_cert = Dial::Tls(port, client_config(dir.path(), true));
    let ch = wait_for(WAIT, "the TLS port to answer", || async {
        channel(with_cert.clone()).await.ok()
    })
    .await;
    assert_eq!(one(&mut PoolServiceClient::new(ch)).await.unwrap(), 42);
    let conn = seen.0.lock().unwrap()[0]
        .clone()
        .expect("a client connection");
    assert_eq!(conn.transport, Transport::Tls);
    assert_eq!(
        conn.client_subject.as_deref(),
        Some("CN=orders-app,O=dbpool tests")
    );

    // No client certificate: the handshake fails, no call is made.
    let anonymous = Dial::Tls(port, client_config(dir.path(), false));
    let refused = match channel(anonymous).await {
        Err(_) => true,
        Ok(ch) => one(&mut PoolServiceClient::new(ch)).await.is_err(),
    };
    assert!(refused, "a client without a certificate got through");
    assert_eq!(seen.0.lock().unwrap().len(), 1);

    // Plaintext gRPC to the TLS port: refused with a status that says why.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let e = PoolServiceClient::new(plain)
        .list_pools(pb::ListPoolsRequest {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
    assert!(e.message().contains("requires TLS"), "{e:?}");

    // A client that starts a TLS handshake and stalls is closed at the handshake timeout.
    let mut stalled = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stalled
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(WAIT, async {
        loop {
            match stalled.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "a stalled TLS handshake was not closed");
    // The daemon serves on.
    let ch = channel(with_cert.clone()).await.unwrap();
    assert_eq!(one(&mut PoolServiceClient::new(ch)).await.unwrap(), 42);

    let _ = stop.send(());
    handle.await.unwrap().unwrap();
}
