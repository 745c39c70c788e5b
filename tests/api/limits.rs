//! Named limits, each pushed past: connections (`MAX_CONNECTIONS`), open waits
//! (`MAX_WAITERS`), a client slow to send its headers (`HEADER_READ_TIMEOUT`) or its body
//! (`BODY_READ_TIMEOUT`). Past each: a clear 503 or 408, or a closed connection, and the relay
//! goes on serving everyone else.

use crate::helpers::{request, start_relay};
use relay::http::request::BODY_READ_TIMEOUT;
use relay::http::serve::{HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
use relay::relay::MAX_WAITERS;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    stream
}

/// The status line of the next reply on `stream`.
fn status_line(stream: &TcpStream) -> String {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

#[test]
fn connections_past_the_limit_get_503_and_the_rest_are_served() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    // Fill every slot with an open connection that has not sent anything yet.
    let open: Vec<TcpStream> = (0..MAX_CONNECTIONS).map(|_| connect(relay.addr)).collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut extra = connect(relay.addr);
    let mut reply = String::new();
    extra.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("too many connections"), "{reply}");
    // A connection already in is served normally.
    let mut first = &open[0];
    write!(first, "GET /healthz HTTP/1.1\r\nHost: {}\r\n\r\n", relay.addr).unwrap();
    assert!(status_line(first).starts_with("HTTP/1.1 200"));
    // Once connections close, new ones are accepted again.
    drop(open);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(request(relay.addr, "GET", "/healthz", &[], None).status, 200);
}

#[test]
fn waits_past_the_limit_get_503_and_reads_go_on() {
    const EXTRA: usize = 10;
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    // More long waits than there are slots: the ones past the limit are refused at once.
    let waits: Vec<TcpStream> = (0..MAX_WAITERS + EXTRA)
        .map(|_| {
            let mut s = connect(relay.addr);
            write!(
                s,
                "GET /api/messages?target=w&since_id=0&wait=30 HTTP/1.1\r\nHost: {}\r\n\r\n",
                relay.addr
            )
            .unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let refused = request(relay.addr, "GET", "/api/messages?target=w&since_id=0&wait=1", &[], None);
    refused.assert_error(503, "too many waits open at once (limit 256)");
    assert_eq!(request(relay.addr, "GET", "/api/messages?target=w", &[], None).status, 200, "reads go on");
    // A post wakes every wait, which frees the slots.
    let post = request(
        relay.addr,
        "POST",
        "/api/messages",
        &[("Content-Type", "application/json")],
        Some(br#"{"target":"w","sender":"s","text":"wake up"}"#),
    );
    assert_eq!(post.status, 201);
    let statuses: Vec<String> = waits.iter().map(|w| status_line(w)[9..12].to_owned()).collect();
    assert_eq!(statuses.iter().filter(|s| *s == "200").count(), MAX_WAITERS, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| *s == "503").count(), EXTRA, "{statuses:?}");
    assert_eq!(
        request(relay.addr, "GET", "/api/messages?target=w&since_id=1&wait=0.01", &[], None).status,
        200
    );
}

#[test]
fn a_client_slow_to_send_its_headers_is_dropped() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let mut slow = connect(relay.addr);
    let started = Instant::now();
    let request_bytes =
        format!("GET /healthz HTTP/1.1\r\nHost: {}\r\nX-Padding: {}\r\n\r\n", relay.addr, "x".repeat(200));
    // One byte every half second: a request that would take 2 minutes to arrive.
    let mut closed = false;
    for byte in request_bytes.as_bytes() {
        if slow.write_all(&[*byte]).is_err() {
            closed = true;
            break;
        }
        // Others are served meanwhile.
        if started.elapsed() < Duration::from_secs(1) {
            assert_eq!(request(relay.addr, "GET", "/healthz", &[], None).status, 200);
        }
        let mut probe = [0u8; 1];
        slow.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
        match slow.read(&mut probe) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(_) => break, // an answer: the server gave up with a reply
            Err(_) => {}    // still open
        }
        assert!(started.elapsed() < HEADER_READ_TIMEOUT + Duration::from_secs(10), "never dropped");
    }
    let took = started.elapsed();
    assert!(closed || took < HEADER_READ_TIMEOUT + Duration::from_secs(3), "the slow client was dropped");
    assert!(took >= HEADER_READ_TIMEOUT - Duration::from_secs(1), "not before the timeout: {took:?}");
    eprintln!("slow headers: dropped after {took:?} (limit {HEADER_READ_TIMEOUT:?})");
}

#[test]
fn a_body_that_never_finishes_gets_408() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let mut stalled = connect(relay.addr);
    let started = Instant::now();
    write!(
        stalled,
        "POST /api/messages HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"target\":",
        relay.addr
    )
    .unwrap();
    // Posts from others are stored meanwhile: the stalled one holds no writer slot.
    let post = request(
        relay.addr,
        "POST",
        "/api/messages",
        &[("Content-Type", "application/json")],
        Some(br#"{"target":"t","sender":"s","text":"meanwhile"}"#),
    );
    assert_eq!(post.status, 201);
    let mut reply = String::new();
    let _ = stalled.read_to_string(&mut reply);
    let took = started.elapsed();
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(reply.contains("did not arrive within"), "{reply}");
    assert!(took >= BODY_READ_TIMEOUT && took < BODY_READ_TIMEOUT + Duration::from_secs(5), "{took:?}");
}
