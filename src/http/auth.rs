//! Credentials: the optional shared bearer token (`auth_token`) and the principals' own
//! (`ccr_...`, see [`crate::identity`]). With a token set or any principal added, every route
//! but `/healthz`, `/readyz`, `/static/*` and the sign-in form needs one; each route says which
//! [`Gate`] it is behind, where it is declared:
//! - agents and scripts send `Authorization: Bearer CREDENTIAL`;
//! - the web UI asks for it once (`POST /ui/login`) and keeps it in an HttpOnly,
//!   SameSite=Strict cookie, which counts on the UI's own routes only (not on `/api` or `/mcp`).
//!
//! Passing its gate is where a request becomes a [`Caller`], once: the principal its credential
//! names, the token's holder (an admin), or anonymous on a relay with neither token nor
//! principals. Refusals are counted in `/metrics` by reason.
//!
//! A token in the query string is refused (URLs end up in logs and browser history). Tokens are
//! compared in constant time and never logged.

use super::error::ApiError;
use super::request::{raw_query, read_body, Query};
use crate::identity::{MAX_CREDENTIAL_BYTES, PREFIX};
use crate::message::Source;
use crate::relay::{Caller, Denied, Relay, Who};
use crate::values::Token;
use bytes::Buf;
use futures_util::Stream;
use std::sync::Arc;
use warp::http::{header, HeaderMap, StatusCode};
use warp::path::FullPath;
use warp::reply::{Reply, Response};
use warp::Filter;

/// The cookie holding the token in the browser.
pub const COOKIE: &str = "relay_token";
/// Query parameters that look like credentials.
const QUERY_SECRETS: [&str; 5] = ["token", "access_token", "auth", "auth_token", "bearer"];
/// The sign-in form's body: the token and where to go next.
const LOGIN_BODY_LIMIT: usize = 4096;

/// Who may use a route when the relay has a token or principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Agents and scripts: the bearer header only.
    Api,
    /// Requests the web UI's own pages make: the bearer header or the sign-in cookie.
    Ui,
    /// The web UI's pages: as `Ui`, and a refusal is the sign-in page, returning here.
    Page,
}

/// The credential check, put on each route by the module that declares it, right after its
/// path and method: a route without a gate is open (`/healthz`, `/readyz`, `/static/*`, the
/// sign-in form). Each gate gives the request's [`Caller`], coming through the front door `source`.
#[derive(Clone)]
pub struct Gate {
    token: Option<Arc<Token>>,
    relay: Relay,
}

impl Gate {
    pub fn new(token: Option<Token>, relay: Relay) -> Gate {
        Gate { token: token.map(Arc::new), relay }
    }

    /// For agents and scripts: `Authorization: Bearer TOKEN`.
    pub fn api(&self, source: Source) -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone {
        self.filter(Access::Api, source)
    }

    /// For the requests of the web UI's pages: the bearer token or the sign-in cookie.
    pub fn ui(&self) -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone {
        self.filter(Access::Ui, Source::Ui)
    }

    /// For the web UI's pages: as [`Gate::ui`], and a refusal is the sign-in page.
    pub fn page(&self) -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone {
        self.filter(Access::Page, Source::Ui)
    }

    fn filter(
        &self,
        access: Access,
        source: Source,
    ) -> impl Filter<Extract = (Caller,), Error = warp::Rejection> + Clone {
        let gate = self.clone();
        warp::path::full().and(warp::header::headers_cloned()).and_then(
            move |path: FullPath, headers: HeaderMap| {
                let result =
                    gate.caller(access, source, path.as_str(), &headers).map_err(warp::reject::custom);
                async move { result }
            },
        )
    }

    /// Whether requests need a credential: the relay has a token or a principal.
    fn guarded(&self) -> bool {
        self.token.is_some() || self.relay.has_principals()
    }

