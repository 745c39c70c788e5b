//! The host guard: one filter in front of every route.
//!
//! - DNS-rebinding protection: the `Host` header must name a loopback host (127.0.0.1,
//!   localhost, [::1], any port) or match `allowed_hosts`; otherwise 421.
//! - Cross-site writes and streams: a request that can change state (any method but GET, HEAD,
//!   OPTIONS) or asks for a stream (`Accept: text/event-stream`, as MCP clients do) is refused
//!   with 403 when its `Origin` is foreign or `null`, or when the browser marks it
//!   `Sec-Fetch-Site: cross-site`. Same-origin pages (the web UI) and local tools pass.

use super::error::ApiError;
use crate::values::{split_authority, HostPattern};
use std::sync::Arc;
use warp::http::{header, HeaderMap, Method};
use warp::Filter;

const LOOPBACK: [&str; 3] = ["127.0.0.1", "localhost", "::1"];

/// Who may talk to the relay; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct HostPolicy {
    allowed: Arc<Vec<HostPattern>>,
}

impl HostPolicy {
    pub fn new(allowed: Vec<HostPattern>) -> Self {
        HostPolicy { allowed: Arc::new(allowed) }
    }

    /// Every allowed host (IPv6 in brackets) with its port, `None` for any.
    fn authorities(&self) -> impl Iterator<Item = (String, Option<u16>)> + '_ {
        let bracket = |h: &str| if h.contains(':') { format!("[{h}]") } else { h.to_owned() };
        let loopback = LOOPBACK.iter().map(move |h| (bracket(h), None));
        loopback.chain(self.allowed.iter().map(move |p| (bracket(p.host()), p.port())))
    }

    /// The allowed hosts as `host` (any port) or `host:port`: for a library that keeps its own
    /// list (rmcp), so it applies the same policy.
    pub fn host_list(&self) -> Vec<String> {
        self.authorities().map(|(host, port)| port.map_or(host.clone(), |p| format!("{host}:{p}"))).collect()
    }

    /// The origins allowed to write, `http` and `https` on every allowed host, as
    /// `scheme://host:port` or `scheme://host:*`.
    pub fn origin_list(&self) -> Vec<String> {
        self.authorities()
            .flat_map(|(host, port)| {
                let port = port.map_or("*".to_owned(), |p| p.to_string());
                ["http", "https"].map(|scheme| format!("{scheme}://{host}:{port}"))
            })
            .collect()
    }

    fn allows(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.to_ascii_lowercase();
        LOOPBACK.contains(&host.as_str()) || self.allowed.iter().any(|p| p.matches(&host, port))
    }

    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), ApiError> {
        let host = self.check_host(headers)?;
        let streams = headers
            .get_all(header::ACCEPT)
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.contains("text/event-stream")));
        if !streams && matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        if headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site")) {
            return Err(ApiError::Forbidden("cross-site request refused".into()));
        }
        let mut origins = headers.get_all(header::ORIGIN).iter();
        let Some(origin) = origins.next() else { return Ok(()) };
        if origins.next().is_some() {
            return Err(ApiError::Forbidden("more than one Origin header".into()));
        }
        let origin = origin.to_str().unwrap_or("");
        if self.origin_allowed(origin, &host) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "origin {origin:?} may not write to this relay; only the relay's own pages, loopback origins and allowed_hosts may"
            )))
        }
    }

    /// Checks the Host header and returns it.
    fn check_host(&self, headers: &HeaderMap) -> Result<String, ApiError> {
        let mut hosts = headers.get_all(header::HOST).iter();
        let host = hosts.next().ok_or_else(|| ApiError::Misdirected("missing Host header".into()))?;
        if hosts.next().is_some() {
            return Err(ApiError::Misdirected("more than one Host header".into()));
        }
        let host =
            host.to_str().map_err(|_| ApiError::Misdirected("Host header is not plain text".into()))?;
        match split_authority(host) {
            Some((name, port)) if self.allows(name, port) => Ok(host.to_owned()),
            _ => Err(ApiError::Misdirected(format!(
                "host {host:?} is not allowed; use 127.0.0.1 or localhost, or add it to allowed_hosts"
            ))),
        }
    }

    /// `null` and anything but `http(s)://authority` are refused.
    fn origin_allowed(&self, origin: &str, request_host: &str) -> bool {
        let Some((scheme, authority)) = origin.split_once("://") else { return false };
        let default_port = match scheme.to_ascii_lowercase().as_str() {
            "http" => 80,
            "https" => 443,
            _ => return false,
        };
        if authority.eq_ignore_ascii_case(request_host) {
            return true;
        }
        match split_authority(authority) {
            Some((host, port)) => self.allows(host, Some(port.unwrap_or(default_port))),
            None => false,
        }
    }
}

