//! The command line: `serve` (the default), `rebuild`, `replay`, `export`, `import` and `check`
//! on a data directory, `principals` on either, and `post`, `watch`, `search` and `bridge`,
//! which talk to a running relay over HTTP (`client`).

pub mod bridge;
mod client;
mod codex;
mod principals;
mod search;
pub mod watch;

use crate::config::{Config, Flags};
use crate::server::{Server, StartError};
use crate::store::{ExportFilter, ImportError, StoreError};
use crate::{store, usage_log};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use client::Client;
pub use search::SearchArgs;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use watch::WatchArgs;

const ABOUT: &str =
    "A durable local message relay for coding agents (Claude Code, Codex, any MCP client) and their humans.";

const LONG_ABOUT: &str = "\
A durable local message relay for coding agents (Claude Code, Codex, any MCP client) and their
humans. Messages are appended to an event log on disk before they are acknowledged, so they
survive restarts and crashes.

Settings come from, highest first: flags, CLAUDE_CODEX_* environment variables, config.json
(or --config PATH), defaults. See README.md for every key.";

/// `--version`: the crate's version and the commit it was built from (build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("RELAY_GIT_COMMIT"), ")");

#[derive(Debug, Parser)]
#[command(name = "claude-codex-relay", version = VERSION, about = ABOUT, long_about = LONG_ABOUT)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the relay (what happens with no subcommand).
    Serve(ServeArgs),
    /// Drop the channel views and the text archive and rebuild them from the event log (in nats
    /// mode, the stream). The relay must be stopped.
    Rebuild(StoreArgs),
    /// Rebuild every projection from the log, then rewrite the database into new files holding
    /// only live records. A running relay erases a redacted text from every file itself (from
    /// sled's by erasing the message's key: see docs/reliability.md); this erases the old
    /// versions of records a relay wrote before it sealed them with keys, and seals those
    /// records. The relay must be stopped.
    Compact(StoreArgs),
    /// Rebuild like `rebuild`, or with --print list the events as readable lines instead.
    Replay(ReplayArgs),
    /// Write the event log as JSON Lines, one event per line in id order. The relay must be
    /// stopped; from a running relay use GET /api/export. In nats mode it reads the stream, while
    /// the relays run.
    Export(ExportArgs),
    /// Append an exported log into an empty data dir (or, with --merge, a used one), keeping ids,
    /// then rebuild the views and the archive. The relay must be stopped. In nats mode, into an
    /// empty stream, keeping ids (the ids of a gap are taken by records taken out at once).
    Import(ImportArgs),
    /// Read the whole log (in nats mode, the stream) and the channel views and report any damage
    /// or difference; changes nothing. Exit 0 when sound, 1 otherwise. The relay must be stopped.
    Check(StoreArgs),
    /// Post a message to a running relay (for scripts). Sends the credential in --token-file,
    /// else CLAUDE_CODEX_AUTH_TOKEN, else the file CLAUDE_CODEX_TOKEN_FILE names; over https, trusts the certificates in the PEM file
    /// CLAUDE_CODEX_TLS_CA (else SSL_CERT_FILE's, else the system's), as watch, search and bridge do.
    Post(PostArgs),
    /// Take a message back on a running relay (or, with --channel, every message of a channel):
    /// from then on every front door, search and export show it as a tombstone (id, channel,
    /// sender, time, reply link) reading "redacted by NAME: REASON", and its text is erased from
    /// the relay's files (from sled's by erasing the key its record was sealed with; a record an
    /// older relay wrote unsealed only by `compact`; in nats mode the stream's record on every
    /// server, its raft logs at JetStream's next snapshot: see docs/reliability.md). Its sender, a person who may post to the channel, or an admin may
    /// (anyone on an open relay). Sends its credential as post does.
    Redact(RedactArgs),
    /// Follow a channel on a running relay: print each new message, optionally run a command per
    /// batch (for example `codex exec`). Waits on the relay instead of polling. Sends its
    /// credential as post does.
    Watch(WatchArgs),
    /// Serve the relay's tools over stdio, forwarded to a running relay, and wake the session
    /// when someone else posts on a followed channel. For Claude Code:
    /// `claude mcp add relay -- claude-codex-relay bridge --as claude --follow proj-x`.
    Bridge(bridge::BridgeArgs),
    /// Manage who may speak: add principals (agents, people, admins) with their own
    /// credentials, list them, issue more credentials, revoke, change what they may read and
    /// post to. On a stopped data directory, or on a running relay with --url and an admin
    /// credential (CLAUDE_CODEX_AUTH_TOKEN or --token-file).
    Principals(PrincipalsArgs),
    /// Search every message of a running relay: words (all must match), "exact phrases",
    /// sender:NAME, channel:NAME, id:[100 TO 200], OR, -word. Newest first.
    Search(SearchArgs),
    /// Ask a running relay whether it takes posts (GET /readyz, which needs no credential):
    /// prints `ready` and exits 0, or prints why not and exits 1. For health checks (the
    /// container image's). Without --url: the relay this machine's settings describe, on
    /// 127.0.0.1 at their port (https://localhost with tls_cert, trusting CLAUDE_CODEX_TLS_CA).
    Ready {
        /// The relay's base URL
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Config file to read the port from [default: ./config.json when it exists]
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Print a completion script for a shell. bash: `claude-codex-relay completions bash >
    /// /etc/bash_completion.d/claude-codex-relay`; zsh: into a directory on $fpath as
    /// `_claude-codex-relay`; fish: `~/.config/fish/completions/claude-codex-relay.fish`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `claude-codex-relay man > claude-codex-relay.1`, then
    /// `man ./claude-codex-relay.1`, or install it under /usr/local/share/man/man1.
    Man,
}

