//! The optional bearer token (`auth_token`). With one set, every route but `/healthz`, `/readyz`,
//! `/static/*` and the sign-in form needs it; each route says which [`Gate`] it is behind,
//! where it is declared:
//! - agents and scripts send `Authorization: Bearer TOKEN`;
//! - the web UI asks for it once (`POST /ui/login`) and keeps it in an HttpOnly,
//!   SameSite=Strict cookie, which counts on the UI's own routes only (not on `/api` or `/mcp`).
//!
//! Passing its gate is where a request becomes a [`Caller`], once: anonymous on a relay without
//! a token, the token's holder (an admin) on one with it.
//!
//! A token in the query string is refused (URLs end up in logs and browser history). Tokens are
//! compared in constant time and never logged.

use super::error::ApiError;
use super::request::{raw_query, read_body, Query};
use crate::message::Source;
use crate::relay::{Caller, Who};
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

/// Who may use a route when the relay has a token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Agents and scripts: the bearer token only.
    Api,
    /// Requests the web UI's own pages make: the bearer token or the sign-in cookie.
    Ui,
    /// The web UI's pages: as `Ui`, and a refusal is the sign-in page, returning here.
    Page,
}

/// The token check, put on each route by the module that declares it, right after its path
/// and method: a route without a gate is open (`/healthz`, `/readyz`, `/static/*`, the sign-in form).
/// Each gate gives the request's [`Caller`], coming through the front door `source`.
#[derive(Clone, Default)]
pub struct Gate {
    token: Option<Arc<Token>>,
}

impl Gate {
    pub fn new(token: Option<Token>) -> Gate {
        Gate { token: token.map(Arc::new) }
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
        let token = self.token.clone();
        warp::path::full().and(warp::header::headers_cloned()).and_then(
            move |path: FullPath, headers: HeaderMap| {
                let result = match &token {
                    None => Ok(Caller::new(Who::Anonymous, source)),
                    Some(token) => check(token, access, path.as_str(), &headers)
                        .map(|()| Caller::new(Who::Admin, source))
                        .map_err(warp::reject::custom),
                };
                async move { result }
            },
        )
    }
}

/// On a relay with a token, refuses a token in the query string on every route (URLs end up
/// in logs and history). Put it in front of every route.
pub fn no_token_in_query(token: Option<Token>) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    let guarded = token.is_some();
    raw_query()
        .and_then(move |query: String| {
            let result = if guarded { check_query(&query).map_err(warp::reject::custom) } else { Ok(()) };
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

fn check(token: &Token, access: Access, path: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let sign_in = (access == Access::Page).then(|| path.to_owned());
    let unauthorized =
        |reason: &str| ApiError::Unauthorized { reason: reason.into(), sign_in: sign_in.clone() };
    let mut authorizations = headers.get_all(header::AUTHORIZATION).iter();
    if let Some(value) = authorizations.next() {
        if authorizations.next().is_some() {
            return Err(unauthorized("more than one Authorization header"));
        }
        let presented = value.as_bytes().strip_prefix(b"Bearer ").unwrap_or(b"");
        return if token.matches(presented) {
            Ok(())
        } else {
            Err(unauthorized("the bearer token is wrong or malformed (expected Authorization: Bearer TOKEN)"))
        };
    }
    if access != Access::Api && cookie(headers).is_some_and(|c| token.matches(c.as_bytes())) {
        return Ok(());
    }
    Err(unauthorized("this relay needs a token: send Authorization: Bearer TOKEN (the relay's auth_token)"))
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

/// `POST /ui/login`: checks the token from the sign-in form; on success sets the cookie and
/// sends the browser on to `next` (a path on this relay only).
/// `secure`: the relay serves HTTPS, so the cookie is marked `Secure` (never sent in clear text).
pub fn login(
    token: Option<Token>,
    secure: bool,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let token = token.map(Arc::new);
    warp::path!("ui" / "login")
        .and(warp::post())
        .and(warp::header::optional::<u64>("content-length"))
        .and(warp::body::stream())
        .then(move |declared: Option<u64>, body| {
            let token = token.clone();
            async move {
                sign_in(token.as_deref(), secure, declared, body)
                    .await
                    .unwrap_or_else(ApiError::into_response)
            }
        })
}

async fn sign_in(
    token: Option<&Token>,
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
    let Some(token) = token else {
        return Ok(redirect(next, None));
    };
    let presented = field("token").unwrap_or("").trim();
    if !token.matches(presented.as_bytes()) {
        return Ok(super::pages::sign_in_page(
            StatusCode::UNAUTHORIZED,
            next,
            Some("That token is not this relay's."),
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

    fn token() -> Token {
        Token::parse("s3cret-token-0123456789").unwrap()
    }

    fn status(access: Access, query: &str, pairs: &[(&'static str, &'static str)]) -> u16 {
        match check_query(query).and_then(|()| check(&token(), access, "/c/x", &headers(pairs))) {
            Ok(()) => 200,
            Err(e) => e.status().as_u16(),
        }
    }

    #[test]
    fn bearer_header_cookie_and_query() {
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
        let gated = Gate::new(Some(token()));
        let caller = warp::test::request()
            .header("authorization", "Bearer s3cret-token-0123456789")
            .filter(&gated.api(Source::Mcp))
            .await
            .unwrap();
        assert_eq!(caller, Caller::new(Who::Admin, Source::Mcp));
        let cookie = warp::test::request().header("cookie", "relay_token=s3cret-token-0123456789");
        assert_eq!(cookie.filter(&gated.page()).await.unwrap(), Caller::new(Who::Admin, Source::Ui));
        assert!(warp::test::request().filter(&gated.api(Source::Rest)).await.is_err());
        let open = Gate::new(None);
        let caller = warp::test::request().filter(&open.api(Source::Rest)).await.unwrap();
        assert_eq!(caller, Caller::anonymous(Source::Rest));
    }

    #[test]
    fn ui_refusals_ask_to_sign_in() {
        let e = check(&token(), Access::Page, "/c/x", &HeaderMap::new()).unwrap_err();
        assert!(matches!(e, ApiError::Unauthorized { sign_in: Some(p), .. } if p == "/c/x"));
        for access in [Access::Api, Access::Ui] {
            let e = check(&token(), access, "/c/x/older", &HeaderMap::new()).unwrap_err();
            assert!(matches!(e, ApiError::Unauthorized { sign_in: None, .. }), "{access:?}");
        }
    }
}
