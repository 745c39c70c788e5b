//! Principals: the named agents and people a relay knows, each with a role, the channels it may
//! read and write, and its credentials. What changes them are events in the log
//! ([`crate::event::PrincipalChanged`]); this module holds what those events carry and what a
//! request's credential resolves to.
//!
//! A credential reads `ccr_<key id>_<secret>`: the prefix lets secret scanners find a leaked one,
//! the key id (12 hex digits) names it in lists and revokes without the secret, and the secret
//! is 32 random bytes in hex. The log keeps only the SHA-256 of the whole credential (a random
//! 256-bit secret needs no slow hash), compared in constant time.

use crate::values::Invalid;
use serde::{Deserialize, Serialize};

/// What every credential starts with.
pub const PREFIX: &str = "ccr_";
/// Hex digits of a key id.
const KEY_ID_CHARS: usize = 12;
/// Bytes of randomness in a secret.
const SECRET_BYTES: usize = 32;
/// Longer than any credential this relay issues: a longer one is refused unread.
pub const MAX_CREDENTIAL_BYTES: usize = 256;
/// Patterns in one grant list.
const MAX_PATTERNS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A coding agent.
    Agent,
    /// A person (signs in to the web UI).
    Person,
    /// May do anything: every channel, export, import, principal management.
    Admin,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Role, Invalid> {
        match raw.trim() {
            "agent" => Ok(Role::Agent),
            "person" => Ok(Role::Person),
            "admin" => Ok(Role::Admin),
            _ => Err(Invalid::new("role", "must be agent, person or admin")),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Agent => "agent",
            Role::Person => "person",
            Role::Admin => "admin",
        }
    }
}

/// Channel patterns (globs: `*` any run of characters, `?` one, `[a-z]` a class), checked.
#[derive(Debug, Clone, Default)]
pub struct Grants(Vec<glob::Pattern>);

impl Grants {
    /// Patterns from a comma-separated list (`proj-*,ops`); `field` names it in errors.
    pub fn parse_list(field: &'static str, raw: &str) -> Result<Vec<String>, Invalid> {
        let patterns: Vec<String> =
            raw.split(',').map(str::trim).filter(|p| !p.is_empty()).map(str::to_owned).collect();
        Grants::from_patterns(field, &patterns)?;
        Ok(patterns)
    }

    /// Grants from patterns as the log holds them; a pattern that does not parse is an error.
    pub fn from_patterns(field: &'static str, patterns: &[String]) -> Result<Grants, Invalid> {
        if patterns.len() > MAX_PATTERNS {
            return Err(Invalid::new(field, format!("at most {MAX_PATTERNS} patterns")));
        }
        let parsed = patterns
            .iter()
            .map(|p| {
                if p.chars().any(char::is_control) || p.trim().is_empty() {
                    return Err(Invalid::new(field, format!("{p:?} is not a channel pattern")));
                }
                glob::Pattern::new(p)
                    .map_err(|e| Invalid::new(field, format!("{p:?} is not a channel pattern: {}", e.msg)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Grants(parsed))
    }

    pub fn allows(&self, channel: &str) -> bool {
        self.0.iter().any(|p| p.matches(channel))
    }
}

/// Who a live credential belongs to, as a request carries it.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub role: Role,
    pub read: Grants,
    pub write: Grants,
}

impl Principal {
    pub fn may_read(&self, channel: &str) -> bool {
        self.role == Role::Admin || self.read.allows(channel)
    }

    pub fn may_write(&self, channel: &str) -> bool {
        self.role == Role::Admin || self.write.allows(channel)
    }
}

/// A credential just made: the string its holder gets (once), and what the log keeps.
pub struct Issued {
    pub credential: String,
    pub key_id: String,
    pub hash: String,
}

/// Makes a new credential from the system's random source.
pub fn issue() -> Result<Issued, String> {
    use ring::rand::SecureRandom;
    let random = ring::rand::SystemRandom::new();
    let mut bytes = [0u8; KEY_ID_CHARS / 2 + SECRET_BYTES];
    random.fill(&mut bytes).map_err(|_| "the system's random source failed".to_owned())?;
    let (key, secret) = bytes.split_at(KEY_ID_CHARS / 2);
    let key_id = hex(key);
    let credential = format!("{PREFIX}{key_id}_{}", hex(secret));
    Ok(Issued { hash: hash(&credential), key_id, credential })
}

/// The key id of a string shaped like a credential (the secret's digits are left to the digest
/// to refuse), `None` for anything else.
pub fn key_id(presented: &str) -> Option<&str> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (key_id, secret) = rest.split_at_checked(KEY_ID_CHARS)?;
    let hex_digit = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    (key_id.bytes().all(hex_digit) && secret.len() == 1 + SECRET_BYTES * 2 && secret.starts_with('_'))
        .then_some(key_id)
}

/// A credential's SHA-256.
pub type Digest = [u8; 32];

/// What the log keeps of a credential: its SHA-256, in hex.
pub fn hash(credential: &str) -> String {
    hex(&digest(credential))
}

fn digest(credential: &str) -> Digest {
    let mut out = [0; 32];
    out.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, credential.as_bytes()).as_ref());
    out
}

