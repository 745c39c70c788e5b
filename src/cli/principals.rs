//! `principals`: add, list, issue, revoke and grant, against a running relay (`--url`, with an
//! admin credential, through the REST API) or on a stopped data directory (its store opened as
//! the relay opens it, by the caller). Either way the same service calls make the same events.

use super::client::Client;
use crate::identity::{Grants, Role};
use crate::message::Source;
use crate::relay::{Caller, NewPrincipal, PrincipalInfo, Relay, Who};
use anyhow::Context;
use clap::Subcommand;
use serde_json::json;

#[derive(Debug, Clone, Subcommand)]
pub enum Action {
    /// Add a principal and issue its first credential, printed alone on the last line (shown
    /// this once: only its hash is kept)
    Add {
        /// Its name: what it posts and reads as
        name: String,
        #[arg(long, default_value = "agent", value_parser = ["agent", "person", "admin"])]
        role: String,
        /// Channels it may read: comma-separated patterns such as `proj-*,ops` [default: *]
        #[arg(long, value_name = "GLOBS")]
        read: Option<String>,
        /// Channels it may post to, as --read [default: *]
        #[arg(long, value_name = "GLOBS")]
        write: Option<String>,
    },
    /// List every principal with its role, grants and credentials' ids
    List,
    /// Issue another credential to a principal (printed alone on the last line)
    Issue { name: String },
    /// Revoke a credential by its key id, or every live one of a principal by its name
    Revoke {
        #[arg(value_name = "NAME-OR-ID")]
        which: String,
    },
    /// Replace what a principal may read or post to (the lists not given stay as they are)
    Grant {
        name: String,
        #[arg(long, value_name = "GLOBS")]
        read: Option<String>,
        #[arg(long, value_name = "GLOBS")]
        write: Option<String>,
    },
}

fn globs(field: &'static str, raw: &Option<String>) -> anyhow::Result<Option<Vec<String>>> {
    raw.as_deref().map(|r| Grants::parse_list(field, r)).transpose().map_err(|e| anyhow::anyhow!("--{e}"))
}

/// Through the REST API of a running relay; the lines to print.
pub fn remote(action: &Action, client: &Client) -> anyhow::Result<Vec<String>> {
    let segment =
        |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
    Ok(match action {
        Action::Add { name, role, read, write } => {
            let body = json!({"name": name, "role": role, "read": globs("read", read)?, "write": globs("write", write)?});
            let reply = client.call("POST", "/api/principals", Some(&body))?;
            issued(name, role, reply["credential"].as_str().unwrap_or_default())
        }
        Action::List => {
            let reply = client.call("GET", "/api/principals", None)?;
            let all: Vec<PrincipalInfo> = serde_json::from_value(reply["principals"].clone())
                .context("the relay's list of principals is not what this version reads")?;
            listed(&all)
        }
        Action::Issue { name } => {
            let reply =
                client.call("POST", &format!("/api/principals/{}/credentials", segment(name)), None)?;
            issued(name, "", reply["credential"].as_str().unwrap_or_default())
        }
        Action::Revoke { which } => {
            let reply = client.call("DELETE", &format!("/api/credentials/{}", segment(which)), None)?;
            let revoked: Vec<String> = serde_json::from_value(reply["revoked"].clone()).unwrap_or_default();
            vec![format!("revoked {}", revoked.join(", "))]
        }
        Action::Grant { name, read, write } => {
            let body = json!({"read": globs("read", read)?, "write": globs("write", write)?});
            client.call("PUT", &format!("/api/principals/{}/grants", segment(name)), Some(&body))?;
            vec![format!("changed what {name} may read and post to")]
        }
    })
}

/// On a stopped data directory's store, opened by the caller into `relay`, as an admin at the
/// command line; the lines to print.
pub async fn local(action: &Action, relay: &Relay) -> anyhow::Result<Vec<String>> {
    let admin = Caller::new(Who::Admin, Source::Cli);
    Ok(match action {
        Action::Add { name, role, read, write } => {
            let new = NewPrincipal {
                name: name.clone(),
                role: Role::parse(role)?,
                read: globs("read", read)?,
                write: globs("write", write)?,
            };
            issued(name, role, &relay.add_principal(new, &admin).await?)
        }
        Action::List => listed(&relay.principals(&admin)?),
        Action::Issue { name } => issued(name, "", &relay.issue_credential(name, &admin).await?),
        Action::Revoke { which } => {
            vec![format!("revoked {}", relay.revoke(which, &admin).await?.join(", "))]
        }
        Action::Grant { name, read, write } => {
            relay.grant(name, globs("read", read)?, globs("write", write)?, &admin).await?;
            vec![format!("changed what {name} may read and post to")]
        }
    })
}

/// What `add` and `issue` print: a line for people, then the credential alone.
fn issued(name: &str, role: &str, credential: &str) -> Vec<String> {
    let what = if role.is_empty() { String::new() } else { format!(" as {role}") };
    vec![
        format!("credential for {name}{what} (shown this once; keep it in a file only its user can read):"),
        credential.to_owned(),
    ]
}

fn listed(all: &[PrincipalInfo]) -> Vec<String> {
    if all.is_empty() {
        return vec!["no principals: the relay is open, or guarded by its auth_token alone".to_owned()];
    }
    all.iter()
        .map(|p| {
            let keys: Vec<String> = p
                .credentials
                .iter()
                .map(|c| format!("{}{}", c.key_id, if c.revoked.is_some() { " (revoked)" } else { "" }))
                .collect();
            format!(
                "{} [{}] read {} write {} credentials {}",
                p.name,
                p.role.as_str(),
                p.read.join(","),
                p.write.join(","),
                if keys.is_empty() { "none".to_owned() } else { keys.join(" ") }
            )
        })
        .collect()
}
