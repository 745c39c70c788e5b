//! The real binary: crash with SIGKILL mid-stream and restart, start-up errors, clean stop.

use crate::helpers::{
    all_messages, messages_after, relay_command, request, send_raw, start_relay, RelayProcess,
};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

const CHANNELS: [&str; 3] = ["alpha", "beta", "gamma"];
/// Kill cycles in CI; `RELAY_KILL_CYCLES` asks for more.
const DEFAULT_KILL_CYCLES: usize = 50;
/// Concurrent writers: the even ones post over REST, the odd ones through MCP's post_message.
const WRITERS: usize = 8;

/// What the relay acknowledged: id → (target, text).
pub(crate) type Acked = Arc<Mutex<BTreeMap<u64, (String, String)>>>;

/// Posts from `WRITERS` threads, writer `w` through `relays[w % relays.len()]`, until its relay
/// stops answering or `stop` is set; records every acknowledged post (REST: 201; MCP: a result
/// with `ok: true`). A post answered without an acknowledgement is followed by the next one.
pub(crate) fn start_writers(
    relays: &[SocketAddr],
    cycle: usize,
    acked: &Acked,
    stop: &Arc<AtomicBool>,
) -> Vec<thread::JoinHandle<()>> {
    (0..WRITERS)
        .map(|w| {
            let (acked, stop, addr) = (acked.clone(), stop.clone(), relays[w % relays.len()]);
            thread::spawn(move || {
                for n in 0.. {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let target = CHANNELS[(w + n) % CHANNELS.len()];
                    let text = format!("cycle {cycle} writer {w} post {n}");
                    let message = json!({"target": target, "sender": format!("w{w}"), "text": text});
                    let (path, body) = if w % 2 == 0 {
                        ("/api/messages", message.to_string())
                    } else {
                        let call = json!({"jsonrpc": "2.0", "id": n, "method": "tools/call",
                            "params": {"name": "post_message", "arguments": message}});
                        ("/mcp", call.to_string())
                    };
                    let raw = format!(
                        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
                         Accept: application/json, text/event-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    // Killed: the connection failed or the reply was cut off.
                    let Ok(reply) = send_raw(addr, raw.as_bytes()) else {
                        return;
                    };
                    // Answered but not acknowledged (a stream without a leader: 503): again, shortly.
                    let Some(id) = acknowledged(&reply) else {
                        thread::sleep(Duration::from_millis(50));
                        continue;
                    };
                    let previous = acked.lock().unwrap().insert(id, (target.to_owned(), text));
                    assert!(previous.is_none(), "id {id} acknowledged twice");
                }
            })
        })
        .collect()
}

/// The id of an acknowledged post, from a whole REST or MCP reply.
fn acknowledged(reply: &crate::helpers::Reply) -> Option<u64> {
    let body: serde_json::Value = serde_json::from_slice(&reply.body).ok()?;
    match reply.status {
        201 => body["posted"].as_u64(),
        200 if body["result"]["structuredContent"]["ok"] == true => {
            body["result"]["structuredContent"]["posted"].as_u64()
        }
        _ => None,
    }
}

/// Compares what the relay holds with what it acknowledged. Returns the acknowledged ids that
/// are missing or changed; panics on any other inconsistency.
fn lost_messages(addr: SocketAddr, acked: &Acked) -> Vec<u64> {
    lost_messages_after(addr, acked, 0)
}

/// The same, for the messages with id > `after` only (so a long run's check per cycle does not
/// grow with everything posted before). A text stored twice (a post's retry stored again) is
/// an inconsistency too.
pub(crate) fn lost_messages_after(addr: SocketAddr, acked: &Acked, after: u64) -> Vec<u64> {
    let mut stored = BTreeMap::new();
    let mut texts = HashSet::new();
    for target in CHANNELS {
        let messages = messages_after(addr, target, after);
        let ids: Vec<u64> = messages.iter().map(|m| m["id"].as_u64().unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids of {target} are strictly increasing");
        for m in messages {
            let id = m["id"].as_u64().unwrap();
            let text = m["text"].as_str().unwrap().to_owned();
            assert!(texts.insert(text.clone()), "{text:?} is stored twice");
            assert!(stored.insert(id, (target.to_owned(), text)).is_none(), "id {id} appears twice");
        }
    }
    acked
        .lock()
        .unwrap()
        .range(after + 1..)
        .filter(|(id, want)| stored.get(*id) != Some(*want))
        .map(|(id, _)| *id)
        .collect()
}

/// The ids in the text archive under `workdir`, oldest first, across its rotated files (`.10`
/// oldest, the default count), and whether rotation has dropped the oldest file yet.
fn archived_ids(workdir: &Path) -> (Vec<u64>, bool) {
    let base = workdir.join("log/channel_messages.log");
    let files: Vec<std::path::PathBuf> = (1..=10)
        .rev()
        .map(|n| std::path::PathBuf::from(format!("{}.{n}", base.display())))
        .chain([base.clone()])
        .collect();
    let full = files[0].exists();
    let ids = files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| {
            text.lines()
                .map(|line| {
                    let json = line.splitn(3, ' ').nth(2).expect("time, then JSON");
                    serde_json::from_str::<serde_json::Value>(json).unwrap()["id"].as_u64().unwrap()
                })
                .collect::<Vec<_>>()
        })
        .collect();
    (ids, full)
}

/// The search index went through every crash too: once caught up, it finds each stored message
/// exactly once (asked by id ranges, 500 at a time).
fn search_finds_each_once(addr: SocketAddr, stored: &[u64]) {
    let Some(&last) = stored.last() else { return };
    let found = |from: u64, to: u64| {
        let reply =
            request(addr, "GET", &format!("/api/search?q=id:%5B{from}+TO+{to}%5D&limit=500"), &[], None);
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while found(1, last)["total"] != stored.len() as u64 {
        assert!(Instant::now() < deadline, "the search index did not catch up: {}", found(1, last)["total"]);
        std::thread::sleep(Duration::from_millis(100));
    }
    for chunk in stored.chunks(500) {
        let hits = found(chunk[0], chunk[chunk.len() - 1]);
        let mut ids: Vec<u64> =
            hits["hits"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect();
        ids.sort_unstable();
        assert_eq!(ids, chunk, "the search index holds each message once");
    }
}

fn stop_with_sigterm(mut relay: RelayProcess) {
    let status =
        std::process::Command::new("kill").args(["-TERM", &relay.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    assert_eq!(relay.child.wait().unwrap().code(), Some(0), "exit 0 on SIGTERM");
}

fn kill(relay: &mut RelayProcess) {
    relay.child.kill().unwrap(); // SIGKILL
    relay.child.wait().unwrap();
}

#[test]
fn acknowledged_posts_survive_sigkill_mid_stream() {
    let cycles =
        std::env::var("RELAY_KILL_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_KILL_CYCLES);
    let work = tempfile::tempdir().unwrap();
    let acked: Acked = Arc::default();
    let mut rng = fastrand::Rng::new();
    let mut startup_kills = 0;
    // What each restart checks: everything posted since two cycles back, and all of it every
    // 25 cycles and at the end.
    let mut marks = [0u64; 2];
    for cycle in 0..cycles {
        if cycle % 10 == 9 {
            // One kill in ten more lands while the relay is still starting (opening and
            // recovering sled).
            let mut child = relay_command(work.path(), &["--port", "0", "--data-dir", "data"], &[])
                .stdout(Stdio::null())
                .spawn()
                .unwrap();
            thread::sleep(Duration::from_millis(rng.u64(..30)));
            child.kill().unwrap();
            child.wait().unwrap();
            startup_kills += 1;
        }
        let mut relay = start_relay(work.path(), &[]);
        let from = if cycle % 25 == 24 { 0 } else { marks[0] };
        let lost = lost_messages_after(relay.addr, &acked, from);
        assert!(lost.is_empty(), "cycle {cycle}: acknowledged posts lost or changed: {lost:?}");
        let highest_acked = acked.lock().unwrap().keys().last().copied().unwrap_or(0);
        marks = [marks[1], highest_acked];
        let writers = start_writers(&[relay.addr], cycle, &acked, &Arc::default());
        // The kill lands mid-stream: a random moment after the first acknowledgement (which a
        // loaded machine can delay past a fixed sleep), within a bound.
        let started = Instant::now();
        while acked.lock().unwrap().range(highest_acked + 1..).next().is_none()
            && started.elapsed() < Duration::from_secs(5)
        {
            thread::sleep(Duration::from_millis(2));
        }
        if started.elapsed() > Duration::from_millis(150) {
            eprintln!("cycle {cycle}: first acknowledgement after {:?}", started.elapsed());
        }
        thread::sleep(Duration::from_millis(150 + rng.u64(..350)));
        kill(&mut relay);
        for w in writers {
            w.join().unwrap();
        }
        let acked = acked.lock().unwrap();
        let new_ids = acked.range(highest_acked + 1..).count();
        assert!(new_ids > 0, "cycle {cycle}: the writers got posts acknowledged before the kill");
    }
    let relay = start_relay(work.path(), &[]);
    assert_eq!(lost_messages(relay.addr, &acked), Vec::<u64>::new());
    let next = post_after(relay.addr);
    let next_id = next.json()["posted"].as_u64().unwrap();
    let acked = acked.lock().unwrap();
    assert!(next_id > *acked.keys().last().unwrap(), "ids keep increasing after the crashes");
    // The text archive went through every crash too: each stored message once, in id order.
    let mut stored: Vec<u64> = CHANNELS
        .iter()
        .flat_map(|c| all_messages(relay.addr, c))
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    stored.sort_unstable();
    search_finds_each_once(relay.addr, &stored);
    stop_with_sigterm(relay);
    // A long run fills every rotated file; the archive then holds the newest messages.
    let (archived, full) = archived_ids(work.path());
    let kept = if full { &stored[stored.len() - archived.len().min(stored.len())..] } else { &stored[..] };
    assert_eq!(archived, kept, "archive holds each message exactly once, in id order");
    let over_mcp = acked
        .values()
        .filter(|(_, text)| {
            text.split(' ').nth(3).is_some_and(|w| w.parse::<usize>().is_ok_and(|w| w % 2 == 1))
        })
        .count();
    eprintln!(
        "kill cycles: {cycles} ({startup_kills} extra kills during start-up), acknowledged posts: {} ({} REST, {over_mcp} MCP), lost: 0",
        acked.len(),
        acked.len() - over_mcp
    );
}

/// The same check catches lost posts when the relay acknowledges before flushing: the crash
/// test above can fail.
#[test]
fn the_crash_check_detects_posts_acknowledged_before_the_flush() {
    // The unsafe relay holds each acknowledged group 250 ms before writing it, and the kill
    // follows an acknowledgement within a few ms, so it nearly always lands in that window; a
    // kill that happens to land in a write is tried again, at most three times.
    for attempt in 1..=3 {
        let work = tempfile::tempdir().unwrap();
        let acked: Acked = Arc::default();
        let mut relay = start_relay(work.path(), &[("CLAUDE_CODEX_UNSAFE_ACK_BEFORE_FLUSH", "1")]);
        let writers = start_writers(&[relay.addr], 0, &acked, &Arc::default());
        let deadline = Instant::now() + Duration::from_secs(20);
        while acked.lock().unwrap().len() < 40 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(1));
        }
        kill(&mut relay);
        for w in writers {
            w.join().unwrap();
        }
        assert!(acked.lock().unwrap().len() >= 40, "writers got acknowledgements");
        let relay = start_relay(work.path(), &[]);
        if !lost_messages(relay.addr, &acked).is_empty() {
            return;
        }
        eprintln!("attempt {attempt}: the kill landed after the write; trying again");
    }
    panic!("acknowledging before the flush must lose posts to SIGKILL");
}

fn failed_start(work: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = relay_command(work, args, env).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "exit code 1; stderr: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    // A locked data directory is waited for first, which says so on a line of its own.
    let lines = stderr.trim_end().lines().filter(|l| !l.contains("waiting up to 10 s for it to let go"));
    assert_eq!(lines.count(), 1, "one line, no panic trace: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A relay started at once after a kill -9 under load, before the killed process is even
/// reaped (a supervisor's restart), waits for the lock the dying process still holds, then
/// serves everything acknowledged.
#[test]
fn a_restart_right_after_kill_9_waits_for_the_lock_and_serves() {
    let work = tempfile::tempdir().unwrap();
    let acked: Acked = Arc::default();
    let mut old = start_relay(work.path(), &[]);
    let writers = start_writers(&[old.addr], 0, &acked, &Arc::default());
    let started = Instant::now();
    while acked.lock().unwrap().len() < 100 && started.elapsed() < Duration::from_secs(20) {
        thread::sleep(Duration::from_millis(5));
    }
    let status = std::process::Command::new("kill").args(["-KILL", &old.child.id().to_string()]).status();
    assert!(status.unwrap().success());
    let relay = start_relay(work.path(), &[]);
    old.child.wait().unwrap();
    for w in writers {
        w.join().unwrap();
    }
    assert!(acked.lock().unwrap().len() >= 100, "the writers got posts acknowledged before the kill");
    assert_eq!(lost_messages(relay.addr, &acked), Vec::<u64>::new());
    assert_eq!(post_after(relay.addr).status, 201);
}

/// A post made after the crashes.
fn post_after(addr: SocketAddr) -> crate::helpers::Reply {
    request(addr, "POST", "/api/messages", &[], Some(br#"{"target":"alpha","sender":"s","text":"after"}"#))
}

#[test]
fn start_up_errors_are_one_line_and_exit_1() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let port = relay.addr.port().to_string();
    // Port in use (another data dir and logs, so the port is the only conflict).
    let own_logs = [
        ("CLAUDE_CODEX_LOG_PATH", "other/usage.log"),
        ("CLAUDE_CODEX_CHANNEL_LOG_PATH", "other/archive.log"),
    ];
    let e = failed_start(work.path(), &["--port", &port, "--data-dir", "other"], &own_logs);
    assert!(e.contains("in use"), "{e}");
    // Data dir locked by the running relay.
    let e = failed_start(work.path(), &["--port", "0", "--data-dir", "data"], &own_logs);
    assert!(e.contains("locked by another relay") && e.contains(&relay.child.id().to_string()), "{e}");
    // Data dir that cannot be created.
    std::fs::write(work.path().join("a-file"), "x").unwrap();
    let e = failed_start(work.path(), &["--port", "0", "--data-dir", "a-file/sub"], &own_logs);
    assert!(e.contains("a-file/sub"), "{e}");
    // A bad setting names the key and where it came from.
    let e = failed_start(work.path(), &["--port", "0"], &[("CLAUDE_CODEX_LOG_MAX_MB", "lots")]);
    assert!(e.contains("log_max_mb") && e.contains("CLAUDE_CODEX_LOG_MAX_MB"), "{e}");
    std::fs::write(work.path().join("bad.json"), r#"{"port": "eighty"}"#).unwrap();
    let e = failed_start(work.path(), &["--config", "bad.json"], &[]);
    assert!(e.contains("port") && e.contains("bad.json"), "{e}");
}

#[test]
fn sigterm_stops_cleanly_and_keeps_every_post() {
    let work = tempfile::tempdir().unwrap();
    let acked: Acked = Arc::default();
    let mut relay = start_relay(work.path(), &[]);
    let writers = start_writers(&[relay.addr], 0, &acked, &Arc::default());
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status =
        std::process::Command::new("kill").args(["-TERM", &relay.child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exit = relay.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0), "exit 0 on SIGTERM");
    assert!(started.elapsed() < Duration::from_secs(6), "stopped within the grace period");
    for w in writers {
        w.join().unwrap();
    }
    let relay = start_relay(work.path(), &[]);
    assert!(!acked.lock().unwrap().is_empty());
    assert_eq!(lost_messages(relay.addr, &acked), Vec::<u64>::new());
    let log = std::fs::read_to_string(work.path().join("log/claude_codex.log")).unwrap();
    assert!(log.lines().any(|l| l.contains(" INFO post_message {")), "tool-usage log has post lines");
}

#[test]
fn help_describes_the_commands() {
    let work = tempfile::tempdir().unwrap();
    let out = relay_command(work.path(), &["--help"], &[]).output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for word in ["serve", "rebuild", "--port", "--host", "--config", "--data-dir"] {
        assert!(help.contains(word), "--help mentions {word}");
    }
}

/// A second relay started in the same folder with its own data dir would write the first one's
/// tool-usage log and archive (and rotate them under it): it stops, naming the file and the
/// other relay, and the first goes on.
#[test]
fn a_second_relay_may_not_write_the_first_ones_logs() {
    let work = tempfile::tempdir().unwrap();
    let first = start_relay(work.path(), &[]);
    let out = relay_command(work.path(), &["--port", "0", "--data-dir", "other"], &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    let pid = first.child.id().to_string();
    assert!(stderr.contains("is written by another relay") && stderr.contains(&pid), "{stderr}");
    assert!(stderr.contains("log_path"), "{stderr}");
    assert_eq!(request(first.addr, "GET", "/healthz", &[], None).status, 200);
}

/// `completions` prints a script each shell accepts (bash parses it), naming the commands;
/// `man` prints a page groff renders without a warning.
#[test]
fn completions_and_the_man_page_are_generated() {
    let work = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = relay_command(work.path(), &["completions", shell], &[]).output().unwrap();
        let script = String::from_utf8(out.stdout).unwrap();
        assert!(
            out.status.success() && script.contains("principals") && script.contains("data-dir"),
            "{shell}"
        );
        if shell == "bash" {
            let path = work.path().join("completion.bash");
            std::fs::write(&path, &script).unwrap();
            let parsed = std::process::Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(parsed.status.success(), "{}", String::from_utf8_lossy(&parsed.stderr));
        }
    }
    let out = relay_command(work.path(), &["completions", "tcsh"], &[]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("possible values"));
    let out = relay_command(work.path(), &["man"], &[]).output().unwrap();
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success() && page.contains(".TH claude-codex-relay 1") && page.contains("principals"));
    let path = work.path().join("claude-codex-relay.1");
    std::fs::write(&path, &page).unwrap();
    let rendered = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-z"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(rendered.status.success(), "groff");
    assert_eq!(String::from_utf8_lossy(&rendered.stderr), "", "groff warns");
}

/// deploy/claude-codex-relay.service passes `systemd-analyze verify` without a warning (its
/// ExecStart pointed at the binary under test: verify wants it to exist), and a bad value in
/// it would not.
#[test]
fn the_systemd_unit_verifies_without_a_warning() {
    let unit = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/claude-codex-relay.service"),
    )
    .unwrap();
    let ours = unit.replace("/usr/local/bin/claude-codex-relay", env!("CARGO_BIN_EXE_claude-codex-relay"));
    assert_ne!(ours, unit, "the unit starts /usr/local/bin/claude-codex-relay");
    let work = tempfile::tempdir().unwrap();
    let verify = |text: &str| {
        let path = work.path().join("claude-codex-relay.service");
        std::fs::write(&path, text).unwrap();
        let out = std::process::Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&path)
            .current_dir(work.path())
            .output()
            .expect("systemd-analyze runs (.ci/run installs systemd)");
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (passed, warnings) = verify(&ours);
    assert!(passed && warnings.is_empty(), "{warnings}");
    let (_, warnings) = verify(&ours.replace("Restart=on-failure", "Restart=sometimes"));
    assert!(warnings.contains("sometimes"), "a bad value is reported: {warnings:?}");
}

/// `--version` names the commit the binary was built from (this checkout's HEAD).
#[test]
fn version_names_the_commit() {
    let work = tempfile::tempdir().unwrap();
    let out = relay_command(work.path(), &["--version"], &[]).output().unwrap();
    let version = String::from_utf8(out.stdout).unwrap();
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or("unknown".to_owned(), |o| String::from_utf8(o.stdout).unwrap().trim().to_owned());
    let expected = format!("claude-codex-relay {} (commit {head}", env!("CARGO_PKG_VERSION"));
    assert!(out.status.success() && version.starts_with(&expected), "{version:?} vs {expected:?}");
}

#[test]
fn rebuild_replays_the_log_and_keeps_every_message() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    let posted: HashSet<u64> = (0..20)
        .map(|i| {
            let body = json!({"target": CHANNELS[i % 3], "sender": "s", "text": format!("m{i}")}).to_string();
            request(relay.addr, "POST", "/api/messages", &[], Some(body.as_bytes())).json()["posted"]
                .as_u64()
                .unwrap()
        })
        .collect();
    drop(relay);
    let out = relay_command(work.path(), &["rebuild", "--data-dir", "data"], &[]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("from 20 events"));
    let relay = start_relay(work.path(), &[]);
    let after: HashSet<u64> = CHANNELS
        .iter()
        .flat_map(|c| all_messages(relay.addr, c))
        .map(|m| m["id"].as_u64().unwrap())
        .collect();
    assert_eq!(after, posted);
}

#[test]
fn store_commands_refuse_a_running_relays_dir_and_round_trip_when_stopped() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    for i in 0..25 {
        let body = json!({"target": CHANNELS[i % 3], "sender": "s", "text": format!("m{i}\nsecond line")})
            .to_string();
        request(relay.addr, "POST", "/api/messages", &[], Some(body.as_bytes()));
    }
    let from_http = request(relay.addr, "GET", "/api/export", &[], None).text();
    // Each waits for the lock (up to 10 s) before it gives up: side by side, not one after another.
    let refusals: Vec<_> = [&["export"][..], &["check"], &["rebuild"], &["import", "x.jsonl"]]
        .into_iter()
        .map(|command| {
            let mut args = command.to_vec();
            args.extend(["--data-dir", "data"]);
            let dir = work.path().to_owned();
            (command, thread::spawn(move || failed_start(&dir, &args, &[])))
        })
        .collect();
    for (command, refusal) in refusals {
        let e = refusal.join().unwrap();
        assert!(e.contains("locked by another relay"), "{command:?}: {e}");
        if command[0] == "export" {
            assert!(e.contains("/api/export"), "export points to the running relay's export: {e}");
        }
    }
    stop_with_sigterm(relay);
    let run = |args: &[&str]| {
        let out = relay_command(work.path(), args, &[]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let exported = run(&["export", "--data-dir", "data"]);
    assert_eq!(exported, from_http, "the CLI and GET /api/export write the same lines");
    run(&["export", "--data-dir", "data", "--out", "log.jsonl"]);
    assert!(run(&["import", "log.jsonl", "--data-dir", "copy"]).contains("imported 25 events"));
    assert_eq!(run(&["export", "--data-dir", "copy"]), exported, "round trip is byte-identical");
    assert!(run(&["check", "--data-dir", "copy"]).contains("25 events, log and views sound"));
    let replay = run(&["replay", "--print", "--data-dir", "copy"]);
    assert_eq!(replay.lines().next(), Some("#1 [s -> alpha] m0"));
}

#[test]
fn unknown_config_keys_are_warned_about_and_the_relay_starts() {
    let work = tempfile::tempdir().unwrap();
    let config = r#"{"_comment": "ours", "prot": 1, "port": "0", "channels": "a, b"}"#;
    std::fs::write(work.path().join("config.json"), config).unwrap();
    let relay = start_relay(work.path(), &[]);
    let channels = request(relay.addr, "GET", "/api/channels", &[], None).json();
    assert_eq!(channels["channels"], json!(["a", "b"]), "the string list was read");
    // A clean stop, so the log's buffer is written out.
    let mut relay = relay;
    std::process::Command::new("kill").args(["-TERM", &relay.child.id().to_string()]).status().unwrap();
    relay.child.wait().unwrap();
    let log = std::fs::read_to_string(work.path().join("log/claude_codex.log")).unwrap();
    assert!(log.contains("config_warning") && log.contains("did you mean port?"), "{log}");
    // Every command prints them.
    let out = relay_command(work.path(), &["check", "--data-dir", "nothing-here"], &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            r#"warning: config file config.json: "prot" is not a setting, ignored; did you mean port?"#
        ),
        "{stderr}"
    );
    assert!(stderr.contains(r#""_comment" is not a setting, ignored"#), "{stderr}");
}
