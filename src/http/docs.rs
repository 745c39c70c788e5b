//! `/openapi.json` (the API described as OpenAPI 3.1) and `/docs` (the same description as a
//! page, rendered from it with handlebars, so the two cannot disagree).

use super::auth::Gate;
use super::error::ApiError;
use super::pages;
use super::request::get_or_head;
use crate::message::Source;
use crate::relay::{
    Caller, DEFAULT_TARGET, MAX_WAIT, REST_DEFAULT_LIMIT, REST_MAX_LIMIT, SEARCH_DEFAULT_LIMIT,
};
use serde_json::{json, Value};
use std::sync::Arc;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::Filter;

fn param(name: &str, required: bool, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": required, "schema": schema, "description": description})
}

fn path_param(name: &str, description: &str) -> Value {
    json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}, "description": description})
}

fn html_reply(description: &str) -> Value {
    json!({"description": description, "content": {"text/html": {}}})
}

fn error_reply(description: &str) -> Value {
    json!({"description": description, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}})
}

/// The routes beside the JSON API: metrics, MCP and the web UI.
fn other_paths() -> Value {
    json!({
        "/metrics": {"get": {
            "summary": "Metrics",
            "description": "The Prometheus text format: posts, fetches and waits by front door, refused requests by status, commit latency and group size, open waits, streams and connections, each projection's lag behind the log, the log's last id, and disk use. Each metric is described in docs/api.md.",
            "responses": {"200": {"description": "Prometheus text format 0.0.4", "content": {"text/plain": {}}}, "503": error_reply("The store is unavailable.")}
        }},
        "/mcp": {
            "post": {
                "summary": "MCP (Streamable HTTP)",
                "description": "One JSON-RPC message per request (no batches), answered as JSON. Stateless: no session id. Accept must name application/json and text/event-stream. Protocol versions up to 2026-07-28 (server/discover, _meta, Mcp-Method). /mcp/ answers the same, without a redirect. The tools, prompts and resources are listed on /docs.",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "required": ["jsonrpc", "method"]}}}},
                "responses": {
                    "200": {"description": "The JSON-RPC response", "content": {"application/json": {}}},
                    "202": {"description": "A notification or response was accepted"},
                    "400": {"description": "Not JSON (-32700), or not a valid JSON-RPC message (-32600)", "content": {"application/json": {}}},
                    "406": {"description": "Accept does not name both application/json and text/event-stream"},
                    "413": error_reply("The body is over the size limit.")
                }
            }
        },
        "/": {"get": {"summary": "The web UI: channel picker", "responses": {"200": html_reply("Every channel with its count, and how to connect an agent")}}},
        "/c/{channel}": {"get": {
            "summary": "The web UI: one channel",
            "parameters": [path_param("channel", "The channel name, percent-encoded")],
            "responses": {"200": html_reply("The newest 100 messages, rendered, and the post form"), "400": html_reply("A bad channel name")}
        }},
        "/search": {"get": {
            "summary": "The web UI: search results",
            "parameters": [param("q", true, json!({"type": "string"}), "The query, as GET /api/search takes it."), param("target", false, json!({"type": "string"}), "Only this channel.")],
            "responses": {"200": html_reply("The newest 50 matches, each linking to its place in its channel"), "400": html_reply("The query is empty or malformed: the page says why")}
        }},
        "/c/{channel}/t/{id}": {"get": {
            "summary": "The web UI: one thread",
            "parameters": [path_param("channel", "The channel name, percent-encoded"), path_param("id", "The thread's first message")],
            "responses": {"200": html_reply("The message and its replies, rendered and live, and the post form answering it"), "400": html_reply("A bad channel name, or no such message in the channel")}
        }},
        "/c/{channel}/older": {"get": {
            "summary": "The web UI: an older page",
            "parameters": [path_param("channel", "The channel name, percent-encoded"), param("before", true, json!({"type": "integer", "minimum": 0}), "The 100 messages before this id.")],
            "responses": {"200": {"description": "{\"html\", \"more\", \"first_id\"}", "content": {"application/json": {}}}, "400": error_reply("A parameter is malformed.")}
        }},
        "/c/{channel}/events": {"get": {
            "summary": "The web UI: live updates",
            "description": "Server-Sent Events, one per new message (id: the message id; data: {\"id\", \"html\", \"reply_to\"}). Starts after Last-Event-ID, else after `after`, else at the newest message. A message redacted meanwhile comes as an event named redacted, {\"id\", \"html\"}: its tombstone. Carries the channel list too, as /channels/events does.",
            "parameters": [path_param("channel", "The channel name, percent-encoded"), param("after", false, json!({"type": "integer", "minimum": 0}), "Send messages after this id."), param("reader", false, json!({"type": "string"}), "The page's reader: the channel list carries its unread counts, and the reader is listed as listening here while the stream is open.")],
            "responses": {"200": {"description": "An event stream", "content": {"text/event-stream": {}}}, "400": error_reply("A parameter is malformed.")}
        }},
        "/channels/events": {"get": {
            "summary": "The web UI: the channel list, live",
            "description": "Server-Sent Events named channels, each {\"channels\": [{\"name\", \"href\", \"count\", \"current\", \"listening\", \"readers\", \"delivery\", \"unread\"}]}: the list now, then each time a count grows, a channel appears, a listener comes or goes, a cursor moves or a reader is woken or reads (at most 4 a second). The channel pages' streams carry the same events.",
            "parameters": [param("reader", false, json!({"type": "string"}), "Adds each channel's unread count for this reader.")],
            "responses": {"200": {"description": "An event stream", "content": {"text/event-stream": {}}}}
        }},
        "/ui/messages": {"post": {
            "summary": "The web UI's post form",
            "description": "The same body and answers as POST /api/messages; stored with source ui.",
            "requestBody": {"required": true, "content": {"application/json": {}}},
            "responses": {"201": {"description": "Stored"}, "400": error_reply("Invalid; nothing was stored."), "403": error_reply("A foreign Origin; nothing was stored.")}
        }},
        "/ui/login": {"post": {
            "summary": "Sign in to the web UI",
            "description": "A form with token and next; on success sets the session cookie and redirects to next (a path on this relay).",
            "requestBody": {"required": true, "content": {"application/x-www-form-urlencoded": {}}},
            "responses": {"303": {"description": "Signed in: on to next"}, "401": html_reply("The token is wrong: the form again")}
        }},
        "/static/{file}": {"get": {
            "summary": "The UI's stylesheet and scripts",
            "parameters": [path_param("file", "relay.css, relay.js or theme.js")],
            "responses": {"200": {"description": "The file"}, "404": error_reply("No such file.")}
        }}
    })
}

