//! Principals: who a credential names (every request, through the gate), and their management
//! (admins only): add, list, issue a credential, revoke, change grants. Each change is an event
//! in the log, so it reaches every instance and survives what the log survives.

use super::caller::{Caller, Denied, Who};
use super::service::{Relay, RelayError};
use crate::event::Change;
use crate::identity::{self, Grants, Role};
use crate::message::Source;
use crate::store::UnknownCredential;
use crate::values::{Invalid, Name};
use serde::{Deserialize, Serialize};
use slog::info;

/// A principal as an admin lists it: never a secret, nor a hash.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PrincipalInfo {
    pub name: String,
    pub role: Role,
    pub read: Vec<String>,
    pub write: Vec<String>,
    pub credentials: Vec<CredentialInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CredentialInfo {
    pub key_id: String,
    pub issued: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<f64>,
}

/// What an admin asks a new principal to be.
#[derive(Debug, Clone)]
pub struct NewPrincipal {
    pub name: String,
    pub role: Role,
    /// Channel patterns; `None`: every channel (`*`).
    pub read: Option<Vec<String>>,
    pub write: Option<Vec<String>>,
}

/// Grants when none are asked for: every channel.
fn every_channel() -> Vec<String> {
    vec!["*".to_owned()]
}

impl Relay {
    /// Whether any principal exists: from then on every request needs a credential.
    pub fn has_principals(&self) -> bool {
        self.inner.store.has_principals()
    }

    /// The caller a principal's credential makes, or why it makes none (counted and logged).
    pub fn authenticate(&self, presented: &str, source: Source) -> Result<Caller, Denied> {
        match self.inner.store.principals().authenticate(presented) {
            Ok(principal) => Ok(Caller::new(Who::Principal(principal), source)),
            Err(unknown) => {
                let (reason, what) = match unknown {
                    UnknownCredential::Unknown => ("unknown_credential", "is not one this relay issued"),
                    UnknownCredential::Revoked => ("revoked_credential", "was revoked"),
                };
                let key_id = identity::key_id(presented).unwrap_or("-");
                let denied = Denied::new(
                    reason,
                    format!("the credential {what} (key {key_id}); ask an admin for a new one"),
                );
                Err(self.count_denied(denied, &Caller::anonymous(source)))
            }
        }
    }

    /// Counts a refusal in `/metrics` and logs it with the principal's name (never a secret).
    pub fn count_denied(&self, denied: Denied, caller: &Caller) -> Denied {
        self.inner.metrics.denied(denied.reason);
        info!(self.inner.usage_log, "denied"; "reason" => denied.reason,
            "principal" => caller.name().unwrap_or("-"), "source" => caller.source.as_str());
        denied
    }

    /// `decision` as a service result: a refusal is counted, logged and becomes the error.
    pub(super) fn allowed<T>(&self, caller: &Caller, decision: Result<T, Denied>) -> Result<T, RelayError> {
        decision.map_err(|denied| RelayError::Denied(self.count_denied(denied, caller)))
    }

    /// Whether the caller may manage the relay (export, import, principals).
    pub fn may_administer(&self, caller: &Caller) -> Result<(), RelayError> {
        self.allowed(caller, caller.admin())
    }

    /// Every principal, by name.
    pub fn principals(&self, caller: &Caller) -> Result<Vec<PrincipalInfo>, RelayError> {
        self.allowed(caller, caller.admin())?;
        let directory = self.inner.store.principals();
        Ok(directory
            .all()
            .iter()
            .map(|(name, entry)| PrincipalInfo {
                name: name.clone(),
                role: entry.role,
                read: entry.read.clone(),
                write: entry.write.clone(),
                credentials: entry
                    .keys
                    .iter()
                    .map(|k| CredentialInfo {
                        key_id: k.key_id.clone(),
                        issued: k.issued,
                        revoked: k.revoked,
                    })
                    .collect(),
            })
            .collect())
    }

