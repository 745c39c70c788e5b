//! The principals the log names, kept with the channel views (`PrincipalChanged` events): each
//! one's role, grants and credentials (key ids and hashes, never secrets). In the views' tree as
//! `[7]` → the whole directory as JSON, rewritten in the batch of any event that changes it (a
//! team has tens of principals, not millions); in memory as well, swapped whole, so a request's
//! credential is looked up without a lock held across anything.

use crate::event::{Change, PrincipalChanged};
use crate::identity::{self, Digest, Grants, Principal, Role};
use crate::store::StoreError;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

/// The key of the directory in the views' tree.
pub(crate) const PRINCIPALS: u8 = 7;

/// Every principal by name, as the events applied so far made them.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Directory {
    principals: BTreeMap<String, Entry>,
    /// Key id → the key as a request's credential is checked against it, with the principal
    /// it acts as (derived from `principals`).
    #[serde(skip)]
    keys: HashMap<String, Indexed>,
}

impl PartialEq for Directory {
    fn eq(&self, other: &Directory) -> bool {
        self.principals == other.principals
    }
}

/// One principal as the directory holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub role: Role,
    pub read: Vec<String>,
    pub write: Vec<String>,
    /// When it was added (seconds since the epoch).
    pub added: f64,
    pub keys: Vec<Key>,
}

/// A credential as the directory holds it: its id and hash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Key {
    pub key_id: String,
    pub hash: String,
    pub issued: f64,
    pub revoked: Option<f64>,
}

/// A key as the index holds it: the principal it acts as (patterns parsed), its digest (`None`
/// when the log's hash spells none: nothing matches it), whether revoked.
#[derive(Debug, Clone)]
struct Indexed {
    principal: Arc<Principal>,
    digest: Option<Digest>,
    revoked: bool,
}

/// Why a credential was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// No principal holds a key of this id, or the secret is not its secret.
    Unknown,
    Revoked,
}