/// The delivery states' routes.
fn delivery_paths() -> Value {
    json!({
        "/api/messages/{id}/delivery": {"get": {
            "summary": "Where a message stands for each named reader",
            "description": "{\"id\", \"target\", \"stored\", \"readers\": {NAME: {\"woken\", \"read\", \"acknowledged\"}}}, each a time (seconds since the epoch) or null when it did not happen. woken: a bridge or watcher put a wake about it into the reader's session and the session accepted it; read: the reader fetched it (this instance's live state, since it started); acknowledged: the reader's cursor passed it. Readers: those woken on the channel or with a cursor there, and those this instance saw read it.",
            "parameters": [path_param("id", "The message's id"), param("target", false, json!({"type": "string"}), "The message's channel, when known: spares a read of the log.")],
            "responses": {"200": {"description": "The states", "content": {"application/json": {}}}, "403": error_reply("The caller may not read the channel named by target."), "404": error_reply("No message has this id (in target), or the caller may not read its channel.")}
        }},
        "/api/wakes": {"post": {
            "summary": "Record a wake the reader's session accepted",
            "description": "What `watch --reader` sends after Codex's app-server accepted a turn (or --exec succeeded): {\"target\", \"reader\", \"ids\": [message ids of the channel, 1 to 1000], \"via\": how, up to 200 characters}. A principal records its own wakes only. Each message keeps its first wake.",
            "requestBody": {"required": true, "content": {"application/json": {}}},
            "responses": {"201": {"description": "In the log: {\"ok\": true, \"recorded\": [the ids not woken about before]}"}, "400": error_reply("Invalid (an id not on the channel, no ids, a long via); nothing was recorded."), "403": error_reply("Another reader's wake, or a channel the caller may not read.")}
        }}
    })
}

