use super::*;
use crate::event::Event;
use crate::message::Source;
use crate::values::{Name, Text};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::thread;

use crate::usage_log::discard as quiet;
use commands::rebuild::{log_of, stream_of};
use event_log::{nats as nats_log, sled as sled_log, EventLog};
use projections::{archive, blocks, channel_views};

// The commands on a stopped store, in sled mode: most tests here are about the data directory.
fn check(dir: &Path) -> Result<CheckReport, StoreError> {
    super::check(dir, &Backend::sled())
}

fn rebuild(dir: &Path, archive: Option<&ArchiveConfig>, progress: Progress) -> Result<u64, StoreError> {
    super::rebuild(dir, archive, &Backend::sled(), progress)
}

fn export(dir: &Path, filter: &ExportFilter, out: &mut dyn Write) -> Result<u64, StoreError> {
    super::export(dir, &Backend::sled(), filter, out)
}

fn import(
    dir: &Path,
    path: &Path,
    merge: bool,
    archive: Option<&ArchiveConfig>,
    options: Options,
) -> Result<ImportReport, ImportError> {
    super::import(dir, &Backend::sled(), path, merge, archive, options)
}

fn replay_print(dir: &Path, out: &mut dyn Write) -> Result<u64, StoreError> {
    super::replay_print(dir, &Backend::sled(), out)
}

/// A message from `tester` (the NATS backend's tests use it too).
pub(super) fn new_message(target: &str, text: &str) -> NewMessage {
    NewMessage {
        target: Name::parse("target", target).unwrap(),
        sender: Name::parse("sender", "tester").unwrap(),
        text: Text::parse(text.to_owned(), 1 << 20).unwrap(),
        source: Source::Cli,
        reply_to: None,
    }
}

/// A message of `s` on `target` as the log holds it, under `id` (posted at `id` seconds).
pub(crate) fn posted(id: u64, target: &str, text: &str) -> Event {
    let (target, sender, text) = (target.into(), "s".into(), text.into());
    let (source, reply_to, redacted) = (Source::Cli, None, None);
    Event::MessagePosted(Message { id, ts: id as f64, target, sender, text, source, reply_to, redacted })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Posts `n` messages over three channels from many tasks at once, so commits group them.
fn post_concurrently(store: &Store, n: usize) -> Vec<Message> {
    runtime().block_on(async {
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.append(new_message(["a", "b", "c"][i % 3], &format!("m{i}"))).await
                })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap().unwrap());
        }
        out
    })
}

#[test]
fn appends_get_increasing_ids_and_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    let posted = post_concurrently(&store, 300);
    let mut ids: Vec<u64> = posted.iter().map(|m| m.id).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 300);
    let a = store.since("a", 0, 1000).unwrap();
    assert_eq!(a.len(), 100);
    assert!(a.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(store.tail("b", 5).unwrap().len(), 5);
    assert_eq!(
        store.tail("b", 5).unwrap().last().unwrap().id,
        store.since("b", 0, 1000).unwrap().last().unwrap().id
    );
    assert_eq!(store.message_count(), 300);
    store.close().unwrap();
}

#[test]
fn since_and_tail_respect_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    let rt = runtime();
    let ids: Vec<u64> =
        (0..10).map(|i| rt.block_on(store.append(new_message("x", &format!("{i}")))).unwrap().id).collect();
    let page = store.since("x", ids[3], 4).unwrap();
    assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), ids[4..8]);
    assert_eq!(store.tail("x", 3).unwrap().iter().map(|m| m.id).collect::<Vec<_>>(), ids[7..]);
    assert!(store.since("x", ids[9], 10).unwrap().is_empty());
    assert!(store.since("nope", 0, 10).unwrap().is_empty());
    assert!(store.tail("nope", 10).unwrap().is_empty());
    store.close().unwrap();
}

fn archive_in(dir: &Path, max_bytes: u64) -> ArchiveConfig {
    ArchiveConfig { path: dir.join("log/channel_messages.log"), max_bytes, backups: 3 }
}