impl Directory {
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }

    /// Every principal by name.
    pub fn all(&self) -> &BTreeMap<String, Entry> {
        &self.principals
    }

    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.principals.get(name)
    }

    /// The principal whose live credential `presented` is.
    pub fn authenticate(&self, presented: &str) -> Result<Arc<Principal>, Unknown> {
        let key_id = identity::key_id(presented).ok_or(Unknown::Unknown)?;
        let key = self.keys.get(key_id).ok_or(Unknown::Unknown)?;
        if !key.digest.is_some_and(|d| identity::digest_matches(&d, presented)) {
            return Err(Unknown::Unknown);
        }
        if key.revoked {
            return Err(Unknown::Revoked);
        }
        Ok(key.principal.clone())
    }

    /// Whether `change` to `name` would do what it says; if not, why (for the one asking, before
    /// anything is appended).
    pub fn refuses(&self, name: &str, change: &Change) -> Option<String> {
        let entry = self.principals.get(name);
        match (change, entry) {
            (Change::Added { .. }, Some(_)) => Some(format!("a principal named {name:?} exists already")),
            (Change::Added { .. }, None) => None,
            (_, None) => Some(format!("there is no principal named {name:?}")),
            (Change::CredentialRevoked { key_id }, Some(entry)) => {
                let key = entry.keys.iter().find(|k| &k.key_id == key_id);
                match key {
                    None => Some(format!("{name:?} holds no credential {key_id}")),
                    Some(k) if k.revoked.is_some() => Some(format!("credential {key_id} is revoked already")),
                    Some(_) if entry.role == Role::Admin && self.live_admin_keys() == 1 => Some(
                        "that is the last admin credential: issue another first \
                         (principals add NAME --role admin, or principals issue NAME), then revoke this one"
                            .to_owned(),
                    ),
                    Some(_) => None,
                }
            }
            (Change::CredentialIssued { key_id, .. }, Some(_)) if self.keys.contains_key(key_id) => {
                Some(format!("a credential {key_id} exists already"))
            }
            (Change::CredentialIssued { .. } | Change::GrantsChanged { .. }, Some(_)) => None,
        }
    }

    fn live_admin_keys(&self) -> usize {
        let admins = self.principals.values().filter(|e| e.role == Role::Admin);
        admins.flat_map(|e| &e.keys).filter(|k| k.revoked.is_none()).count()
    }

    /// Applies one change. Deterministic, whatever order of instances appended them: the first
    /// `Added` of a name wins, and a change naming a principal or key that does not exist (or a
    /// key of another principal) does nothing.
    pub fn apply(&mut self, event: &PrincipalChanged) {
        let name = &event.name;
        match (&event.change, self.principals.get_mut(name)) {
            (Change::Added { role, read, write }, None) => {
                let entry = Entry {
                    role: *role,
                    read: read.clone(),
                    write: write.clone(),
                    added: event.ts,
                    keys: vec![],
                };
                self.principals.insert(name.clone(), entry);
            }
            (Change::CredentialIssued { key_id, hash }, Some(entry)) if !self.keys.contains_key(key_id) => {
                entry.keys.push(Key {
                    key_id: key_id.clone(),
                    hash: hash.clone(),
                    issued: event.ts,
                    revoked: None,
                });
            }
            (Change::CredentialRevoked { key_id }, Some(entry)) => {
                if let Some(key) = entry.keys.iter_mut().find(|k| &k.key_id == key_id && k.revoked.is_none())
                {
                    key.revoked = Some(event.ts);
                }
            }
            (Change::GrantsChanged { read, write }, Some(entry)) => {
                (entry.read, entry.write) = (read.clone(), write.clone());
            }
            _ => {}
        }
        self.index(name);
    }

    /// Derives the index entries of `name`'s keys from its entry.
    fn index(&mut self, name: &str) {
        let Some(entry) = self.principals.get(name) else { return };
        let principal = Arc::new(entry.principal(name));
        for key in &entry.keys {
            let digest = identity::parse_hash(&key.hash);
            let indexed = Indexed { principal: principal.clone(), digest, revoked: key.revoked.is_some() };
            self.keys.insert(key.key_id.clone(), indexed);
        }
    }

    /// The directory from its JSON in the views' tree.
    fn decode(bytes: &[u8]) -> Result<Directory, StoreError> {
        let mut directory: Directory = serde_json::from_slice(bytes)
            .map_err(|e| StoreError::corrupt(format!("channel views: the principals do not decode: {e}")))?;
        let names: Vec<String> = directory.principals.keys().cloned().collect();
        for name in names {
            directory.index(&name);
        }
        Ok(directory)
    }
}

impl Entry {
    /// The principal a request of this entry's acts as. Patterns were checked when they were
    /// appended; one that does not parse (a log from elsewhere) grants nothing.
    fn principal(&self, name: &str) -> Principal {
        let grants = |patterns: &[String]| Grants::from_patterns("grants", patterns).unwrap_or_default();
        Principal {
            name: name.to_owned(),
            role: self.role,
            read: grants(&self.read),
            write: grants(&self.write),
        }
    }
}

/// The directory readers see: that of the batches applied.
#[derive(Default)]
pub(crate) struct Principals {
    applied: RwLock<Arc<Directory>>,
    /// Whether it names anyone, read by every request without the lock.
    any: AtomicBool,
}