#[derive(Debug, Clone, Args)]
pub struct PrincipalsArgs {
    #[command(subcommand)]
    pub action: principals::Action,
    /// A running relay's base URL; without it, the stopped data directory is changed
    #[arg(long, value_name = "URL", global = true)]
    pub url: Option<String>,
    /// A file holding an admin credential for --url (else CLAUDE_CODEX_AUTH_TOKEN, else CLAUDE_CODEX_TOKEN_FILE)
    #[arg(long, value_name = "FILE", global = true)]
    pub token_file: Option<PathBuf>,
    /// Config file [default: ./config.json when it exists]
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory holding the event log [default: storage; env CLAUDE_CODEX_DATA_DIR]
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PostArgs {
    /// The relay's base URL
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8010")]
    pub url: String,
    /// The channel
    #[arg(long, value_name = "CHANNEL")]
    pub target: String,
    /// Who is posting; with a principal's credential, leave it out (it posts as the principal)
    #[arg(long, value_name = "SENDER")]
    pub sender: Option<String>,
    /// A file holding the credential (else CLAUDE_CODEX_AUTH_TOKEN, else CLAUDE_CODEX_TOKEN_FILE)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The message; `-` or nothing reads it from standard input
    #[arg(value_name = "TEXT")]
    pub text: Option<String>,
    /// The id of the message this answers (in the same channel)
    #[arg(long, value_name = "ID")]
    pub reply_to: Option<u64>,
}

#[derive(Debug, Clone, Args)]
pub struct RedactArgs {
    /// The relay's base URL
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8010")]
    pub url: String,
    /// The id of the message to take back
    #[arg(value_name = "ID", required_unless_present = "channel")]
    pub id: Option<u64>,
    /// Take back every message of this channel instead (an admin's, once principals exist)
    #[arg(long, value_name = "CHANNEL", conflicts_with = "id")]
    pub channel: Option<String>,
    /// Why, shown in its place (one line, at most 500 characters)
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub reason: String,
    /// Who is redacting, on a relay without principals; with a principal's credential, leave it
    /// out (it redacts as the principal)
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
    /// A file holding the credential (else CLAUDE_CODEX_AUTH_TOKEN, else CLAUDE_CODEX_TOKEN_FILE)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Print each event as `#id [sender -> target] first line of text` instead of rebuilding (in
    /// nats mode, the stream's events, while the relays run)
    #[arg(long)]
    pub print: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to FILE instead of standard output
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Only this channel's messages
    #[arg(long, value_name = "CHANNEL")]
    pub target: Option<String>,
    /// Only events with a greater id
    #[arg(long, value_name = "ID", default_value_t = 0)]
    pub since_id: u64,
    /// Only events up to and including this id
    #[arg(long, value_name = "ID")]
    pub until_id: Option<u64>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// A file written by `export`
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Import into a store that already holds messages: ids it has with the same content are
    /// skipped, an id it has with other content is an error
    #[arg(long)]
    pub merge: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1; env CLAUDE_CODEX_HOST]
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8010; env CLAUDE_CODEX_PORT]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
    /// Allow listening beyond loopback without auth_token (anyone who can reach the address can
    /// read and post); a warning is printed on every start
    #[arg(long)]
    pub insecure_no_auth: bool,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Clone, Default, Args)]
pub struct StoreArgs {
    /// Config file [default: ./config.json when it exists]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Data directory holding the event log [default: storage; env CLAUDE_CODEX_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
}

/// Loads the settings; what loading found odd (a key the relay does not know) is printed.
fn load_config(store: &StoreArgs, flags: Flags) -> anyhow::Result<Config> {
    let flags = Flags { data_dir: store.data_dir.clone(), ..flags };
    let config = Config::load(store.config.as_deref(), |var| std::env::var(var).ok(), &flags)?;
    for warning in &config.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(config)
}

