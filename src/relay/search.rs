//! Search: the store's full-text index, asked through the service like every other read.

use super::caller::Caller;
use super::read::Page;
use super::service::{Relay, RelayError};
use crate::store::{Hit, SearchError, SearchOrder, StoreError};
use crate::values::{Invalid, Name};
use slog::info;

impl Relay {
    /// Messages matching the full-text `query` (in `target` when given), at most `limit`,
    /// newest or best first, and how many match in all. A query that cannot be parsed is refused naming what is wrong.
    pub async fn search(
        &self,
        query: &str,
        target: Option<&str>,
        order: SearchOrder,
        limit: usize,
        caller: &Caller,
    ) -> Result<(Vec<Hit>, u64), RelayError> {
        if query.trim().is_empty() {
            return Err(Invalid::new(
                "q",
                "must not be empty: words, \"a phrase\", sender:NAME, channel:NAME",
            )
            .into());
        }
        // Within the channel asked for, or for a principal, within those it may read.
        let within: Option<Vec<String>> = match target {
            Some(target) => Some(vec![self.readable(target, caller)?.as_str().to_owned()]),
            None if caller.name().is_some() => Some(
                self.inner.store.channels().into_iter().map(|c| c.name).filter(|c| caller.sees(c)).collect(),
            ),
            None => None,
        };
        let (store, query_text) = (self.inner.store.clone(), query.to_owned());
        let found =
            tokio::task::spawn_blocking(move || store.search(&query_text, within.as_deref(), order, limit))
                .await
                .map_err(|e| StoreError::Crashed(format!("a search failed: {e}")))?;
        let (hits, total) = match found {
            Ok(found) => found,
            Err(SearchError::Query(why)) => return Err(Invalid::new("q", why).into()),
            Err(off @ SearchError::Off) => return Err(RelayError::Off(off.to_string())),
            Err(SearchError::Store(e)) => return Err(e.into()),
        };
        info!(self.inner.usage_log, "search_messages";
            "query" => query, "returned" => hits.len(), "total" => total, "source" => caller.source.as_str());
        Ok((hits, total))
    }

    /// The messages of `target` matching `query`, newest first, whole (MCP's fetch_messages with
    /// `q`); `latest_id` is the newest of them.
    pub async fn search_page(
        &self,
        query: &str,
        target: &str,
        limit: usize,
        caller: &Caller,
    ) -> Result<Page, RelayError> {
        let (hits, _) = self.search(query, Some(target), SearchOrder::Newest, limit, caller).await?;
        let target = Name::parse("target", target)?;
        let mut messages = Vec::with_capacity(hits.len());
        for hit in hits {
            messages.push(self.message_of(&target, hit.id, "q").await?);
        }
        let latest_id = messages.first().map_or(0, |m| m.id);
        Ok(Page { latest_id, ..self.page(target, messages, 0) })
    }
}