/// The archive's lines, oldest first, across its backups.
fn archive_lines(config: &ArchiveConfig) -> Vec<String> {
    let mut files: Vec<PathBuf> =
        (1..=config.backups).rev().map(|n| PathBuf::from(format!("{}.{n}", config.path.display()))).collect();
    files.push(config.path.clone());
    files
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|text| text.lines().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

fn archived_ids(config: &ArchiveConfig) -> Vec<u64> {
    archive_lines(config)
        .iter()
        .map(|l| {
            let json = l.splitn(3, ' ').nth(2).unwrap();
            serde_json::from_str::<serde_json::Value>(json).unwrap()["id"].as_u64().unwrap()
        })
        .collect()
}

#[test]
fn rebuilt_projections_equal_incremental_ones() {
    rebuilt_projections_equal_incremental_ones_on(&Backend::sled());
}

#[test]
fn rebuilt_projections_equal_incremental_ones_with_the_log_in_nats() {
    let cluster = nats_log::tests::cluster::Cluster::start();
    rebuilt_projections_equal_incremental_ones_on(&Backend::nats(nats_log::tests::config(
        &cluster, "REBUILT",
    )));
}

fn rebuilt_projections_equal_incremental_ones_on(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_in(dir.path(), 1 << 30);
    let store = Store::open_on(dir.path(), Some(&archive), Options::default(), backend, quiet()).unwrap();
    post_concurrently(&store, 500);
    // Cursor moves among the messages, one of them backwards (no event).
    for (reader, channel, to) in
        [("codex", "a", 90), ("claude", "a", 400), ("codex", "a", 30), ("codex", "b", 500)]
    {
        let (reader, channel) =
            (Name::parse("reader", reader).unwrap(), Name::parse("target", channel).unwrap());
        runtime().block_on(store.move_cursor(&reader, &channel, to)).unwrap();
    }
    post_concurrently(&store, 100);
    store.close().unwrap();
    drop(store);
    let incremental = dump_views(dir.path(), backend);
    let incremental_archive = std::fs::read(&archive.path).unwrap();
    assert_eq!(super::rebuild(dir.path(), Some(&archive), backend, &mut |_, _| {}).unwrap(), 603);
    let rebuilt = dump_views(dir.path(), backend);
    let blocks = incremental.iter().filter(|(k, _)| k[0] == 3).count();
    assert!(blocks >= 6, "200 messages a channel seal three blocks each: {blocks}");
    assert_eq!(incremental.iter().filter(|(k, _)| k[0] == 6).count(), 3, "three cursors");
    assert_eq!(incremental, rebuilt);
    assert_eq!(std::fs::read(&archive.path).unwrap(), incremental_archive, "archive rebuilt byte for byte");
}

/// A deterministic random source for the tests below.
fn seeded(seed: u64) -> impl FnMut() -> u64 {
    let mut rng = fastrand::Rng::with_seed(seed);
    move || rng.u64(..)
}

/// The channel views against a plain model, across block seals (by count and by size), in
/// commits of every size, a reopen and a rebuild: since, tail and before give what the model
/// does for random channels, ids and limits.
#[test]
fn views_answer_like_a_plain_model_across_blocks() {
    views_answer_like_a_plain_model(&Backend::sled());
}

/// The same test body with the log in a NATS JetStream stream (a 3-node cluster on loopback).
#[test]
fn views_answer_like_a_plain_model_with_the_log_in_nats() {
    let cluster = nats_log::tests::cluster::Cluster::start();
    views_answer_like_a_plain_model(&Backend::nats(nats_log::tests::config(&cluster, "MODEL")));
}

fn views_answer_like_a_plain_model(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let mut next = seeded(0x2545_F491_4F6C_DD1D);
    type Model = std::collections::BTreeMap<String, Vec<(u64, String)>>;
    let mut model = Model::new();
    let rt = runtime();
    let post_some = |store: &Store, model: &mut Model, next: &mut dyn FnMut() -> u64, n: usize| {
        let group: Vec<(String, String)> = (0..n)
            .map(|i| {
                let channel = ["a", "b", "c"][(next() % 3) as usize].to_owned();
                // Mostly short; now and then large enough to seal a block by its bytes.
                let size = if next().is_multiple_of(25) {
                    20_000 + (next() % 40_000) as usize
                } else {
                    1 + (next() % 300) as usize
                };
                (channel, format!("{i} {}", "x".repeat(size)))
            })
            .collect();
        let posted = rt.block_on(async {
            let tasks: Vec<_> = group
                .iter()
                .map(|(c, t)| {
                    let (store, message) = (store.clone(), new_message(c, t));
                    tokio::spawn(async move { store.append(message).await.unwrap() })
                })
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        });
        for m in posted {
            model.entry(m.target.clone()).or_default().push((m.id, m.text));
        }
        for messages in model.values_mut() {
            messages.sort_unstable_by_key(|(id, _)| *id);
        }
    };
    let verify = |store: &Store, model: &Model, seed: u64| {
        let mut next = seeded(seed);
        let got = |page: Vec<StoredMessage>| -> Vec<(u64, String)> {
            page.iter().map(|m| (m.id, m.decode().unwrap().text)).collect()
        };
        for _ in 0..300 {
            let channel = ["a", "b", "c", "none"][(next() % 4) as usize];
            let all = model.get(channel).cloned().unwrap_or_default();
            let last = all.last().map_or(0, |(id, _)| *id);
            let at = next() % (last + 3);
            let limit = [1, 2, 63, 64, 65, 200, 500][(next() % 7) as usize];
            let since: Vec<_> = all.iter().filter(|(id, _)| *id > at).take(limit).cloned().collect();
            assert_eq!(
                got(store.since(channel, at, limit).unwrap()),
                since,
                "since({channel}, {at}, {limit})"
            );
            let tail: Vec<_> = all[all.len().saturating_sub(limit)..].to_vec();
            assert_eq!(got(store.tail(channel, limit).unwrap()), tail, "tail({channel}, {limit})");
            let older: Vec<_> = all.iter().filter(|(id, _)| *id < at).cloned().collect();
            let before = older[older.len().saturating_sub(limit)..].to_vec();
            assert_eq!(
                got(store.before(channel, at, limit).unwrap()),
                before,
                "before({channel}, {at}, {limit})"
            );
        }
    };

    // What is tested here is the layout, not the disk.
    let open = |options| Store::open_on(dir.path(), None, options, backend, quiet()).unwrap();
    let store = open(Options { power_safe: false, ..Options::default() });
    for n in [1, 5, 64, 130, 1, 300, 7] {
        post_some(&store, &mut model, &mut next, n);
        verify(&store, &model, n as u64);
    }
    store.close().unwrap();
    drop(store);
    // Reopened: the open messages are read back from the log, and sealing goes on from there.
    let store = open(Options { power_safe: false, ..Options::default() });
    verify(&store, &model, 99);
    post_some(&store, &mut model, &mut next, 200);
    verify(&store, &model, 100);
    assert_eq!(store.message_count(), model.values().map(|m| m.len() as u64).sum::<u64>());
    store.close().unwrap();
    drop(store);
    assert_rebuild_on_seals_the_same_blocks(dir.path(), backend);
    assert!(super::check(dir.path(), backend).unwrap().problems.is_empty());
    let store = open(Options::default());
    verify(&store, &model, 101);
    store.close().unwrap();
}

/// Open messages are held in memory and read back from the log on open, so they must not reach
/// far back: a quiet channel's few messages are sealed once the log has moved `OPEN_SPAN` ids
/// past them, and every open message once they hold more than `OPEN_BYTES`. Reads, a reopen
/// and a rebuild (other commit sizes) agree.
#[test]
fn open_messages_are_sealed_early_when_old_or_too_large() {
    use channel_views::apply::{OPEN_BYTES, OPEN_SPAN};
    let dir = tempfile::tempdir().unwrap();
    let message = |id: u64, target: &str, text: String| Message {
        id,
        ts: 1.0,
        target: target.to_owned(),
        sender: "tester".to_owned(),
        text,
        source: Source::Cli,
        reply_to: None,
        redacted: None,
    };
    // Three in "quiet", then enough in "busy" to pass OPEN_SPAN, then one large message in
    // each of many channels until the open bytes pass OPEN_BYTES.
    let mut all: Vec<Message> = (1..=3).map(|id| message(id, "quiet", format!("q{id}"))).collect();
    let busy_end = 3 + OPEN_SPAN + 300;
    all.extend((4..=busy_end).map(|id| message(id, "busy", format!("b{id}"))));
    let big = 80_000;
    let wide = OPEN_BYTES / big + 300;
    all.extend(
        (1..=wide).map(|i| {
            message(busy_end + i, &format!("wide-{i}"), format!("{i} {}", "w".repeat(big as usize)))
        }),
    );
    let events: Vec<Event> = all.iter().cloned().map(Event::MessagePosted).collect();
    {
        let database = database::Database::open(dir.path(), Options::default()).unwrap();
        let (db, log, views) = (&database.db, &database.log, &database.channel_views);
        let (_, mut channels) = views.load(Some(log)).unwrap();
        for commit in events.chunks(1000) {
            log.events().append(commit).unwrap();
            views.apply(commit, &mut channels).unwrap();
        }
        assert_eq!(channels["quiet"].open, 0, "quiet sealed after OPEN_SPAN ids");
        let open_wide = channels.iter().filter(|(n, c)| n.starts_with("wide-") && c.open > 0).count() as u64;
        assert!(open_wide < wide - 256, "{open_wide} of {wide} wide channels still open");
        assert!(open_wide > 0, "the wide channels after the sweep are open: read back on open");
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    let texts = |page: Vec<StoredMessage>| page.iter().map(|m| m.decode().unwrap().text).collect::<Vec<_>>();
    assert_eq!(texts(store.since("quiet", 0, 10).unwrap()), ["q1", "q2", "q3"]);
    assert_eq!(texts(store.tail("busy", 2).unwrap()), [format!("b{}", busy_end - 1), format!("b{busy_end}")]);
    for i in [1, wide / 2, wide] {
        let got = store.tail(&format!("wide-{i}"), 5).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].decode().unwrap(), all[(busy_end + i - 1) as usize]);
    }
    assert_eq!(store.message_count(), all.len() as u64);
    store.close().unwrap();
    drop(store);
    assert_rebuild_seals_the_same_blocks(dir.path());
}

/// Rebuilds the views of the stopped store in `dir` from its log and compares them with the
/// views built incrementally, blocks and open messages included.
fn assert_rebuild_seals_the_same_blocks(dir: &Path) {
    assert_rebuild_on_seals_the_same_blocks(dir, &Backend::sled())
}

/// [`assert_rebuild_seals_the_same_blocks`] with the log where `backend` says.
fn assert_rebuild_on_seals_the_same_blocks(dir: &Path, backend: &Backend) {
    let incremental = dump_views(dir, backend);
    super::rebuild(dir, None, backend, &mut |_, _| {}).unwrap();
    assert!(incremental == dump_views(dir, backend), "a rebuild seals the same blocks");
}

/// Everything the channel views of the stopped store in `dir` hold, open messages included
/// (read back from the log where `backend` says).
fn dump_views(dir: &Path, backend: &Backend) -> Vec<(Vec<u8>, Vec<u8>)> {
    let database = database::Database::open_existing(dir).unwrap();
    let stream = stream_of(backend).unwrap();
    database.channel_views.dump(log_of(&database, &stream))
}

/// Readers racing the writer's seals never see a page with a hole or a repeat: in a channel of its own, ids
/// run 1, 2, 3..., so every page must be consecutive and start right after the id asked for.
#[test]
fn reads_during_seals_see_no_hole() {
    let dir = tempfile::tempdir().unwrap();
    let store =
        Store::open(dir.path(), None, Options { power_safe: false, ..Options::default() }, quiet()).unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = (0..2)
        .map(|r| {
            let (store, done) = (store.clone(), done.clone());
            thread::spawn(move || {
                let mut pages = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) || pages == 0 {
                    let last = store.last_id();
                    let after = last.saturating_sub(1 + (pages % 150));
                    let page = if r == 0 {
                        store.since("s", after, 100).unwrap()
                    } else {
                        store.tail("s", 150).unwrap()
                    };
                    let ids: Vec<u64> = page.iter().map(|m| m.id).collect();
                    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "not consecutive: {ids:?}");
                    if r == 0 && last > after {
                        assert_eq!(ids.first(), Some(&(after + 1)), "since({after}) from {ids:?}");
                    }
                    pages += 1;
                }
                pages
            })
        })
        .collect();
    let rt = runtime();
    for round in 0..40 {
        rt.block_on(async {
            let tasks: Vec<_> = (0..25)
                .map(|i| {
                    let store = store.clone();
                    tokio::spawn(async move { store.append(new_message("s", &format!("{round} {i}"))).await })
                })
                .collect();
            for t in tasks {
                t.await.unwrap().unwrap();
            }
        });
    }
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    for reader in readers {
        assert!(reader.join().unwrap() > 0);
    }
    store.close().unwrap();
}

#[test]
fn views_of_an_older_layout_are_rebuilt_on_open() {
    let dir = filled_store(150);
    {
        // Views without the layout's version are taken for an older layout.
        let database = database::Database::open_existing(dir.path()).unwrap();
        let (db, _log, _views) = (&database.db, &database.log, &database.channel_views);
        db.open_tree("views").unwrap().remove([4u8]).unwrap();
        db.flush().unwrap();
    }
    let report = check(dir.path()).unwrap();
    assert!(report.problems.iter().any(|p| p.contains("older version")), "{:?}", report.problems);
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(store.message_count(), 150);
    assert_eq!(store.since("a", 0, 500).unwrap().len(), store.channels()[0].count as usize);
    store.close().unwrap();
    drop(store);
    assert!(check(dir.path()).unwrap().problems.is_empty());
}