/// Redaction's routes.
fn redaction_paths() -> Value {
    let delete = |summary: &str| {
        json!({"delete": {
            "summary": summary,
            "description": "Takes the message back for everyone: from then on every front door, search and export serve it as a tombstone (id, target, sender, ts, source and reply_to kept; text \"redacted by NAME: REASON\"; redacted: {by, ts, reason}). Optional body {\"reason\": one line, up to 500 characters, \"by\": the name it goes under for a caller that is not a principal (default anonymous, or admin for the shared token)}. With principals: the sender, a person who may post to the channel, or an admin. The log records the redaction as an event.",
            "parameters": [path_param("id", "The message's id")],
            "requestBody": {"required": false, "content": {"application/json": {}}},
            "responses": {"200": {"description": "{\"ok\": true, \"message\": the tombstone}", "content": {"application/json": {}}}, "400": error_reply("A bad reason or body; nothing was changed."), "403": error_reply("The caller may not redact it; nothing was changed."), "404": error_reply("No message has this id, or the caller may not read its channel."), "409": error_reply("The message was redacted already.")}
        }})
    };
    json!({
        "/api/messages/{id}": delete("Redact a message"),
        "/ui/messages/{id}": delete("The web UI's Redact action (as DELETE /api/messages/{id})"),
        "/api/channels/{channel}": {"delete": {
            "summary": "Redact every message of a channel",
            "description": "As DELETE /api/messages/{id} for each message of the channel not redacted yet, with the same optional body. An admin's, once principals exist (anyone's on an open relay).",
            "parameters": [path_param("channel", "The channel name, percent-encoded")],
            "requestBody": {"required": false, "content": {"application/json": {}}},
            "responses": {"200": {"description": "{\"ok\": true, \"target\", \"redacted\": how many}", "content": {"application/json": {}}}, "400": error_reply("A bad reason or body; nothing was changed."), "403": error_reply("Not an admin; nothing was changed."), "404": error_reply("The channel holds no message, or the caller may not read it.")}
        }}
    })
}