/// The digest a [`hash`] spells, `None` when it spells none.
pub fn parse_hash(hash: &str) -> Option<Digest> {
    let digits = hash.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let value = |d: u8| (d as char).to_digit(16).map(|v| v as u8);
    let mut out = [0; 32];
    for (byte, pair) in out.iter_mut().zip(digits.chunks(2)) {
        *byte = value(pair[0])? << 4 | value(pair[1])?;
    }
    Some(out)
}

/// Whether `presented` hashes to `stored`, in time that does not depend on where they differ.
pub fn digest_matches(stored: &Digest, presented: &str) -> bool {
    use subtle::ConstantTimeEq;
    stored.ct_eq(&digest(presented)).into()
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    bytes
        .iter()
        .flat_map(|b| [DIGITS[(b >> 4) as usize] as char, DIGITS[(b & 15) as usize] as char])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognisable_random_and_hashed() {
        let a = issue().unwrap();
        let b = issue().unwrap();
        assert_ne!(a.credential, b.credential);
        assert!(
            a.credential.starts_with("ccr_") && a.credential.len() == 4 + 12 + 1 + 64,
            "{}",
            a.credential
        );
        assert_eq!(key_id(&a.credential), Some(a.key_id.as_str()));
        let stored = parse_hash(&a.hash).unwrap();
        assert!(digest_matches(&stored, &a.credential));
        assert!(!digest_matches(&stored, &b.credential));
        assert_eq!(hex(&stored), a.hash, "hex and back");
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "SHA-256"
        );
        for bad in ["", "zz", &"g".repeat(64), &a.hash[1..]] {
            assert_eq!(parse_hash(bad), None, "{bad}");
        }
        assert!(!a.hash.contains(&a.credential[17..]), "the log never holds the secret");
        for bad in ["", "ccr_", "ccr_abc_def", "Bearer x", &a.credential[..40], &a.credential.to_uppercase()]
        {
            assert_eq!(key_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn grants_are_globs_and_bad_ones_say_why() {
        let patterns = Grants::parse_list("read", " proj-*, ops ,").unwrap();
        assert_eq!(patterns, ["proj-*", "ops"]);
        let grants = Grants::from_patterns("read", &patterns).unwrap();
        assert!(grants.allows("proj-x") && grants.allows("ops") && !grants.allows("opsx"));
        assert!(!Grants::default().allows("anything"));
        let e = Grants::parse_list("write", "proj-[").unwrap_err().to_string();
        assert!(e.starts_with("write:") && e.contains("proj-["), "{e}");
        let agent = Principal { name: "a".into(), role: Role::Agent, read: grants, write: Grants::default() };
        assert!(agent.may_read("proj-x") && !agent.may_write("proj-x"));
        let admin = Principal { role: Role::Admin, ..agent };
        assert!(admin.may_write("anything"));
        assert_eq!(Role::parse("person").unwrap(), Role::Person);
        assert!(Role::parse("root").is_err());
    }
}