    /// Adds a principal with a first credential; returns the credential (shown this once).
    pub async fn add_principal(&self, new: NewPrincipal, caller: &Caller) -> Result<String, RelayError> {
        self.allowed(caller, caller.admin())?;
        let name = Name::parse("name", &new.name)?;
        let read = checked("read", new.read.unwrap_or_else(every_channel))?;
        let write = checked("write", new.write.unwrap_or_else(every_channel))?;
        self.change(&name, Change::Added { role: new.role, read, write }, caller).await?;
        self.issue_credential(name.as_str(), caller).await
    }

    /// Issues another credential to `name`; returns it (shown this once).
    pub async fn issue_credential(&self, name: &str, caller: &Caller) -> Result<String, RelayError> {
        self.allowed(caller, caller.admin())?;
        let name = Name::parse("name", name)?;
        let issued = identity::issue().map_err(crate::store::StoreError::Crashed)?;
        self.change(&name, Change::CredentialIssued { key_id: issued.key_id, hash: issued.hash }, caller)
            .await?;
        Ok(issued.credential)
    }

    /// Revokes a credential by its key id, or every live one of a principal by its name;
    /// returns the key ids revoked.
    pub async fn revoke(&self, name_or_key: &str, caller: &Caller) -> Result<Vec<String>, RelayError> {
        self.allowed(caller, caller.admin())?;
        let wanted = name_or_key.trim();
        let directory = self.inner.store.principals();
        let revokes: Vec<(String, String)> = match directory.get(wanted) {
            Some(entry) => entry
                .keys
                .iter()
                .filter(|k| k.revoked.is_none())
                .map(|k| (wanted.to_owned(), k.key_id.clone()))
                .collect(),
            None => directory
                .all()
                .iter()
                .filter(|(_, e)| e.keys.iter().any(|k| k.key_id == wanted))
                .map(|(name, _)| (name.clone(), wanted.to_owned()))
                .collect(),
        };
        if revokes.is_empty() {
            return Err(
                Invalid::new("name", format!("no principal or live credential is named {wanted:?}")).into()
            );
        }
        let mut revoked = Vec::new();
        for (name, key_id) in revokes {
            let name = Name::parse("name", &name)?;
            self.change(&name, Change::CredentialRevoked { key_id: key_id.clone() }, caller).await?;
            revoked.push(key_id);
        }
        Ok(revoked)
    }

    /// Replaces what `name` may read and write (`None` keeps that list as it is).
    pub async fn grant(
        &self,
        name: &str,
        read: Option<Vec<String>>,
        write: Option<Vec<String>>,
        caller: &Caller,
    ) -> Result<(), RelayError> {
        self.allowed(caller, caller.admin())?;
        let name = Name::parse("name", name)?;
        let directory = self.inner.store.principals();
        let entry = directory.get(name.as_str()).ok_or_else(|| {
            Invalid::new("name", format!("there is no principal named {:?}", name.as_str()))
        })?;
        let read = checked("read", read.unwrap_or_else(|| entry.read.clone()))?;
        let write = checked("write", write.unwrap_or_else(|| entry.write.clone()))?;
        self.change(&name, Change::GrantsChanged { read, write }, caller).await
    }

    /// Appends `change` unless the principals as they stand refuse it.
    async fn change(&self, name: &Name, change: Change, caller: &Caller) -> Result<(), RelayError> {
        if let Some(why) = self.inner.store.principals().refuses(name.as_str(), &change) {
            return Err(Invalid::new("name", why).into());
        }
        let described = change.describe();
        self.inner.store.change_principal(name, change).await?;
        info!(self.inner.usage_log, "principal_changed"; "name" => name.as_str(), "change" => described,
            "by" => caller.name().unwrap_or("admin"), "source" => caller.source.as_str());
        Ok(())
    }
}

/// Patterns that parse, as the log keeps them.
fn checked(field: &'static str, patterns: Vec<String>) -> Result<Vec<String>, Invalid> {
    let patterns: Vec<String> = patterns.iter().map(|p| p.trim().to_owned()).collect();
    Grants::from_patterns(field, &patterns)?;
    Ok(patterns)
}
