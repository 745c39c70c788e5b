//! Damage on disk never destroys data: a relay that must read a damaged record refuses to start,
//! naming the database's path and the record's id, and changes nothing; `check` finds it.

use crate::helpers::{relay_command, start_relay};
use std::collections::BTreeMap;
use std::path::Path;

/// Opens the relay's sled database at `dir` directly, in the compression mode it was made with
/// (sled refuses another). A relay just killed may hold sled's file lock for a moment still: the
/// kernel lets go once it has torn the process down.
fn open_db(dir: &Path) -> sled::Db {
    let conf = std::fs::read(dir.join("conf")).unwrap();
    let compressed = conf.windows(21).any(|w| w == b"use_compression: true");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match sled::Config::new().path(dir).use_compression(compressed).open() {
            Err(e)
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            opened => return opened.unwrap(),
        }
    }
}

/// Every record of every tree in the sled database at `dir` (sled itself may rewrite its files
/// on open; what must not change is what they hold).
fn snapshot(dir: &Path) -> BTreeMap<(Vec<u8>, Vec<u8>), Vec<u8>> {
    let db = open_db(dir);
    let mut out = BTreeMap::new();
    for name in db.tree_names() {
        for item in db.open_tree(&name).unwrap().iter() {
            let (k, v) = item.unwrap();
            out.insert((name.to_vec(), k.to_vec()), v.to_vec());
        }
    }
    out
}

#[test]
fn a_damaged_record_stops_the_start_names_path_and_id_and_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let relay = start_relay(work.path(), &[]);
    for n in 0..10 {
        let reply = crate::helpers::request(
            relay.addr,
            "POST",
            "/api/messages",
            &[("Content-Type", "application/json")],
            Some(format!(r#"{{"target":"d","sender":"s","text":"m{n}"}}"#).as_bytes()),
        );
        assert_eq!(reply.status, 201);
    }
    drop(relay);
    let db_dir = work.path().join("data/db");
    {
        // Damage event 8 and drop the views, so the next start has to read it.
        let db = open_db(&db_dir);
        db.open_tree("events").unwrap().insert(8u64.to_be_bytes(), &[1u8, 0xff][..]).unwrap();
        db.open_tree("views").unwrap().clear().unwrap();
        db.flush().unwrap();
    }
    let before = snapshot(&db_dir);

    let out = relay_command(work.path(), &["--port", "0", "--data-dir", "data"], &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("event 8"), "names the id: {stderr}");
    assert!(stderr.contains("(in data/db;"), "names the path as given: {stderr}");
    assert!(stderr.contains("check --data-dir"), "says what to do: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let after = snapshot(&db_dir);
    assert!(after.len() > 10 && before == after, "a refused start changed the database");

    let out = relay_command(work.path(), &["check", "--data-dir", "data"], &[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("event 8: cannot decode")), "{stdout}");
    assert!(stdout.contains("data: 10 events, 1 problem;"), "{stdout}");
}
