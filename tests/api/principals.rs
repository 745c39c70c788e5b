//! Principals through every front door of the real binary: each credential speaks and reads as
//! its own principal, where its grants allow; revokes, kill -9, rebuild, export and import.

use crate::helpers::{relay_command, request, start_relay, Reply};
use crate::mcp::{assert_client_passed, client_path, clients_dir, run_client};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::path::Path;

/// Runs `principals ARGS` on the stopped data dir (`data`) of `work`; its stdout.
fn principals(work: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["principals"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--data-dir", "data"]);
    let out = relay_command(work, &all, env).output().unwrap();
    assert!(out.status.success(), "principals {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `principals add ...` on the stopped data dir (`data`) of `work`: the credential, alone on the
/// last line.
pub(crate) fn add(work: &Path, args: &[&str]) -> String {
    let mut all = vec!["add"];
    all.extend_from_slice(args);
    let out = principals(work, &all, &[]);
    let credential = out.lines().last().unwrap().to_owned();
    assert!(credential.starts_with("ccr_") && !credential.contains(' '), "{out}");
    credential
}

pub(crate) fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    credential: &str,
    body: Option<Value>,
) -> Reply {
    let bearer = format!("Bearer {credential}");
    let mut headers =
        vec![("Content-Type", "application/json"), ("Accept", "application/json, text/event-stream")];
    if !credential.is_empty() {
        headers.push(("Authorization", bearer.as_str()));
    }
    let body = body.map(|b| b.to_string());
    request(addr, method, path, &headers, body.as_deref().map(str::as_bytes))
}

pub(crate) fn tool(addr: SocketAddr, credential: &str, name: &str, arguments: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}});
    let reply = call(addr, "POST", "/mcp", credential, Some(body));
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["result"].clone()
}

