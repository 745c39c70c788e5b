//! Who is asking. Each front door turns a request into one [`Caller`], once, where it comes in
//! (from its credential, and which door it came through), and hands it to every service call
//! the request makes: the service decides with the caller in hand, never the front doors.

use crate::identity::Principal;
use crate::message::Source;
use std::sync::Arc;

/// Who the credential a request carried says it is.
#[derive(Debug, Clone)]
pub enum Who {
    /// No credential: a relay with no token and no principals, as a pair of agents on one
    /// laptop runs it.
    Anonymous,
    /// The holder of the shared `auth_token` (the bearer token, or the UI's sign-in cookie):
    /// may do anything, as any sender.
    Admin,
    /// The holder of a principal's live credential: speaks and reads as that principal only,
    /// where its grants allow.
    Principal(Arc<Principal>),
}

/// A request's caller: who it is and the front door it came through.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Who,
    /// The front door, recorded with posts and counted in the metrics.
    pub source: Source,
}

/// A request refused for who sent it (401 when no one is named, 403 when someone is who may
/// not): what to tell the client, and the reason `/metrics` counts it under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    pub reason: &'static str,
    pub message: String,
}

impl Denied {
    pub fn new(reason: &'static str, message: impl Into<String>) -> Denied {
        Denied { reason, message: message.into() }
    }

    /// Whether the caller named no one the relay knows (401), rather than someone it knows
    /// who may not do this (403).
    pub fn unauthenticated(&self) -> bool {
        crate::metrics::DENIAL_REASONS[..3].contains(&self.reason)
    }
}

impl Caller {
    pub fn new(who: Who, source: Source) -> Caller {
        Caller { who, source }
    }

    /// The relay's own calls and the tests': no credential, through `source`.
    pub fn anonymous(source: Source) -> Caller {
        Caller::new(Who::Anonymous, source)
    }

    /// The principal's name, when a principal is asking.
    pub fn name(&self) -> Option<&str> {
        match &self.who {
            Who::Principal(p) => Some(&p.name),
            _ => None,
        }
    }

    /// The sender a post goes out under: the principal's own name (a post that names another is
    /// refused; one that names none gets it), else the name the post gives.
    pub fn sender<'a>(&'a self, asked: Option<&'a str>) -> Result<Option<&'a str>, Denied> {
        self.as_self("sender", "post", asked)
    }

    /// The reader whose cursor a read moves: as [`Caller::sender`], but a read that names no
    /// reader keeps none.
    pub fn reader<'a>(&'a self, asked: Option<&'a str>) -> Result<Option<&'a str>, Denied> {
        match asked {
            None => Ok(None),
            Some(_) => self.as_self("reader", "read", asked),
        }
    }

