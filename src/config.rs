//! Configuration, layered: command-line flags over `CLAUDE_CODEX_*` environment variables over
//! `config.json` over defaults. Every value is checked as it is read, and an error names the key
//! and where the bad value came from.

use crate::store::{ArchiveConfig, Backend, BackendKind};
use crate::values::{HostPattern, Name, Token, DEFAULT_MAX_TEXT_BYTES};
use serde_json::Value;
use std::path::{Path, PathBuf};

const MIB: u64 = 1024 * 1024;

/// Largest `max_text_bytes` accepted: a request body must stay a size the relay can hold in
/// memory a few times over without trouble.
pub const MAX_TEXT_BYTES_LIMIT: u64 = 64 * MIB;

/// The environment variable for a key: `port` → `CLAUDE_CODEX_PORT`.
pub fn env_var(key: &str) -> String {
    format!("CLAUDE_CODEX_{}", key.to_ascii_uppercase())
}

#[derive(Debug, Clone)]
pub struct Config {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    pub max_text_bytes: usize,
    pub log_path: PathBuf,
    pub log_max_bytes: u64,
    pub log_backup_count: usize,
    pub channel_log_path: PathBuf,
    pub channel_log_max_bytes: u64,
    pub channel_log_backup_count: usize,
    pub channels: Vec<Name>,
    pub allowed_hosts: Vec<HostPattern>,
    /// When set, every route but `/healthz`, `/readyz` and static files needs it (`http::auth`).
    pub auth_token: Option<Token>,
    /// A file holding the token (read at start), instead of `auth_token`.
    pub auth_token_file: Option<PathBuf>,
    /// `--insecure-no-auth`: allow listening beyond loopback without a token.
    pub insecure_no_auth: bool,
    /// Serve HTTPS with this certificate chain and private key (PEM files), read at start.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Each commit also fdatasyncs, so acknowledged posts survive a power cut, not only a
    /// process crash (store/sled_log/disk_sync.rs).
    pub fsync: bool,
    /// Keep the full-text search index (`search`).
    pub search: bool,
    /// sled's page cache, in bytes (`cache_mb`).
    pub cache_bytes: u64,
    /// Whether a data directory created now compresses its database (`compression`).
    pub compression: bool,
    /// Where the event log lives (`log_backend`): `sled` in `data_dir` (the default) or `nats`,
    /// a JetStream stream shared by several relay instances (the `nats_*` settings;
    /// docs/scale-out.md).
    pub log: Backend,
    /// What history each channel keeps (`retention_days`, `retention_messages`, `retention`).
    pub retention: crate::relay::Retention,
    /// What loading found odd but not wrong (a key the relay does not know), for the caller
    /// to print and log.
    pub warnings: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        let channel = |n| Name::parse("channels", n).expect("default channel names are valid");
        Config {
            host: "127.0.0.1".into(),
            port: 8010,
            data_dir: "storage".into(),
            max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
            log_path: "log/claude_codex.log".into(),
            log_max_bytes: 25 * MIB,
            log_backup_count: 10,
            channel_log_path: "log/channel_messages.log".into(),
            channel_log_max_bytes: 25 * MIB,
            channel_log_backup_count: 10,
            channels: vec![channel("proj-x"), channel("codex"), channel("claude")],
            allowed_hosts: Vec::new(),
            auth_token: None,
            auth_token_file: None,
            insecure_no_auth: false,
            tls_cert: None,
            tls_key: None,
            fsync: true,
            search: true,
            cache_bytes: crate::store::DEFAULT_CACHE_BYTES,
            compression: true,
            log: Backend::sled(),
            retention: Default::default(),
            warnings: Vec::new(),
        }
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Clone)]
pub struct Flags {
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub insecure_no_auth: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config: {key} {reason} (from {origin})")]
    Value { key: String, reason: String, origin: String },
    #[error("config: cannot read {path}: {reason}")]
    File { path: String, reason: String },
}