/// The senders of `target`'s messages, as the admin reads them.
fn senders(addr: SocketAddr, admin: &str, target: &str) -> Vec<String> {
    let reply = call(addr, "GET", &format!("/api/messages?target={target}"), admin, None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    let messages = reply.json()["messages"].as_array().cloned().unwrap();
    messages.iter().map(|m| m["sender"].as_str().unwrap().to_owned()).collect()
}

#[test]
fn every_front_door_speaks_and_reads_as_the_credentials_principal() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let root = add(work, &["root", "--role", "admin"]);
    let codex = add(work, &["codex", "--read", "proj-*", "--write", "proj-*"]);
    let eve = add(work, &["eve", "--role", "person", "--read", "secret", "--write", "secret"]);
    let relay = start_relay(work, &[]);
    let addr = relay.addr;

    // Nothing configured but principals: the relay is closed to the anonymous.
    let anonymous = call(addr, "GET", "/api/messages?target=proj-x", "", None);
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert!(anonymous.text().contains("needs a credential"));

    // Posts as someone else: 403 through REST, MCP, the UI's form and `post`; nothing stored.
    let as_claude = json!({"target": "proj-x", "sender": "claude", "text": "I am claude"});
    let rest = call(addr, "POST", "/api/messages", &codex, Some(as_claude.clone()));
    assert_eq!(rest.status, 403, "{}", rest.text());
    assert!(rest.text().contains("may not post as"), "{}", rest.text());
    let ui = call(addr, "POST", "/ui/messages", &codex, Some(as_claude.clone()));
    assert_eq!(ui.status, 403, "{}", ui.text());
    let mcp = tool(addr, &codex, "post_message", as_claude);
    assert_eq!(mcp["isError"], true, "{mcp}");
    let env = [("CLAUDE_CODEX_AUTH_TOKEN", codex.as_str())];
    let url = format!("http://{addr}");
    let refused =
        relay_command(work, &["post", "--url", &url, "--target", "proj-x", "--sender", "claude", "hi"], &env)
            .output()
            .unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert_eq!(senders(addr, &root, "proj-x"), Vec::<String>::new(), "nothing was stored");

    // Leaving the sender out, or giving one's own, posts as oneself through every door.
    let rest = call(addr, "POST", "/api/messages", &codex, Some(json!({"target": "proj-x", "text": "rest"})));
    assert_eq!(rest.status, 201, "{}", rest.text());
    let ui = call(addr, "POST", "/ui/messages", &codex, Some(json!({"target": "proj-x", "text": "ui"})));
    assert_eq!(ui.status, 201, "{}", ui.text());
    let mcp =
        tool(addr, &codex, "post_message", json!({"target": "proj-x", "sender": "codex", "text": "mcp"}));
    assert_eq!(mcp["structuredContent"]["ok"], true, "{mcp}");
    let posted =
        relay_command(work, &["post", "--url", &url, "--target", "proj-x", "cli"], &env).output().unwrap();
    assert!(posted.status.success(), "{}", String::from_utf8_lossy(&posted.stderr));
    assert_eq!(senders(addr, &root, "proj-x"), ["codex"; 4]);

    // Grants: eve's channel is hers; codex may neither post there nor read it by any read.
    let eve_posts =
        call(addr, "POST", "/api/messages", &eve, Some(json!({"target": "secret", "text": "the plan"})));
    assert_eq!(eve_posts.status, 201, "{}", eve_posts.text());
    let outside = call(addr, "POST", "/api/messages", &eve, Some(json!({"target": "proj-x", "text": "x"})));
    assert_eq!(outside.status, 403);
    for path in [
        "/api/messages?target=secret",
        "/api/messages?target=secret&since_id=0&wait=1",
        "/api/search?q=plan&target=secret",
        "/c/secret",
        "/c/secret/events?after=0",
        "/api/messages?target=proj-x&reader=eve",
        "/api/channels?reader=eve",
        "/channels/events?reader=eve",
        "/api/export",
        "/api/principals",
    ] {
        let reply = call(addr, "GET", path, &codex, None);
        assert_eq!(reply.status, 403, "{path}: {}", reply.text());
    }
    let fetched = tool(addr, &codex, "fetch_messages", json!({"target": "secret"}));
    assert_eq!(fetched["isError"], true, "{fetched}");
    let waited =
        tool(addr, &codex, "wait_for_messages", json!({"target": "secret", "since_id": 0, "timeout_s": 1}));
    assert_eq!(waited["isError"], true, "{waited}");
    // Lists and search leave out what the principal may not read.
    let listed = call(addr, "GET", "/api/channels?reader=codex", &codex, None).json();
    assert_eq!(listed["channels"], json!(["proj-x"]), "{listed}");
    let listed = tool(addr, &codex, "list_channels", json!({}));
    assert_eq!(listed["structuredContent"]["channels"], json!(["proj-x"]), "{listed}");
    let complete = json!({"jsonrpc": "2.0", "id": 1, "method": "completion/complete", "params": {
        "ref": {"type": "ref/prompt", "name": "review_latest_packet"}, "argument": {"name": "channel", "value": ""}}});
    let completed = call(addr, "POST", "/mcp", &codex, Some(complete)).json();
    assert_eq!(completed["result"]["completion"]["values"], json!(["proj-x"]), "{completed}");
    // The index may lag a post by a moment: the admin finds it first, then codex cannot.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while call(addr, "GET", "/api/search?q=plan", &root, None).json()["total"] != 1 {
        assert!(std::time::Instant::now() < deadline, "the admin's search finds eve's post");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let found = call(addr, "GET", "/api/search?q=plan", &codex, None).json();
    assert_eq!(found["total"], 0, "{found}");
    // The web UI shows who is signed in, and the form posts as them.
    let page = call(addr, "GET", "/c/proj-x", &codex, None);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Signed in as <b>codex</b>"), "{}", page.text());
    // A reader is the principal itself: its own cursor moves, no one else's can.
    let own = call(addr, "GET", "/api/messages?target=proj-x&reader=codex", &codex, None);
    assert_eq!(own.status, 200, "{}", own.text());

    // Revoked: refused at once, saying so; the admin's CLI over --url does it.
    let admin_env = [("CLAUDE_CODEX_AUTH_TOKEN", root.as_str())];
    let revoked =
        relay_command(work, &["principals", "revoke", "codex", "--url", &url], &admin_env).output().unwrap();
    assert!(revoked.status.success(), "{}", String::from_utf8_lossy(&revoked.stderr));
    let after = call(addr, "GET", "/api/messages?target=proj-x", &codex, None);
    assert_eq!(after.status, 401);
    assert!(after.text().contains("revoked"), "{}", after.text());
    let metrics = call(addr, "GET", "/metrics", &root, None).text();
    for reason in
        ["no_credential", "wrong_sender", "no_grant", "wrong_reader", "not_admin", "revoked_credential"]
    {
        assert!(
            metrics.contains(&format!("relay_denied_total{{reason=\"{reason}\"}}")),
            "{reason}: {metrics}"
        );
    }
    let log = std::fs::read_to_string(work.join("log/claude_codex.log")).unwrap_or_default();
    for secret in [&root, &codex, &eve] {
        assert!(
            !log.contains(&secret[17..]) && !metrics.contains(&secret[17..]),
            "no secret is written anywhere"
        );
    }

    // Principals survive kill -9, a rebuild, and export then import.
    let listing = principals_listing(&root, addr);
    let mut relay = relay;
    relay.child.kill().unwrap();
    relay.child.wait().unwrap();
    let relay = start_relay(work, &[]);
    assert_eq!(principals_listing(&root, relay.addr), listing);
    assert_eq!(call(relay.addr, "GET", "/api/messages?target=proj-x", &codex, None).status, 401);
    drop(relay);
    let listed = principals(work, &["list"], &[]);
    for (arguments, expect) in
        [(&["rebuild", "--data-dir", "data"][..], true), (&["check", "--data-dir", "data"][..], true)]
    {
        let out = relay_command(work, arguments, &[]).output().unwrap();
        assert_eq!(out.status.success(), expect, "{arguments:?}: {}", String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(principals(work, &["list"], &[]), listed);
    let export =
        relay_command(work, &["export", "--data-dir", "data", "--out", "all.jsonl"], &[]).output().unwrap();
    assert!(export.status.success());
    let exported = std::fs::read_to_string(work.join("all.jsonl")).unwrap();
    assert!(exported.contains("principal_changed") && !exported.contains(&root[17..]), "hashes only");
    let imported = relay_command(work, &["import", "all.jsonl", "--data-dir", "copy"], &[]).output().unwrap();
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    let copy = relay_command(work, &["principals", "list", "--data-dir", "copy"], &[]).output().unwrap();
    assert_eq!(String::from_utf8(copy.stdout).unwrap(), listed);
    assert!(
        listed.contains("codex [agent] read proj-* write proj-*") && listed.contains("(revoked)"),
        "{listed}"
    );
}

fn principals_listing(admin: &str, addr: SocketAddr) -> Value {
    let reply = call(addr, "GET", "/api/principals", admin, None);
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

/// Bad requests to the admin API say what is wrong and change nothing.
#[test]
fn bad_principal_requests_are_refused_saying_why() {
    let work = tempfile::tempdir().unwrap();
    let work = work.path();
    let root = add(work, &["root", "--role", "admin"]);
    let relay = start_relay(work, &[]);
    let addr = relay.addr;
    for (body, status, says) in [
        (json!({"name": "root"}), 400, "exists already"),
        (json!({"name": "x", "role": "god"}), 400, "role"),
        (json!({"name": "x", "read": "proj-["}), 400, "not a channel pattern"),
        (json!({"name": "x", "write": 5}), 400, "write"),
        (json!({"name": ""}), 400, "name"),
    ] {
        let reply = call(addr, "POST", "/api/principals", &root, Some(body.clone()));
        assert_eq!(reply.status, status, "{body}: {}", reply.text());
        assert!(reply.text().contains(says), "{body}: {}", reply.text());
    }
    let last = call(addr, "DELETE", "/api/credentials/root", &root, None);
    assert_eq!(last.status, 400);
    assert!(last.text().contains("last admin credential"), "{}", last.text());
    let unknown = call(addr, "DELETE", "/api/credentials/nobody", &root, None);
    assert_eq!(unknown.status, 400);
    let listed = principals_listing(&root, addr);
    assert_eq!(listed["principals"].as_array().unwrap().len(), 1, "{listed}");
}

/// The real Codex CLI, with its own credential in the variable `bearer_token_env_var` names,
/// against a scripted model: its post as another sender is refused (and Codex hands the
/// refusal to the model), its post as itself is stored under its name.
#[test]
fn real_codex_speaks_with_its_own_credential() {
    let work = tempfile::tempdir().unwrap();
    let codex = add(work.path(), &["codex", "--read", "proj-*", "--write", "proj-*"]);
    let relay = start_relay(work.path(), &[]);
    let session = work.path().join("session");
    std::fs::create_dir(&session).unwrap();
    let mut cmd = std::process::Command::new(client_path("RELAY_MCP_PYTHON"));
    cmd.arg(clients_dir().join("codex_principal.py"))
        .arg(format!("http://{}", relay.addr))
        .arg(client_path("RELAY_CODEX"))
        .arg(&session)
        .env("RELAY_CREDENTIAL", &codex);
    let stdout = assert_client_passed("codex with its credential", &run_client(cmd));
    assert!(stdout.contains("ok the post as codex is stored"), "{stdout}");
}

/// A person signs in to the web UI with their own credential: the cookie holds it, the page
/// says who is signed in, and the form posts under their name.
#[test]
fn a_person_signs_in_to_the_web_ui_with_their_own_credential() {
    let work = tempfile::tempdir().unwrap();
    let ana = add(work.path(), &["ana", "--role", "person", "--read", "proj-*", "--write", "proj-*"]);
    let relay = start_relay(work.path(), &[]);
    let form = |credential: &str| {
        let body = format!("token={credential}&next=%2Fc%2Fproj-x");
        let headers = [("Content-Type", "application/x-www-form-urlencoded")];
        request(relay.addr, "POST", "/ui/login", &headers, Some(body.as_bytes()))
    };
    let signed = form(&ana);
    assert_eq!(signed.status, 303, "{}", signed.text());
    let cookie = signed.header("set-cookie").unwrap();
    assert!(cookie.starts_with(&format!("relay_token={ana};")) && cookie.contains("HttpOnly"), "{cookie}");
    let cookie = format!("relay_token={ana}");
    let page = request(relay.addr, "GET", "/c/proj-x", &[("Cookie", cookie.as_str())], None);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("Signed in as <b>ana</b>"), "{}", page.text());
    let headers = [("Content-Type", "application/json"), ("Cookie", cookie.as_str())];
    let posted = request(
        relay.addr,
        "POST",
        "/ui/messages",
        &headers,
        Some(br#"{"target":"proj-x","text":"from the UI"}"#),
    );
    assert_eq!(posted.status, 201, "{}", posted.text());
    assert_eq!(posted.json()["message"]["sender"], "ana");
    // A credential the relay did not issue: the form again, and no cookie.
    let forged = form(&format!("{}_{}", &ana[..16], "0".repeat(64)));
    assert_eq!(forged.status, 401);
    assert!(forged.header("set-cookie").is_none());
}
