//! HTTPS (`tls_cert`, `tls_key`): the relay serves TLS with a certificate made in the test;
//! curl and both MCP SDKs reach it through it; plain HTTP on its port gets no answer; a file
//! that is not a certificate stops the start naming the setting and the file.

use crate::helpers::{relay_command, send_raw, start_relay};
use crate::mcp::{assert_client_passed, client_path, clients_dir, run_client};
use crate::principals::add;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A self-signed certificate for 127.0.0.1 and localhost, and its key, in `dir`.
fn certificate(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args([
            "-days",
            "2",
            "-subj",
            "/CN=relay-test",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ])
        // Not a CA: rustls (the command line's client) refuses a CA certificate as a server's.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl runs (Debian: apt-get install openssl)");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    (cert, key)
}

/// curl with the test certificate as its only trust anchor; prints the body, then the status
/// and the HTTP version on the last line.
fn curl(cert: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "20", "--cacert"])
        .arg(cert)
        .args(["--write-out", "\n%{http_code} %{http_version}"])
        .args(args)
        .output()
        .expect("curl runs");
    assert!(out.status.success(), "curl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, status) = text.rsplit_once('\n').unwrap();
    (body.to_owned(), status.to_owned())
}

#[test]
fn https_serves_rest_and_mcp_to_curl_and_both_sdks() {
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(work.path());
    let env =
        [("CLAUDE_CODEX_TLS_CERT", cert.to_str().unwrap()), ("CLAUDE_CODEX_TLS_KEY", key.to_str().unwrap())];
    let relay = start_relay(work.path(), &env);
    let base = format!("https://127.0.0.1:{}", relay.addr.port());

    let body = r#"{"target":"proj-x","sender":"claude","text":"over TLS"}"#;
    let (posted, status) = curl(
        &cert,
        &[
            "--http1.1",
            "-H",
            "Content-Type: application/json",
            "--data",
            body,
            &format!("{base}/api/messages"),
        ],
    );
    assert_eq!(status, "201 1.1", "{posted}");
    // A client that asks for HTTP/2 is given HTTP/1.1 (the host guard reads `Host`).
    let (page, status) = curl(&cert, &["--http2", &format!("{base}/api/messages?target=proj-x")]);
    assert_eq!(status, "200 1.1", "{page}");
    assert!(page.contains("over TLS"), "{page}");
    // localhost is in the certificate too, and passes the host guard.
    let (_, status) = curl(&cert, &[&format!("https://localhost:{}/healthz", relay.addr.port())]);
    assert_eq!(status, "200 1.1");

    // Plain HTTP on the TLS port: no HTTP answer (the handshake fails), never a served request.
    let plain =
        send_raw(relay.addr, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    assert!(plain.is_err(), "plain HTTP must not be served: {plain:?}");

    // The command line's client trusts the relay's certificate through CLAUDE_CODEX_TLS_CA, and
    // no other: a relay whose certificate it does not trust is refused, saying why.
    let cli = |args: &[&str], ca: &Path| {
        let env = [("CLAUDE_CODEX_TLS_CA", ca.to_str().unwrap())];
        relay_command(work.path(), args, &env).output().unwrap()
    };
    let post = ["post", "--url", &base, "--target", "proj-x", "--sender", "ci", "from the CLI"];
    let out = cli(&post, &cert);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("posted #"));
    // The index follows the log within moments.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let out = cli(&["search", "--url", &base, "CLI"], &cert);
        // The matched word is starred.
        if String::from_utf8_lossy(&out.stdout).contains("from the *CLI*") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "search over https found nothing: {out:?}");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let stranger = work.path().join("stranger");
    std::fs::create_dir(&stranger).unwrap();
    let (other, _) = certificate(&stranger);
    let out = cli(&post, &other);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("certificate"), "{stderr}");
    let out = cli(&post, &work.path().join("missing.pem"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains("cannot trust") && stderr.contains("missing.pem"),
        "{stderr}"
    );

    let mut python = Command::new(client_path("RELAY_MCP_PYTHON"));
    python.arg(clients_dir().join("python_client.py")).arg(format!("{base}/mcp")).arg("modern");
    python.env("SSL_CERT_FILE", &cert);
    let stdout = assert_client_passed("python over https", &run_client(python));
    assert!(stdout.contains("ok negotiated 2026-07-28"), "{stdout}");

    let node_dir = client_path("RELAY_MCP_NODE_DIR");
    let script = node_dir.join("ts_client.mjs");
    std::fs::copy(clients_dir().join("ts_client.mjs"), &script).unwrap();
    let mut node = Command::new("node");
    node.arg(&script).arg(format!("{base}/mcp/")).env("NODE_EXTRA_CA_CERTS", &cert);
    assert_client_passed("typescript over https", &run_client(node));
}

#[test]
fn a_file_that_is_not_a_certificate_stops_the_start_naming_it() {
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(work.path());
    let junk = work.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate").unwrap();
    for (cert, key, says) in [(&junk, &key, "tls_cert"), (&cert, &junk, "tls_key"), (&key, &cert, "tls_cert")]
    {
        let env = [
            ("CLAUDE_CODEX_TLS_CERT", cert.to_str().unwrap()),
            ("CLAUDE_CODEX_TLS_KEY", key.to_str().unwrap()),
        ];
        let out = relay_command(work.path(), &["--port", "0", "--data-dir", "data"], &env).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{stderr}");
        let path = if says == "tls_cert" { cert } else { key };
        assert!(stderr.contains(says) && stderr.contains(path.to_str().unwrap()), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// The Python and TypeScript SDKs connect over HTTPS with principals' own credentials: each
/// posts as its own name, and a post naming another sender is refused.
#[test]
fn both_sdks_speak_as_their_principals_over_https() {
    let work = tempfile::tempdir().unwrap();
    let (cert, key) = certificate(work.path());
    let (python_agent, node_agent) = (add(work.path(), &["py-agent"]), add(work.path(), &["ts-agent"]));
    let env =
        [("CLAUDE_CODEX_TLS_CERT", cert.to_str().unwrap()), ("CLAUDE_CODEX_TLS_KEY", key.to_str().unwrap())];
    let relay = start_relay(work.path(), &env);
    let mcp = format!("https://127.0.0.1:{}/mcp", relay.addr.port());

    let mut python = Command::new(client_path("RELAY_MCP_PYTHON"));
    python.arg(clients_dir().join("python_client.py")).args([&mcp, "principal", "py-agent"]);
    python.env("SSL_CERT_FILE", &cert).env("RELAY_BEARER", &python_agent);
    let stdout = assert_client_passed("python as a principal", &run_client(python));
    assert!(stdout.contains("ok another sender is refused"), "{stdout}");

    let node_dir = client_path("RELAY_MCP_NODE_DIR");
    // A copy of its own: another test copies ts_client.mjs there at the same time.
    let script = node_dir.join("ts_client_principal.mjs");
    std::fs::copy(clients_dir().join("ts_client.mjs"), &script).unwrap();
    let mut node = Command::new("node");
    node.arg(&script)
        .args([&mcp, "ts-agent"])
        .env("NODE_EXTRA_CA_CERTS", &cert)
        .env("RELAY_BEARER", &node_agent);
    let stdout = assert_client_passed("typescript as a principal", &run_client(node));
    assert!(stdout.contains("ok posts as ts-agent"), "{stdout}");
}
