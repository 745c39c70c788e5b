//! The JetStream backend against a real 3-node cluster on loopback (tests/support).

#[allow(dead_code)] // what the process tests use of it
#[path = "../../../../tests/support/nats_cluster.rs"]
pub(crate) mod cluster;
#[path = "../../../../tests/support/files.rs"]
mod files;

use super::health::HEALTH_EVERY;
use super::stream::{event_token, major_minor, wanted, MIN_SERVER};
use super::*;
use crate::message::{Message, Source};
use crate::store::tests::{new_message, posted};
use async_nats::jetstream::stream;
use cluster::{free_port, Cluster};
use files::files_holding;

/// An instance's settings for `stream` on `cluster`.
pub(crate) fn config(cluster: &Cluster, stream: &str) -> NatsSettings {
    NatsSettings { urls: cluster.urls.clone(), stream: stream.into(), ..NatsSettings::default() }
}

/// The largest text the tests' posts may carry.
const MAX_TEXT: usize = 1 << 20;

fn logger() -> Logger {
    crate::usage_log::discard()
}

/// A store in `dir` whose log is the stream `backend` names, once it follows the stream (within
/// 30 s: the store opens without it after a while, see `NatsLog::serve`).
fn nats_store(dir: &tempfile::TempDir, backend: &crate::store::Backend) -> crate::store::Store {
    let store =
        crate::store::Store::open_on(dir.path(), None, Default::default(), backend, logger()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.ready().is_err() || store.stale() {
        assert!(Instant::now() < deadline, "the store does not follow the stream: {:?}", store.ready());
        std::thread::sleep(Duration::from_millis(50));
    }
    store
}

fn post(log: &NatsLog, target: &str, text: &str) -> Result<Message, StoreError> {
    match log.append(NewEvent::Message(new_message(target, text)))?.blocking_recv().expect("an answer")? {
        Event::MessagePosted(m) => Ok(m),
        other => panic!("a message was stored as {other:?}"),
    }
}

fn ids(events: &[Event]) -> Vec<u64> {
    events.iter().map(Event::id).collect()
}

#[test]
fn posts_are_numbered_by_the_stream_and_read_back_whole() {
    let cluster = Cluster::start();
    let log = NatsLog::connect(&config(&cluster, "READ"), MAX_TEXT, logger()).unwrap();
    assert_eq!(log.last_id().unwrap(), 0);
    let odd = "a.b *> c ßé";
    let posted: Vec<Message> = ["one", "two", "three"].iter().map(|t| post(&log, odd, t).unwrap()).collect();
    assert_eq!(posted.iter().map(|m| m.id).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(log.last_id().unwrap(), 3);
    let events = log.read_from(1, 10).unwrap();
    assert_eq!(ids(&events), [1, 2, 3]);
    assert_eq!(events[1], Event::MessagePosted(posted[1].clone()), "the same message: id, time, text...");
    assert_eq!(events[1].target(), Some(odd));
    assert_eq!(ids(&log.read_from(2, 1).unwrap()), [2]);
    assert_eq!(ids(&log.read_from(3, 10).unwrap()), [3]);
    assert!(log.read_from(4, 10).unwrap().is_empty());
    // Each read's consumer goes when the read ends: frequent reads (the archive's, a page's read
    // back) do not pile consumers up on the stream.
    for _ in 0..50 {
        assert_eq!(log.read_from(2, 10).unwrap().len(), 2);
    }
    // The last read's consumer is deleted as the read ends; the server may count it a moment longer.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (js, name) = (log.reached().unwrap().js.clone(), log.stream.clone());
        let consumers = log
            .run(async move { stream_info(&js, &name).await.map(|s| s.cached_info().state.consumer_count) });
        match consumers.unwrap() {
            0 => break,
            n => assert!(std::time::Instant::now() < deadline, "{n} consumers left after the reads"),
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // A second instance on another node sees the same log.
    let mut other_config = config(&cluster, "READ");
    other_config.urls = vec![cluster.urls[2].clone()];
    let other = NatsLog::connect(&other_config, MAX_TEXT, logger()).unwrap();
    assert_eq!(other.read_from(1, 10).unwrap(), events);
    log.close().unwrap();
    assert!(matches!(log.append(NewEvent::Message(new_message("c", "late"))), Err(StoreError::Closed)));
}

#[test]
fn followers_get_every_event_once_in_order_across_instances() {
    let cluster = Cluster::start();
    let a = NatsLog::connect(&config(&cluster, "FOLLOW"), MAX_TEXT, logger()).unwrap();
    let b = NatsLog::connect(&config(&cluster, "FOLLOW"), MAX_TEXT, logger()).unwrap();
    for i in 0..3 {
        post(&a, "c", &format!("before {i}")).unwrap();
    }
    let (tx, rx) = mpsc::channel();
    let from_two = tx.clone();
    b.follow(0, Box::new(move |events| tx.send(ids(&events)).unwrap())).unwrap();
    b.follow(
        2,
        Box::new(move |events| {
            from_two.send(ids(&events).into_iter().map(|id| id + 1000).collect()).unwrap()
        }),
    )
    .unwrap();
    for i in 0..5 {
        post(&a, "c", &format!("after {i}")).unwrap();
    }
    let (mut all, mut late) = (Vec::new(), Vec::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    while (all.len() < 8 || late.len() < 6) && Instant::now() < deadline {
        if let Ok(batch) = rx.recv_timeout(Duration::from_millis(200)) {
            for id in batch {
                if id > 1000 {
                    late.push(id - 1000);
                } else {
                    all.push(id);
                }
            }
        }
    }
    assert_eq!(all, (1..=8).collect::<Vec<_>>(), "from the start, each once, in order");
    assert_eq!(late, (3..=8).collect::<Vec<_>>(), "after id 2 only");
}

#[test]
fn a_retry_with_the_same_msg_id_is_stored_once() {
    let cluster = Cluster::start();
    let log = NatsLog::connect(&config(&cluster, "RETRY"), MAX_TEXT, logger()).unwrap();
    let payload = bytes::Bytes::from(event::encode(&Event::MessagePosted(Message {
        id: 0,
        ts: 1.5,
        target: "c".into(),
        sender: "s".into(),
        text: "once".into(),
        source: Source::Rest,
        reply_to: None,
        redacted: None,
    })));
    let (js, subject) = (log.reached().unwrap().js.clone(), subject("RETRY", "c"));
    let first = log.run(publish(js.clone(), subject.clone(), payload.clone(), "post-1".into())).unwrap();
    let again = log.run(publish(js.clone(), subject.clone(), payload.clone(), "post-1".into())).unwrap();
    assert_eq!((first, again), (1, 1), "the retry is answered with the first's sequence");
    let other = log.run(publish(js, subject, payload, "post-2".into())).unwrap();
    assert_eq!(other, 2);
    assert_eq!(ids(&log.read_from(1, 10).unwrap()), [1, 2]);
}

#[test]
fn start_up_refuses_a_stream_it_would_have_to_change_and_payloads_too_big() {
    let cluster = Cluster::start();
    let mut other = config(&cluster, "OTHER");
    let existing = wanted(&other);
    let urls = cluster.urls.clone();
    let made = stream::Config { max_age: Duration::from_secs(3600), max_bytes: 1 << 30, ..existing };
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let js = jetstream::new(async_nats::connect(urls.as_slice()).await.unwrap());
        js.create_stream(made).await.unwrap();
    });
    let refused = NatsLog::connect(&other, MAX_TEXT, logger()).err().expect("refused").to_string();
    assert!(refused.contains("max_age is 3600s") && refused.contains("max_bytes is 1073741824"), "{refused}");
    assert!(refused.contains("does not change"), "{refused}");
    let log = NatsLog::connect(&config(&cluster, "FRESH"), MAX_TEXT, logger()).unwrap();
    drop(log);
    other.stream = "FRESH".into();
    other.replicas = 1;
    let refused = NatsLog::connect(&other, MAX_TEXT, logger()).err().expect("refused").to_string();
    assert!(refused.contains("num_replicas is 3, the relay needs 1"), "{refused}");
    let big = config(&cluster, "BIG");
    let refused = NatsLog::connect(&big, 64 << 20, logger()).err().expect("refused").to_string();
    assert!(refused.contains("max_payload") && refused.contains("max_text_bytes"), "{refused}");
    let mut nowhere = config(&cluster, "X");
    nowhere.urls = vec![format!("nats://127.0.0.1:{}", free_port())];
    let refused = NatsLog::connect(&nowhere, MAX_TEXT, logger()).err().expect("refused").to_string();
    assert!(refused.contains("cannot connect to nats_url nats://127.0.0.1:"), "{refused}");
}

#[test]
fn without_a_quorum_a_post_is_not_acknowledged() {
    let mut cluster = Cluster::start();
    let log = NatsLog::connect(&config(&cluster, "QUORUM"), MAX_TEXT, logger()).unwrap();
    post(&log, "c", "with quorum").unwrap();
    cluster.kill(1);
    cluster.kill(2);
    let started = Instant::now();
    let refused = post(&log, "c", "without").expect_err("no quorum, no acknowledgement");
    let took = started.elapsed();
    assert!(refused.to_string().contains("no acknowledgement"), "{refused}");
    assert!(took < PUBLISH_BOUND + ATTEMPT_TIMEOUT * 2, "answered within the bound: {took:?}");
    // The stream's leader steps down once it sees it lost its quorum: from then on readiness
    // says so, and once that has lasted FAIL_FAST_AFTER, posts are refused at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    let missing = loop {
        match log.ready() {
            Err(missing) => break missing,
            Ok(()) => assert!(Instant::now() < deadline, "still ready without a quorum"),
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(missing.contains("quorum"), "{missing}");
    std::thread::sleep(FAIL_FAST_AFTER + HEALTH_EVERY);
    let started = Instant::now();
    let refused = post(&log, "c", "still without").expect_err("no quorum, no acknowledgement");
    assert!(matches!(refused, StoreError::Nats(ref why) if why.contains("quorum")), "{refused}");
    assert!(started.elapsed() < Duration::from_secs(1), "refused at once: {:?}", started.elapsed());
}

#[test]
fn subject_tokens_are_valid_and_distinct() {
    let names = ["proj-x", "a.b", "a%2Eb", "a b", "*", ">", "a\tb", "ß", "x_y", "%00principals"];
    let mut tokens: Vec<String> = names.iter().map(|n| event_token(Some(n))).collect();
    // The principals' subject is no channel's.
    tokens.push(event_token(None));
    for token in &tokens {
        assert!(!token.is_empty() && !token.contains(['.', '*', '>', ' ', '\t']), "{token}");
    }
    let distinct: std::collections::HashSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), names.len() + 1, "{tokens:?}");
    assert_eq!(subject("RELAY", "proj-x"), "relay.RELAY.proj-x");
}

#[test]
fn server_versions_read_as_major_and_minor() {
    assert_eq!(major_minor("2.15.1"), Some((2, 15)));
    assert_eq!(major_minor("v2.10.0-beta.3"), Some((2, 10)));
    assert_eq!(major_minor("2.9.10"), Some((2, 9)));
    assert!(major_minor("2.9.10").unwrap() < MIN_SERVER);
    assert_eq!(major_minor("x"), None);
}

#[test]
fn two_stores_on_one_stream_see_each_others_posts_and_catch_up_after_a_restart() {
    let cluster = Cluster::start();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let backend = crate::store::Backend::nats(config(&cluster, "STORES"));
    let open = |dir| nats_store(dir, &backend);
    let (a, b) = (open(&dir_a), open(&dir_b));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut b_commits = b.commit_watch();
    let posted = runtime.block_on(a.append(new_message("shared", "from a"))).unwrap();
    assert_eq!(posted.id, 1);
    assert_eq!(a.since("shared", 0, 10).unwrap().len(), 1, "A reads its own write at once");
    runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(10), b_commits.wait_for(|id| *id >= 1))
            .await
            .unwrap()
            .unwrap();
    });
    let on_a = a.since("shared", 0, 10).unwrap();
    let on_b = b.since("shared", 0, 10).unwrap();
    assert_eq!(on_a, on_b, "the same id gives the same message, byte for byte");
    let from_b = runtime.block_on(b.append(new_message("shared", "from b"))).unwrap();
    assert_eq!(from_b.id, 2);
    // A restarts while B posts: it catches up from its checkpoint.
    a.close().unwrap();
    drop(a);
    runtime.block_on(b.append(new_message("other", "while a was away"))).unwrap();
    let a = open(&dir_a);
    assert_eq!(a.last_id(), 3);
    assert_eq!(a.since("other", 0, 10).unwrap(), b.since("other", 0, 10).unwrap());
    assert_eq!(a.channels(), b.channels());
}