/// The OpenAPI description of every route the relay serves.
pub fn spec(max_text_bytes: usize) -> Value {
    let message_list = json!({
        "type": "object",
        "required": ["target", "messages", "latest_id"],
        "properties": {
            "target": {"type": "string"},
            "messages": {"type": "array", "items": {"$ref": "#/components/schemas/Message"}},
            "latest_id": {"type": "integer", "description": "Pass as since_id next time: the last id returned, or the since_id asked for (0 without one) when nothing was returned."},
            "timed_out": {"type": "boolean", "description": "Only with wait: true when the wait ended with nothing new."},
            "stale": {"type": "boolean", "description": "Only in nats mode, true while the relay does not follow its stream (its servers unreachable): the page comes from its local views and may be behind."},
            "expired_before": {"type": "integer", "description": "Only when the read started before the channel's kept history (retention): its messages with lower ids expired, and the page starts at the oldest one kept."}
        }
    });
    let mut spec = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "claude-codex-relay",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "A durable local message relay for coding agents. Every route first checks the Host header (loopback or allowed_hosts, else 421) and, for writes, the Origin (foreign or null gets 403). When the relay has an auth_token, every route but /healthz, /readyz and /static/* needs Authorization: Bearer TOKEN (else 401); a token in the query string gets 400."
        },
        "servers": [{"url": "/", "description": "This relay: the address this description was fetched from"}],
        "paths": {
            "/api/messages": {
                "get": {
                    "summary": "Read a channel",
                    "description": "Without since_id: the last `limit` messages of the channel. With since_id: the oldest `limit` messages whose id is greater. Messages come oldest first.",
                    "parameters": [
                        param("target", false, json!({"type": "string", "default": DEFAULT_TARGET}), "The channel (the Python relay's default when absent)."),
                        param("since_id", false, json!({"type": "integer", "minimum": 0}), "Only messages with a greater id."),
                        param("limit", false, json!({"type": "integer", "default": REST_DEFAULT_LIMIT}), &format!("Page size, clamped to 1..{REST_MAX_LIMIT}.")),
                        param("wait", false, json!({"type": "number", "minimum": 0, "maximum": MAX_WAIT.as_secs()}), "With since_id: when nothing is newer, wait up to this many seconds for a message (long poll); the reply then has timed_out."),
                        param("exclude_sender", false, json!({"type": "string"}), "With wait: messages from this sender do not end the wait (they are not returned)."),
                        param("reader", false, json!({"type": "string"}), "Your name: the relay keeps your place. Alone: the messages after your cursor. With since_id: your cursor first moves up to since_id (an acknowledgement)."),
                        param("start", false, json!({"type": "string", "enum": ["end", "beginning"]}), "With reader: where a reader new to the channel starts (default beginning)."),
                        param("thread", false, json!({"type": "integer", "minimum": 0}), "Only this message of the channel and the messages answering it (and their answers)."),
                        param("peek", false, json!({"type": "boolean"}), "With reader: a read on the reader's behalf (what watch makes), not counted as the reader's own read in its delivery states."),
                    ],
                    "responses": {
                        "200": {"description": "A page of messages", "content": {"application/json": {"schema": message_list}}},
                        "400": error_reply("A parameter is missing or malformed; the error names it."),
                        "503": error_reply("The store is unavailable.")
                    }
                },
                "post": {
                    "summary": "Post a message",
                    "description": format!("Stores the message durably before answering. target and sender: 1 to 128 characters, no control characters, trimmed. text: not blank, at most {max_text_bytes} bytes."),
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["target", "sender", "text"],
                        "properties": {"target": {"type": "string"}, "sender": {"type": "string"}, "text": {"type": "string"},
                            "reply_to": {"type": "integer", "description": "The id of the message of the same channel this answers; an id that names none is refused (400)."}}
                    }}}},
                    "responses": {
                        "201": {"description": "Stored", "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["ok", "posted", "message"],
                            "properties": {"ok": {"const": true}, "posted": {"type": "integer"}, "message": {"$ref": "#/components/schemas/Message"}}
                        }}}},
                        "400": error_reply("The body or a field is invalid; nothing was stored."),
                        "403": error_reply("A foreign Origin or a cross-site request; nothing was stored."),
                        "413": error_reply("The body is over the size limit; nothing was stored."),
                        "503": error_reply("Not stored (the store failed or the relay is stopping); safe to retry.")
                    }
                }
            },
            "/api/search": {
                "get": {
                    "summary": "Search every message",
                    "description": "Full text over the whole history (an index kept from the log by its own thread: the newest posts may show a moment later). q: words (all must match), \"exact phrases\", sender:NAME, channel:NAME, id:[100 TO 200], ts:[1795000000 TO 1796000000], OR, -word.",
                    "parameters": [
                        param("q", true, json!({"type": "string"}), "The query."),
                        param("target", false, json!({"type": "string"}), "Only this channel."),
                        param("limit", false, json!({"type": "integer", "default": SEARCH_DEFAULT_LIMIT}), &format!("Results, clamped to 1..{REST_MAX_LIMIT}.")),
                        param("order", false, json!({"type": "string", "enum": ["newest", "relevance"], "default": "newest"}), "Newest first, or best match first."),
                    ],
                    "responses": {
                        "200": {"description": "{\"query\", \"total\", \"hits\": [{\"id\", \"target\", \"sender\", \"ts\", \"snippet\", \"highlights\"}]}: snippet is plain text; highlights are the matches' [start, end) in it, in characters", "content": {"application/json": {}}},
                        "400": error_reply("The query is empty or malformed, or a parameter is; the error says what."),
                        "503": error_reply("The index cannot be read.")
                    }
                }
            },
            "/api/export": {
                "get": {
                    "summary": "Export the log",
                    "description": "The event log as JSON Lines, one event per line in id order, up to the last id when the request arrived. The same format as `claude-codex-relay export`, and what `import` reads.",
                    "parameters": [
                        param("target", false, json!({"type": "string"}), "Only this channel's events."),
                        param("since_id", false, json!({"type": "integer", "minimum": 0}), "Only events with a greater id."),
                        param("until_id", false, json!({"type": "integer", "minimum": 0}), "Only events up to and including this id."),
                    ],
                    "responses": {
                        "200": {"description": "JSON Lines", "content": {"application/x-ndjson": {}}},
                        "400": error_reply("A parameter is malformed.")
                    }
                }
            },
            "/api/channels": {
                "get": {
                    "summary": "List channels",
                    "description": "Configured channels, every channel that holds a message and every one someone listens on, sorted by name.",
                    "parameters": [param("reader", false, json!({"type": "string"}), "Adds each channel's unread count for this reader (counted up to 1000).")],
                    "responses": {"200": {"description": "The channels", "content": {"application/json": {"schema": {
                        "type": "object",
                        "required": ["channels", "details"],
                        "properties": {
                            "channels": {"type": "array", "items": {"type": "string"}},
                            "details": {"type": "array", "items": {
                                "type": "object",
                                "properties": {"name": {"type": "string"}, "count": {"type": "integer"}, "last_id": {"type": "integer"},
                                    "listening": {"type": "array", "items": {"type": "string"}, "description": "Who waits on the channel now."},
                                    "readers": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "Each reader's cursor."},
                                    "delivery": {"type": "object", "description": "Each named reader's newest message woken, read and acknowledged: {NAME: {\"woken\": {\"id\", \"ts\"}, \"read\": …, \"acknowledged\": …}}, a state left out until it happened."},
                                    "unread": {"type": "integer", "description": "With reader: messages after its cursor."}}
                            }}
                        }
                    }}}}}
                }
            },
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "The text ok", "content": {"text/plain": {"schema": {"const": "ok"}}}}}}},
            "/readyz": {"get": {
                "summary": "Readiness: whether posts are taken now",
                "description": "In nats mode, 503 while the stream has no quorum (or no server answers), saying what is missing; reads are served from the local views meanwhile. In sled mode, 503 after a store failure.",
                "responses": {"200": {"description": "The text ready", "content": {"text/plain": {"schema": {"const": "ready"}}}}, "503": error_reply("What is missing.")}
            }},
            "/openapi.json": {"get": {"summary": "This description", "responses": {"200": {"description": "OpenAPI 3.1 JSON"}}}},
            "/docs": {"get": {"summary": "This description as a page", "responses": {"200": {"description": "HTML"}}}}
        },
        "components": {"schemas": {
            "Message": {
                "type": "object",
                "required": ["id", "ts", "target", "sender", "text"],
                "properties": {
                    "id": {"type": "integer", "description": "Increasing, never reused."},
                    "ts": {"type": "number", "description": "Seconds since the Unix epoch."},
                    "target": {"type": "string"},
                    "sender": {"type": "string"},
                    "text": {"type": "string"},
                    "source": {"type": "string", "enum": ["rest", "mcp", "ui", "cli"], "description": "The front door it came in through."},
                    "reply_to": {"type": "integer", "description": "On a reply: the id of the message it answers."},
                    "redacted": {"type": "object", "required": ["by", "ts", "reason"], "properties": {"by": {"type": "string"}, "ts": {"type": "number"}, "reason": {"type": "string"}}, "description": "On a message taken back: who, when and why. Its text is then only \"redacted by NAME: REASON\"."}
                }
            },
            "Error": {
                "type": "object",
                "required": ["ok", "error"],
                "properties": {"ok": {"const": false}, "error": {"type": "string"}}
            }
        }}
    });
    for more in [other_paths(), principal_paths(), delivery_paths(), redaction_paths()] {
        if let (Some(paths), Value::Object(more)) = (spec["paths"].as_object_mut(), more) {
            paths.extend(more);
        }
    }
    spec
}