#[test]
fn archive_lines_have_the_python_relays_format() {
    let m = Message {
        id: 42,
        ts: 1_795_611_489.753,
        target: "proj-x".into(),
        sender: "claude".into(),
        text: "a \"quoted\"\nline".into(),
        source: Source::Rest,
        reply_to: None,
        redacted: None,
    };
    let line = archive::line(&m);
    assert!(line.ends_with('\n') && line.matches('\n').count() == 1, "one line: {line:?}");
    let (date, rest) = line.split_once(' ').unwrap();
    let (time, json) = rest.split_once(' ').unwrap();
    assert_eq!((date.len(), time.len()), (10, 12), "{line}");
    assert!(time.ends_with(",753"), "milliseconds after a comma: {time}");
    assert_eq!(
        json.trim_end(),
        r#"{"id":42,"ts":1795611489.753,"target":"proj-x","sender":"claude","text":"a \"quoted\"\nline","source":"rest"}"#
    );
}

#[test]
fn archive_holds_every_message_once_in_id_order() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_in(dir.path(), 1 << 30);
    let store = Store::open(dir.path(), Some(&archive), Options::default(), quiet()).unwrap();
    let mut posted: Vec<u64> = post_concurrently(&store, 300).iter().map(|m| m.id).collect();
    store.close().unwrap();
    posted.sort_unstable();
    assert_eq!(archived_ids(&archive), posted);
}

#[test]
fn archive_repairs_a_torn_line_and_skips_what_it_already_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_in(dir.path(), 1 << 30);
    let store = Store::open(dir.path(), Some(&archive), Options::default(), quiet()).unwrap();
    post_concurrently(&store, 10);
    store.close().unwrap();
    drop(store);
    // A crash after the lines were written but before the checkpoint moved, in the middle of
    // writing one more line.
    {
        let database = database::Database::open_existing(dir.path()).unwrap();
        let db = &database.db;
        archive::Checkpoint::open(db).unwrap().set(3).unwrap();
        db.flush().unwrap();
    }
    let mut file = std::fs::OpenOptions::new().append(true).open(&archive.path).unwrap();
    file.write_all(b"2026-11-25 12:00:00,000 {\"id\":11,\"ts\":1.0,\"tar").unwrap();
    drop(file);
    let store = Store::open(dir.path(), Some(&archive), Options::default(), quiet()).unwrap();
    let rt = runtime();
    rt.block_on(store.append(new_message("a", "after the crash"))).unwrap();
    store.close().unwrap();
    assert_eq!(archived_ids(&archive), (1..=11).collect::<Vec<_>>());
}

#[test]
fn archive_rotates_and_keeps_its_backups() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_in(dir.path(), 2000);
    let store = Store::open(dir.path(), Some(&archive), Options::default(), quiet()).unwrap();
    let rt = runtime();
    for i in 0..100 {
        rt.block_on(store.append(new_message("a", &format!("message {i} {}", "x".repeat(50))))).unwrap();
    }
    store.close().unwrap();
    for n in 1..=3 {
        assert!(PathBuf::from(format!("{}.{n}", archive.path.display())).exists(), "backup {n}");
    }
    assert!(!PathBuf::from(format!("{}.4", archive.path.display())).exists(), "only 3 backups kept");
    let ids = archived_ids(&archive);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "the kept lines are whole and in order");
    assert_eq!(ids.last(), Some(&100));
}

/// The rotating writer panics when it cannot create the archive's directory (here a file stands
/// in its place). The archive must not end there for the rest of the run: once the directory can
/// be made again, it catches up. (The panic's message in the test output is expected.)
#[test]
fn archive_survives_a_panic_in_the_rotating_writer() {
    let dir = tempfile::tempdir().unwrap();
    let archive = archive_in(dir.path(), 2000);
    let log_dir = archive.path.parent().unwrap().to_owned();
    let store = Store::open(dir.path(), Some(&archive), Options::default(), quiet()).unwrap();
    let rt = runtime();
    let post =
        |i: usize| rt.block_on(store.append(new_message("a", &format!("message {i} {}", "x".repeat(50)))));
    for i in 0..30 {
        post(i).unwrap();
    }
    std::fs::remove_dir_all(&log_dir).unwrap();
    std::fs::write(&log_dir, "not a directory").unwrap();
    for i in 30..60 {
        post(i).unwrap();
    }
    std::fs::remove_file(&log_dir).unwrap();
    for i in 60..70 {
        post(i).unwrap();
    }
    store.close().unwrap();
    let ids = archived_ids(&archive);
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1), "whole lines in order: {ids:?}");
    assert_eq!(ids.last(), Some(&70), "the archive caught up: {ids:?}");
}

#[test]
fn views_catch_up_with_events_they_missed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    post_concurrently(&store, 30);
    store.close().unwrap();
    drop(store);
    // A crash after the log was flushed and before the views were updated: write events to the
    // log only.
    {
        let database = database::Database::open_existing(dir.path()).unwrap();
        let (db, log, _views) = (&database.db, &database.log, &database.channel_views);
        let last = log.last_id().unwrap();
        let events: Vec<Event> = (1..=5)
            .map(|i| {
                Event::MessagePosted(Message {
                    id: last + i,
                    ts: 1.0,
                    target: "late".into(),
                    sender: "s".into(),
                    text: format!("late {i}"),
                    source: Source::Rest,
                    reply_to: None,
                    redacted: None,
                })
            })
            .collect();
        log.events().append(&events).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(store.since("late", 0, 100).unwrap().len(), 5);
    assert_eq!(store.message_count(), 35);
    store.close().unwrap();
}

#[test]
fn ids_keep_growing_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let mut last = 0;
    for round in 0..3 {
        let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
        for i in 0..5 {
            let m = rt.block_on(store.append(new_message("r", &format!("{round}.{i}")))).unwrap();
            assert!(m.id > last, "id {} after {last}", m.id);
            last = m.id;
        }
        store.close().unwrap();
    }
    // A clean close gives the unused reservation back, so there are no gaps.
    assert_eq!(last, 15);
}

#[test]
fn a_second_store_on_the_same_dir_is_refused_with_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    let err =
        Store::open(dir.path(), None, Options::default(), quiet()).err().expect("second open must fail");
    let text = err.to_string();
    assert!(text.contains("locked by another relay"), "{text}");
    assert!(text.contains(&std::process::id().to_string()), "{text}");
    store.close().unwrap();
}

#[test]
fn append_after_close_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    store.close().unwrap();
    let err = runtime().block_on(store.append(new_message("x", "late"))).unwrap_err();
    assert!(matches!(err, StoreError::Closed));
}

#[test]
fn subscribers_see_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    let mut rx = store.commit_watch();
    let rt = runtime();
    let m = rt.block_on(store.append(new_message("x", "hello"))).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), m.id);
    assert_eq!(store.last_id(), m.id);
    store.close().unwrap();
}