#[test]
fn losing_the_streams_leader_stalls_posts_then_they_are_stored_once() {
    let mut cluster = Cluster::start();
    let log = NatsLog::connect(&config(&cluster, "LEADER"), MAX_TEXT, logger()).unwrap();
    post(&log, "c", "before").unwrap();
    let leader = cluster.settled_leader("LEADER");
    cluster.kill(leader);
    let started = Instant::now();
    let after = post(&log, "c", "after").expect("a new leader takes the retry");
    eprintln!("a post after the leader was killed took {:?}", started.elapsed());
    assert!(started.elapsed() < PUBLISH_BOUND + ATTEMPT_TIMEOUT, "within the bound: {:?}", started.elapsed());
    assert_eq!(after.id, 2);
    // A read right after the election can outlast its own retries on a loaded machine (a CI
    // run saw a consumer not created within them): the test gives it 30 s.
    let deadline = Instant::now() + Duration::from_secs(30);
    let events = loop {
        match log.read_from(1, 10) {
            Err(e) if Instant::now() < deadline => eprintln!("reading after the election: {e}"),
            read => break read.unwrap(),
        }
    };
    assert_eq!(ids(&events), [1, 2], "each post once");
}

#[test]
fn views_built_from_a_stream_deleted_and_created_again_are_rebuilt_from_the_new_one() {
    use crate::store::Store;
    let cluster = Cluster::start();
    let (dir, other_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let backend = crate::store::Backend::nats(config(&cluster, "AGAIN"));
    let open = |dir| nats_store(dir, &backend);
    let texts = |store: &Store| -> Vec<String> {
        let messages = store.since("c", 0, 10).unwrap();
        messages.iter().map(|m| serde_json::from_slice::<Message>(m.json()).unwrap().text).collect()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let store = open(&dir);
    for text in ["old 1", "old 2", "old 3"] {
        runtime.block_on(store.append(new_message("c", text))).unwrap();
    }
    store.close().unwrap();
    drop(store);
    // The stream is deleted and made again; another instance posts more than there were.
    let urls = cluster.urls.clone();
    runtime.block_on(async move {
        let js = jetstream::new(async_nats::connect(urls.as_slice()).await.unwrap());
        js.delete_stream("AGAIN").await.unwrap();
    });
    let other = open(&other_dir);
    for text in ["new 1", "new 2", "new 3", "new 4", "new 5"] {
        runtime.block_on(other.append(new_message("c", text))).unwrap();
    }
    // The first instance's checkpoint (3) is within the new stream (5), yet ids 1-3 now name
    // other messages: its views are rebuilt from the stream it finds.
    let store = open(&dir);
    assert_eq!(texts(&store), ["new 1", "new 2", "new 3", "new 4", "new 5"]);
    assert_eq!(texts(&store), texts(&other));
    assert_eq!(store.channels(), other.channels());
}

#[test]
fn a_damaged_record_stops_the_follower_and_the_instance_says_so() {
    let cluster = Cluster::start();
    let log = NatsLog::connect(&config(&cluster, "DAMAGED"), MAX_TEXT, logger()).unwrap();
    let (tx, rx) = mpsc::channel();
    log.follow(0, Box::new(move |events| tx.send(ids(&events)).unwrap())).unwrap();
    post(&log, "c", "fine").unwrap();
    assert_eq!(rx.recv_timeout(Duration::from_secs(10)).unwrap(), [1]);
    // Something other than a relay publishes on the stream's subjects.
    let (js, subject) = (log.reached().unwrap().js.clone(), subject("DAMAGED", "c"));
    log.run(publish(js, subject, bytes::Bytes::from_static(b"not a record"), "junk".into())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let why = loop {
        if let Err(why) = log.ready() {
            break why;
        }
        assert!(Instant::now() < deadline, "still ready after a damaged record");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(why.contains("following the stream stopped at 2"), "{why}");
    let refused = post(&log, "c", "after").expect_err("no post the views could not show");
    assert!(matches!(refused, StoreError::Failed(_)), "{refused}");
    assert!(rx.try_recv().is_err(), "nothing past the damage reached the follower");
}

fn messages_in(log: &NatsLog) -> u64 {
    let (js, name) = (log.reached().unwrap().js.clone(), log.stream.clone());
    log.run(async move { stream_info(&js, &name).await.map(|s| s.cached_info().state.messages) }).unwrap()
}

#[test]
fn erased_records_leave_gaps_that_reads_and_follows_fill_with_tombstones() {
    let cluster = Cluster::standalone_on(free_port(), "max_payload: 8MB");
    let settings = NatsSettings { replicas: 1, ..config(&cluster, "ERASE") };
    let log = NatsLog::connect(&settings, MAX_TEXT, logger()).unwrap();
    let secret = "hunter2-in-the-stream";
    let posted: Vec<Message> =
        ["one", secret, "three", "expires", "five"].iter().map(|t| post(&log, "c", t).unwrap()).collect();
    let name = |raw: &str| crate::values::Name::parse("name", raw).unwrap();
    let redaction = NewEvent::Redaction {
        target: name("c"),
        message: 2,
        post: (&posted[1]).into(),
        by: name("alice"),
        reason: "a password".into(),
    };
    let redacted = log.append(redaction).unwrap().blocking_recv().unwrap().unwrap();
    assert_eq!(redacted.id(), 6);
    let tail = post(&log, "c", "the last, expired too").unwrap();
    assert!(!files_holding(cluster.dir(), secret.as_bytes()).is_empty(), "the secret is on disk before");

    log.erase(&[2]).unwrap();
    let (forgotten, done) = std::sync::mpsc::channel();
    log.forget(&[4, tail.id], Box::new(move || forgotten.send(()).unwrap())).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while messages_in(&log) > 4 {
        assert!(Instant::now() < deadline, "the records were not deleted");
        std::thread::sleep(Duration::from_millis(50));
    }
    done.recv_timeout(Duration::from_secs(10)).expect("told once the records are gone");
    assert_eq!(
        files_holding(cluster.dir(), secret.as_bytes()),
        Vec::<String>::new(),
        "erased from the server's files"
    );

    // Reads, by this instance and by one that never saw the redaction, give the tombstone in
    // the message's place and skip what expired; a read that meets only gaps ends at once.
    let fresh = NatsLog::connect(&settings, MAX_TEXT, logger()).unwrap();
    for reader in [&log, &fresh] {
        let events = reader.read_from(1, 10).unwrap();
        assert_eq!(ids(&events), [1, 2, 3, 5, 6]);
        let Event::MessagePosted(tombstone) = &events[1] else { panic!("{:?}", events[1]) };
        assert_eq!(tombstone.text, "redacted by alice: a password");
        assert_eq!(
            (tombstone.ts, &tombstone.sender, &tombstone.target),
            (posted[1].ts, &posted[1].sender, &posted[1].target)
        );
        assert_eq!(ids(&reader.read_from(2, 1).unwrap()), [2]);
        assert_eq!(ids(&reader.read_from(4, 1).unwrap()), [5]);
        let started = Instant::now();
        assert!(reader.read_from(tail.id, 10).unwrap().is_empty());
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    }
    // A follower from the start gets the same, and after the erased tail, what comes next.
    let (tx, rx) = mpsc::channel();
    fresh.follow(0, Box::new(move |events| tx.send(events).unwrap())).unwrap();
    let after = post(&log, "c", "after the gap").unwrap();
    let mut followed = Vec::new();
    while followed.last().map(Event::id) != Some(after.id) {
        followed.extend(rx.recv_timeout(Duration::from_secs(10)).expect("the follower goes on"));
    }
    assert_eq!(ids(&followed), [1, 2, 3, 5, 6, after.id]);
    assert_eq!(followed[1], Event::MessagePosted(redacted_message(&redacted)));

    // A stream an earlier relay made with deletes denied is used as it is, and keeps records.
    let old = NatsSettings { stream: "DENIES".into(), ..settings.clone() };
    let made = stream::Config { deny_delete: true, deny_purge: true, ..wanted(&old) };
    let urls = cluster.urls.clone();
    tokio::runtime::Runtime::new().unwrap().block_on(async move {
        let js = jetstream::new(async_nats::connect(urls.as_slice()).await.unwrap());
        js.create_stream(made).await.unwrap();
    });
    let denies = NatsLog::connect(&old, MAX_TEXT, logger()).unwrap();
    post(&denies, "c", "kept").unwrap();
    let (forgotten, done) = std::sync::mpsc::channel();
    denies.forget(&[1], Box::new(move || forgotten.send(()).unwrap())).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(messages_in(&denies), 1);
    // Nothing will ever be deleted there: not asked for again at each start.
    done.try_recv().expect("told at once");
}

/// The tombstone a redaction event makes.
fn redacted_message(event: &Event) -> Message {
    let Event::MessageRedacted(r) = event else { panic!("{event:?}") };
    r.tombstone()
}

#[test]
fn blocks_an_expiry_drops_are_punched_while_the_instance_runs() {
    let cluster = Cluster::standalone_on(free_port(), "max_payload: 8MB");
    let dir = tempfile::tempdir().unwrap();
    let settings = NatsSettings { replicas: 1, ..config(&cluster, "PUNCH") };
    let store = nats_store(&dir, &crate::store::Backend::nats(settings));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    // Four sealed blocks of 64 and 44 open messages, about 26 KB of blocks.
    let mut ids = Vec::new();
    for i in 0..300 {
        ids.push(
            runtime.block_on(store.append(new_message("a", &format!("a{i} {}", "x".repeat(60))))).unwrap().id,
        );
    }
    let blocks_file = dir.path().join(crate::store::projections::blocks::BLOCKS_FILE);
    let on_disk = || std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(&blocks_file).unwrap()) * 512;
    // The views are made durable after an expiry once 5 s passed since the last time.
    std::thread::sleep(Duration::from_secs(5));
    let allocated = on_disk();
    let target = crate::values::Name::parse("target", "a").unwrap();
    runtime.block_on(store.expire(&target, ids[249])).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while on_disk() + 3 * 4096 > allocated {
        assert!(Instant::now() < deadline, "{} bytes on disk, {allocated} before the expiry", on_disk());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(store.since("a", 0, 1000).unwrap().len(), 50);
}

/// An import's chunk on a stream something else wrote to meanwhile fails, and says so: a chunk
/// whose first id another record took is stored around it (each record's condition holds on
/// top of the other), which the read-back finds.
#[test]
fn an_import_chunk_over_a_record_it_did_not_send_fails() {
    let cluster = Cluster::standalone_on(free_port(), "max_payload: 8MB");
    let settings = NatsSettings { replicas: 1, ..config(&cluster, "OVERWRITTEN") };
    let log = NatsLog::connect(&settings, MAX_TEXT, logger()).unwrap();
    post(&log, "c", "posted during the import").unwrap();
    let records = (1..=10).map(|id| log.import_record(posted(id, "c", &format!("imported {id}")))).collect();
    let err = log.import_chunk(records).unwrap_err();
    assert!(err.to_string().contains("id 1 holds a record the import did not send"), "{err}");
}
