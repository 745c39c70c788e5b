//! Principal management over REST, for admins (the `principals` subcommand's `--url` calls it):
//! - `GET /api/principals`: every principal, with its credentials' ids (never secrets);
//! - `POST /api/principals` `{"name", "role", "read", "write"}`: adds one; 201 with its first
//!   credential, shown this once;
//! - `POST /api/principals/NAME/credentials`: another credential for NAME; 201 with it;
//! - `PUT /api/principals/NAME/grants` `{"read", "write"}`: replaces the patterns given;
//! - `DELETE /api/credentials/NAME-OR-KEY-ID`: revokes that credential, or every live one of NAME.
//!
//! `read` and `write` are lists of channel patterns (globs), as a JSON array or one
//! comma-separated string.

use super::auth::Gate;
use super::error::ApiError;
use super::fields::{optional_str, required_str, Object};
use super::request::{bad, decode_segment, get_or_head, json_object, read_body};
use crate::identity::{Grants, Role};
use crate::message::Source;
use crate::relay::{Caller, NewPrincipal, Relay};
use bytes::Buf;
use futures_util::Stream;
use serde_json::{json, Value};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

/// A principal's fields are small: names and a few patterns.
const BODY_LIMIT: usize = 16 * 1024;

pub fn routes(
    relay: Relay,
    gate: &Gate,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let with_relay = warp::any().map(move || relay.clone());
    let body = || warp::header::optional::<u64>("content-length").and(warp::body::stream()).then(json_body);
    let list = warp::path!("api" / "principals")
        .and(get_or_head())
        .and(gate.api(Source::Rest))
        .and(with_relay.clone())
        .then(|caller: Caller, relay: Relay| async move {
            let listed = relay.principals(&caller).map_err(ApiError::from);
            reply(listed.map(|all| (StatusCode::OK, json!({"principals": all}))))
        });
    let add = warp::path!("api" / "principals")
        .and(warp::post())
        .and(gate.api(Source::Rest))
        .and(with_relay.clone())
        .and(body())
        .then(|caller: Caller, relay: Relay, fields: Result<Object, ApiError>| async move {
            let added = async {
                let fields = fields?;
                let name = required_str(&fields, "name").map_err(bad)?.to_owned();
                let role = optional_str(&fields, "role").map_err(bad)?.map(Role::parse).transpose();
                let role = role.map_err(|e| bad(e.to_string()))?.unwrap_or(Role::Agent);
                let (read, write) = (patterns(&fields, "read")?, patterns(&fields, "write")?);
                let credential = relay
                    .add_principal(NewPrincipal { name: name.clone(), role, read, write }, &caller)
                    .await?;
                Ok((StatusCode::CREATED, json!({"ok": true, "name": name, "credential": credential})))
            };
            reply(added.await)
        });
    let issue = warp::path!("api" / "principals" / String / "credentials")
        .and(warp::post())
        .and(gate.api(Source::Rest))
        .and(with_relay.clone())
        .then(|name: String, caller: Caller, relay: Relay| async move {
            let issued = async {
                let name = decode_segment(&name)?;
                let credential = relay.issue_credential(&name, &caller).await?;
                Ok((StatusCode::CREATED, json!({"ok": true, "name": name, "credential": credential})))
            };
            reply(issued.await)
        });
    let grant = warp::path!("api" / "principals" / String / "grants")
        .and(warp::put())
        .and(gate.api(Source::Rest))
        .and(with_relay.clone())
        .and(body())
        .then(|name: String, caller: Caller, relay: Relay, fields: Result<Object, ApiError>| async move {
            let granted = async {
                let (name, fields) = (decode_segment(&name)?, fields?);
                relay.grant(&name, patterns(&fields, "read")?, patterns(&fields, "write")?, &caller).await?;
                Ok((StatusCode::OK, json!({"ok": true, "name": name})))
            };
            reply(granted.await)
        });
    let revoke = warp::path!("api" / "credentials" / String)
        .and(warp::delete())
        .and(gate.api(Source::Rest))
        .and(with_relay)
        .then(|which: String, caller: Caller, relay: Relay| async move {
            let revoked = async {
                let revoked = relay.revoke(&decode_segment(&which)?, &caller).await?;
                Ok((StatusCode::OK, json!({"ok": true, "revoked": revoked})))
            };
            reply(revoked.await)
        });
    list.or(add).unify().or(issue).unify().or(grant).unify().or(revoke).unify()
}

fn reply(result: Result<(StatusCode, Value), ApiError>) -> Response {
    match result {
        Ok((status, body)) => warp::reply::with_status(warp::reply::json(&body), status).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn json_body(
    declared: Option<u64>,
    body: impl Stream<Item = Result<impl Buf, warp::Error>>,
) -> Result<Object, ApiError> {
    let bytes = read_body(declared, body, BODY_LIMIT).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Object::new());
    }
    json_object(&bytes, "")
}

/// Channel patterns: a JSON array of strings or one comma-separated string; `None` when absent.
fn patterns(fields: &Object, field: &'static str) -> Result<Option<Vec<String>>, ApiError> {
    let list = match fields.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => Grants::parse_list(field, s).map_err(|e| bad(e.to_string()))?,
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| v.as_str().map(str::to_owned).ok_or_else(|| bad(format!("{field}: must hold strings"))))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad(format!("{field}: must be a list of channel patterns"))),
    };
    Ok(Some(list))
}