    /// Who the request's credential names, or why it names no one.
    fn caller(
        &self,
        access: Access,
        source: Source,
        path: &str,
        headers: &HeaderMap,
    ) -> Result<Caller, ApiError> {
        if !self.guarded() {
            return Ok(Caller::anonymous(source));
        }
        let sign_in = (access == Access::Page).then(|| path.to_owned());
        let presented = presented(access, headers).and_then(|presented| {
            presented.ok_or((
                "no_credential",
                "this relay needs a credential: send Authorization: Bearer CREDENTIAL (your own ccr_... or the relay's auth_token)",
            ))
        });
        let identified = match presented {
            Ok(presented) => self.identify(presented, source),
            Err((reason, message)) => Err(self.refuse(reason, message, source)),
        };
        identified.map_err(|d| ApiError::Unauthorized { reason: d.message, sign_in })
    }

    /// Who `presented` names: a principal's live credential or the relay's token. A refusal
    /// is counted.
    fn identify(&self, presented: &str, source: Source) -> Result<Caller, Denied> {
        if presented.len() > MAX_CREDENTIAL_BYTES {
            let message = "the credential is too long to be one this relay issued";
            return Err(self.refuse("unknown_credential", message, source));
        }
        if presented.starts_with(PREFIX) {
            return self.relay.authenticate(presented, source);
        }
        match &self.token {
            Some(token) if token.matches(presented.as_bytes()) => Ok(Caller::new(Who::Admin, source)),
            _ => Err(self.refuse(
                "unknown_credential",
                "the bearer credential is wrong or malformed (expected Authorization: Bearer CREDENTIAL)",
                source,
            )),
        }
    }

    /// A refusal of a request that names no one, counted.
    fn refuse(&self, reason: &'static str, message: &str, source: Source) -> Denied {
        self.relay.count_denied(Denied::new(reason, message), &Caller::anonymous(source))
    }
}

/// What is wrong with a request's credential: the reason counted, and the message.
type Missing = (&'static str, &'static str);

/// The credential a request carries: the bearer header (one, well formed), else on the UI's
/// routes the sign-in cookie; `Err` says what is wrong with the header.
fn presented(access: Access, headers: &HeaderMap) -> Result<Option<&str>, Missing> {
    let malformed = |message| Err(("unknown_credential", message));
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    if let Some(value) = authorizations.next() {
        if authorizations.next().is_some() {
            return malformed("more than one Authorization header");
        }
        let bearer = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim);
        return match bearer {
            Some(credential) if !credential.is_empty() => Ok(Some(credential)),
            _ => {
                malformed("the Authorization header is malformed (expected Authorization: Bearer CREDENTIAL)")
            }
        };
    }
    Ok(if access == Access::Api { None } else { cookie(headers) })
}

/// Refuses a credential in the query string on every route of a relay that needs credentials
/// (URLs end up in logs and history). Put it in front of every route.
pub fn no_token_in_query(gate: &Gate) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    let gate = gate.clone();
    raw_query()
        .and_then(move |query: String| {
            let result =
                if gate.guarded() { check_query(&query).map_err(warp::reject::custom) } else { Ok(()) };
            async move { result }
        })
        .untuple_one()
}

fn check_query(query: &str) -> Result<(), ApiError> {
    let secret_in_query = query.split('&').any(|pair| {
        let key = pair.split('=').next().unwrap_or("");
        QUERY_SECRETS.iter().any(|s| key.eq_ignore_ascii_case(s))
    });
    if secret_in_query {
        return Err(ApiError::BadRequest(
            "a token in the URL is refused (URLs end up in logs and history); send it in an Authorization: Bearer header"
                .into(),
        ));
    }
    Ok(())
}

/// The value of our cookie, when the request carries it.
fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// `POST /ui/login`: checks the credential from the sign-in form (the relay's token or a
/// principal's own); on success sets the cookie and sends the browser on to `next` (a path on
/// this relay only). `secure`: the relay serves HTTPS, so the cookie is marked `Secure` (never
/// sent in clear text).
pub fn login(
    gate: &Gate,
    secure: bool,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let gate = gate.clone();
    warp::path!("ui" / "login")
        .and(warp::post())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(move |declared: Option<u64>, body| {
            let gate = gate.clone();
            async move { sign_in(&gate, secure, declared, body).await.unwrap_or_else(ApiError::into_response) }
        })
}