/// Runs a command; the exit code is 0 unless `check` found damage (errors are `Err`).
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Completions { shell }) => {
            let mut command = <Cli as clap::CommandFactory>::command();
            let name = command.get_name().to_owned();
            clap_complete::generate(shell, &mut command, name, &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Ready { url, config }) => {
            let url = match url {
                Some(url) => url,
                None => {
                    let config = load_config(&StoreArgs { config, data_dir: None }, Flags::default())?;
                    match config.tls_cert {
                        Some(_) => format!("https://localhost:{}", config.port),
                        None => format!("http://127.0.0.1:{}", config.port),
                    }
                }
            };
            Client::new(&url, None)?.ready()?;
            println!("ready");
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Man) => {
            let command = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(command)
                .render(&mut std::io::stdout())
                .context("writing the manual page")?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Rebuild(args)) => rebuild(&args),
        Some(Command::Compact(args)) => {
            let config = load_config(&args, Flags::default())?;
            let report =
                store::compact(&config.data_dir, Some(&config.archive()), &config.log, &mut |_, _| {})
                    .map_err(|e| advise(e, &config.data_dir))?;
            println!(
                "compacted {}: replayed {} events; the database went from {} to {} bytes",
                config.data_dir.display(),
                report.replayed,
                report.before,
                report.after
            );
            if report.sealed > 0 {
                println!("sealed {} records of messages an older relay wrote unsealed", report.sealed);
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Replay(args)) if !args.print => rebuild(&args.store),
        Some(Command::Replay(args)) => {
            let config = load_config(&args.store, Flags::default())?;
            let data_dir = &config.data_dir;
            store::replay_print(data_dir, &config.log, &mut std::io::stdout().lock())
                .map_err(|e| advise(e, data_dir))?;
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Export(args)) => export(&args),
        Some(Command::Import(args)) => {
            let config = load_config(&args.store, Flags::default())?;
            let advised = |e| match e {
                ImportError::Store(e) => advise(e, &config.data_dir),
                other => other.into(),
            };
            let (archive, options) = (config.archive(), config.store_options());
            let report =
                store::import(&config.data_dir, &config.log, &args.file, args.merge, Some(&archive), options)
                    .map_err(advised)?;
            println!(
                "imported {} events into {} ({} already there, skipped)",
                report.imported, report.into, report.skipped
            );
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Post(args)) => {
            let text = match args.text.as_deref() {
                Some(text) if text != "-" => text.to_owned(),
                _ => {
                    std::io::read_to_string(std::io::stdin()).context("cannot read the message from stdin")?
                }
            };
            let client = Client::new(&args.url, args.token_file.as_deref())?;
            let id = client.post(&args.target, args.sender.as_deref(), &text, args.reply_to)?;
            println!("posted #{id}");
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Redact(args)) => {
            let client = Client::new(&args.url, args.token_file.as_deref())?;
            let body = serde_json::json!({"reason": args.reason, "by": args.by});
            match (args.id, &args.channel) {
                (Some(id), _) => {
                    let reply = client.call("DELETE", &format!("/api/messages/{id}"), Some(&body))?;
                    println!("#{id} {}", reply["message"]["text"].as_str().unwrap_or("redacted"));
                }
                (None, channel) => {
                    let channel = channel.as_deref().unwrap_or_default();
                    let path = format!("/api/channels/{}", crate::http::request::path_segment(channel));
                    let reply = client.call("DELETE", &path, Some(&body))?;
                    println!("redacted {} messages of {channel}", reply["redacted"].as_u64().unwrap_or(0));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Watch(args)) => watch::watch(&args),
        Some(Command::Bridge(args)) => bridge::bridge(args),
        Some(Command::Search(args)) => search::search(&args),
        Some(Command::Principals(args)) => {
            let lines = match &args.url {
                Some(url) => {
                    principals::remote(&args.action, &Client::new(url, args.token_file.as_deref())?)?
                }
                None => principals_here(&args)?,
            };
            for line in lines {
                println!("{line}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(Command::Check(args)) => {
            let config = load_config(&args, Flags::default())?;
            let report =
                store::check(&config.data_dir, &config.log).map_err(|e| advise(e, &config.data_dir))?;
            if report.problems.is_empty() {
                println!("{}: {} events, log and views sound", config.data_dir.display(), report.events);
                return Ok(ExitCode::SUCCESS);
            }
            for problem in &report.problems {
                println!("{problem}");
            }
            println!(
                "{}: {} events, {} problem{}; starting the relay or `rebuild` repairs the views, not the log",
                config.data_dir.display(),
                report.events,
                report.problems.len(),
                if report.problems.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `principals` on the stopped data directory: its store opened as the relay opens it.
fn principals_here(args: &PrincipalsArgs) -> anyhow::Result<Vec<String>> {
    let store = StoreArgs { config: args.config.clone(), data_dir: args.data_dir.clone() };
    let config = load_config(&store, Flags::default())?;
    let logger = usage_log::discard();
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let store =
        store::Store::open_on(&config.data_dir, None, config.store_options(), &config.log, logger.clone())
            .map_err(|e| match e {
                e @ StoreError::Locked { .. } => {
                    anyhow::anyhow!("{e}; stop it, or manage principals on the running relay with --url")
                }
                e => advise(e, &config.data_dir),
            })?;
    let relay = crate::relay::Relay::new(store, config.relay_settings(), logger);
    let lines = runtime.block_on(principals::local(&args.action, &relay));
    runtime.block_on(relay.close()).map_err(|e| advise(e, &config.data_dir))?;
    lines
}

fn rebuild(args: &StoreArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(args, Flags::default())?;
    // A progress bar on a terminal; nothing when the output goes to a file or a pipe.
    let bar = std::io::stdout().is_terminal().then(|| {
        indicatif::ProgressBar::new(0).with_style(
            indicatif::ProgressStyle::with_template("rebuilding {bar:40} {pos}/{len} ids ({eta} left)")
                .expect("a valid progress template"),
        )
    });
    let mut progress = |at: u64, last: u64| {
        if let Some(bar) = &bar {
            bar.set_length(last);
            bar.set_position(at);
        }
    };
    let replayed = store::rebuild(&config.data_dir, Some(&config.archive()), &config.log, &mut progress)
        .map_err(|e| advise(e, &config.data_dir))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    println!(
        "rebuilt the channel views of {} and the archive {} from {replayed} events",
        config.data_dir.display(),
        config.channel_log_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn export(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.store, Flags::default())?;
    let filter =
        ExportFilter { target: args.target.clone(), since_id: args.since_id, until_id: args.until_id };
    let mut out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    match store::export(&config.data_dir, &config.log, &filter, &mut out) {
        Err(e @ StoreError::Locked { .. }) => {
            anyhow::bail!(
                "{e}; stop it, or export from the running relay: curl -s http://HOST:PORT/api/export"
            )
        }
        result => result.map_err(|e| advise(e, &config.data_dir))?,
    };
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let flags =
        Flags { host: args.host, port: args.port, insecure_no_auth: args.insecure_no_auth, data_dir: None };
    let config = load_config(&args.store, flags)?;
    let (logger, _guard) =
        usage_log::open(&config.log_path, config.log_max_bytes, config.log_backup_count)
            .with_context(|| format!("cannot open the tool-usage log {}", config.log_path.display()))?;
    // The settings' warnings, printed already, go to the log too.
    for warning in &config.warnings {
        slog::info!(logger, "config_warning"; "warning" => warning);
    }
    // Libraries' warnings (rmcp, warp, hyper) go to the same log. Only one subscriber per process.
    let _ = tracing::subscriber::set_global_default(usage_log::TracingBridge::new(
        logger.new(slog::o!("component" => "lib")),
    ));
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&config, logger).await.map_err(|e| match e {
            StartError::Store(e) => advise(e, &config.data_dir),
            other => other.into(),
        })?;
        println!(
            "listening on {} (data: {}, {} messages)",
            server.url(),
            config.data_dir.display(),
            server.relay().message_count()
        );
        std::io::stdout().flush()?;
        server.run(stop_signal()).await?;
        anyhow::Ok(ExitCode::SUCCESS)
    })
}

/// A store error with what to do about it, for someone at a terminal.
fn advise(e: StoreError, data_dir: &Path) -> anyhow::Error {
    let check = format!("claude-codex-relay check --data-dir {}", data_dir.display());
    match &e {
        StoreError::Locked { .. } => anyhow::anyhow!("{e}; stop it or pass --data-dir"),
        StoreError::NoStore { .. } => anyhow::anyhow!("{e}; pass the --data-dir the relay uses"),
        StoreError::Corrupt { what, place: Some(place) } => anyhow::anyhow!(
            "the data is damaged: {what} (in {}; nothing was changed: run `{check}` to list every damaged \
             record, then restore a backup or import an export)",
            place.display()
        ),
        StoreError::Corrupt { .. } => {
            anyhow::anyhow!("{e}; run `{check}` to list the damage (`rebuild` repairs the channel views)")
        }
        StoreError::DiskFull(_) => anyhow::anyhow!("{e}; free space, then try again"),
        _ => e.into(),
    }
}

/// Completes on SIGINT or SIGTERM.
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