fn export_string(dir: &Path, filter: &ExportFilter) -> String {
    let mut out = Vec::new();
    export(dir, filter, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// A closed store in a temp dir holding `n` messages over channels a, b, c.
fn filled_store(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    post_concurrently(&store, n);
    store.close().unwrap();
    dir
}

#[test]
fn export_import_export_is_byte_identical() {
    let source = filled_store(300);
    let first = export_string(source.path(), &ExportFilter::default());
    assert_eq!(first.lines().count(), 300);
    let file = source.path().join("export.jsonl");
    std::fs::write(&file, &first).unwrap();
    let target = tempfile::tempdir().unwrap();
    let archive = archive_in(target.path(), 1 << 30);
    let report = import(target.path(), &file, false, Some(&archive), Options::default()).unwrap();
    assert_eq!(report, ImportReport { imported: 300, skipped: 0, into: target.path().display().to_string() });
    assert_eq!(export_string(target.path(), &ExportFilter::default()), first);
    assert_eq!(archived_ids(&archive), (1..=300).collect::<Vec<_>>(), "import builds the archive");
    assert!(check(target.path()).unwrap().problems.is_empty(), "import builds sound views");
    // The imported store goes on from the imported ids.
    let store = Store::open(target.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(store.since("a", 0, 1000).unwrap().len(), 100);
    let next = runtime().block_on(store.append(new_message("a", "after import"))).unwrap();
    assert!(next.id > 300);
    store.close().unwrap();
}

#[test]
fn export_filters_by_channel_and_id_range() {
    let dir = filled_store(30);
    let only_a = export_string(dir.path(), &ExportFilter { target: Some("a".into()), ..Default::default() });
    assert_eq!(only_a.lines().count(), 10);
    assert!(only_a.lines().all(|l| l.contains(r#""target":"a""#)));
    let range =
        export_string(dir.path(), &ExportFilter { since_id: 10, until_id: Some(15), ..Default::default() });
    let ids: Vec<u64> = range.lines().map(|l| Event::from_json_line(l).unwrap().id()).collect();
    assert_eq!(ids, vec![11, 12, 13, 14, 15]);
}

#[test]
fn import_refuses_a_used_store_unless_merging() {
    let source = filled_store(20);
    let file = source.path().join("export.jsonl");
    std::fs::write(&file, export_string(source.path(), &ExportFilter::default())).unwrap();
    let err = import(source.path(), &file, false, None, Options::default()).unwrap_err();
    assert!(err.to_string().contains("--merge"), "{err}");
    let report = import(source.path(), &file, true, None, Options::default()).unwrap();
    assert_eq!(report, ImportReport { imported: 0, skipped: 20, into: source.path().display().to_string() });
}

#[test]
fn merge_reports_a_conflicting_id_and_stores_nothing() {
    let source = filled_store(5);
    let mut lines = export_string(source.path(), &ExportFilter::default());
    lines.push_str(
        &Event::MessagePosted(Message {
            id: 99,
            ts: 2.0,
            target: "new".into(),
            sender: "s".into(),
            text: "new one".into(),
            source: Source::Cli,
            reply_to: None,
            redacted: None,
        })
        .to_json_line(),
    );
    let changed = lines.replacen("\"text\":\"m", "\"text\":\"CHANGED m", 1);
    let file = source.path().join("export.jsonl");
    std::fs::write(&file, changed).unwrap();
    let err = import(source.path(), &file, true, None, Options::default()).unwrap_err();
    assert!(matches!(err, ImportError::Conflict { line: 1, id: 1, .. }), "{err}");
    assert!(export_string(source.path(), &ExportFilter::default()).lines().count() == 5, "nothing stored");
    std::fs::write(&file, lines).unwrap();
    assert_eq!(
        import(source.path(), &file, true, None, Options::default()).unwrap(),
        ImportReport { imported: 1, skipped: 5, into: source.path().display().to_string() }
    );
}

#[test]
fn a_malformed_line_stops_the_import_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.jsonl");
    let good =
        r#"{"type":"message_posted","id":1,"ts":1.0,"target":"a","sender":"s","text":"t","source":"cli"}"#;
    for (second, reason) in [
        ("{not json", "not an exported event"),
        (
            r#"{"type":"message_posted","id":1,"ts":1.0,"target":"a","sender":"s","text":"t","source":"cli"}"#,
            "must increase",
        ),
        (
            r#"{"type":"message_posted","id":2,"ts":1.0,"target":"","sender":"s","text":"t","source":"cli"}"#,
            "target",
        ),
        (
            r#"{"type":"message_posted","id":2,"ts":1.0,"target":"a","sender":"s","text":"t","source":"fax"}"#,
            "not an exported event",
        ),
        // A redaction must name a message of its channel before it, once.
        (
            r#"{"type":"message_redacted","id":2,"ts":1.0,"target":"b","message":1,"post":{"sender":"s","ts":1.0,"source":"cli","reply_to":null},"by":"x","reason":""}"#,
            "is not a message of b",
        ),
        (
            r#"{"type":"message_redacted","id":3,"ts":1.0,"target":"a","message":2,"post":{"sender":"s","ts":1.0,"source":"cli","reply_to":null},"by":"x","reason":""}"#,
            "is not a message of a",
        ),
        (
            r#"{"type":"message_redacted","id":2,"ts":1.0,"target":"a","message":1,"post":{"sender":"s","ts":1.0,"source":"cli","reply_to":null},"by":"x","reason":"a\nb"}"#,
            "reason",
        ),
        (
            r#"{"type":"message_posted","id":2,"ts":1.0,"target":"a","sender":"s","text":"t","source":"cli","redacted":{"by":"x","ts":1.0,"reason":""}}"#,
            "redacted",
        ),
    ] {
        std::fs::write(&file, format!("{good}\n\n{second}\n")).unwrap();
        let store_dir = tempfile::tempdir().unwrap();
        let err = import(store_dir.path(), &file, false, None, Options::default()).unwrap_err().to_string();
        assert!(err.contains("bad.jsonl:3:") && err.contains(reason), "{err}");
        assert_eq!(export_string(store_dir.path(), &ExportFilter::default()), "", "nothing stored");
    }
}

#[test]
fn a_redaction_applied_with_the_post_that_seals_its_block_leaves_no_text_in_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let database = database::Database::open(dir.path(), Options::default()).unwrap();
    let (log, views) = (&database.log, &database.channel_views);
    let (_, mut channels) = views.load(Some(log)).unwrap();
    let post = |id: u64, text: &str| posted_to_c(id, text);
    // 63 open messages, one of them secret; then, in one group, its redaction and the 64th
    // message, which seals the block.
    let open: Vec<Event> = (1..=63).map(|id| post(id, if id == 5 { "secret-five" } else { "x" })).collect();
    log.events().append(&open).unwrap();
    views.apply(&open, &mut channels).unwrap();
    let group = vec![redaction_in_c(64, 5), post(65, "seals the block")];
    log.events().append(&group).unwrap();
    views.apply(&group, &mut channels).unwrap();
    assert_eq!(channels["c"].open, 0, "the block was sealed");
    let blocks = std::fs::read(dir.path().join(blocks::BLOCKS_FILE)).unwrap();
    assert!(!blocks.windows(11).any(|w| w == b"secret-five"), "the sealed block holds no redacted text");
    let sealed = views.get(channels["c"].no, 5).unwrap().unwrap();
    assert!(sealed.text.trim().is_empty(), "{sealed:?}");
    // The log's record holds the tombstone's text.
    let Some(Event::MessagePosted(logged)) = log.events().get(5).unwrap() else { panic!("message 5") };
    assert_eq!(logged.text, "redacted by admin");
}

/// Message `id`'s key as the data directory `dir` holds it (zeros once erased).
fn key_of(dir: &Path, id: u64) -> [u8; 16] {
    let keys = std::fs::read(dir.join("message-keys")).unwrap();
    keys[id as usize * 16..][..16].try_into().unwrap()
}

/// A redaction durable in the log, with the redacted message's key still there (a crash before
/// the views applied it): the next start erases the key.
#[test]
fn a_key_a_crash_kept_after_its_redaction_is_erased_at_the_next_start() {
    let dir = filled_store(10);
    assert_ne!(key_of(dir.path(), 3), [0; 16]);
    {
        let database = database::Database::open_existing(dir.path()).unwrap();
        let events = database.log.events();
        let Some(Event::MessagePosted(m)) = events.get(3).unwrap() else { panic!("message 3") };
        let post = crate::event::Post { sender: m.sender, ts: m.ts, source: m.source, reply_to: m.reply_to };
        let (id, by, reason) = (events.last_id().unwrap() + 1, "admin".to_string(), "a token".to_string());
        let redaction =
            crate::event::MessageRedacted { id, ts: m.ts, target: m.target, message: 3, post, by, reason };
        events.append(&[Event::MessageRedacted(redaction)]).unwrap();
        database.flush().unwrap();
    }
    assert_ne!(key_of(dir.path(), 3), [0; 16], "kept, as a crash would");
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(key_of(dir.path(), 3), [0; 16], "erased by the start");
    assert_ne!(key_of(dir.path(), 4), [0; 16], "the others kept");
    store.close().unwrap();
}

/// The thread that deletes expired records erases their keys once the deletes are durable, and
/// only then takes the expiry off the views' list of what the log may still hold: a crash in
/// between (records gone, keys kept) is finished by the next start, which asks again.
#[test]
fn keys_a_crash_kept_after_an_expiry_deleted_their_records_are_erased_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        let database = database::Database::open(dir.path(), Options::default()).unwrap();
        let (log, views) = (&database.log, &database.channel_views);
        let (_, mut channels) = views.load(Some(log)).unwrap();
        let posts: Vec<Event> = (1..=10).map(|id| posted_to_c(id, &format!("m{id}"))).collect();
        log.events().append(&posts).unwrap();
        views.apply(&posts, &mut channels).unwrap();
        let expiry = crate::event::MessagesExpired { id: 11, ts: 2.0, target: "c".into(), upto: 4 };
        let expiry = vec![Event::MessagesExpired(expiry)];
        log.events().append(&expiry).unwrap();
        assert_eq!(views.apply(&expiry, &mut channels).unwrap(), [(1..=4).collect::<Vec<u64>>()]);
        log.events().forget(&[1, 2, 3, 4]).unwrap();
        database.flush().unwrap();
    }
    assert!((1..=4).all(|id| key_of(dir.path(), id) != [0; 16]), "kept, as a crash before the erase would");
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    let erased = |id: u64| key_of(dir.path(), id) == [0; 16];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(1..=4).all(erased) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!((1..=4).all(erased), "erased after the start (the thread that deletes does it)");
    assert!((5..=10).all(|id| !erased(id)), "the others kept");
    store.close().unwrap();
    drop(store);
    let database = database::Database::open_existing(dir.path()).unwrap();
    assert_eq!(database.channel_views.forgetting().unwrap(), Vec::<Vec<u64>>::new(), "asked no more");
}

/// `compact` seals the records of messages an older relay wrote unsealed (here: records put back
/// in the clear), keeping every event as it was.
#[test]
fn compact_seals_the_records_an_older_relay_wrote_unsealed() {
    let dir = filled_store(50);
    let events: Vec<Event> = {
        let database = database::Database::open_existing(dir.path()).unwrap();
        let events = database.log.events().read_from(1, 100).unwrap();
        let tree = database.db.open_tree("events").unwrap();
        for e in &events[..10] {
            tree.insert(sled_log::key(e.id()), crate::event::encode(e)).unwrap();
        }
        database.db.flush().unwrap();
        events
    };
    let report = super::compact(dir.path(), None, &Backend::sled(), &mut |_, _| {}).unwrap();
    assert_eq!(report.sealed, 10);
    let database = database::Database::open_existing(dir.path()).unwrap();
    let tree = database.db.open_tree("events").unwrap();
    for e in &events[..10] {
        let raw = tree.get(sled_log::key(e.id())).unwrap().unwrap();
        assert_ne!(raw[0], crate::event::FORMAT_VERSION, "event {} sealed", e.id());
    }
    assert_eq!(database.log.events().read_from(1, 100).unwrap(), events, "every event as it was");
    drop((tree, database));
    assert_eq!(check(dir.path()).unwrap().problems, Vec::<String>::new());
    let again = super::compact(dir.path(), None, &Backend::sled(), &mut |_, _| {}).unwrap();
    assert_eq!(again.sealed, 0, "nothing left to seal");
}

#[test]
fn check_passes_a_sound_store_and_names_a_damaged_record() {
    let dir = filled_store(50);
    let report = check(dir.path()).unwrap();
    assert_eq!((report.events, report.problems.len()), (50, 0), "{:?}", report.problems);
    {
        let database = database::Database::open_existing(dir.path()).unwrap();
        let (db, _log, _views) = (&database.db, &database.log, &database.channel_views);
        db.open_tree("events").unwrap().insert(sled_log::key(17), &[1u8, 0xff, 0xff][..]).unwrap();
        db.flush().unwrap();
    }
    let report = check(dir.path()).unwrap();
    assert!(
        report.problems.iter().any(|p| p.starts_with("event 17: cannot decode")),
        "{:?}",
        report.problems
    );
    assert_eq!(report.events, 50, "the scan goes on past the damage");
}

#[test]
fn commands_on_a_stopped_store_refuse_a_directory_without_one_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for path in [&missing, &empty] {
        let errors = [
            check(path).err(),
            export(path, &ExportFilter::default(), &mut Vec::new()).err(),
            replay_print(path, &mut Vec::new()).err(),
            rebuild(path, None, &mut |_, _| {}).err(),
        ];
        for error in errors {
            let error = error.expect("refused").to_string();
            assert!(error.contains("holds no relay data"), "{error}");
        }
    }
    assert!(!missing.exists(), "nothing created");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0, "nothing created");
}

