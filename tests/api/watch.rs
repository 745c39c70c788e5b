//! `watch` and `post` against a real relay, both as real processes.

use crate::helpers::{relay_command, start_relay, start_relay_on};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// Starts `watch` and hands back its stdout lines as they come.
pub(crate) fn start_watch(work: &Path, port: u16, extra: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let url = format!("http://127.0.0.1:{port}");
    let mut args = vec!["watch", "--url", &url, "--target", "rv", "--wait", "2"];
    args.extend_from_slice(extra);
    let mut child =
        relay_command(work, &args, &[]).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// `post` to channel `rv` of the relay on `port`.
pub(crate) fn post(work: &Path, port: u16, sender: &str, text: &str) {
    let url = format!("http://127.0.0.1:{port}");
    let out = relay_command(work, &["post", "--url", &url, "--target", "rv", "--sender", sender, text], &[])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

pub(crate) fn next_line(lines: &mpsc::Receiver<String>) -> String {
    lines.recv_timeout(Duration::from_secs(20)).expect("watch printed a line in time")
}

#[test]
fn watch_delivers_each_message_once_and_survives_a_restart() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let port = relay.addr.port();
    let (mut watch, lines) =
        start_watch(work.path(), port, &["--not-from", "codex", "--state-file", "state"]);
    thread::sleep(Duration::from_millis(500));
    post(work.path(), port, "claude", "first packet\nwith a second line");
    post(work.path(), port, "codex", "own reply: not shown");
    post(work.path(), port, "claude", "second packet");
    assert_eq!(next_line(&lines), "#1 [claude -> rv] first packet");
    assert_eq!(next_line(&lines), "#3 [claude -> rv] second packet");
    drop(relay); // SIGKILL
    thread::sleep(Duration::from_millis(300));
    let _relay = start_relay_on(work.path(), port, &[]);
    post(work.path(), port, "claude", "after the restart");
    // A crash may leave a gap in the ids (never a reuse), so only the order is fixed.
    let line = next_line(&lines);
    let id: u64 = line.strip_prefix('#').and_then(|l| l.split(' ').next()).unwrap().parse().unwrap();
    assert!(id > 3 && line.ends_with(" [claude -> rv] after the restart"), "{line}");
    assert!(lines.recv_timeout(Duration::from_secs(3)).is_err(), "nothing delivered twice");
    watch.kill().unwrap();
    watch.wait().unwrap();
    assert_eq!(std::fs::read_to_string(work.path().join("state")).unwrap().trim(), id.to_string());
}

#[test]
fn watch_resumes_from_its_state_file_and_honours_from() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let port = relay.addr.port();
    for (sender, text) in [("claude", "old"), ("claude", "new 1"), ("codex", "mine"), ("claude", "new 2")] {
        post(work.path(), port, sender, text);
    }
    std::fs::write(work.path().join("state"), "1\n").unwrap();
    let (mut watch, lines) =
        start_watch(work.path(), port, &["--from", "claude", "--state-file", "state", "--once"]);
    assert_eq!(next_line(&lines), "#2 [claude -> rv] new 1");
    assert_eq!(next_line(&lines), "#4 [claude -> rv] new 2");
    assert!(watch.wait().unwrap().success(), "--once stops after the first batch");
    assert_eq!(std::fs::read_to_string(work.path().join("state")).unwrap().trim(), "4");
}

#[test]
fn a_failing_exec_gets_the_batch_again() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let port = relay.addr.port();
    // Fails the first time, then saves what it was given.
    let cmd = r#"if [ -f tried ]; then cat > got.json; echo "$RELAY_TARGET $RELAY_LAST_ID $RELAY_SENDER" > env.txt; else touch tried; exit 3; fi"#;
    let (mut watch, lines) =
        start_watch(work.path(), port, &["--state-file", "state", "--exec", cmd, "--once"]);
    thread::sleep(Duration::from_millis(500));
    post(work.path(), port, "claude", "review me");
    assert_eq!(next_line(&lines), "#1 [claude -> rv] review me");
    assert_eq!(next_line(&lines), "#1 [claude -> rv] review me", "delivered again after the failure");
    assert!(watch.wait().unwrap().success());
    let got: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("got.json")).unwrap()).unwrap();
    assert_eq!(got[0]["text"], "review me");
    assert_eq!(std::fs::read_to_string(work.path().join("env.txt")).unwrap().trim(), "rv 1 claude");
    assert_eq!(std::fs::read_to_string(work.path().join("state")).unwrap().trim(), "1");
    drop(relay);
}

/// `watch --reader`: the relay keeps the place, moved on only once --exec succeeded; a second
/// watch as the same reader after a restart of the relay starts after what the first handled.
#[test]
fn watch_with_a_reader_keeps_its_place_on_the_relay() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let port = relay.addr.port();
    post(work.path(), port, "claude", "history: skipped by a new reader");
    let cmd = r#"if [ -f tried ]; then cat >> got.json; else touch tried; exit 3; fi"#;
    let (mut watch, lines) = start_watch(work.path(), port, &["--reader", "codex", "--exec", cmd, "--once"]);
    thread::sleep(Duration::from_millis(500));
    let cursor = |port: u16| {
        let channels =
            crate::helpers::request(([127, 0, 0, 1], port).into(), "GET", "/api/channels", &[], None).json();
        let rv = channels["details"].as_array().unwrap().iter().find(|c| c["name"] == "rv").unwrap().clone();
        rv["readers"]["codex"].as_u64()
    };
    assert_eq!(cursor(port), Some(1), "a new reader starts at the channel's end, recorded");
    post(work.path(), port, "claude", "review me");
    // Id 2 is the new reader's cursor event: the message is 3.
    assert_eq!(next_line(&lines), "#3 [claude -> rv] review me");
    assert_eq!(next_line(&lines), "#3 [claude -> rv] review me", "delivered again after the failure");
    assert!(watch.wait().unwrap().success());
    assert_eq!(cursor(port), Some(3), "acknowledged once the command succeeded");

    drop(relay); // SIGKILL
    let relay = start_relay_on(work.path(), port, &[]);
    post(work.path(), port, "claude", "after the restart");
    let (mut watch, lines) = start_watch(work.path(), port, &["--reader", "codex", "--once"]);
    let line = next_line(&lines);
    assert!(line.ends_with("[claude -> rv] after the restart"), "{line}");
    assert!(watch.wait().unwrap().success());
    let got = std::fs::read_to_string(work.path().join("got.json")).unwrap();
    assert_eq!(got.matches("review me").count(), 1, "{got}");
    drop(relay);
}

#[test]
fn post_reads_stdin_and_reports_refusals() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let url = format!("http://{}", relay.addr);
    let mut child =
        relay_command(work.path(), &["post", "--url", &url, "--target", "rv", "--sender", "s", "-"], &[])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), b"```diff\n+x\n```\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "posted #1\n");
    let out =
        relay_command(work.path(), &["post", "--url", &url, "--target", " ", "--sender", "s", "x"], &[])
            .output()
            .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("target"), "the error names the field");
}
