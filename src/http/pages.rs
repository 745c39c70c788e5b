//! The HTML the relay serves: the handlebars templates in `views/` (compiled into the
//! binary, one registry), and every HTML reply with the page security headers. The error and
//! sign-in pages are here so that every route can answer with them.

use handlebars::Handlebars;
use serde::Serialize;
use serde_json::json;
use std::sync::LazyLock;
use warp::http::{header, StatusCode};
use warp::reply::{Reply, Response};

/// Headers of every HTML page: scripts and styles only from `/static/`, no inline script, no
/// framing, no referrer.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const TEMPLATES: [(&str, &str); 5] = [
    ("page", include_str!("../../views/page.hbs")),
    ("message", include_str!("../../views/message.hbs")),
    ("docs", include_str!("../../views/docs.hbs")),
    ("error", include_str!("../../views/error.hbs")),
    ("sign_in", include_str!("../../views/sign_in.hbs")),
];

/// Every template, registered once. Strict: a template naming a field its data lacks is an
/// error (logged, a plain 500), not an empty string on the page.
static REGISTRY: LazyLock<Handlebars<'static>> = LazyLock::new(|| {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    for (name, text) in TEMPLATES {
        registry.register_template_string(name, text).unwrap_or_else(|e| panic!("views/{name}.hbs: {e}"));
    }
    registry
});

/// Renders the template `name` with `data`.
pub fn render(name: &str, data: &impl Serialize) -> Result<String, handlebars::RenderError> {
    REGISTRY.render(name, data)
}

/// An HTML reply with the page security headers.
pub fn html(status: StatusCode, body: String) -> Response {
    let mut response = warp::reply::with_status(warp::reply::html(body), status).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, header::HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("no-referrer"));
    response
}

/// A template's page, or a plain 500 when it cannot be rendered.
fn page(status: StatusCode, name: &str, data: &serde_json::Value) -> Response {
    match render(name, data) {
        Ok(body) => html(status, body),
        Err(_) => html(StatusCode::INTERNAL_SERVER_ERROR, "<!doctype html><title>500</title>500".into()),
    }
}

/// A plain error page saying `text` (the public text of an error, never its internals).
pub fn error_page(status: StatusCode, text: &str) -> Response {
    page(status, "error", &json!({"code": status.as_u16(), "text": text}))
}

/// The sign-in form of a relay with a token: posts to `/ui/login`, then returns to `next`.
pub fn sign_in_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    page(status, "sign_in", &json!({"next": next, "error": error}))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(response: Response) -> String {
        let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn every_template_compiles() {
        assert_eq!(REGISTRY.get_templates().len(), TEMPLATES.len());
    }

    #[tokio::test]
    async fn pages_escape_what_they_are_given() {
        let page = error_page(StatusCode::BAD_REQUEST, "<script>x</script>");
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert!(page.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        let text = body(page).await;
        assert!(text.contains("&lt;script&gt;") && !text.contains("<script>x"), "{text}");

        let page = sign_in_page(StatusCode::UNAUTHORIZED, "/c/\"x\"", Some("<b>no</b>"));
        let text = body(page).await;
        assert!(text.contains("value=\"/c/&quot;x&quot;\""), "{text}");
        assert!(text.contains("&lt;b&gt;no&lt;/b&gt;") && !text.contains("<b>no"), "{text}");
        assert!(!body(sign_in_page(StatusCode::OK, "/", None)).await.contains("role=\"alert\""));
    }
}