#[test]
fn start_up_reports_a_damaged_record_it_must_read() {
    let dir = filled_store(10);
    {
        // Damage an event the views have not applied yet, so opening has to read it.
        let database = database::Database::open_existing(dir.path()).unwrap();
        let (db, log, views) = (&database.db, &database.log, &database.channel_views);
        let (_, mut channels) = views.load(Some(log)).unwrap();
        views.clear().unwrap();
        views.apply(&log.read_from(1, 5).unwrap(), &mut channels).unwrap();
        db.open_tree("events").unwrap().insert(sled_log::key(8), &[1u8, 0xff][..]).unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), None, Options::default(), quiet())
        .err()
        .expect("damaged store refused")
        .to_string();
    assert!(err.contains("event 8"), "{err}");
}

#[test]
fn cursors_move_only_forward_and_survive_a_reopen_an_export_and_an_import() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    for i in 0..5 {
        rt.block_on(store.append(new_message("c", &format!("m{i}")))).unwrap();
    }
    let (codex, c) = (Name::parse("reader", "codex").unwrap(), Name::parse("target", "c").unwrap());
    assert_eq!(store.cursor("codex", "c"), None);
    assert_eq!(rt.block_on(store.move_cursor(&codex, &c, 3)).unwrap(), 3);
    assert_eq!(rt.block_on(store.move_cursor(&codex, &c, 2)).unwrap(), 3, "never back");
    assert_eq!(rt.block_on(store.move_cursor(&codex, &c, 3)).unwrap(), 3);
    assert_eq!(store.last_id(), 6, "one event: the moves that change nothing are not logged");
    assert_eq!(store.cursors("c"), [("codex".to_owned(), 3)]);
    assert!(store.cursors("other").is_empty());
    assert_eq!(store.since("c", 0, 10).unwrap().len(), 5, "a cursor is no message");
    store.close().unwrap();
    drop(store);

    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(store.cursor("codex", "c"), Some(3));
    store.close().unwrap();
    drop(store);
    assert!(check(dir.path()).unwrap().problems.is_empty());
    let mut exported = Vec::new();
    export(dir.path(), &ExportFilter::default(), &mut exported).unwrap();
    let exported = String::from_utf8(exported).unwrap();
    let line = r#"{"type":"cursor_moved","id":6,"ts":"#;
    assert!(exported.lines().nth(5).unwrap().starts_with(line), "{exported}");
    assert!(exported.lines().nth(5).unwrap().ends_with(r#","reader":"codex","target":"c","to":3}"#));
    let file = dir.path().join("export.jsonl");
    std::fs::write(&file, &exported).unwrap();
    let copy = tempfile::tempdir().unwrap();
    import(copy.path(), &file, false, None, Options::default()).unwrap();
    let store = Store::open(copy.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(store.cursor("codex", "c"), Some(3));
    assert_eq!(store.last_id(), 6);
    store.close().unwrap();

    // An import refuses a cursor that does not point before itself.
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(&bad, exported.replace(r#""to":3"#, r#""to":6"#)).unwrap();
    let e = import(tempfile::tempdir().unwrap().path(), &bad, false, None, Options::default()).unwrap_err();
    assert!(e.to_string().contains("bad.jsonl:6: to: 6 must be an id before"), "{e}");
}

#[test]
fn check_reports_a_cursor_the_views_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    runtime().block_on(store.append(new_message("c", "m"))).unwrap();
    let (codex, c) = (Name::parse("reader", "codex").unwrap(), Name::parse("target", "c").unwrap());
    runtime().block_on(store.move_cursor(&codex, &c, 1)).unwrap();
    store.close().unwrap();
    drop(store);
    let database = database::Database::open_existing(dir.path()).unwrap();
    let views = database.db.open_tree("views").unwrap();
    assert!(views.remove(b"\x06c\x00codex").unwrap().is_some());
    database.flush().unwrap();
    drop(views);
    drop(database);
    let problems = check(dir.path()).unwrap().problems;
    assert!(problems.iter().any(|p| p.contains("cursors")), "{problems:?}");
}

#[test]
fn replay_prints_one_readable_line_per_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    runtime().block_on(store.append(new_message("proj-x", "\n  Review please\n```diff\n"))).unwrap();
    store.close().unwrap();
    drop(store);
    let mut out = Vec::new();
    assert_eq!(replay_print(dir.path(), &mut out).unwrap(), 1);
    assert_eq!(String::from_utf8(out).unwrap(), "#1 [tester -> proj-x] Review please\n");
}

#[test]
fn new_databases_compress_and_older_uncompressed_ones_still_open() {
    let fresh = tempfile::tempdir().unwrap();
    Store::open(fresh.path(), None, Options::default(), quiet()).unwrap().close().unwrap();
    assert!(database::compressed(&fresh.path().join("db"), false), "new databases compress by default");

    // As the relay made databases before compression came in.
    let old = tempfile::tempdir().unwrap();
    drop(sled::Config::new().path(old.path().join("db")).use_compression(false).open().unwrap());
    assert!(!database::compressed(&old.path().join("db"), true));
    for _ in 0..2 {
        let store = Store::open(old.path(), None, Options::default(), quiet()).unwrap();
        runtime().block_on(store.append(new_message("a", "still works"))).unwrap();
        store.close().unwrap();
    }
    assert!(!database::compressed(&old.path().join("db"), true), "an existing database keeps its mode");
    assert_eq!(check(old.path()).unwrap().events, 2);
}

#[test]
fn power_safe_commits_sync_the_blob_files_sled_leaves_unsynced() {
    for power_safe in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let store =
            Store::open(dir.path(), None, Options { power_safe, ..Options::default() }, quiet()).unwrap();
        // Over sled's blob threshold (about 128 KiB) even compressed: stored in a file of its own
        // under blobs/.
        let mut next = seeded(7);
        let big: String = (0..300 * 1024).map(|_| char::from(b'!' + (next() % 90) as u8)).collect();
        runtime().block_on(store.append(new_message("a", &big))).unwrap();
        // The event's blob is synced by its own commit; the view's copy (a projection, written
        // after the commit) by the next one.
        runtime().block_on(store.append(new_message("a", "small"))).unwrap();
        let blobs = std::fs::read_dir(dir.path().join("db").join("blobs")).unwrap().count();
        assert!(blobs >= 1, "sled wrote the message as a blob");
        let synced = store.inner.sled_log.synced_blobs();
        assert_eq!(synced, if power_safe { blobs } else { 0 }, "power_safe = {power_safe}");
        // The big message is a block of its own in the blocks file, synced by the next commit's
        // flush before sled's.
        assert!(std::fs::metadata(dir.path().join(blocks::BLOCKS_FILE)).unwrap().len() > 300 * 1024);
        assert_eq!(
            store.inner.shared.channel_views.blocks_unsynced(),
            !power_safe,
            "power_safe = {power_safe}"
        );
        store.close().unwrap();
    }
}

/// Every message of the three channels `post_concurrently` uses, in id order.
fn all_messages(store: &Store) -> Vec<Message> {
    let mut out: Vec<Message> = ["a", "b", "c"]
        .iter()
        .flat_map(|c| store.since(c, 0, usize::MAX).unwrap())
        .map(|m| m.decode().unwrap())
        .collect();
    out.sort_by_key(|m| m.id);
    out
}

#[test]
fn bytes_a_crash_left_past_the_blocks_are_cut_on_open() {
    let dir = filled_store(600);
    let path = dir.path().join(blocks::BLOCKS_FILE);
    let sealed = std::fs::metadata(&path).unwrap().len();
    assert!(sealed > 0, "600 messages over 3 channels seal blocks");
    // A block written before a crash took away the batch that named it.
    std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&[7u8; 5000]).unwrap();
    assert!(check(dir.path()).unwrap().problems.is_empty(), "leftover bytes are not damage");

    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(std::fs::metadata(&path).unwrap().len(), sealed);
    let posted = post_concurrently(&store, 600);
    assert_eq!(all_messages(&store).len(), 1200);
    assert_eq!(all_messages(&store).last().unwrap().id, posted.iter().map(|m| m.id).max().unwrap());
    store.close().unwrap();
    drop(store);
    assert!(check(dir.path()).unwrap().problems.is_empty());
}