    fn as_self<'a>(
        &'a self,
        field: &'static str,
        verb: &str,
        asked: Option<&'a str>,
    ) -> Result<Option<&'a str>, Denied> {
        let Some(own) = self.name() else { return Ok(asked) };
        match asked.map(str::trim) {
            None | Some("") => Ok(Some(own)),
            Some(asked) if asked == own => Ok(Some(own)),
            Some(asked) => Err(Denied::new(
                if field == "reader" { "wrong_reader" } else { "wrong_sender" },
                format!("{field}: your credential is {own:?}'s, which may not {verb} as {asked:?}; leave {field} out or give {own:?}"),
            )),
        }
    }

    /// Whether the caller may read `channel`.
    pub fn may_read(&self, channel: &str) -> Result<(), Denied> {
        self.may(channel, "read", |p| p.may_read(channel))
    }

    /// Whether the caller may post to `channel`.
    pub fn may_write(&self, channel: &str) -> Result<(), Denied> {
        self.may(channel, "post to", |p| p.may_write(channel))
    }

    /// Who a redaction of a message `sender` posted to `channel` goes under, if the caller may
    /// make it: a principal as itself, when it is the sender, a person who may post to the
    /// channel, or an admin; the shared token's holder and anyone on an open relay (who may post
    /// anywhere) under the name they give (`admin` or `anonymous` when none).
    pub fn redactor<'a>(
        &'a self,
        asked: Option<&'a str>,
        channel: &str,
        sender: &str,
    ) -> Result<&'a str, Denied> {
        let asked = asked.map(str::trim).filter(|a| !a.is_empty());
        let p = match &self.who {
            Who::Anonymous => return Ok(asked.unwrap_or("anonymous")),
            Who::Admin => return Ok(asked.unwrap_or("admin")),
            Who::Principal(p) => p,
        };
        let by = self.as_self("by", "redact", asked)?.unwrap_or(&p.name);
        let may = p.name == sender
            || p.role == crate::identity::Role::Admin
            || (p.role == crate::identity::Role::Person && p.may_write(channel));
        if !may {
            return Err(Denied::new(
                "not_sender",
                format!(
                    "{:?} may not redact a message {sender:?} posted: only its sender, a person who may post to \
                     {channel:?}, or an admin may",
                    p.name
                ),
            ));
        }
        Ok(by)
    }

    /// Whether the caller could read `channel` (for lists and search, which leave out the rest).
    pub fn sees(&self, channel: &str) -> bool {
        self.may_read(channel).is_ok()
    }

    fn may(&self, channel: &str, verb: &str, granted: impl Fn(&Principal) -> bool) -> Result<(), Denied> {
        match &self.who {
            Who::Principal(p) if !granted(p) => Err(Denied::new(
                "no_grant",
                format!(
                    "{:?} may not {verb} the channel {channel:?}; an admin can grant it (principals grant)",
                    p.name
                ),
            )),
            _ => Ok(()),
        }
    }

    /// Whether the caller may manage the relay (principals, export, import): the shared token's
    /// holder, an admin principal, or anyone on an open relay.
    pub fn admin(&self) -> Result<(), Denied> {
        match &self.who {
            Who::Principal(p) if p.role != crate::identity::Role::Admin => Err(Denied::new(
                "not_admin",
                format!("{:?} is not an admin; this needs an admin credential", p.name),
            )),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Grants, Role};

    fn principal(role: Role) -> Caller {
        let grants = |p: &str| Grants::from_patterns("read", &[p.to_owned()]).unwrap();
        let p = Principal { name: "codex".into(), role, read: grants("proj-*"), write: grants("proj-x") };
        Caller::new(Who::Principal(Arc::new(p)), Source::Mcp)
    }

    #[test]
    fn a_principal_speaks_and_reads_as_itself_where_granted() {
        let codex = principal(Role::Agent);
        assert_eq!(codex.sender(None), Ok(Some("codex")));
        assert_eq!(codex.sender(Some(" codex ")), Ok(Some("codex")));
        let e = codex.sender(Some("HumanOverseer")).unwrap_err();
        assert_eq!(e.reason, "wrong_sender");
        assert!(e.message.contains("HumanOverseer") && !e.unauthenticated(), "{e:?}");
        assert_eq!(codex.reader(None), Ok(None));
        assert_eq!(codex.reader(Some("claude")).unwrap_err().reason, "wrong_reader");
        assert!(codex.may_read("proj-y").is_ok() && codex.may_write("proj-y").is_err());
        assert_eq!(codex.may_read("ops").unwrap_err().reason, "no_grant");
        assert!(!codex.sees("ops"));
        assert_eq!(codex.admin().unwrap_err().reason, "not_admin");
        let admin = principal(Role::Admin);
        assert!(admin.may_write("ops").is_ok() && admin.admin().is_ok());
        assert_eq!(
            admin.sender(Some("claude")).unwrap_err().reason,
            "wrong_sender",
            "admins speak as themselves too"
        );
        for open in [Caller::anonymous(Source::Rest), Caller::new(Who::Admin, Source::Rest)] {
            assert_eq!(open.sender(Some("anyone")), Ok(Some("anyone")));
            assert_eq!(open.sender(None), Ok(None));
            assert!(open.may_write("ops").is_ok() && open.admin().is_ok());
        }
    }
}
