//! The command line: `serve` (the default) and `rebuild`.

use crate::config::{Config, Flags};
use crate::server::Server;
use crate::{store, usage_log};
use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;

const ABOUT: &str =
    "A durable local message relay for coding agents (Claude Code, Codex, any MCP client) and their humans.";

const LONG_ABOUT: &str = "\
A durable local message relay for coding agents (Claude Code, Codex, any MCP client) and their
humans. Messages are appended to an event log on disk before they are acknowledged, so they
survive restarts and crashes.

Settings come from, highest first: flags, CLAUDE_CODEX_* environment variables, config.json
(or --config PATH), defaults. See README.md for every key.";

#[derive(Debug, Parser)]
#[command(name = "claude-codex-relay", version, about = ABOUT, long_about = LONG_ABOUT)]
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
    /// Drop the channel views and the text archive and rebuild them from the event log. The relay
    /// must be stopped.
    Rebuild(StoreArgs),
}

#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1; env CLAUDE_CODEX_HOST]
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,
    /// Port to listen on; 0 picks a free one [default: 8010; env CLAUDE_CODEX_PORT]
    #[arg(long, value_name = "PORT")]
    pub port: Option<u16>,
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

fn load_config(store: &StoreArgs, host: Option<String>, port: Option<u16>) -> anyhow::Result<Config> {
    let flags = Flags { host, port, data_dir: store.data_dir.clone() };
    Ok(Config::load(store.config.as_deref(), |var| std::env::var(var).ok(), &flags)?)
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => serve(cli.serve),
        Some(Command::Serve(args)) => serve(args),
        Some(Command::Rebuild(args)) => {
            let config = load_config(&args, None, None)?;
            let replayed = store::rebuild(&config.data_dir, Some(&config.archive()))?;
            println!(
                "rebuilt the channel views of {} and the archive {} from {replayed} events",
                config.data_dir.display(),
                config.channel_log_path.display()
            );
            Ok(())
        }
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(&args.store, args.host, args.port)?;
    let (log, _guard) = usage_log::open(&config.log_path, config.log_max_bytes, config.log_backup_count)
        .with_context(|| format!("cannot open the tool-usage log {}", config.log_path.display()))?;
    // Libraries' warnings (rmcp, warp, hyper) go to the same log. Only one subscriber per process.
    let _ = tracing::subscriber::set_global_default(usage_log::TracingBridge::new(
        log.new(slog::o!("component" => "lib")),
    ));
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let server = Server::bind(&config, log).await?;
        println!(
            "listening on http://{} (data: {}, {} messages)",
            server.local_addr(),
            config.data_dir.display(),
            server.relay().store().message_count()
        );
        std::io::stdout().flush()?;
        server.run(stop_signal()).await?;
        anyhow::Ok(())
    })
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
