//! I/O faults: the store's disk work fails through the seam in `store/faults.rs`, at every
//! position k of a sweep, once or from then on, for writes and for flushes. Each post is answered
//! 201 (and then stored) or 503 "not stored" (and then absent); after the fault clears the relay
//! goes on, or refuses with "restart the relay" until it is restarted; after a restart every
//! acknowledged message is in the log and the channel view, unchanged, no refused one is, and
//! posts work again.

use crate::helpers::{spawn_app_in, TestApp};
use relay::store::{FaultOp, FaultPlan};
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

/// Posts `text`; returns the id when acknowledged, `None` when refused with a clear 503.
fn post(app: &TestApp, text: &str) -> Option<u64> {
    let reply = app.post("f", "s", text);
    match reply.status {
        201 => Some(reply.json()["posted"].as_u64().expect("posted id")),
        503 => {
            let error = reply.json()["error"].as_str().unwrap_or_default().to_owned();
            assert!(error.starts_with("not stored: "), "{error}");
            assert!(
                error.contains("injected fault") || error.contains("restart the relay"),
                "a failed post says why: {error}"
            );
            None
        }
        other => panic!("a post under faults got {other}: {}", reply.text()),
    }
}

/// What the relay answered: acknowledged ids with their texts, and the texts it refused.
#[derive(Default)]
struct Answers {
    acked: BTreeMap<u64, String>,
    refused: Vec<String>,
}

impl Answers {
    fn send(&mut self, app: &TestApp, text: String) {
        match post(app, &text) {
            Some(id) => assert!(self.acked.insert(id, text).is_none(), "id {id} acknowledged twice"),
            None => self.refused.push(text),
        }
    }
}

fn run_case(plan: FaultPlan, tally: &mut Tally) {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), |_| {});
    let mut answers = Answers::default();
    for n in 0..2 {
        answers.send(&app, format!("before {n}"));
    }
    assert_eq!(answers.refused.len(), 0, "no fault armed yet");
    app.store().inject_faults(Some(plan));
    for n in 0..POSTS_WHILE_ARMED {
        answers.send(&app, format!("armed {n}"));
    }
    assert!(!answers.refused.is_empty(), "{plan:?}: the fault was never hit");
    // The fault clears: the relay goes on, or says it must be restarted.
    app.store().inject_faults(None);
    let before_clear = answers.refused.len();
    answers.send(&app, "cleared".to_owned());
    let needs_restart = answers.refused.len() > before_clear;
    if needs_restart {
        let probe = app.post("f", "s", "probe");
        assert!(probe.text().contains("restart the relay"), "{plan:?}: {}", probe.text());
    }
    app.stop();

    let app = spawn_app_in(dir.path(), |_| {});
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
    let Answers { acked, refused } = answers;
    for (id, text) in &acked {
        assert_eq!(stored.get(id), Some(text), "{plan:?}: acknowledged message {id} lost or changed");
    }
    for text in &refused {
        assert!(!stored.values().any(|t| t == text), "{plan:?}: refused {text:?} was stored");
    }
    let after = post(&app, "after restart").expect("posts work after a restart");
    assert!(after > *acked.keys().last().unwrap(), "ids only grow");
    app.stop();

    tally.cases += 1;
    tally.acked += acked.len();
    tally.refused += refused.len();
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
