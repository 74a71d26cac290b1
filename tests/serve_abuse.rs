//! Abusive clients against `transduce serve`, on loopback, each in a bounded loop: thousands of
//! idle connections, slow-drip requests, 1 GiB bodies (announced and chunked), deeply nested
//! JSON, 100k nested HTML tags, a flood past the queue. Meanwhile a prober asks `/health` every
//! 10 ms: its p99 stays under 50 ms, the server never crashes and its peak memory stays bounded.
//!
//! `TRANSDUCE_ABUSE_SCALE` multiplies the connection counts and durations (1 by default, as CI
//! runs it; `tools/reliability.sh` runs 4).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::server::{models_dir, Server};

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("the server accepts connections");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream
}

/// Sends `head` and `body` on a fresh connection and reads the answer; (status, body).
fn exchange(port: u16, head: &str, body: &[u8]) -> (u16, String) {
    let mut stream = connect(port);
    stream.write_all(head.as_bytes()).unwrap();
    let _ = stream.write_all(body);
    read_answer(&mut stream)
}

fn read_answer(stream: &mut TcpStream) -> (u16, String) {
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).to_string();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
}

fn post(path: &str, content_type: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\
         Connection: close\r\n\r\n"
    )
}

/// The server's peak resident memory (VmHWM) in MiB.
fn peak_rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse::<f64>().unwrap() / 1024.0
}