/// A value as one source gives it: typed JSON from the config file, text from the environment.
enum Raw<'a> {
    Json(&'a Value),
    Text(&'a str),
}

impl Raw<'_> {
    fn string(&self) -> Result<String, String> {
        let s = match self {
            Raw::Json(Value::String(s)) => s.as_str(),
            Raw::Json(_) => return Err("must be a string".into()),
            Raw::Text(s) => s,
        };
        let s = s.trim();
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(s.to_owned())
    }

    fn boolean(&self) -> Result<bool, String> {
        match self {
            Raw::Json(Value::Bool(b)) => Ok(*b),
            Raw::Text(s) if ["true", "1", "yes", "on"].contains(&s.trim().to_ascii_lowercase().as_str()) => {
                Ok(true)
            }
            Raw::Text(s) if ["false", "0", "no", "off"].contains(&s.trim().to_ascii_lowercase().as_str()) => {
                Ok(false)
            }
            _ => Err("must be true or false".into()),
        }
    }

    /// The value as text, when it is text: from the environment, or a JSON string (config
    /// files written by hand put numbers and lists in quotes).
    fn text(&self) -> Option<&str> {
        match self {
            Raw::Text(s) => Some(s),
            Raw::Json(Value::String(s)) => Some(s),
            Raw::Json(_) => None,
        }
    }

    fn whole_number(&self) -> Result<u64, String> {
        let n = match (self, self.text()) {
            (_, Some(s)) => s.trim().parse().ok(),
            (Raw::Json(v), None) => v.as_u64(),
            (Raw::Text(_), None) => None,
        };
        n.ok_or_else(|| "must be a whole number of 0 or more".into())
    }

    fn number(&self) -> Result<f64, String> {
        let n = match (self, self.text()) {
            (_, Some(s)) => s.trim().parse().ok(),
            (Raw::Json(v), None) => v.as_f64(),
            (Raw::Text(_), None) => None,
        };
        n.filter(|n| n.is_finite()).ok_or_else(|| "must be a number".into())
    }

    /// A JSON array of strings, or comma-separated text (in the environment or a JSON string);
    /// blank entries are skipped.
    fn list(&self) -> Result<Vec<String>, String> {
        let items: Vec<&str> = match self {
            Raw::Json(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().ok_or("must be a list of strings"))
                .collect::<Result<_, _>>()?,
            _ => self.text().ok_or("must be a list of strings")?.split(',').collect(),
        };
        Ok(items.into_iter().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
    }
}

fn positive_bytes(n: u64) -> Result<u64, String> {
    if n == 0 {
        Err("must be more than 0".into())
    } else {
        Ok(n)
    }
}

fn megabytes(raw: &Raw) -> Result<u64, String> {
    let mb = raw.number()?;
    if mb <= 0.0 {
        return Err("must be more than 0".into());
    }
    Ok((mb * MIB as f64).round() as u64)
}

/// Most backups a rotated log may keep: more is surely a typo, and each is a file to rotate.
const MAX_BACKUPS: usize = 1000;

fn backup_count(raw: &Raw) -> Result<usize, String> {
    let n = raw.whole_number()?;
    usize::try_from(n)
        .ok()
        .filter(|&n| n <= MAX_BACKUPS)
        .ok_or_else(|| format!("must be at most {MAX_BACKUPS}"))
}

impl Config {
    /// How the store opens its database (`cache_mb`, `compression`, `fsync`, `search`).
    pub fn store_options(&self) -> crate::store::Options {
        crate::store::Options {
            cache_bytes: self.cache_bytes,
            compress: self.compression,
            power_safe: self.fsync,
            search: self.search,
            max_text_bytes: self.max_text_bytes,
        }
    }

    /// What the service takes from the settings.
    pub fn relay_settings(&self) -> crate::relay::Settings {
        crate::relay::Settings {
            channels: self.channels.clone(),
            max_text_bytes: self.max_text_bytes,
            disk: vec![
                ("data", self.data_dir.clone()),
                ("archive", self.channel_log_path.clone()),
                ("usage_log", self.log_path.clone()),
            ],
            retention: self.retention.clone(),
        }
    }

    /// Where the text archive goes and how it rotates.
    pub fn archive(&self) -> ArchiveConfig {
        ArchiveConfig {
            path: self.channel_log_path.clone(),
            max_bytes: self.channel_log_max_bytes,
            backups: self.channel_log_backup_count,
        }
    }

    /// Builds the config from its layers. `config_path` is `--config`; without it,
    /// `./config.json` is read when it exists. `env` looks up an environment variable.
    pub fn load(
        config_path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Flags,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let default_path = Path::new("config.json");
        let file = match config_path {
            Some(p) => Some(p),
            None if default_path.exists() => Some(default_path),
            None => None,
        };
        if let Some(path) = file {
            config.apply_file(path)?;
        }
        for key in keys() {
            let var = env_var(key);
            // Empty is unset: a compose file passes `${VAR:-}` when its user set nothing.
            if let Some(value) = env(&var).filter(|v| !v.trim().is_empty()) {
                config
                    .set(key, &Raw::Text(&value))
                    .map_err(|reason| value_error(key, reason, format!("environment variable {var}")))?;
            }
        }
        if let Some(host) = &flags.host {
            config.set("host", &Raw::Text(host)).map_err(|r| value_error("host", r, "--host".into()))?;
        }
        if let Some(port) = flags.port {
            config.port = port;
        }
        if let Some(dir) = &flags.data_dir {
            config
                .set("data_dir", &Raw::Text(&dir.to_string_lossy()))
                .map_err(|r| value_error("data_dir", r, "--data-dir".into()))?;
        }
        config.insecure_no_auth = flags.insecure_no_auth;
        if let Some(path) = &config.auth_token_file {
            let origin = format!("file {}", path.display());
            if config.auth_token.is_some() {
                return Err(value_error(
                    "auth_token_file",
                    "and auth_token are both set; set one".into(),
                    origin,
                ));
            }
            let text = std::fs::read_to_string(path).map_err(|e| {
                value_error("auth_token_file", format!("cannot be read: {e}"), origin.clone())
            })?;
            config.auth_token = Some(Token::parse(&text).map_err(|r| value_error("auth_token", r, origin))?);
        }
        if config.tls_cert.is_some() != config.tls_key.is_some() {
            let (key, other) =
                if config.tls_cert.is_some() { ("tls_key", "tls_cert") } else { ("tls_cert", "tls_key") };
            let reason =
                format!("is needed with {other}: HTTPS takes a certificate chain and its private key");
            return Err(value_error(key, reason, "the settings".into()));
        }
        if config.log.kind == BackendKind::Nats && config.log.nats.urls.is_empty() {
            let reason = "is needed with log_backend nats: the NATS servers, comma-separated".to_owned();
            return Err(value_error("nats_url", reason, "the settings".into()));
        }
        Ok(config)
    }

    /// Whether the relay may listen where it is told to. Beyond loopback it needs a token, or
    /// `--insecure-no-auth`, which yields a warning to print on every start.
    /// `has_principals`: the store names principals, whose credentials guard the relay as a
    /// token does.
    pub fn check_exposure(&self, has_principals: bool) -> Result<Option<String>, String> {
        let host = self.host.trim_start_matches('[').trim_end_matches(']');
        let loopback = host.eq_ignore_ascii_case("localhost")
            || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
        let guarded = self.auth_token.is_some() || has_principals;
        match (loopback, guarded, self.insecure_no_auth) {
            (true, ..) => Ok(None),
            (false, true, _) if self.tls_cert.is_some() => Ok(None),
            (false, true, _) => Ok(Some(format!(
                "WARNING: listening on {host} with credentials but without TLS: they cross the network in clear text. \
                 Set tls_cert and tls_key (HTTPS), or keep the relay on loopback behind a TLS reverse proxy (docs/api.md#https)"
            ))),
            (false, false, true) => Ok(Some(format!(
                "WARNING: listening on {host} without a token (--insecure-no-auth): anyone who can reach this address can read and post"
            ))),
            (false, false, false) => Err(format!(
                "refusing to listen on {host} without a token: anyone who could reach it could read and post. \
                 Set auth_token in config.json, CLAUDE_CODEX_AUTH_TOKEN or auth_token_file (make one with: openssl rand -hex 32), \
                 or add principals (claude-codex-relay principals add NAME --role admin), \
                 or pass --insecure-no-auth to allow it on purpose"
            )),
        }
    }

    fn apply_file(&mut self, path: &Path) -> Result<(), ConfigError> {
        let file_error = |reason: String| ConfigError::File { path: path.display().to_string(), reason };
        let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
        let json: Value =
            serde_json::from_str(&text).map_err(|e| file_error(format!("invalid JSON: {e}")))?;
        let Value::Object(map) = json else {
            return Err(file_error("must hold a JSON object of settings".into()));
        };
        let source = format!("config file {}", path.display());
        for unknown in map.keys().filter(|k| !keys().any(|key| key == k.as_str())) {
            let guess = keys()
                .map(|key| (strsim::levenshtein(key, unknown), key))
                .filter(|(distance, key)| *distance <= 2.max(key.len() / 4))
                .min();
            let hint = guess.map_or(String::new(), |(_, key)| format!("; did you mean {key}?"));
            self.warnings.push(format!("{source}: {unknown:?} is not a setting, ignored{hint}"));
        }
        for key in keys() {
            if let Some(value) = map.get(key) {
                self.set(key, &Raw::Json(value))
                    .map_err(|reason| value_error(key, reason, source.clone()))?;
            }
        }
        Ok(())
    }

    /// Reads `raw` into the setting `key` (one of [`SETTINGS`]).
    fn set(&mut self, key: &str, raw: &Raw) -> Result<(), String> {
        let (_, read) = SETTINGS.iter().find(|(k, _)| *k == key).ok_or("is not a setting")?;
        read(self, raw)
    }
}

/// A setting whose value, as `read` makes it from the raw value, goes into `field`.
macro_rules! field {
    ($key:literal, $($field:ident).+, |$raw:ident| $read:expr) => {
        ($key, |config: &mut Config, $raw: &Raw| {
            config.$($field).+ = $read;
            Ok(())
        })
    };
}

/// How one setting's value is checked and stored.
type Read = fn(&mut Config, &Raw) -> Result<(), String>;

/// Every setting: its key (in config.json; the environment variable is [`env_var`] of it) and
/// how its value is read. A new setting is a line here and a field of [`Config`]. Layers apply
/// them in this order, so a `*_max_mb` comes after its legacy `*_max_bytes`: the megabytes win
/// when one source gives both, as in the Python relay.
const SETTINGS: &[(&str, Read)] = &[
    ("host", |c, raw| {
        let host = raw.string()?;
        if host.contains(char::is_whitespace) || host.contains('/') {
            return Err(format!("{host:?} is not a host name or IP address"));
        }
        c.host = host;
        Ok(())
    }),
    field!("port", port, |raw| u16::try_from(raw.whole_number()?)
        .map_err(|_| "must be a port number from 0 to 65535")?),
    field!("data_dir", data_dir, |raw| raw.string()?.into()),
    ("max_text_bytes", |c, raw| {
        let n = positive_bytes(raw.whole_number()?)?;
        if n > MAX_TEXT_BYTES_LIMIT {
            return Err(format!("must be at most {MAX_TEXT_BYTES_LIMIT} (64 MiB)"));
        }
        c.max_text_bytes = n as usize;
        Ok(())
    }),
    field!("log_path", log_path, |raw| raw.string()?.into()),
    field!("log_max_bytes", log_max_bytes, |raw| positive_bytes(raw.whole_number()?)?),
    field!("log_max_mb", log_max_bytes, |raw| megabytes(raw)?),
    field!("log_backup_count", log_backup_count, |raw| backup_count(raw)?),
    field!("channel_log_path", channel_log_path, |raw| raw.string()?.into()),
    field!("channel_log_max_bytes", channel_log_max_bytes, |raw| positive_bytes(raw.whole_number()?)?),
    field!("channel_log_max_mb", channel_log_max_bytes, |raw| megabytes(raw)?),
    field!("channel_log_backup_count", channel_log_backup_count, |raw| backup_count(raw)?),
    ("channels", |c, raw| {
        let mut channels = Vec::new();
        for item in raw.list()? {
            let name = Name::parse("channels", &item).map_err(|e| format!("entry {item:?} {}", e.reason))?;
            if !channels.contains(&name) {
                channels.push(name);
            }
        }
        c.channels = channels;
        Ok(())
    }),
    ("allowed_hosts", |c, raw| {
        c.allowed_hosts = raw
            .list()?
            .iter()
            .map(|item| HostPattern::parse(item).map_err(|e| format!("entry {item:?} {e}")))
            .collect::<Result<_, _>>()?;
        Ok(())
    }),
    field!("auth_token", auth_token, |raw| Some(Token::parse(&raw.string()?)?)),
    field!("auth_token_file", auth_token_file, |raw| Some(raw.string()?.into())),
    field!("tls_cert", tls_cert, |raw| Some(raw.string()?.into())),
    field!("tls_key", tls_key, |raw| Some(raw.string()?.into())),
    field!("fsync", fsync, |raw| raw.boolean()?),
    field!("search", search, |raw| raw.boolean()?),
    field!("cache_mb", cache_bytes, |raw| megabytes(raw)?),
    field!("compression", compression, |raw| raw.boolean()?),
    field!("log_backend", log.kind, |raw| match raw.string()?.as_str() {
        "sled" => BackendKind::Sled,
        "nats" => BackendKind::Nats,
        other => return Err(format!("{other:?} is not a log backend: use sled or nats")),
    }),
    field!("nats_url", log.nats.urls, |raw| raw.list()?),
    field!("nats_stream", log.nats.stream, |raw| {
        let name = raw.string()?;
        let bad = |c: char| c.is_whitespace() || c.is_control() || ".*>/\\".contains(c);
        if name.is_empty() || name.contains(bad) {
            return Err(format!("{name:?} is not a stream name: no spaces, dots, *, >, slashes"));
        }
        name
    }),
    field!("nats_replicas", log.nats.replicas, |raw| match raw.whole_number()? {
        n @ 1..=5 => n as usize,
        n => return Err(format!("{n} is not a replica count: JetStream keeps 1 to 5")),
    }),
    field!("nats_token", log.nats.token, |raw| Some(raw.string()?)),
    field!("nats_creds_file", log.nats.creds_file, |raw| Some(raw.string()?.into())),
    field!("nats_tls_ca", log.nats.tls_ca, |raw| Some(raw.string()?.into())),
    field!("retention_days", retention.days, |raw| days(raw)?),
    field!("retention_messages", retention.messages, |raw| raw.whole_number()?),
    field!("retention", retention.patterns, |raw| retention_patterns(raw)?),
];

/// Days of history: a number of 0 or more (fractions allowed).
fn days(raw: &Raw) -> Result<f64, String> {
    let days = raw.number()?;
    if days < 0.0 {
        return Err("must be a number of days of 0 or more (0 keeps everything)".into());
    }
    Ok(days)
}

/// Per-channel retention: a JSON object of channel pattern → `{"days": D, "messages": N}` (in
/// the environment, that object as text).
fn retention_patterns(raw: &Raw) -> Result<Vec<(glob::Pattern, crate::relay::Limits)>, String> {
    let value: Value = match (raw, raw.text()) {
        (_, Some(text)) => serde_json::from_str(text).map_err(|e| format!("is not JSON: {e}"))?,
        (Raw::Json(value), None) => (*value).clone(),
        (Raw::Text(_), None) => Value::Null,
    };
    let shape =
        r#"must be an object of channel pattern to {"days": D, "messages": N}, e.g. {"ci-*": {"days": 7}}"#;
    let Value::Object(map) = &value else { return Err(shape.into()) };
    let mut patterns = Vec::new();
    for (pattern, limits) in map {
        let glob = glob::Pattern::new(pattern).map_err(|e| format!("pattern {pattern:?}: {e}"))?;
        let Value::Object(limits) = limits else { return Err(format!("pattern {pattern:?}: {shape}")) };
        let mut parsed = crate::relay::Limits::default();
        for (key, value) in limits {
            let value = Raw::Json(value);
            let at = |e: String| format!("pattern {pattern:?}: {key} {e}");
            match key.as_str() {
                "days" => parsed.days = Some(days(&value).map_err(at)?),
                "messages" => parsed.messages = Some(value.whole_number().map_err(at)?),
                _ => {
                    return Err(format!("pattern {pattern:?}: {key:?} is not a limit: use days or messages"))
                }
            }
        }
        patterns.push((glob, parsed));
    }
    Ok(patterns)
}

/// Every setting's key, in the order layers apply them.
pub fn keys() -> impl Iterator<Item = &'static str> {
    SETTINGS.iter().map(|(key, _)| *key)
}

