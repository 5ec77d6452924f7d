//! What a real InfluxDB cannot be made to do, scripted by a local TCP listener posing as
//! one: a 200 MB error body, an endless response line, a redirect to another port. The
//! pool reads a capped prefix, shows the caller an excerpt, and follows no redirect.
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const HUGE: usize = 200 * 1024 * 1024;

/// Peak resident memory of this process (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kb * 1024
}

/// Reads one request's head (the body, small, is left unread).
async fn read_head(s: &mut tokio::net::TcpStream) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut chunk).await.unwrap();
        assert!(n > 0, "the client closed before sending a request");
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A server answering every request with `head` and then `body_len` bytes of `unit`
/// repeated after `prefix`; the task's result is how many body bytes it got to write
/// before the client hung up.
async fn scripted(
    head: String,
    prefix: &'static [u8],
    unit: &'static [u8],
    body_len: usize,
) -> (String, tokio::task::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("influxdb://{}/db", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        read_head(&mut s).await;
        s.write_all(head.as_bytes()).await.unwrap();
        let block: Vec<u8> = unit.iter().copied().cycle().take(64 * 1024).collect();
        let mut written = 0;
        if s.write_all(prefix).await.is_err() {
            return written;
        }
        written += prefix.len();
        while written < body_len {
            let n = block.len().min(body_len - written);
            if s.write_all(&block[..n]).await.is_err() {
                break;
            }
            written += n;
        }
        written
    });
    (url, task)
}

fn status_head(status: &str, len: usize) -> String {
    format!("HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {len}\r\n\r\n")
}

/// A 200 MB error body: the pool reads 64 KiB of it, the caller gets a short excerpt
/// without control characters, and memory does not grow with the body.
#[tokio::test]
async fn a_huge_error_body_is_read_capped_and_shown_as_an_excerpt() {
    let (url, server) = scripted(
        status_head("400 Bad Request", HUGE),
        b"\x1b[31mboom\r\n",
        b"secret-upstream-body ",
        HUGE,
    )
    .await;
    let b = backend_with(&url, &[], 1).await;
    let before = peak_rss();
    let e = b.execute("SHOW DATABASES", vec![]).await.unwrap_err();
    let grew = peak_rss().saturating_sub(before);
    let Error::Database { message, code } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(code.as_deref(), Some("400"));
    assert!(
        message.starts_with("[31mboom  secret-upstream-body"),
        "{message}"
    );
    assert!(message.chars().count() <= 201, "{} chars", message.len());
    assert!(!message.chars().any(char::is_control), "{message:?}");
    let written = server.await.unwrap();
    eprintln!("huge error body: {written} bytes sent, peak RSS grew by {grew} bytes");
    // What the kernel's socket buffers took before the pool hung up: megabytes at most.
    assert!(written < 32 * 1024 * 1024, "{written} bytes were sent");
    assert!(grew < 64 * 1024 * 1024, "peak RSS grew by {grew} bytes");
}

/// A chunked query whose first line never ends: RESOURCE_EXHAUSTED at the pool's
/// `max_chunk_bytes`, having read no more than about that.
#[tokio::test]
async fn an_endless_response_line_is_cut_off() {
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n"
    );
    let (url, server) = scripted(
        head,
        br#"{"results":[{"statement_id":0,"series":[{"name":"m","columns":["time","v"],"values":["#,
        b"[1,2],",
        HUGE,
    )
    .await;
    let b = backend_with(&url, &[("max_chunk_bytes", "1048576")], 1).await;
    let before = peak_rss();
    let e = b.query("SELECT v FROM m", vec![], 10).await.err().unwrap();
    let grew = peak_rss().saturating_sub(before);
    assert!(
        matches!(&e, Error::ResourceExhausted(m) if m.contains("max_chunk_bytes")),
        "{e:?}"
    );
    let written = server.await.unwrap();
    eprintln!("endless line: {written} bytes sent, peak RSS grew by {grew} bytes");
    assert!(written < 32 * 1024 * 1024, "{written} bytes were sent");
    assert!(grew < 64 * 1024 * 1024, "peak RSS grew by {grew} bytes");

    // A non-chunked answer (Execute of InfluxQL) is capped the same way.
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {HUGE}\r\n\r\n"
    );
    let (url, server) = scripted(head, br#"{"results":["#, b"{},", HUGE).await;
    let b = backend_with(&url, &[("max_chunk_bytes", "1048576")], 1).await;
    let e = b.execute("SHOW DATABASES", vec![]).await.unwrap_err();
    assert!(matches!(&e, Error::ResourceExhausted(_)), "{e:?}");
    assert!(server.await.unwrap() < 32 * 1024 * 1024);
}

/// A redirect to another local port is an error naming the status; the target gets no
/// request (a followed redirect would have connected to it before the call returned).
#[tokio::test]
async fn redirects_are_not_followed() {
    let target = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let to = target.local_addr().unwrap();
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
    ] {
        let head = format!(
            "HTTP/1.1 {status}\r\nLocation: http://{to}/query?q=SHOW+USERS\r\nContent-Length: 0\r\n\r\n"
        );
        let (url, server) = scripted(head, b"", b" ", 0).await;
        let mut cfg = PoolConfig {
            url: Some(Secret::new(url)),
            ..Default::default()
        };
        // Were the redirect followed, the silent target would make the call time out.
        cfg.options.statement_timeout_ms = 5_000;
        let b = Factory::default()
            .create("t", &cfg.resolve("").unwrap())
            .await
            .unwrap();
        let e = b.execute("SHOW DATABASES", vec![]).await.unwrap_err();
        let code = &status[..3];
        assert!(
            matches!(&e, Error::Unavailable { message: m, .. } if m.contains(&format!("HTTP {code}")) && m.contains("not followed")),
            "{e:?}"
        );
        server.await.unwrap();
        assert!(
            futures::FutureExt::now_or_never(target.accept()).is_none(),
            "the redirect target was connected to"
        );
    }
}