/// The docs page's data: the spec's routes as a list the template can walk, and the MCP
/// server's tools, prompts and resources as it lists them.
fn page_data(spec: &Value) -> Value {
    let mut routes = Vec::new();
    for (path, methods) in spec["paths"].as_object().into_iter().flatten() {
        for (method, op) in methods.as_object().into_iter().flatten() {
            let responses: Vec<Value> = op["responses"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(status, r)| json!({"status": status, "description": r["description"]}))
                .collect();
            routes.push(json!({
                "method": method.to_uppercase(),
                "path": path,
                "summary": op["summary"],
                "description": op["description"],
                "parameters": op["parameters"],
                "responses": responses,
            }));
        }
    }
    json!({
        "title": spec["info"]["title"],
        "version": spec["info"]["version"],
        "description": spec["info"]["description"],
        "routes": routes,
        "mcp": super::mcp::catalog(),
    })
}

pub fn routes(
    max_text_bytes: usize,
    gate: &Gate,
) -> impl Filter<Extract = (Response,), Error = warp::Rejection> + Clone {
    let spec = Arc::new(spec(max_text_bytes));
    let docs_page = Arc::new(pages::render("docs", &page_data(&spec)).map_err(|e| e.to_string()));

    let openapi = {
        let spec = spec.clone();
        warp::path!("openapi.json")
            .and(get_or_head())
            .and(gate.api(Source::Rest))
            .map(move |_: Caller| warp::reply::json(&*spec).into_response())
    };
    let docs =
        warp::path!("docs").and(get_or_head()).and(gate.page()).map(move |_: Caller| match &*docs_page {
            Ok(body) => pages::html(StatusCode::OK, body.clone()),
            Err(_) => ApiError::Internal.into_response(),
        });
    openapi.or(docs).unify()
}

