//! I/O faults: the store's disk work fails through the seam in `store/faults.rs`, at every
//! position k of a sweep, once or from then on, for writes and for flushes. Each post is answered
//! 201 (and then stored) or 503 "not stored" (and then absent); after the fault clears the relay
//! goes on, or refuses with "restart the relay" until it is restarted; after a restart every
//! acknowledged message is in the log and the channel view, unchanged, no refused one is, and
//! posts work again.

use crate::helpers::{spawn_app_in, TestApp};
use relay::config::Config;
use relay::store::{Backend, FaultOp, FaultPlan, NatsSettings};
use std::collections::BTreeMap;

/// Positions swept: each post costs two writes (log, views) and one flush, so the posts after
/// arming reach every k.
const SWEEP: u64 = 8;
const POSTS_WHILE_ARMED: usize = 10;

#[derive(Default)]
struct Tally {
    cases: usize,
    acked: usize,
    refused: usize,
    restarts_needed: usize,
}

/// How the relay answered a post.
enum Answer {
    Acked(u64),
    /// 503 "not stored": it must then be absent.
    Refused,
    /// 503 "not acknowledged": it may be stored, at most once.
    Unacknowledged,
}

/// Posts `text`; a refusal must be a clear 503 saying why.
fn post(app: &TestApp, text: &str) -> Answer {
    let reply = app.post("f", "s", text);
    match reply.status {
        201 => Answer::Acked(reply.json()["posted"].as_u64().expect("posted id")),
        503 => {
            let error = reply.json()["error"].as_str().unwrap_or_default().to_owned();
            assert!(
                error.contains("injected fault") || error.contains("restart the relay"),
                "a failed post says why: {error}"
            );
            match error.split(": ").next() {
                Some("not stored") => Answer::Refused,
                Some("not acknowledged") => Answer::Unacknowledged,
                _ => panic!("{error}"),
            }
        }
        other => panic!("a post under faults got {other}: {}", reply.text()),
    }
}

/// What the relay answered: acknowledged ids with their texts, the texts it refused, and those
/// whose acknowledgement was lost.
#[derive(Default)]
struct Answers {
    acked: BTreeMap<u64, String>,
    refused: Vec<String>,
    unacknowledged: Vec<String>,
}

impl Answers {
    fn send(&mut self, app: &TestApp, text: String) {
        match post(app, &text) {
            Answer::Acked(id) => assert!(self.acked.insert(id, text).is_none(), "id {id} acknowledged twice"),
            Answer::Refused => self.refused.push(text),
            Answer::Unacknowledged => self.unacknowledged.push(text),
        }
    }

    fn failed(&self) -> usize {
        self.refused.len() + self.unacknowledged.len()
    }
}

fn run_case(plan: FaultPlan, tally: &mut Tally) {
    run_case_with(plan, &|_| {}, tally)
}

/// One fault case against a relay whose settings `backend` adjusts (the log's backend).
fn run_case_with(plan: FaultPlan, backend: &dyn Fn(&mut Config), tally: &mut Tally) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), backend);
    let mut answers = Answers::default();
    for n in 0..2 {
        answers.send(&app, format!("before {n}"));
    }
    assert_eq!(answers.refused.len(), 0, "no fault armed yet");
    app.store().inject_faults(Some(plan));
    for n in 0..POSTS_WHILE_ARMED {
        answers.send(&app, format!("armed {n}"));
    }
    assert!(answers.failed() > 0, "{plan:?}: the fault was never hit");
    // The fault clears: the relay goes on, or says it must be restarted.
    app.store().inject_faults(None);
    let before_clear = answers.failed();
    answers.send(&app, "cleared".to_owned());
    let needs_restart = answers.failed() > before_clear;
    if needs_restart {
        let probe = app.post("f", "s", "probe");
        assert!(probe.text().contains("restart the relay"), "{plan:?}: {}", probe.text());
    }
    app.stop();

    let app = spawn_app_in(dir.path(), backend);
    // The log (export) is the truth; the channel view must hold the same messages.
    let texts = |messages: Vec<serde_json::Value>| -> BTreeMap<u64, String> {
        messages
            .iter()
            .map(|m| (m["id"].as_u64().unwrap(), m["text"].as_str().unwrap().to_owned()))
            .filter(|(_, text)| text != "probe")
            .collect()
    };
    let export = app.get("/api/export?target=f").text();
    let stored = texts(export.lines().map(|l| serde_json::from_str(l).unwrap()).collect());
    assert_eq!(texts(app.all_messages("f")), stored, "{plan:?}: the view differs from the log");
    let Answers { acked, refused, unacknowledged } = answers;
    for (id, text) in &acked {
        assert_eq!(stored.get(id), Some(text), "{plan:?}: acknowledged message {id} lost or changed");
    }
    for text in &refused {
        assert!(!stored.values().any(|t| t == text), "{plan:?}: refused {text:?} was stored");
    }
    for text in &unacknowledged {
        let copies = stored.values().filter(|t| *t == text).count();
        assert!(copies <= 1, "{plan:?}: {text:?} stored {copies} times");
    }
    let Answer::Acked(after) = post(&app, "after restart") else { panic!("posts work after a restart") };
    assert!(after > *acked.keys().last().unwrap(), "ids only grow");
    app.stop();

    tally.cases += 1;
    tally.acked += acked.len();
    tally.refused += refused.len() + unacknowledged.len();
    tally.restarts_needed += usize::from(needs_restart);
}

#[test]
fn every_disk_fault_is_answered_503_and_loses_nothing_acknowledged() {
    let mut tally = Tally::default();
    for op in [FaultOp::Write, FaultOp::Flush] {
        for sticky in [false, true] {
            for nth in 1..=SWEEP {
                run_case(FaultPlan { op, nth, sticky }, &mut tally);
            }
        }
    }
    eprintln!(
        "fault sweep: {} cases, {} posts acknowledged, {} refused with 503, {} needed a restart, 0 lost",
        tally.cases, tally.acked, tally.refused, tally.restarts_needed
    );
}

/// The faults of the log interface (`FaultyLog`: an append refused before the log sees it, or
/// stored with its acknowledgement lost), swept through one test body against both backends.
/// A refused post is absent, one whose acknowledgement was lost is stored at most once, every
/// acknowledged one is there, and the views match the log.
#[test]
fn every_log_fault_is_answered_503_on_both_backends_and_loses_nothing_acknowledged() {
    let nats = crate::nats::cluster::Cluster::start();
    let streams = std::sync::atomic::AtomicUsize::new(0);
    let sled: &dyn Fn(&mut Config) = &|_| {};
    let in_nats = |config: &mut Config| {
        // Each case starts from an empty stream; its restart reopens the same one.
        let stream = format!("F{}", streams.load(std::sync::atomic::Ordering::Relaxed));
        config.log =
            Backend::nats(NatsSettings { urls: nats.urls.clone(), stream, ..NatsSettings::default() });
    };
    for (name, backend) in [("sled", sled), ("nats", &in_nats as &dyn Fn(&mut Config))] {
        let mut tally = Tally::default();
        for op in [FaultOp::Append, FaultOp::Answer] {
            for sticky in [false, true] {
                for nth in 1..=4 {
                    run_case_with(FaultPlan { op, nth, sticky }, backend, &mut tally);
                    streams.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        eprintln!(
            "log fault sweep ({name}): {} cases, {} posts acknowledged, {} answered 503, 0 lost",
            tally.cases, tally.acked, tally.refused
        );
    }
}