#[test]
fn abusive_clients_leave_the_server_healthy_and_bounded() {
    let scale: usize = std::env::var("TRANSDUCE_ABUSE_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let dir = models_dir("serve-abuse");
    let mut server =
        Server::start(&dir.0, &["--queue", "64", "--char-limit", "2000000", "--body-limit", "4194304", "--beam", "2"]);
    let port = server.port;
    let (_, _, _) = server.get("/health");
    let idle_rss = peak_rss_mib(server.child.id());

    // the prober: /health every 10 ms on a fresh connection
    let stop = Arc::new(AtomicBool::new(false));
    let latencies: Arc<Mutex<Vec<f64>>> = Arc::default();
    let prober = {
        let (stop, latencies) = (stop.clone(), latencies.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let started = Instant::now();
                let (status, _) =
                    exchange(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", b"");
                assert_eq!(status, 200, "/health during the abuse");
                latencies.lock().unwrap().push(started.elapsed().as_secs_f64() * 1000.0);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let mut report = Vec::new();

    // thousands of idle connections, held open
    let idle: Vec<TcpStream> = (0..2000 * scale).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_secs(2));
    report.push(format!("{} idle connections held 2 s", idle.len()));

    // slow drip: 200 connections send a request one byte every 50 ms
    let request =
        format!("{}{}", post("/translate", "application/json", 44), r#"{"q":"le chat","source":"fr","target":"en"}"#);
    let mut drips: Vec<TcpStream> = (0..200 * scale).map(|_| connect(port)).collect();
    for byte in request.as_bytes().iter().take(40 * scale) {
        for stream in &mut drips {
            let _ = stream.write_all(&[*byte]);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    report.push(format!("{} slow-drip requests, one byte per 50 ms for {} ms", drips.len(), 40 * scale * 50));
    drop(drips);
    drop(idle);

    // a 1 GiB body announced: refused on its length
    let (status, body) = exchange(port, &post("/translate", "application/json", 1 << 30), &[b' '; 1 << 16]);
    assert_eq!(status, 413, "{body}");
    report.push(format!("1 GiB Content-Length: {status}"));
    // a 1 GiB chunked body: refused once past the limit, without reading the rest
    let mut stream = connect(port);
    let head = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
                Connection: close\r\n\r\n";
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = [format!("{:x}\r\n", 1 << 20).into_bytes(), vec![b' '; 1 << 20], b"\r\n".to_vec()].concat();
    let mut sent = 0usize;
    while sent < 1 << 30 && stream.write_all(&chunk).is_ok() {
        sent += 1 << 20;
    }
    let (status, _) = read_answer(&mut stream);
    assert!(status == 413 || status == 0, "chunked 1 GiB: {status}");
    report.push(format!("1 GiB chunked body: stopped after {} MiB sent, status {status}", sent >> 20));

    // deeply nested JSON
    let nested = format!(
        "{{\"q\": {}\"le chat\"{}, \"source\": \"fr\", \"target\": \"en\"}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let (status, body) = exchange(port, &post("/translate", "application/json", nested.len()), nested.as_bytes());
    assert_eq!(status, 400, "{body}");
    report.push(format!("JSON nested 100k deep: {status} {}", body.trim()));

    // 100k nested HTML tags
    let html = format!("{}le chat{}", "<b>".repeat(100_000), "</b>".repeat(100_000));
    let form: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("q", html.as_str()), ("source", "fr"), ("target", "en"), ("format", "html")])
        .finish();
    let started = Instant::now();
    let (status, body) =
        exchange(port, &post("/translate", "application/x-www-form-urlencoded", form.len()), form.as_bytes());
    assert!(status == 200 || status == 400, "{status} {}", &body[..body.len().min(300)]);
    report.push(format!("HTML with 100k nested tags: {status} in {:.2} s", started.elapsed().as_secs_f64()));

    // a flood past the queue: 300 clients at once
    let flood: Vec<_> = (0..300 * scale)
        .map(|i| {
            std::thread::spawn(move || {
                let body =
                    format!(r#"{{"q":"le chat {i} voit le chien. le chien dort.","source":"fr","target":"en"}}"#);
                exchange(port, &post("/translate", "application/json", body.len()), body.as_bytes()).0
            })
        })
        .collect();
    let statuses: Vec<u16> = flood.into_iter().map(|h| h.join().unwrap()).collect();
    let (ok, busy) = (statuses.iter().filter(|&&s| s == 200).count(), statuses.iter().filter(|&&s| s == 503).count());
    assert_eq!(ok + busy, statuses.len(), "only 200 and 503: {statuses:?}");
    report.push(format!("flood of {}: {ok} answered, {busy} told 503 Retry-After", statuses.len()));

    stop.store(true, Ordering::SeqCst);
    prober.join().unwrap();
    assert!(server.child.try_wait().unwrap().is_none(), "the server is still running");
    let (status, _, _) = server.get("/health");
    assert_eq!(status, 200);
    let mut probes = latencies.lock().unwrap().clone();
    probes.sort_by(f64::total_cmp);
    let p99 = probes[(probes.len() * 99 / 100).min(probes.len() - 1)];
    let peak = peak_rss_mib(server.child.id());
    report.push(format!(
        "/health: {} probes, p50 {:.1} ms, p99 {p99:.1} ms, max {:.1} ms; server peak RSS {peak:.0} MiB (idle {idle_rss:.0} MiB)",
        probes.len(),
        probes[probes.len() / 2],
        probes[probes.len() - 1]
    ));
    eprintln!("{}", report.join("\n"));
    assert!(p99 < 50.0, "/health p99 {p99:.1} ms during the abuse");
    assert!(peak < 1024.0, "peak RSS {peak:.0} MiB");
}

/// Reads until the server closes `stream` (or `limit` passes); the bytes read and when it closed.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    stream.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let (mut answer, mut buffer) = (Vec::new(), [0u8; 4096]);
    while started.elapsed() < limit {
        match stream.read(&mut buffer) {
            Ok(0) => return (String::from_utf8_lossy(&answer).to_string(), Some(started.elapsed())),
            Ok(n) => answer.extend_from_slice(&buffer[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => return (String::from_utf8_lossy(&answer).to_string(), Some(started.elapsed())),
        }
    }
    (String::from_utf8_lossy(&answer).to_string(), None)
}

#[test]
fn slow_and_idle_connections_close_after_the_header_timeout_and_the_cap_holds() {
    let dir = models_dir("serve-slow");
    let server = Server::start(&dir.0, &["--header-timeout", "1", "--max-connections", "32"]);
    let port = server.port;

    // a slow drip: one header byte per 100 ms is closed about a second in, unanswered
    let mut drip = connect(port);
    let head = "POST /translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Padding: ";
    let started = Instant::now();
    let mut closed = None;
    for byte in head.bytes().chain(std::iter::repeat(b'a')).take(100) {
        if drip.write_all(&[byte]).is_err() {
            closed = Some(started.elapsed());
            break;
        }
        let (_, at) = read_until_closed(&mut drip, Duration::from_millis(100));
        if at.is_some() {
            closed = Some(started.elapsed());
            break;
        }
    }
    let closed = closed.expect("the slow-drip connection is closed");
    assert!(closed > Duration::from_millis(800) && closed < Duration::from_secs(4), "closed after {closed:?}");

    // a kept-alive connection that sends no next request is closed as well
    let mut kept = connect(port);
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let (answer, at) = read_until_closed(&mut kept, Duration::from_secs(5));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let at = at.expect("the idle kept-alive connection is closed");
    assert!(at > Duration::from_millis(800), "closed after {at:?}");

    // the cap: 32 idle connections fill it, a 33rd client waits for one of them to time out
    let mut idle: Vec<TcpStream> = (0..32).map(|_| connect(port)).collect();
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    let (status, _) = exchange(port, "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n", b"");
    let waited = started.elapsed();
    assert_eq!(status, 200);
    assert!(waited > Duration::from_millis(400) && waited < Duration::from_secs(5), "answered after {waited:?}");
    for stream in &mut idle {
        let (answer, at) = read_until_closed(stream, Duration::from_secs(3));
        assert!(at.is_some() && answer.is_empty(), "an idle connection is closed unanswered: {answer:?}");
    }
    eprintln!("slow drip closed after {closed:?}; idle kept-alive after {at:?}; 33rd client answered after {waited:?}");

    let (status, metrics, _) = server.get("/metrics");
    assert_eq!(status, 200);
    let timeouts: f64 = metrics
        .as_str()
        .expect("the metrics text")
        .lines()
        .find_map(|l| l.strip_prefix("transduce_http_header_timeouts_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the header timeout counter");
    assert!(timeouts >= 34.0, "header timeouts counted: {timeouts}");
}