#[test]
fn lost_or_damaged_blocks_are_reported_then_rebuilt_from_the_log() {
    for damage in ["cut", "flip"] {
        let dir = filled_store(600);
        let before = {
            let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
            all_messages(&store)
        };
        let path = dir.path().join(blocks::BLOCKS_FILE);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        if damage == "cut" {
            // A power cut lost the newest blocks while sled kept the views naming them.
            file.set_len(len - 100).unwrap();
        } else {
            use std::os::unix::fs::FileExt;
            file.write_all_at(b"X", len / 2).unwrap();
        }
        drop(file);
        let problems = check(dir.path()).unwrap().problems;
        let expected = if damage == "cut" { "the blocks file holds" } else { "fails its checksum" };
        assert!(problems.iter().any(|p| p.contains(expected)), "{damage}: {problems:?}");

        // 600 events replayed: past REOPEN_AFTER_REPLAY, so the database is opened again too.
        let logs = tempfile::tempdir().unwrap();
        let (logger, flushed) = crate::usage_log::open(&logs.path().join("relay.log"), 1 << 20, 1).unwrap();
        let store = Store::open(dir.path(), None, Options::default(), logger).unwrap();
        assert_eq!(all_messages(&store), before, "{damage}: rebuilt from the log");
        let posted = runtime().block_on(store.append(new_message("a", "after the repair"))).unwrap();
        assert_eq!(store.tail("a", 1).unwrap()[0].decode().unwrap(), posted);
        store.close().unwrap();
        drop(store);
        drop(flushed);
        let logged = std::fs::read_to_string(logs.path().join("relay.log")).unwrap();
        let warned = logged.lines().find(|l| l.contains("WARNING rebuilding the channel views from the log"));
        assert!(
            warned.is_some_and(|l| l.contains(expected) && l.contains(r#""events":600"#)),
            "{damage}: {logged}"
        );
        assert!(check(dir.path()).unwrap().problems.is_empty(), "{damage}");
    }
}

/// Views cleared and replayed (what a power cut that lost blocks leads to) hold every cursor and
/// every reader's wakes and acknowledgements again, as a reopen reads them.
#[test]
fn views_cleared_and_replayed_keep_every_cursor_and_delivery_state() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (codex, c) = (Name::parse("reader", "codex").unwrap(), Name::parse("target", "c").unwrap());
    let states =
        |store: &Store| (store.cursors("c"), store.delivery("c"), store.delivery_of("c", 2).unwrap());
    let before = {
        let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
        for i in 0..3 {
            rt.block_on(store.append(new_message("c", &format!("m{i}")))).unwrap();
        }
        rt.block_on(store.move_cursor(&codex, &c, 2)).unwrap();
        rt.block_on(store.note_wake(&codex, &c, vec![2, 3], "a test".into())).unwrap();
        let before = states(&store);
        store.close().unwrap();
        before
    };
    assert!(before.2[0].1.woken.is_some() && before.2[0].1.acknowledged.is_some(), "{before:?}");
    {
        let database = database::Database::open_existing(dir.path()).unwrap();
        let (log, views) = (&database.log, &database.channel_views);
        views.load(Some(log)).unwrap();
        views.clear().unwrap();
        views.apply(&log.read_from(1, 100).unwrap(), &mut Default::default()).unwrap();
        database.db.flush().unwrap();
    }
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(states(&store), before);
}

/// The archive and search threads take events from the groups the views applied when those
/// start where the thread is, and read the log otherwise (a gap, groups dropped, a restart).
#[test]
fn followers_take_applied_groups_and_read_the_log_for_the_rest() {
    use projections::projector::{events_after, Group};
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    for i in 1..=10 {
        rt.block_on(store.append(new_message("c", &format!("m{i}")))).unwrap();
    }
    let log = &*store.inner.shared.log;
    // Groups marked so their events can be told from the log's.
    let group = |from: u64, to: u64| -> Group {
        let events = log.read_from(from, (to - from + 1) as usize).unwrap();
        let marked = events.into_iter().map(|e| match e {
            Event::MessagePosted(mut m) => {
                m.text = format!("fed {}", m.text);
                Event::MessagePosted(m)
            }
            other => other,
        });
        marked.collect::<Vec<_>>().into()
    };
    let texts = |events: Vec<Event>| -> Vec<String> {
        events
            .into_iter()
            .map(|e| if let Event::MessagePosted(m) = e { m.text } else { String::new() })
            .collect()
    };
    let mut fed: std::collections::VecDeque<Group> = [group(4, 6), group(7, 10)].into();
    assert_eq!(texts(events_after(log, &mut fed, 3, 10, 100).unwrap()), ["fed m4", "fed m5", "fed m6"]);
    assert_eq!(texts(events_after(log, &mut fed, 6, 9, 100).unwrap()), ["fed m7", "fed m8", "fed m9"]);
    assert_eq!(fed.len(), 1, "the group done is dropped");
    // A gap before the first group: the log, up to `upto`.
    let mut fed: std::collections::VecDeque<Group> = [group(7, 10)].into();
    assert_eq!(texts(events_after(log, &mut fed, 2, 5, 100).unwrap()), ["m3", "m4", "m5"]);
    // Past every group: the log.
    assert_eq!(texts(events_after(log, &mut fed, 10, 20, 100).unwrap()), Vec::<String>::new());
    assert!(fed.is_empty());
}

/// An import into a stream sends its records in chunks: 1,000 ids over several chunks, with a
/// gap of 600 ids across chunks' ends and gaps of one id, keep their ids, and the stream
/// exports the same lines (no record of a gap is left).
#[test]
fn an_import_into_a_stream_keeps_every_id_across_chunks_and_gaps() {
    let cluster = nats_log::tests::cluster::Cluster::standalone_on(
        nats_log::tests::cluster::free_port(),
        "max_payload: 8MB",
    );
    let settings = nats_log::NatsSettings { replicas: 1, ..nats_log::tests::config(&cluster, "IMPORTED") };
    let (backend, dir) = (Backend::nats(settings.clone()), tempfile::tempdir().unwrap());
    let kept: Vec<u64> = (1..=1000).filter(|id| !(301..=900).contains(id) && id % 7 != 0).collect();
    let lines: String = kept
        .iter()
        .map(|&id| posted(id, &format!("c{}", id % 3), &format!("m{id}")).to_json_line())
        .collect();
    let file = dir.path().join("in.jsonl");
    std::fs::write(&file, &lines).unwrap();
    let report = super::import(dir.path(), &backend, &file, false, None, Options::default()).unwrap();
    assert_eq!(report.imported, kept.len() as u64);
    let mut out = Vec::new();
    super::export(dir.path(), &backend, &ExportFilter::default(), &mut out).unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), lines);
    let log = nats_log::NatsLog::connect(&settings, 1 << 20, quiet()).unwrap();
    assert_eq!(log.last_id().unwrap(), 1000);
}