async fn sign_in(
    gate: &Gate,
    secure: bool,
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Result<Response, ApiError> {
    let bytes = read_body(declared, body, LOGIN_BODY_LIMIT).await?;
    let text =
        std::str::from_utf8(&bytes).map_err(|_| ApiError::BadRequest("the form is not UTF-8".into()))?;
    let form = Query::parse(text)?;
    let field = |name: &str| form.get(name);
    let next = field("next").filter(|n| n.starts_with('/') && !n.starts_with("//")).unwrap_or("/");
    if !gate.guarded() {
        return Ok(redirect(next, None));
    }
    let presented = field("token").unwrap_or("").trim();
    if gate.identify(presented, Source::Ui).is_err() {
        return Ok(super::pages::sign_in_page(
            StatusCode::UNAUTHORIZED,
            next,
            Some("That is not this relay's token, nor a live credential it issued."),
        ));
    }
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={presented}; HttpOnly; SameSite=Strict; Path=/; Max-Age=31536000{secure}");
    Ok(redirect(next, Some(cookie)))
}

fn redirect(to: &str, cookie: Option<String>) -> Response {
    let mut response = warp::reply::with_status(warp::reply(), StatusCode::SEE_OTHER).into_response();
    let headers = response.headers_mut();
    if let Ok(location) = header::HeaderValue::from_str(to) {
        headers.insert(header::LOCATION, location);
    }
    if let Some(cookie) = cookie.and_then(|c| header::HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_headers as headers;
    use crate::identity::Role;
    use crate::relay::NewPrincipal;

    fn token() -> Token {
        Token::parse("s3cret-token-0123456789").unwrap()
    }

    fn status(gate: &Gate, access: Access, query: &str, pairs: &[(&'static str, &'static str)]) -> u16 {
        let checked =
            check_query(query).and_then(|()| gate.caller(access, Source::Rest, "/c/x", &headers(pairs)));
        match checked {
            Ok(_) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[tokio::test]
    async fn bearer_header_cookie_and_query() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(Some(token()), Relay::for_tests(dir.path()));
        let status =
            |access, query, pairs: &[(&'static str, &'static str)]| status(&gate, access, query, pairs);
        let right = ("authorization", "Bearer s3cret-token-0123456789");
        assert_eq!(status(Access::Api, "", &[right]), 200);
        assert_eq!(status(Access::Api, "", &[]), 401);
        assert_eq!(status(Access::Api, "", &[("authorization", "Bearer s3cret-token-012345678")]), 401);
        assert_eq!(status(Access::Api, "", &[("authorization", "bearer s3cret-token-0123456789")]), 401);
        assert_eq!(status(Access::Api, "", &[("authorization", "s3cret-token-0123456789")]), 401);
        assert_eq!(status(Access::Api, "", &[right, right]), 401);
        assert_eq!(status(Access::Api, "target=x&token=s3cret-token-0123456789", &[right]), 400);
        assert_eq!(status(Access::Page, "ACCESS_TOKEN=abc", &[]), 400);
        let cookie = ("cookie", "theme=dark; relay_token=s3cret-token-0123456789");
        assert_eq!(status(Access::Page, "", &[cookie]), 200);
        assert_eq!(status(Access::Ui, "", &[cookie]), 200);
        assert_eq!(status(Access::Api, "", &[cookie]), 401, "the cookie is for the UI only");
        assert_eq!(status(Access::Page, "", &[("cookie", "relay_token=nope")]), 401);
    }

    /// The gate is where a request becomes its caller: the token's holder on a relay with one,
    /// anonymous on an open relay, through the front door the route names.
    #[tokio::test]
    async fn the_gate_makes_the_caller() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::for_tests(dir.path());
        let gated = Gate::new(Some(token()), relay.clone());
        let caller = warp::test::request()
            .header("authorization", "Bearer s3cret-token-0123456789")
            .filter(&gated.api(Source::Mcp))
            .await
            .unwrap();
        assert_eq!((caller.name(), caller.source), (None, Source::Mcp));
        assert!(matches!(caller.who, Who::Admin));
        let cookie = warp::test::request().header("cookie", "relay_token=s3cret-token-0123456789");
        assert!(matches!(cookie.filter(&gated.page()).await.unwrap().who, Who::Admin));
        assert!(warp::test::request().filter(&gated.api(Source::Rest)).await.is_err());
        let open = Gate::new(None, relay);
        let caller = warp::test::request().filter(&open.api(Source::Rest)).await.unwrap();
        assert!(matches!(caller.who, Who::Anonymous));
    }

    /// A principal's credential names it; once one exists an open relay needs credentials, and
    /// hostile ones get 401 saying which, counted by reason.
    #[tokio::test]
    async fn principals_credentials_name_them_and_hostile_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let relay = Relay::for_tests(dir.path());
        let gate = Gate::new(None, relay.clone());
        let admin = Caller::anonymous(Source::Cli);
        let new = NewPrincipal { name: "codex".into(), role: Role::Agent, read: None, write: None };
        let credential = relay.add_principal(new, &admin).await.unwrap();
        let bearer = format!("Bearer {credential}");
        let caller =
            warp::test::request().header("authorization", &bearer).filter(&gate.api(Source::Rest)).await;
        assert_eq!(caller.unwrap().name(), Some("codex"));
        let long = format!("Bearer ccr_{}", "a".repeat(400));
        let last = if credential.ends_with('0') { '1' } else { '0' };
        let forged = format!("Bearer {}{last}", &credential[..credential.len() - 1]);
        for (value, want) in [
            (None, "needs a credential"),
            (Some("Bearer "), "malformed"),
            (Some("Basic Y29kZXg6eA=="), "malformed"),
            (Some(long.as_str()), "too long"),
            (Some(forged.as_str()), "not one this relay issued"),
            (Some("Bearer ccr_\u{e9}"), "malformed"),
        ] {
            let mut request = warp::test::request();
            if let Some(value) = value {
                request = request.header("authorization", value);
            }
            let refused = request.filter(&gate.api(Source::Rest)).await.unwrap_err();
            let e = refused.find::<ApiError>().unwrap();
            assert_eq!(e.status(), StatusCode::UNAUTHORIZED, "{value:?}");
            assert!(e.message().contains(want), "{value:?}: {}", e.message());
        }
        relay.revoke("codex", &admin).await.unwrap();
        let refused =
            warp::test::request().header("authorization", &bearer).filter(&gate.api(Source::Rest)).await;
        assert!(refused.unwrap_err().find::<ApiError>().unwrap().message().contains("was revoked"));
        let metrics = relay.metrics_text().await.unwrap();
        for line in [
            r#"relay_denied_total{reason="no_credential"} 1"#,
            r#"relay_denied_total{reason="revoked_credential"} 1"#,
        ] {
            assert!(metrics.contains(line), "{line} in {metrics}");
        }
        assert!(!metrics.contains(&credential[17..]), "no secret in the metrics");
    }

    #[tokio::test]
    async fn ui_refusals_ask_to_sign_in() {
        let dir = tempfile::tempdir().unwrap();
        let gate = Gate::new(Some(token()), Relay::for_tests(dir.path()));
        let e = gate.caller(Access::Page, Source::Ui, "/c/x", &HeaderMap::new()).unwrap_err();
        assert!(matches!(e, ApiError::Unauthorized { sign_in: Some(p), .. } if p == "/c/x"));
        for access in [Access::Api, Access::Ui] {
            let e = gate.caller(access, Source::Ui, "/c/x/older", &HeaderMap::new()).unwrap_err();
            assert!(matches!(e, ApiError::Unauthorized { sign_in: None, .. }), "{access:?}");
        }
    }
}
