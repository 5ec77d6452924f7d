//! `rediss://` against a TLS-only redis-server of our own (a throwaway CA made with the
//! openssl CLI), stopped on drop.
use super::*;
use dbpool_core::Error;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A redis-server that speaks only TLS on `port`, with a certificate for 127.0.0.1.
struct TlsRedis {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

fn run(dir: &std::path::Path, args: &[&str]) {
    let st = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the openssl CLI");
    assert!(st.success(), "openssl {args:?}");
}

impl TlsRedis {
    async fn start() -> TlsRedis {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let ca = "req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2";
        run(
            d,
            &[
                ca.split_whitespace().collect(),
                vec!["-subj", "/CN=dbpool test CA"],
            ]
            .concat(),
        );
        let csr = "req -newkey rsa:2048 -nodes -keyout server.key -out server.csr";
        run(
            d,
            &[
                csr.split_whitespace().collect(),
                vec!["-subj", "/CN=127.0.0.1"],
            ]
            .concat(),
        );
        std::fs::write(d.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").unwrap();
        let sign = "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
                    -out server.pem -days 2 -extfile ext.cnf";
        run(d, &sign.split_whitespace().collect::<Vec<_>>());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let p = port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &p, "--bind", "127.0.0.1"])
            .args([
                "--tls-cert-file",
                "server.pem",
                "--tls-key-file",
                "server.key",
            ])
            .args(["--tls-ca-cert-file", "ca.pem", "--tls-auth-clients", "no"])
            .args(["--save", "", "--appendonly", "no", "--dir", "."])
            .current_dir(d)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let listening = || async move {
            let s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
            s.is_ok()
        };
        dbpool_testkit::wait_until(Duration::from_secs(10), "redis-server on TLS", listening).await;
        TlsRedis { child, port, dir }
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}/0", self.port)
    }

    fn ca(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn rediss_with_a_private_ca() {
    let server = TlsRedis::start().await;
    let ca = server.ca();
    let b = backend_with(&server.url(), &[("tls_ca_file", &ca)]).await;
    b.health_check().await.unwrap();
    assert_eq!(b.execute("SET k 'over tls'", vec![]).await.unwrap(), 1);
    let r = table(&*b, "GET k", vec![]).await;
    assert_eq!(strs(r.column(0)), [Some("over tls".to_string())]);
    // The system's roots do not know this CA: the handshake fails, UNAVAILABLE.
    let b = backend_with(&server.url(), &[]).await;
    let e = b.health_check().await.unwrap_err();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
    // A CA file makes no sense without TLS.
    let cfg = PoolConfig {
        url: Some(Secret::new(format!("redis://127.0.0.1:{}", server.port))),
        settings: [("tls_ca_file".to_string(), ca)].into(),
        ..Default::default()
    };
    let e = Factory::default()
        .create("r", &cfg.resolve("").unwrap())
        .await
        .err()
        .unwrap();
    assert!(
        matches!(&e, Error::InvalidArgument { field, .. } if field == "settings.tls_ca_file"),
        "{e}"
    );
}

/// A CA file of the config file that cannot be read: one message whether it is missing
/// or a directory, naming neither the path nor the reason (those go to the log).
#[tokio::test]
async fn an_unreadable_ca_file_does_not_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let mut messages = Vec::new();
    for path in [missing.as_path(), dir.path()] {
        let cfg = PoolConfig {
            url: Some(Secret::new("rediss://127.0.0.1:6379")),
            settings: [("tls_ca_file".to_string(), path.display().to_string())].into(),
            ..Default::default()
        };
        let e = Factory::default()
            .create("r", &cfg.resolve("").unwrap())
            .await
            .err()
            .unwrap();
        let Error::InvalidArgument { field, message } = e else {
            panic!("{e}")
        };
        assert_eq!(field, "settings.tls_ca_file");
        assert!(
            !message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        messages.push(message);
    }
    assert_eq!(messages[0], messages[1]);
}