/// At start the index's segments are rewritten only when a redaction's deletions may be in
/// them: an expiry's stay for tantivy's merges (a relay with retention does not open the index's
/// writer and rewrite segments at each start), and a redaction whose commit a crash left before
/// the rewrite is erased at the next start.
#[test]
fn only_a_redaction_a_crash_left_unerased_has_the_index_rewritten_at_start() {
    use projections::search::SearchIndex;
    let dir = tempfile::tempdir().unwrap();
    let (rt, a) = (runtime(), Name::parse("target", "a").unwrap());
    let open =
        |search| Store::open(dir.path(), None, Options { search, ..Options::default() }, quiet()).unwrap();
    let index = || SearchIndex::open(dir.path()).unwrap();
    let has_deletes = || index().segments().unwrap().iter().any(|m| m.has_deletes());
    let store = open(true);
    let ids: Vec<u64> =
        (0..20).map(|i| rt.block_on(store.append(new_message("a", &format!("m{i}")))).unwrap().id).collect();
    // Two of twenty: below the share that has a segment rewritten to reclaim its space.
    rt.block_on(store.expire(&a, ids[1])).unwrap();
    store.close().unwrap();
    drop(store);
    assert!(has_deletes() && !index().erase_pending().unwrap(), "the expiry deleted documents");
    open(true).close().unwrap();
    assert!(has_deletes(), "an expiry's deletions are not rewritten at start");

    // A redaction's commit, then a crash before the rewrite (the index follows by hand here).
    let store = open(false);
    let secret = rt.block_on(store.append(new_message("a", "secret"))).unwrap();
    rt.block_on(store.redact(&a, &[secret], &Name::parse("by", "admin").unwrap(), "oops")).unwrap();
    store.close().unwrap();
    drop(store);
    {
        let (index, database) = (index(), database::Database::open_existing(dir.path()).unwrap());
        let (mut writer, last) = (index.writer().unwrap(), database.log.last_id().unwrap());
        let from = index.checkpoint().unwrap();
        index.follow(&mut writer, &database.log, &mut Default::default(), from, last).unwrap();
    }
    assert!(index().erase_pending().unwrap());
    let store = open(true);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while index().erase_pending().unwrap() {
        assert!(std::time::Instant::now() < deadline, "erased within 10 s of the start");
        thread::sleep(std::time::Duration::from_millis(20));
    }
    store.close().unwrap();
    assert!(!has_deletes(), "the segments were rewritten without the deleted documents");
}

/// Deletes of expired messages' records that a crash cut short (here lost on purpose) are made
/// at the next start: the views keep the ids until the log says they are gone.
#[cfg(feature = "faults")]
#[test]
fn expired_records_a_crash_kept_are_deleted_at_the_next_start() {
    expired_records_a_crash_kept_are_deleted_at_the_next_start_on(&Backend::sled());
}

/// The same with the log in a NATS stream: the records leave the stream.
#[cfg(feature = "faults")]
#[test]
fn expired_records_a_crash_kept_are_deleted_at_the_next_start_with_the_log_in_nats() {
    let cluster = nats_log::tests::cluster::Cluster::start();
    expired_records_a_crash_kept_are_deleted_at_the_next_start_on(&Backend::nats(nats_log::tests::config(
        &cluster, "OUTBOX",
    )));
}