/// The admin API's routes (`http/admin.rs`): principals and their credentials.
fn principal_paths() -> Value {
    json!({
    "/api/principals": {
        "get": {
            "summary": "List principals (admins)",
            "description": "Every principal: name, role, read and write patterns, and its credentials' key ids (never secrets).",
            "responses": {
                "200": {"description": "`{\"principals\": [{\"name\", \"role\", \"read\", \"write\", \"credentials\": [{\"key_id\", \"issued\", \"revoked\"}]}]}`", "content": {"application/json": {}}},
                "403": error_reply("The credential is not an admin's.")
            }
        },
        "post": {
            "summary": "Add a principal (admins)",
            "description": "Body `{\"name\", \"role\": \"agent\"|\"person\"|\"admin\", \"read\", \"write\"}`; `read` and `write` are channel patterns (globs), a list or one comma-separated string, `*` when left out. The reply holds its first credential, shown this once.",
            "responses": {
                "201": {"description": "`{\"ok\": true, \"name\", \"credential\"}`", "content": {"application/json": {}}},
                "400": error_reply("A field is invalid, or the name is taken; nothing was stored."),
                "403": error_reply("The credential is not an admin's.")
            }
        }
    },
    "/api/principals/{name}/credentials": {
        "post": {
            "summary": "Issue another credential (admins)",
            "description": "A new credential for the principal `name`, beside those it has; the reply holds it, shown this once.",
            "parameters": [path_param("name", "The principal's name.")],
            "responses": {
                "201": {"description": "`{\"ok\": true, \"name\", \"credential\"}`, shown this once", "content": {"application/json": {}}},
                "400": error_reply("No such principal.")
            }
        }
    },
    "/api/principals/{name}/grants": {
        "put": {
            "summary": "Change what a principal may read and post to (admins)",
            "description": "Body `{\"read\", \"write\"}`: the lists given replace the principal's.",
            "parameters": [path_param("name", "The principal's name.")],
            "responses": {
                "200": {"description": "`{\"ok\": true, \"name\"}`", "content": {"application/json": {}}},
                "400": error_reply("No such principal, or a pattern that does not parse.")
            }
        }
    },
    "/api/credentials/{which}": {
        "delete": {
            "summary": "Revoke credentials (admins)",
            "description": "`which` is a key id (revokes that credential) or a principal's name (revokes every live one of it). Every instance refuses them from then on. The last admin credential cannot be revoked.",
            "parameters": [path_param("which", "A credential's key id, or a principal's name.")],
            "responses": {
                "200": {"description": "`{\"ok\": true, \"revoked\": [key ids]}`", "content": {"application/json": {}}},
                "400": error_reply("No such principal or credential, or the last admin credential.")
            }
        }
    }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_template_renders_every_route() {
        let page = pages::render("docs", &page_data(&spec(1024))).unwrap();
        for route in ["/api/messages", "/api/channels", "/healthz", "/openapi.json", "/docs", "/mcp"] {
            assert!(page.contains(route), "{route} missing from /docs");
        }
        assert!(page.contains("since_id"));
        for mcp in ["wait_for_messages", "exclude_sender", "review_latest_packet", "relay://channel/{name}"] {
            assert!(page.contains(mcp), "{mcp} missing from the MCP section of /docs");
        }
    }
}
