//! `search`: a running relay's full-text search, one line per hit with its matches starred.

use super::client::Client;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// The relay's base URL
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8010")]
    pub url: String,
    /// A file holding the credential (else CLAUDE_CODEX_AUTH_TOKEN, else CLAUDE_CODEX_TOKEN_FILE)
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// Only this channel
    #[arg(long, value_name = "CHANNEL")]
    pub target: Option<String>,
    /// At most this many results
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: u64,
    /// Best match first instead of newest first
    #[arg(long)]
    pub relevance: bool,
    /// The query
    #[arg(value_name = "QUERY", required = true, num_args = 1..)]
    pub query: Vec<String>,
}

/// Prints the hits of a search, newest (or best) first, and how many matched.
pub(super) fn search(args: &SearchArgs) -> anyhow::Result<ExitCode> {
    let order = if args.relevance { "relevance" } else { "newest" };
    let query = args.query.join(" ");
    let found = Client::new(&args.url, args.token_file.as_deref())?.search(
        &query,
        args.target.as_deref(),
        args.limit,
        order,
    )?;
    let hits = found["hits"].as_array().cloned().unwrap_or_default();
    for hit in &hits {
        let field = |name: &str| hit[name].as_str().unwrap_or_default().to_owned();
        let snippet = starred(&field("snippet"), &hit["highlights"]);
        println!(
            "{}",
            crate::message::summary_line(
                hit["id"].as_u64().unwrap_or(0),
                &field("sender"),
                &field("target"),
                &snippet
            )
        );
    }
    println!("{} of {} matching", hits.len(), found["total"].as_u64().unwrap_or(0));
    Ok(ExitCode::SUCCESS)
}

/// A search snippet with its matches (`[start, end)` in characters) between `*`.
fn starred(snippet: &str, highlights: &serde_json::Value) -> String {
    let mut marks: Vec<usize> = highlights
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r.as_array().into_iter().flatten().filter_map(|n| n.as_u64().map(|n| n as usize)))
        .collect();
    marks.sort_unstable();
    let mut out = String::with_capacity(snippet.len() + marks.len());
    let mut marks = marks.into_iter().peekable();
    for (at, c) in snippet.chars().enumerate() {
        while marks.next_if(|&m| m <= at).is_some() {
            out.push('*');
        }
        out.push(c);
    }
    // Matches that end with the snippet.
    out.extend(marks.map(|_| '*'));
    out
}
