//! `/openapi.json` cannot drift from the routes: every route the code declares is described,
//! and every described route answers with exactly the methods it lists.

use crate::helpers::{request, spawn_app};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];

/// The status of `METHOD path`, read from the first line only (an event stream never ends).
fn status(addr: SocketAddr, method: &str, path: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{method} {path}: {line:?}"))
}

/// A path template with its parameters blanked: `/c/{channel}/older` -> `/c/{}/older`.
fn shape(template: &str) -> String {
    template.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect::<Vec<_>>().join("/")
}

/// Every route the HTTP code declares with `warp::path!` (a `String` segment is a parameter)
/// or `warp::path::end()`. `/mcp` is matched on the full path instead and is probed below.
fn declared_routes() -> BTreeSet<String> {
    let mut routes = BTreeSet::new();
    let mut dirs = vec![std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/http")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(dir).unwrap().map(Result::unwrap) {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
                continue;
            }
            let source = std::fs::read_to_string(&path).unwrap();
            if source.contains("warp::path::end()") {
                routes.insert("/".to_owned());
            }
            for (_, rest) in source.match_indices("warp::path!(").map(|(i, _)| source.split_at(i + 12)) {
                let args = &rest[..rest.find(')').unwrap()];
                let segments: Vec<&str> = args
                    .split('/')
                    .map(|s| s.trim())
                    .map(|s| if s.starts_with('"') { s.trim_matches('"') } else { "{}" })
                    .collect();
                routes.insert(format!("/{}", segments.join("/")));
            }
        }
    }
    routes
}

#[test]
fn every_declared_route_is_described() {
    let app = spawn_app();
    let spec = app.get("/openapi.json").json();
    assert_eq!(spec["servers"][0]["url"], "/", "{}", spec["servers"]);
    let described: BTreeSet<String> = spec["paths"].as_object().unwrap().keys().map(|p| shape(p)).collect();
    let declared = declared_routes();
    assert!(declared.len() >= 13, "the scan found the routes: {declared:?}");
    let missing: Vec<_> = declared.difference(&described).collect();
    assert!(missing.is_empty(), "routes missing from /openapi.json: {missing:?}");
}

#[test]
fn every_described_route_answers_exactly_its_methods() {
    let app = spawn_app();
    app.post("proj-x", "claude", "message 1, for the routes that name an id");
    let spec = app.get("/openapi.json").json();
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.contains_key("/mcp"));
    for (template, operations) in paths {
        let path =
            template.replace("{channel}", "proj-x").replace("{file}", "relay.css").replace("{id}", "1");
        for method in METHODS {
            let got = status(app.addr, method, &path);
            if operations.get(method.to_lowercase()).is_some() {
                assert!(got != 404 && got != 405, "{method} {template} is described but answers {got}");
            } else {
                assert_eq!(got, 405, "{method} {template} is not described but answers {got}");
            }
        }
    }
}

#[test]
fn openapi_describes_routes_that_answer() {
    let app = spawn_app();
    app.post("t", "s", "message 1, for the routes that name an id");
    app.post("u", "s", "message 2, for the routes that name a channel");
    let spec = app.get("/openapi.json").json();
    assert_eq!(spec["openapi"], "3.1.0");
    let paths = spec["paths"].as_object().unwrap();
    assert!(paths.len() >= 5);
    // The JSON API's routes, with a valid request each (the UI's, /mcp's and the admin API's
    // need more than this builds, and adding a principal would close the relay; the test below
    // probes their methods).
    let admin = |p: &str| p.starts_with("/api/principals") || p.starts_with("/api/credentials");
    let api = paths.iter().filter(|(p, _)| {
        (p.starts_with("/api/") && !admin(p)) || ["/healthz", "/openapi.json", "/docs"].contains(&p.as_str())
    });
    for (path, methods) in api {
        for (method, op) in methods.as_object().unwrap() {
            let method = method.to_uppercase();
            let query = match op["parameters"].as_array() {
                Some(params) => {
                    let q: Vec<String> = params
                        .iter()
                        .filter(|p| p["required"] == true)
                        .map(|p| format!("{}=x", p["name"].as_str().unwrap()))
                        .collect();
                    format!("?{}", q.join("&"))
                }
                None => String::new(),
            };
            let body: &[u8] = match path.as_str() {
                "/api/wakes" => br#"{"target":"t","reader":"r","ids":[1],"via":"a test"}"#,
                _ => br#"{"target":"t","sender":"s","text":"x"}"#,
            };
            let body = (method == "POST").then_some(body);
            let path = path.replace("{id}", "1").replace("{channel}", "u");
            let reply = request(app.addr, &method, &format!("{path}{query}"), &[], body);
            let documented: Vec<&String> = op["responses"].as_object().unwrap().keys().collect();
            assert!(
                documented.contains(&&reply.status.to_string()),
                "{method} {path} answered {}, documented {documented:?}",
                reply.status
            );
            assert!(reply.status < 400, "{method} {path}{query} answered {}", reply.status);
        }
    }
    // Every route the relay serves is in the spec.
    for route in ["/api/messages", "/api/channels", "/api/export", "/healthz", "/openapi.json", "/docs"] {
        assert!(paths.contains_key(route), "{route} missing from the spec");
    }
    let params: Vec<&str> = spec["paths"]["/api/messages"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        ["target", "since_id", "limit", "wait", "exclude_sender", "reader", "start", "thread", "peek"]
    );
}
