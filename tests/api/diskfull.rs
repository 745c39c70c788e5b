//! A full disk: the relay's data dir on a small tmpfs, filled up. Posts fail with a clear 503,
//! reads keep working, nothing acknowledged is lost (a post whose commit reached the log but not
//! the channel view reads back after the restart the relay asks for), and after space is freed
//! and the relay restarted, posts succeed again. Mounting needs root (CI runs as root); elsewhere
//! the test says it skipped, and fails under CI=true.

use crate::helpers::{all_messages, request, start_relay};
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A tmpfs mounted for the test, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fills the file system holding `dir` to the last byte.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = std::fs::File::create(&path).unwrap();
    for size in [1 << 20, 64 << 10, 4 << 10, 512, 1] {
        let chunk = vec![0u8; size];
        while file.write_all(&chunk).is_ok() {}
    }
    let _ = file.sync_all();
    path
}

fn post(addr: std::net::SocketAddr, n: usize) -> (u16, serde_json::Value) {
    let body = json!({"target": "full", "sender": "s", "text": format!("post {n} {}", "x".repeat(1500))});
    let reply = request(
        addr,
        "POST",
        "/api/messages",
        &[("Content-Type", "application/json")],
        Some(body.to_string().as_bytes()),
    );
    (reply.status, reply.json())
}

#[test]
fn a_full_disk_refuses_posts_clearly_and_loses_nothing() {
    let outer = tempfile::tempdir().unwrap();
    let Some(mount) = Tmpfs::mount(outer.path(), "16m") else {
        assert!(std::env::var_os("CI").is_none(), "CI must be able to mount a tmpfs (run as root)");
        eprintln!("SKIPPED: mounting a tmpfs needs root");
        return;
    };
    let work = mount.0.clone();
    let relay = start_relay(&work, &[]);
    let mut acked = Vec::new();
    for n in 0..20 {
        let (status, reply) = post(relay.addr, n);
        assert_eq!(status, 201, "{reply}");
        acked.push(reply["posted"].as_u64().unwrap());
    }
    let filler = fill(&work);
    let mut refusal = None;
    for n in 20..400 {
        match post(relay.addr, n) {
            (201, reply) => acked.push(reply["posted"].as_u64().unwrap()),
            (503, reply) => {
                refusal = Some(reply["error"].as_str().unwrap().to_owned());
                break;
            }
            (status, reply) => panic!("post {n}: {status} {reply}"),
        }
    }
    let refusal = refusal.expect("a post was refused once the disk was full");
    assert!(refusal.contains("disk is full") && refusal.contains("free space"), "{refusal}");
    // Still refused, still clear, and reads work.
    let (status, reply) = post(relay.addr, 999);
    assert_eq!(status, 503, "{reply}");
    let stored: Vec<u64> =
        all_messages(relay.addr, "full").iter().map(|m| m["id"].as_u64().unwrap()).collect();
    // When the disk fills between a commit's log write (durable, so acknowledged) and its
    // channel-view update, that commit's posts show in reads only after the restart the relay
    // then asks for; every other acknowledged post reads back now.
    let pending = &acked[stored.len().min(acked.len())..];
    assert_eq!(stored, acked[..stored.len()], "reads work and hold the acknowledged posts in order");
    assert!(
        pending.is_empty() || reply["error"].as_str().unwrap().contains("restart the relay"),
        "acknowledged {pending:?} not readable, and the relay does not ask for a restart: {reply}"
    );
    assert_eq!(request(relay.addr, "GET", "/c/full", &[], None).status, 200, "the web UI still reads");

    // Free space, restart: everything acknowledged is there and posts work again.
    std::fs::remove_file(filler).unwrap();
    drop(relay);
    let relay = start_relay(&work, &[]);
    let stored: Vec<u64> =
        all_messages(relay.addr, "full").iter().map(|m| m["id"].as_u64().unwrap()).collect();
    assert_eq!(stored, acked, "nothing acknowledged was lost");
    let (status, reply) = post(relay.addr, 1000);
    assert_eq!(status, 201, "{reply}");
    eprintln!("disk full: {} posts acknowledged before it, refused with: {refusal}", acked.len());
    drop(relay);
}