fn value_error(key: &str, reason: String, origin: String) -> ConfigError {
    ConfigError::Value { key: key.to_owned(), reason, origin }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn load_with(file: Option<&str>, env: &[(&str, &str)], flags: Flags) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        if let Some(text) = file {
            std::fs::write(&path, text).unwrap();
        }
        let env: HashMap<String, String> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load(file.map(|_| path.as_path()), |k| env.get(k).cloned(), &flags)
    }

    fn err(file: Option<&str>, env: &[(&str, &str)]) -> String {
        load_with(file, env, Flags::default()).unwrap_err().to_string()
    }

    #[test]
    fn defaults_match_the_python_relay() {
        let c = load_with(None, &[], Flags::default()).unwrap();
        assert_eq!((c.host.as_str(), c.port), ("127.0.0.1", 8010));
        assert_eq!(c.log_max_bytes, 25 * MIB);
        assert_eq!(c.log_backup_count, 10);
        assert_eq!(c.channel_log_path, PathBuf::from("log/channel_messages.log"));
        let names: Vec<_> = c.channels.iter().map(Name::as_str).collect();
        assert_eq!(names, ["proj-x", "codex", "claude"]);
        assert_eq!(c.data_dir, PathBuf::from("storage"));
        assert_eq!(c.max_text_bytes, 1024 * 1024);
    }

    #[test]
    fn flags_beat_env_beat_file() {
        let file = Some(r#"{"port": 9001, "host": "0.0.0.0", "data_dir": "a"}"#);
        let env = [("CLAUDE_CODEX_PORT", "9002"), ("CLAUDE_CODEX_DATA_DIR", "b")];
        let c = load_with(file, &env, Flags { port: Some(9003), ..Flags::default() }).unwrap();
        assert_eq!((c.port, c.host.as_str(), c.data_dir.to_str().unwrap()), (9003, "0.0.0.0", "b"));
    }

    #[test]
    fn env_lists_are_comma_separated() {
        let c = load_with(
            None,
            &[("CLAUDE_CODEX_CHANNELS", "a, b,,a"), ("CLAUDE_CODEX_ALLOWED_HOSTS", "192.168.2.3")],
            Flags::default(),
        )
        .unwrap();
        assert_eq!(c.channels.iter().map(Name::as_str).collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(c.allowed_hosts.len(), 1);
    }

    #[test]
    fn max_mb_wins_over_legacy_max_bytes_in_the_same_source() {
        let c = load_with(
            Some(r#"{"log_max_mb": 1, "log_max_bytes": 5000, "channel_log_max_bytes": 7000}"#),
            &[],
            Flags::default(),
        )
        .unwrap();
        assert_eq!(c.log_max_bytes, MIB);
        assert_eq!(c.channel_log_max_bytes, 7000);
        // A later layer still wins: the environment's bytes over the file's megabytes.
        let c = load_with(
            Some(r#"{"log_max_mb": 1}"#),
            &[("CLAUDE_CODEX_LOG_MAX_BYTES", "5000")],
            Flags::default(),
        )
        .unwrap();
        assert_eq!(c.log_max_bytes, 5000);
    }

    #[test]
    fn bad_env_value_names_key_and_variable() {
        assert_eq!(
            err(None, &[("CLAUDE_CODEX_PORT", "abc")]),
            "config: port must be a whole number of 0 or more (from environment variable CLAUDE_CODEX_PORT)"
        );
    }

    #[test]
    fn port_out_of_range_is_refused() {
        assert!(err(Some(r#"{"port": 70000}"#), &[]).contains("port must be a port number"));
    }

    #[test]
    fn wrong_json_type_names_the_file() {
        let e = err(Some(r#"{"channels": 5}"#), &[]);
        assert!(e.starts_with("config: channels must be a list of strings (from config file "), "{e}");
    }

    #[test]
    fn unknown_keys_are_ignored_with_a_warning_and_a_guess() {
        let c = load_with(Some(r#"{"prot": 9000, "_comment": "mine", "port": 9001}"#), &[], Flags::default())
            .unwrap();
        assert_eq!(c.port, 9001);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        let prot = c.warnings.iter().find(|w| w.contains("\"prot\"")).unwrap();
        assert!(prot.contains("is not a setting, ignored; did you mean port?"), "{prot}");
        assert!(prot.starts_with("config file "), "{prot}");
        let comment = c.warnings.iter().find(|w| w.contains("_comment")).unwrap();
        assert!(!comment.contains("did you mean"), "{comment}");
    }

    #[test]
    fn numbers_and_lists_may_be_written_as_strings() {
        let c = load_with(
            Some(r#"{"port": "8011", "log_max_mb": "5", "channels": "a,b, c", "allowed_hosts": "192.168.2.3"}"#),
            &[],
            Flags::default(),
        )
        .unwrap();
        assert_eq!((c.port, c.log_max_bytes), (8011, 5 * MIB));
        assert_eq!(c.channels.iter().map(Name::as_str).collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(c.allowed_hosts.len(), 1);
        assert!(err(Some(r#"{"port": "80x"}"#), &[]).contains("port must be a whole number"));
    }

    #[test]
    fn invalid_json_is_a_file_error() {
        assert!(err(Some("{port: 1"), &[]).contains("invalid JSON"));
        assert!(err(Some("[1]"), &[]).contains("JSON object"));
    }

    #[test]
    fn missing_explicit_config_file_is_an_error() {
        let e = Config::load(Some(Path::new("/nonexistent/relay.json")), |_| None, &Flags::default())
            .unwrap_err();
        assert!(e.to_string().contains("/nonexistent/relay.json"));
    }

    #[test]
    fn zero_sizes_and_bad_channels_are_refused() {
        assert!(err(None, &[("CLAUDE_CODEX_LOG_MAX_MB", "0")]).contains("log_max_mb must be more than 0"));
        assert!(err(None, &[("CLAUDE_CODEX_MAX_TEXT_BYTES", "0")]).contains("max_text_bytes"));
        assert!(err(Some(r#"{"channels": ["ok", "a\u0007b"]}"#), &[]).contains("control characters"));
        assert!(err(None, &[("CLAUDE_CODEX_ALLOWED_HOSTS", "a b")]).contains("allowed_hosts"));
    }

    #[test]
    fn tokens_come_from_a_setting_or_a_file_never_both() {
        let c =
            load_with(None, &[("CLAUDE_CODEX_AUTH_TOKEN", " abcdef0123456789 ")], Flags::default()).unwrap();
        assert!(c.auth_token.as_ref().unwrap().matches(b"abcdef0123456789"));
        assert!(!c.auth_token.as_ref().unwrap().matches(b"abcdef012345678"));
        assert_eq!(format!("{:?}", c.auth_token), "Some(Token(hidden))");
        assert!(err(None, &[("CLAUDE_CODEX_AUTH_TOKEN", "short")]).contains("auth_token must be at least 16"));
        let empty = [("CLAUDE_CODEX_AUTH_TOKEN", ""), ("CLAUDE_CODEX_PORT", " ")];
        let c = load_with(None, &empty, Flags::default()).unwrap();
        assert!(c.auth_token.is_none() && c.port == Config::default().port, "empty is unset");
        assert!(err(None, &[("CLAUDE_CODEX_AUTH_TOKEN", "has space 0123456789")]).contains("auth_token"));
        assert!(err(Some(r#"{"auth_token": "with;semicolon-0123456789"}"#), &[]).contains("auth_token"));

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        std::fs::write(&file, "from-a-file-0123456789\n").unwrap();
        let path = file.to_str().unwrap();
        let c = load_with(None, &[("CLAUDE_CODEX_AUTH_TOKEN_FILE", path)], Flags::default()).unwrap();
        assert!(c.auth_token.unwrap().matches(b"from-a-file-0123456789"));
        let both = err(
            None,
            &[("CLAUDE_CODEX_AUTH_TOKEN_FILE", path), ("CLAUDE_CODEX_AUTH_TOKEN", "abcdef0123456789")],
        );
        assert!(both.contains("both set"), "{both}");
        let missing = err(None, &[("CLAUDE_CODEX_AUTH_TOKEN_FILE", "/nonexistent/token")]);
        assert!(
            missing.contains("auth_token_file cannot be read") && missing.contains("/nonexistent/token"),
            "{missing}"
        );
    }

    #[test]
    fn cache_mb_sets_sleds_cache() {
        assert_eq!(load_with(None, &[], Flags::default()).unwrap().cache_bytes, 16 * MIB);
        let config = load_with(None, &[("CLAUDE_CODEX_CACHE_MB", "512")], Flags::default()).unwrap();
        assert_eq!(config.cache_bytes, 512 * MIB);
        assert!(err(Some(r#"{"cache_mb": 0}"#), &[]).contains("cache_mb must be more than 0"));
    }

    #[test]
    fn compression_is_on_unless_turned_off() {
        assert!(load_with(None, &[], Flags::default()).unwrap().compression);
        assert!(
            !load_with(None, &[("CLAUDE_CODEX_COMPRESSION", "false")], Flags::default()).unwrap().compression
        );
    }

    #[test]
    fn fsync_is_on_unless_turned_off() {
        assert!(load_with(None, &[], Flags::default()).unwrap().fsync);
        assert!(!load_with(Some(r#"{"fsync": false}"#), &[], Flags::default()).unwrap().fsync);
        assert!(!load_with(None, &[("CLAUDE_CODEX_FSYNC", "off")], Flags::default()).unwrap().fsync);
        assert!(err(Some(r#"{"fsync": "maybe"}"#), &[]).contains("fsync must be true or false"));
    }

    #[test]
    fn exposure_beyond_loopback_needs_a_token_or_the_flag() {
        let with = |host: &str, token: bool, insecure: bool| Config {
            host: host.into(),
            auth_token: token.then(|| Token::parse("abcdef0123456789").unwrap()),
            insecure_no_auth: insecure,
            ..Config::default()
        };
        for host in ["127.0.0.1", "127.0.0.2", "localhost", "::1", "[::1]"] {
            assert_eq!(with(host, false, false).check_exposure(false), Ok(None), "{host}");
        }
        for host in ["0.0.0.0", "::", "192.168.2.3", "relay.lan"] {
            let refused = with(host, false, false).check_exposure(false).unwrap_err();
            assert!(refused.contains("--insecure-no-auth") && refused.contains("auth_token"), "{refused}");
            assert!(refused.contains("principals add"), "{refused}");
            let warning = with(host, false, true).check_exposure(false).unwrap().unwrap();
            assert!(warning.starts_with("WARNING") && warning.contains(host), "{warning}");
            // Credentials in clear text (a token, or principals'): started, with a warning that
            // names both fixes.
            for (token, principals) in [(true, false), (false, true)] {
                let clear = with(host, token, false).check_exposure(principals).unwrap().unwrap();
                assert!(clear.contains("tls_cert") && clear.contains("reverse proxy"), "{clear}");
            }
            let tls = Config {
                tls_cert: Some("c.pem".into()),
                tls_key: Some("k.pem".into()),
                ..with(host, true, false)
            };
            assert_eq!(tls.check_exposure(false), Ok(None), "{host}");
        }
    }

    #[test]
    fn tls_needs_both_the_certificate_and_the_key() {
        let e = err(Some(r#"{"tls_cert": "c.pem"}"#), &[]);
        assert!(e.contains("tls_key is needed with tls_cert"), "{e}");
        let e = err(None, &[("CLAUDE_CODEX_TLS_KEY", "k.pem")]);
        assert!(e.contains("tls_cert is needed with tls_key"), "{e}");
        let both =
            load_with(Some(r#"{"tls_cert": "c.pem", "tls_key": "k.pem"}"#), &[], Flags::default()).unwrap();
        assert_eq!((both.tls_cert.unwrap(), both.tls_key.unwrap()), ("c.pem".into(), "k.pem".into()));
    }

    #[test]
    fn readme_documents_every_key_with_its_variable() {
        let readme = include_str!("../README.md");
        for key in keys() {
            let row = format!("| `{key}` | `{}` |", env_var(key));
            assert!(readme.contains(&row), "README.md config table lacks the row for {key}");
        }
        let documented =
            readme.lines().filter(|l| l.starts_with("| `") && l.contains("`CLAUDE_CODEX_")).count();
        assert_eq!(documented, keys().count(), "README.md documents a key the relay does not have");
    }

    #[test]
    fn example_config_json_holds_the_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.json");
        let example = Config::load(Some(&path), |_| None, &Flags::default()).unwrap();
        assert_eq!(format!("{example:?}"), format!("{:?}", Config::default()));
    }

    #[test]
    fn blank_host_is_refused() {
        assert!(load_with(None, &[], Flags { host: Some(" ".into()), ..Flags::default() })
            .unwrap_err()
            .to_string()
            .contains("(from --host)"));
    }
}