/// The guard as a warp filter: put it in front of every route.
pub fn filter(policy: HostPolicy) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::method()
        .and(warp::header::headers_cloned())
        .and_then(move |method: Method, headers: HeaderMap| {
            let result = policy.check(&method, &headers).map_err(warp::reject::custom);
            async move { result }
        })
        .untuple_one()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as headers;

    fn policy(allowed: &[&str]) -> HostPolicy {
        HostPolicy::new(allowed.iter().map(|a| HostPattern::parse(a).unwrap()).collect())
    }

    fn status(p: &HostPolicy, method: Method, pairs: &[(&'static str, &'static str)]) -> u16 {
        match p.check(&method, &headers(pairs)) {
            Ok(()) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn loopback_hosts_pass_with_any_port() {
        let p = policy(&[]);
        for h in ["127.0.0.1", "127.0.0.1:8010", "localhost:1", "LOCALHOST", "[::1]:8010", "[::1]"] {
            assert_eq!(status(&p, Method::GET, &[("host", h)]), 200, "{h}");
        }
    }

    #[test]
    fn foreign_hosts_get_421() {
        let p = policy(&[]);
        for h in ["evil.com", "127.0.0.1.evil.com", "127.0.0.2:8010", "localhost:abc", "[::1", ""] {
            assert_eq!(status(&p, Method::GET, &[("host", h)]), 421, "{h}");
        }
    }

    #[test]
    fn missing_or_doubled_host_gets_421() {
        let p = policy(&[]);
        assert_eq!(status(&p, Method::GET, &[]), 421);
        assert_eq!(status(&p, Method::GET, &[("host", "localhost"), ("host", "evil.com")]), 421);
    }

    #[test]
    fn bare_allowed_host_matches_any_port() {
        let p = policy(&["192.168.2.3"]);
        assert_eq!(status(&p, Method::GET, &[("host", "192.168.2.3:8010")]), 200);
        assert_eq!(status(&p, Method::GET, &[("host", "192.168.2.3")]), 200);
    }

    #[test]
    fn allowed_host_with_port_matches_only_that_port() {
        let p = policy(&["relay.lan:8010"]);
        assert_eq!(status(&p, Method::GET, &[("host", "relay.lan:8010")]), 200);
        assert_eq!(status(&p, Method::GET, &[("host", "relay.lan:9000")]), 421);
    }

    #[test]
    fn allowed_ipv6_patterns() {
        let p = policy(&["[fe80::1]:*", "fe80::2"]);
        assert_eq!(status(&p, Method::GET, &[("host", "[fe80::1]:8010")]), 200);
        assert_eq!(status(&p, Method::GET, &[("host", "[fe80::2]:1")]), 200);
    }

    #[test]
    fn lists_for_rmcp_hold_the_same_hosts() {
        let p = policy(&["relay.lan", "10.0.0.5:9999", "fe80::1"]);
        assert_eq!(
            p.host_list(),
            ["127.0.0.1", "localhost", "[::1]", "relay.lan", "10.0.0.5:9999", "[fe80::1]"]
        );
        let origins = p.origin_list();
        for o in [
            "http://127.0.0.1:*",
            "https://[::1]:*",
            "http://relay.lan:*",
            "http://10.0.0.5:9999",
            "https://[fe80::1]:*",
        ] {
            assert!(origins.contains(&o.to_owned()), "{o} in {origins:?}");
        }
    }

    #[test]
    fn post_from_foreign_or_null_origin_gets_403() {
        let p = policy(&[]);
        let host = ("host", "127.0.0.1:8010");
        assert_eq!(status(&p, Method::POST, &[host, ("origin", "http://evil.com")]), 403);
        assert_eq!(status(&p, Method::POST, &[host, ("origin", "null")]), 403);
        assert_eq!(status(&p, Method::POST, &[host, ("origin", "file://")]), 403);
        assert_eq!(status(&p, Method::DELETE, &[host, ("origin", "https://evil.com:443")]), 403);
    }

    #[test]
    fn post_from_loopback_or_own_origin_passes() {
        let p = policy(&["relay.lan"]);
        let host = ("host", "relay.lan:8010");
        assert_eq!(status(&p, Method::POST, &[host, ("origin", "http://relay.lan:8010")]), 200);
        assert_eq!(status(&p, Method::POST, &[host, ("origin", "http://localhost:3000")]), 200);
        assert_eq!(status(&p, Method::POST, &[host, ("origin", "http://[::1]:1")]), 200);
        assert_eq!(status(&p, Method::POST, &[host]), 200);
    }

    #[test]
    fn cross_site_fetch_metadata_gets_403_on_writes_only() {
        let p = policy(&[]);
        let pairs = [("host", "localhost"), ("sec-fetch-site", "cross-site")];
        assert_eq!(status(&p, Method::POST, &pairs), 403);
        assert_eq!(status(&p, Method::GET, &pairs), 200);
        assert_eq!(
            status(&p, Method::POST, &[("host", "localhost"), ("sec-fetch-site", "same-origin")]),
            200
        );
    }

    #[test]
    fn stream_requests_check_origin_even_on_get() {
        let p = policy(&[]);
        let pairs = [("host", "localhost"), ("accept", "text/event-stream"), ("origin", "http://evil.com")];
        assert_eq!(status(&p, Method::GET, &pairs), 403);
    }

    #[test]
    fn reads_ignore_origin() {
        assert_eq!(status(&policy(&[]), Method::GET, &[("host", "localhost"), ("origin", "null")]), 200);
    }
}
