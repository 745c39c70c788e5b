//! Parsed values: what the relay takes in from a request, a config file or the environment,
//! checked once where it enters ("parse, don't validate"). A leaf: it imports nothing of ours,
//! so config, http, the service and the store can all use it.

/// Longest channel or sender name, in characters. Long enough for any sensible channel slug or
/// agent name, short enough to show in one line of the UI and to keep index keys small.
pub const MAX_NAME_CHARS: usize = 128;

/// Default cap on a message's text, in bytes of UTF-8: a review packet with a large diff fits,
/// a runaway paste of a build log does not. `max_text_bytes` in the config overrides it.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 1024 * 1024;

/// Why a piece of input was refused. `field` is the name the client used (`target`, `sender`,
/// `text`, `limit`, ...), so the error tells them what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: &'static str,
    pub reason: String,
}

impl Invalid {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        Invalid { field, reason: reason.into() }
    }
}

/// A channel or sender name: trimmed, 1..=128 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Name(String);

impl Name {
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(Invalid::new(field, "must not be empty"));
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(Invalid::new(field, format!("must be at most {MAX_NAME_CHARS} characters")));
        }
        if name.chars().any(char::is_control) {
            return Err(Invalid::new(field, "must not contain control characters"));
        }
        Ok(Name(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A message's text: not blank once trimmed, at most `max_bytes` of UTF-8. Kept exactly as
/// written (leading spaces and trailing newlines matter in a diff).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text(String);

impl Text {
    pub fn parse(raw: String, max_bytes: usize) -> Result<Self, Invalid> {
        if raw.trim().is_empty() {
            return Err(Invalid::new("text", "must not be empty"));
        }
        if raw.len() > max_bytes {
            return Err(Invalid::new(
                "text",
                format!("is {} bytes, over the limit of {max_bytes} bytes", raw.len()),
            ));
        }
        Ok(Text(raw))
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// Seconds since the Unix epoch, with fractions (what events' `ts` hold).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64())
}

/// A number of seconds to wait: finite and 0 or more. Past what a `Duration` holds it is the
/// longest one; the service caps every wait at its own limit.
pub fn seconds(field: &'static str, n: f64) -> Result<std::time::Duration, Invalid> {
    if n.is_finite() && n >= 0.0 {
        Ok(std::time::Duration::try_from_secs_f64(n).unwrap_or(std::time::Duration::MAX))
    } else {
        Err(Invalid::new(field, "must be a number of seconds of 0 or more"))
    }
}

/// The bearer token. Compared in constant time; its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

/// The shortest token accepted: 16 characters is still guessable-proof only when random.
pub const MIN_TOKEN_CHARS: usize = 16;

impl Token {
    pub fn parse(raw: &str) -> Result<Token, String> {
        let token = raw.trim();
        let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
        if token.len() < MIN_TOKEN_CHARS || !token.bytes().all(allowed) {
            return Err(format!(
                "must be at least {MIN_TOKEN_CHARS} characters of A-Z a-z 0-9 - . _ ~ + / = (make one with: openssl rand -hex 32)"
            ));
        }
        Ok(Token(token.to_owned()))
    }

    /// Whether `presented` is this token, in time that does not depend on where they differ.
    pub fn matches(&self, presented: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_bytes().ct_eq(presented).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(hidden)")
    }
}

/// An allowed host from `allowed_hosts`: `192.168.2.3` (any port, like `192.168.2.3:*`),
/// `192.168.2.3:8010`, `relay.lan:*`, `[fe80::1]:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: String,
    /// `None` matches any port.
    port: Option<u16>,
}

impl HostPattern {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let raw = raw.trim();
        let invalid = || "is not a host, host:port or host:* pattern".to_owned();
        if raw.is_empty() || raw.contains(|c: char| c.is_whitespace() || c.is_control() || "/@?#".contains(c))
        {
            return Err(invalid());
        }
        // A bare IPv6 address (several colons, no brackets) means any port.
        if raw.matches(':').count() > 1 && !raw.starts_with('[') {
            return Ok(HostPattern { host: raw.to_ascii_lowercase(), port: None });
        }
        let (host, port) = match raw.strip_suffix(":*") {
            Some(host) => (host, None),
            None => split_authority(raw).ok_or_else(invalid)?,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(invalid());
        }
        Ok(HostPattern { host: host.to_ascii_lowercase(), port })
    }

    /// The host, lower case, IPv6 without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port, `None` for any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// Whether `host` (lower case, without brackets) and `port` are this pattern's.
    pub fn matches(&self, host: &str, port: Option<u16>) -> bool {
        self.host == host && (self.port.is_none() || self.port == port)
    }
}

/// Splits `host[:port]` (IPv6 in brackets) into the bare host and its port.
pub fn split_authority(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse().ok()?),
        None => None,
    };
    (!host.is_empty()).then_some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_is_trimmed() {
        assert_eq!(Name::parse("target", "  proj-x \n").unwrap().as_str(), "proj-x");
    }

    #[test]
    fn blank_name_names_the_field() {
        let err = Name::parse("sender", " \t ").unwrap_err();
        assert_eq!(err.to_string(), "sender: must not be empty");
    }

    #[test]
    fn name_of_128_chars_is_accepted_129_is_not() {
        assert!(Name::parse("target", &"é".repeat(128)).is_ok());
        assert_eq!(Name::parse("target", &"é".repeat(129)).unwrap_err().field, "target");
    }

    #[test]
    fn name_with_control_character_is_refused() {
        assert!(Name::parse("target", "a\u{7}b").is_err());
        assert!(Name::parse("target", "a\nb").is_err());
    }

    #[test]
    fn text_keeps_its_whitespace() {
        let text = Text::parse("  +added\n".into(), 100).unwrap();
        assert_eq!(text.into_string(), "  +added\n");
    }

    #[test]
    fn blank_text_is_refused() {
        assert_eq!(Text::parse(" \n ".into(), 100).unwrap_err().field, "text");
    }

    #[test]
    fn text_limit_is_in_bytes() {
        assert!(Text::parse("ab".into(), 2).is_ok());
        assert!(Text::parse("é".repeat(2), 3).is_err());
    }

    #[test]
    fn bad_patterns_are_refused() {
        for raw in ["", "a b", "http://x", "x:notaport", "[::1"] {
            assert!(HostPattern::parse(raw).is_err(), "{raw}");
        }
    }
}