impl Principals {
    pub(crate) fn now(&self) -> Arc<Directory> {
        self.applied.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub(crate) fn any(&self) -> bool {
        self.any.load(Ordering::Acquire)
    }

    fn set(&self, directory: Directory) {
        let any = !directory.is_empty();
        *self.applied.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(directory);
        self.any.store(any, Ordering::Release);
    }

    /// Reads the directory from the views' `tree`.
    pub(crate) fn load(&self, tree: &sled::Tree) -> Result<(), StoreError> {
        let loaded = match tree.get([PRINCIPALS])? {
            Some(bytes) => Directory::decode(&bytes)?,
            None => Directory::default(),
        };
        self.set(loaded);
        Ok(())
    }

    /// Applies `event` to the batch's copy of the directory (made from the applied one at the
    /// batch's first change).
    pub(crate) fn apply(&self, event: &PrincipalChanged, staged: &mut Option<Directory>) {
        staged.get_or_insert_with(|| (*self.now()).clone()).apply(event);
    }

    /// Adds the batch's directory, if it changed, to the batch.
    pub(crate) fn write(staged: &Option<Directory>, batch: &mut sled::Batch) -> Result<(), StoreError> {
        if let Some(directory) = staged {
            let json = serde_json::to_vec(directory).map_err(|e| StoreError::corrupt(e.to_string()))?;
            batch.insert(&[PRINCIPALS], json);
        }
        Ok(())
    }

    /// Makes a written batch's directory the one readers see.
    pub(crate) fn publish(&self, staged: Option<Directory>) {
        if let Some(directory) = staged {
            self.set(directory);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: u64, name: &str, change: Change) -> PrincipalChanged {
        PrincipalChanged { id, ts: id as f64, name: name.into(), change }
    }

    fn added(role: Role) -> Change {
        Change::Added { role, read: vec!["proj-*".into()], write: vec!["proj-x".into()] }
    }

    #[test]
    fn credentials_resolve_until_revoked_and_changes_apply_in_order() {
        let mut directory = Directory::default();
        let issued = identity::issue().unwrap();
        let issue = Change::CredentialIssued { key_id: issued.key_id.clone(), hash: issued.hash.clone() };
        assert!(directory.refuses("codex", &issue).is_some(), "no such principal yet");
        directory.apply(&event(1, "codex", added(Role::Agent)));
        directory.apply(&event(2, "codex", issue.clone()));
        let codex = directory.authenticate(&issued.credential).unwrap();
        assert_eq!((codex.name.as_str(), codex.role), ("codex", Role::Agent));
        assert!(codex.may_read("proj-y") && !codex.may_write("proj-y") && codex.may_write("proj-x"));

        // The same name again, or the same key for someone else: refused, and ignored if applied.
        assert!(directory.refuses("codex", &added(Role::Admin)).unwrap().contains("exists already"));
        directory.apply(&event(3, "codex", added(Role::Admin)));
        directory.apply(&event(4, "claude", added(Role::Agent)));
        directory.apply(&event(5, "claude", issue));
        assert_eq!(directory.authenticate(&issued.credential).unwrap().name, "codex");
        assert_eq!(directory.get("codex").unwrap().role, Role::Agent);

        let other = identity::issue().unwrap();
        assert_eq!(directory.authenticate(&other.credential).unwrap_err(), Unknown::Unknown);
        let forged = format!("{}_{}", &issued.credential[..16], &other.credential[17..]);
        assert_eq!(
            directory.authenticate(&forged).unwrap_err(),
            Unknown::Unknown,
            "the id alone is not enough"
        );

        let grants = Change::GrantsChanged { read: vec![], write: vec!["ops".into()] };
        directory.apply(&event(6, "codex", grants));
        let codex = directory.authenticate(&issued.credential).unwrap();
        assert!(!codex.may_read("proj-y") && codex.may_write("ops"));

        let revoke = Change::CredentialRevoked { key_id: issued.key_id.clone() };
        assert_eq!(directory.refuses("codex", &revoke), None);
        directory.apply(&event(7, "codex", revoke.clone()));
        assert_eq!(directory.authenticate(&issued.credential).unwrap_err(), Unknown::Revoked);
        assert!(directory.refuses("codex", &revoke).unwrap().contains("revoked already"));

        // What is stored reads back the same, index and all.
        let json = serde_json::to_vec(&directory).unwrap();
        assert_eq!(Directory::decode(&json).unwrap(), directory);
        assert!(Directory::decode(b"{").is_err());
    }

    #[test]
    fn the_last_admin_credential_cannot_be_revoked() {
        let mut directory = Directory::default();
        let (a, b) = (identity::issue().unwrap(), identity::issue().unwrap());
        directory.apply(&event(1, "root", added(Role::Admin)));
        for (id, k) in [(2, &a), (3, &b)] {
            directory.apply(&event(
                id,
                "root",
                Change::CredentialIssued { key_id: k.key_id.clone(), hash: k.hash.clone() },
            ));
        }
        let revoke = |k: &identity::Issued| Change::CredentialRevoked { key_id: k.key_id.clone() };
        assert_eq!(directory.refuses("root", &revoke(&a)), None);
        directory.apply(&event(4, "root", revoke(&a)));
        assert!(directory.refuses("root", &revoke(&b)).unwrap().contains("last admin credential"));
    }
}