#[cfg(feature = "faults")]
fn expired_records_a_crash_kept_are_deleted_at_the_next_start_on(backend: &Backend) {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let open = || Store::open_on(dir.path(), None, Options::default(), backend, quiet()).unwrap();
    let exported = || {
        let mut out = Vec::new();
        super::export(dir.path(), backend, &ExportFilter::default(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    let store = open();
    let ids: Vec<u64> = (0..20)
        .map(|i| rt.block_on(store.append(new_message("a", &format!("gone{i}")))).unwrap().id)
        .collect();
    store.inject_faults(Some(FaultPlan { op: FaultOp::Forget, nth: 1, sticky: true }));
    rt.block_on(store.expire(&Name::parse("target", "a").unwrap(), ids[14])).unwrap();
    assert_eq!(store.since("a", 0, 100).unwrap().len(), 5);
    store.close().unwrap();
    drop(store);
    assert!(exported().contains("\"gone3\""), "the deletes were lost: the log holds the records");

    let store = open();
    store.close().unwrap();
    assert!(store.inner.shared.channel_views.forgetting().unwrap().is_empty(), "done with");
    drop(store);
    let exported = exported();
    assert!(!exported.contains("\"gone0\"") && !exported.contains("\"gone14\""), "deleted at the start");
    assert!(exported.contains("\"gone15\"") && exported.contains("\"gone19\""));
    assert!(super::check(dir.path(), backend).unwrap().problems.is_empty());
}

/// A redaction whose commit fails (sled's flush, here an injected fault) is undone whole: the
/// redaction leaves the log and the message's sealed record, with its text and its key, is
/// back, also after a restart; a redaction made after that works. (That the undo is one sled
/// batch, so a crash cannot keep half of it, is by construction, not tested here.)
#[cfg(feature = "faults")]
#[test]
fn a_redaction_whose_commit_fails_is_undone_whole() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let (a, by) = (Name::parse("target", "a").unwrap(), Name::parse("by", "admin").unwrap());
    let exported = || export_string(dir.path(), &ExportFilter::default());
    let text = |store: &Store| {
        let json: serde_json::Value =
            serde_json::from_slice(store.since("a", 0, 10).unwrap()[0].json()).unwrap();
        json["text"].as_str().unwrap().to_owned()
    };
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    let kept = rt.block_on(store.append(new_message("a", "kept text"))).unwrap();
    store.inject_faults(Some(FaultPlan { op: FaultOp::Flush, nth: 1, sticky: false }));
    let failed = rt.block_on(store.redact(&a, std::slice::from_ref(&kept), &by, "oops"));
    assert!(failed.is_err(), "the commit failed: {failed:?}");
    store.inject_faults(None);
    assert_eq!(text(&store), "kept text");
    assert!(store.redaction(kept.id).is_none());
    assert_ne!(key_of(dir.path(), kept.id), [0; 16], "the key stays with its record");
    store.close().unwrap();
    drop(store);
    let log = exported();
    assert!(log.contains("kept text") && !log.contains("message_redacted"), "{log}");
    assert_eq!(check(dir.path()).unwrap().problems, Vec::<String>::new());

    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(text(&store), "kept text");
    rt.block_on(store.redact(&a, std::slice::from_ref(&kept), &by, "oops")).unwrap();
    assert_eq!(key_of(dir.path(), kept.id), [0; 16], "erased once the redaction is durable");
    store.close().unwrap();
    drop(store);
    assert!(!exported().contains("kept text"));
}

/// `check` after a crash that left the search index behind an expiry the log had applied (here
/// a relay without search made the expiry): the records the log already forgot are still in
/// the index, which is not damage; an index that holds other messages still is.
#[test]
fn check_compares_an_index_behind_an_expiry_above_it_only() {
    let (dir, other) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let rt = runtime();
    let fill = |dir: &Path, channels: &[&str]| {
        let store = Store::open(dir, None, Options::default(), quiet()).unwrap();
        let ids: Vec<u64> = channels
            .iter()
            .enumerate()
            .map(|(i, c)| rt.block_on(store.append(new_message(c, &format!("m{i}")))).unwrap().id)
            .collect();
        store.close().unwrap();
        ids
    };
    let ids = fill(dir.path(), &[["a"; 20].as_slice(), &["b"]].concat());
    let without_search = Options { search: false, ..Options::default() };
    let store = Store::open(dir.path(), None, without_search, quiet()).unwrap();
    rt.block_on(store.expire(&Name::parse("target", "a").unwrap(), ids[14])).unwrap();
    store.close().unwrap();
    drop(store);
    assert!(!export_string(dir.path(), &ExportFilter::default()).contains("\"m3\""), "the log forgot them");
    assert_eq!(check(dir.path()).unwrap().problems, Vec::<String>::new());

    // An index of 21 other messages at the same checkpoint.
    fill(other.path(), &["c"; 21]);
    let search = dir.path().join(projections::search::DIR);
    std::fs::remove_dir_all(&search).unwrap();
    std::fs::rename(other.path().join(projections::search::DIR), &search).unwrap();
    let problems = check(dir.path()).unwrap().problems;
    assert!(
        problems.iter().any(|p| p.contains("the search index holds 21 messages; the log has 6")),
        "{problems:?}"
    );
}

#[test]
fn expired_messages_leave_the_views_and_the_log_and_stay_gone_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    // 300 on `a` (four sealed blocks of 64, then 44 open), one on `b` every tenth.
    let mut a = Vec::new();
    for i in 0..300 {
        a.push(rt.block_on(store.append(new_message("a", &format!("a{i}")))).unwrap().id);
        if i % 10 == 0 {
            rt.block_on(store.append(new_message("b", &format!("b{i}")))).unwrap();
        }
    }
    let ids = |page: Vec<StoredMessage>| page.iter().map(|m| m.id).collect::<Vec<_>>();
    let target = Name::parse("target", "a").unwrap();
    let blocks_file = dir.path().join(blocks::BLOCKS_FILE);
    let on_disk = || std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&blocks_file).unwrap()) * 512;
    let (length, allocated) = (std::fs::metadata(&blocks_file).unwrap().len(), on_disk());
    // Inside the second block, then inside the fourth, then among the open messages.
    for (keep, upto) in [(200, a[99]), (50, a[249]), (10, a[289])] {
        assert_eq!(store.expiry_point("a", Some(keep), None).unwrap(), upto);
        rt.block_on(store.expire(&target, upto)).unwrap();
        assert_eq!(store.expired("a"), upto);
        let kept = &a[a.len() - keep as usize..];
        assert_eq!(ids(store.since("a", 0, 1000).unwrap()), kept);
        assert_eq!(ids(store.tail("a", 1000).unwrap()), kept);
        assert_eq!(ids(store.before("a", kept[3], 1000).unwrap()), kept[..3]);
        assert_eq!(store.message("a", upto).unwrap(), None);
        assert_eq!(store.channels().iter().find(|c| c.name == "a").unwrap().count, keep);
        assert_eq!(store.expiry_point("a", Some(keep), None).unwrap(), upto, "nothing more to expire");
    }
    assert_eq!(store.since("b", 0, 1000).unwrap().len(), 30, "another channel keeps everything");
    assert_eq!(store.message_count(), 40);
    // An expiry by age: every message of `b` was posted before now.
    let b = Name::parse("target", "b").unwrap();
    let last_b = store.channel_last_id("b");
    assert_eq!(store.expiry_point("b", None, Some(f64::MAX)).unwrap(), last_b);
    assert_eq!(store.expiry_point("b", None, Some(0.0)).unwrap(), 0);
    rt.block_on(store.expire(&b, last_b)).unwrap();
    assert!(store.since("b", 0, 1000).unwrap().is_empty());
    assert_eq!(store.channel_last_id("b"), last_b, "the last id stays");
    // The four sealed blocks of `a` (about 26 KB) are punched out of the file once the views
    // without them are durable (two commits later): its length stays, its disk does not (but
    // for the pages they share with each other).
    rt.block_on(store.append(new_message("c", "one more commit"))).unwrap();
    assert_eq!(std::fs::metadata(&blocks_file).unwrap().len(), length);
    // Four whole pages lie inside them (filefrag shows them gone); the file system may count
    // one more for its own bookkeeping.
    assert!(on_disk() + 3 * 4096 <= allocated, "{} bytes on disk, {allocated} before", on_disk());
    store.close().unwrap();
    drop(store);

    let check = check(dir.path()).unwrap();
    assert!(check.problems.is_empty(), "{:?}", check.problems);
    let exported = export_string(dir.path(), &ExportFilter::default());
    assert!(!exported.contains("\"a0\"") && !exported.contains("\"a289\""), "the log forgot them");
    assert!(exported.contains("\"a290\"") && exported.contains("\"messages_expired\""));
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    assert_eq!(ids(store.since("a", 0, 1000).unwrap()), a[290..]);
    assert_eq!((store.expired("a"), store.message_count()), (a[289], 11));
    store.close().unwrap();
    drop(store);
    rebuild(dir.path(), None, &mut |_, _| {}).unwrap();
    let check = super::check(dir.path(), &Backend::sled()).unwrap();
    assert!(check.problems.is_empty(), "after rebuild: {:?}", check.problems);
    // `b`, whose every message the log forgot, is still a channel, known from its expiry.
    let store = Store::open(dir.path(), None, Options::default(), quiet()).unwrap();
    let listed = store.channels().into_iter().find(|c| c.name == "b").expect("b is still listed");
    assert_eq!((listed.count, store.channel_last_id("b"), store.expired("b")), (0, last_b, last_b));
    assert_eq!(ids(store.since("a", 0, 1000).unwrap()), a[290..]);
}

#[test]
fn an_expiry_in_one_group_with_a_redaction_of_a_block_it_drops_leaves_no_view_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let database = database::Database::open(dir.path(), Options::default()).unwrap();
    let (log, views) = (&database.log, &database.channel_views);
    let (_, mut channels) = views.load(Some(log)).unwrap();
    let post = |id: u64| posted_to_c(id, &format!("m{id}"));
    // Two sealed blocks (1-64, 65-128), then one group: a redaction in the first block and an
    // expiry that drops it.
    let posts: Vec<Event> = (1..=128).map(post).collect();
    log.events().append(&posts).unwrap();
    views.apply(&posts, &mut channels).unwrap();
    let expiry = crate::event::MessagesExpired { id: 130, ts: 3.0, target: "c".into(), upto: 64 };
    let group = vec![redaction_in_c(129, 5), Event::MessagesExpired(expiry)];
    log.events().append(&group).unwrap();
    assert_eq!(views.apply(&group, &mut channels).unwrap(), [(1..=64).collect::<Vec<u64>>()]);
    // The dropped block is punched once the views without it are durable: every read after
    // that, and a later expiry, find only the second block.
    database.flush().unwrap();
    let no = channels["c"].no;
    let tail: Vec<u64> = views.tail(no, 64, 130, 1000).unwrap().iter().map(|m| m.id).collect();
    assert_eq!(tail, (65..=128).collect::<Vec<u64>>());
    let later = crate::event::MessagesExpired { id: 131, ts: 4.0, target: "c".into(), upto: 100 };
    let later = vec![Event::MessagesExpired(later)];
    log.events().append(&later).unwrap();
    assert_eq!(views.apply(&later, &mut channels).unwrap(), [(65..=100).collect::<Vec<u64>>()]);
    assert_eq!((channels["c"].count, views.message_count(&channels).unwrap()), (28, 28));
    // Two expiries in one group: the log is asked to forget each one's messages, and each
    // answer takes its own entry out of what the next start would ask for again.
    let expiry = |id: u64, upto: u64| {
        Event::MessagesExpired(crate::event::MessagesExpired { id, ts: 5.0, target: "c".into(), upto })
    };
    let two = vec![expiry(132, 110), expiry(133, 120)];
    log.events().append(&two).unwrap();
    let groups = views.apply(&two, &mut channels).unwrap();
    assert_eq!(groups, [(101..=110).collect::<Vec<u64>>(), (111..=120).collect()]);
    assert_eq!(views.forgetting().unwrap().len(), 4, "every expiry's ids, until the log is done");
    for ids in [(1..=64).collect(), (65..=100).collect()].iter().chain(&groups) {
        views.forgotten(ids)();
    }
    assert_eq!(views.forgetting().unwrap(), Vec::<Vec<u64>>::new());
}

/// A message of channel `c`, as the log holds it.
fn posted_to_c(id: u64, text: &str) -> Event {
    let m = Message {
        id,
        ts: 1.0,
        target: "c".into(),
        sender: "s".into(),
        text: text.into(),
        source: Source::Cli,
        reply_to: None,
        redacted: None,
    };
    Event::MessagePosted(m)
}

/// `admin`'s redaction of message `message` of channel `c`, as event `id`.
fn redaction_in_c(id: u64, message: u64) -> Event {
    Event::MessageRedacted(crate::event::MessageRedacted {
        id,
        ts: 2.0,
        target: "c".into(),
        message,
        post: crate::event::Post { sender: "s".into(), ts: 1.0, source: Source::Cli, reply_to: None },
        by: "admin".into(),
        reason: String::new(),
    })
}
