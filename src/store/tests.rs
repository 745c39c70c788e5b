use super::*;
use crate::message::{Name, Source, Text};

fn quiet() -> Logger {
    Logger::root(slog::Discard, slog::o!())
}

fn new_message(target: &str, text: &str) -> NewMessage {
    NewMessage {
        target: Name::parse("target", target).unwrap(),
        sender: Name::parse("sender", "tester").unwrap(),
        text: Text::parse(text.to_owned(), 1 << 20).unwrap(),
        source: Source::Cli,
    }
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
    let store = Store::open(dir.path(), quiet()).unwrap();
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
    let store = Store::open(dir.path(), quiet()).unwrap();
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

#[test]
fn rebuilt_views_equal_incremental_views() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quiet()).unwrap();
    post_concurrently(&store, 500);
    store.close().unwrap();
    drop(store);
    let incremental = {
        let (_lock, _db, _log, views) = open_parts(dir.path()).unwrap();
        views.dump()
    };
    assert_eq!(rebuild(dir.path()).unwrap(), 500);
    let (_lock, _db, _log, views) = open_parts(dir.path()).unwrap();
    let rebuilt = views.dump();
    assert!(incremental.len() > 500, "views hold messages, channels and a checkpoint");
    assert_eq!(incremental, rebuilt);
}

#[test]
fn views_catch_up_with_events_they_missed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quiet()).unwrap();
    post_concurrently(&store, 30);
    store.close().unwrap();
    drop(store);
    // A crash after the log was flushed and before the views were updated: write events to the
    // log only.
    {
        let (_lock, db, log, _views) = open_parts(dir.path()).unwrap();
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
                })
            })
            .collect();
        log.append(&events).unwrap();
        db.flush().unwrap();
    }
    let store = Store::open(dir.path(), quiet()).unwrap();
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
        let store = Store::open(dir.path(), quiet()).unwrap();
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
    let store = Store::open(dir.path(), quiet()).unwrap();
    let err = Store::open(dir.path(), quiet()).err().expect("second open must fail");
    let text = err.to_string();
    assert!(text.contains("locked by another relay"), "{text}");
    assert!(text.contains(&std::process::id().to_string()), "{text}");
    store.close().unwrap();
}

#[test]
fn append_after_close_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quiet()).unwrap();
    store.close().unwrap();
    let err = runtime().block_on(store.append(new_message("x", "late"))).unwrap_err();
    assert!(matches!(err, StoreError::Closed));
}

#[test]
fn subscribers_see_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), quiet()).unwrap();
    let mut rx = store.subscribe();
    let rt = runtime();
    let m = rt.block_on(store.append(new_message("x", "hello"))).unwrap();
    assert!(rx.has_changed().unwrap());
    assert_eq!(*rx.borrow_and_update(), m.id);
    assert_eq!(store.last_id(), m.id);
    store.close().unwrap();
}
