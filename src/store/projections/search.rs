//! Full-text search over every message: a projection of the log into a tantivy index in the
//! data directory (`search/`), like the channel views and the archive. Its own thread follows
//! the log, never the request path: posts do not wait for it, and it may lag behind them.
//!
//! A redacted message's document is deleted when its redaction is applied, and the segments
//! that held it are rewritten without it after the commit ([`SearchIndex::erase`]); the store
//! leaves it out of the hits from the start (`Store::search`). Expired messages
//! (`MessagesExpired`) are deleted by a query on their channel and ids.
//!
//! Checkpoint: each tantivy commit carries, as its payload, the id of the last event it holds.
//! Documents added after the last commit are lost in a crash and added again from the
//! checkpoint on the next start, so the index holds every message once.
//!
//! Queries: words (all of them must match), "exact phrases", `sender:NAME`, `channel:NAME`,
//! ranges `id:[100 TO 200]` and `ts:[1795000000 TO 1796000000]` (seconds), `OR`, `-word`.
//!
//! Phrases: besides its words with their positions, each text is indexed as its adjacent word
//! pairs (`pairs`, one term per pair, no positions). A phrase of two words is then one term to
//! look up, not two lists of positions to walk (49 ms at 1M messages when both words are in
//! every one); a longer phrase must have all its pairs, then its words in place
//! ([`SearchIndex::by_pairs`]).

use crate::event::Event;
use crate::store::event_log::EventLog;
use crate::store::projections::projector::{events_after, Group, Groups};
use crate::store::StoreError;
use std::collections::VecDeque;
use std::ops::Bound::{Included, Unbounded};
use std::path::Path;
use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, Occur, QueryParser, QueryParserError, RangeQuery, TermQuery};
use tantivy::query_grammar::{UserInputAst, UserInputLeaf, UserInputLiteral};
use tantivy::schema::IndexRecordOption::{Basic, WithFreqs};
use tantivy::schema::{
    Field, Schema, TextFieldIndexing, TextOptions, Value, FAST, INDEXED, STORED, STRING, TEXT,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{BoxTokenStream, TextAnalyzer, Token, TokenStream, Tokenizer};
use tantivy::{doc, DocAddress, Index, IndexReader, IndexWriter, Order, ReloadPolicy, TantivyDocument, Term};

/// The index's folder in the data directory.
pub(crate) const DIR: &str = "search";
/// Events read from the log per batch.
const CHUNK: usize = 4096;
/// Characters of a message shown when no word of it matched.
const SNIPPET_CHARS: usize = 150;
/// The indexing thread's memory budget (tantivy's smallest is 15 MB).
const WRITER_BYTES: usize = 32 << 20;

#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// The query cannot be parsed: the caller's mistake (400).
    #[error("q: {0}")]
    Query(String),
    /// This relay keeps no index (`search: false` in its settings).
    #[error("search is turned off in this relay's settings (search: false); set it to true and restart the relay to build the index")]
    Off,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One message found: where it is, and the part of its text that matched, as plain text with
/// the matched words' places in it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Hit {
    pub id: u64,
    pub target: String,
    pub sender: String,
    pub ts: f64,
    /// A part of the text: around the matches, or its start when only other fields matched.
    pub snippet: String,
    /// Where the matches lie in `snippet`: `[start, end)` in characters (Unicode scalar
    /// values), in order, not overlapping.
    pub highlights: Vec<[usize; 2]>,
}

impl Hit {
    /// The snippet cut at its highlights: each piece with whether it is a match.
    pub fn pieces(&self) -> Vec<(&str, bool)> {
        let byte =
            |chars: usize| self.snippet.char_indices().nth(chars).map_or(self.snippet.len(), |(at, _)| at);
        let (mut pieces, mut at) = (Vec::new(), 0);
        for &[start, end] in &self.highlights {
            let (start, end) = (byte(start).max(at), byte(end).max(at));
            if start > at {
                pieces.push((&self.snippet[at..start], false));
            }
            if end > start {
                pieces.push((&self.snippet[start..end], true));
            }
            at = end;
        }
        if at < self.snippet.len() {
            pieces.push((&self.snippet[at..], false));
        }
        pieces
    }
}

/// Newest first, or best match first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SearchOrder {
    #[default]
    Newest,
    Relevance,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    ts: Field,
    channel: Field,
    sender: Field,
    text: Field,
    pairs: Field,
}

/// The tokenizer of the `pairs` field: the text's words (as the `text` field splits them), each
/// with the next one when nothing lies between them, as one token ("review packet").
#[derive(Clone)]
struct Pairs(TextAnalyzer);

/// The name [`Pairs`] is registered under, and the field it fills.
const PAIRS: &str = "pairs";

impl Tokenizer for Pairs {
    type TokenStream<'a> = PairStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> PairStream<'a> {
        PairStream {
            words: self.0.token_stream(text),
            before: None,
            word: String::new(),
            pair: Token::default(),
        }
    }
}

/// [`Pairs`]' tokens, made as the words come (indexing allocates nothing per word).
struct PairStream<'a> {
    words: BoxTokenStream<'a>,
    /// The position and start of the word before, whose text is in `word`.
    before: Option<(usize, usize)>,
    word: String,
    pair: Token,
}

impl TokenStream for PairStream<'_> {
    fn advance(&mut self) -> bool {
        while self.words.advance() {
            let word = self.words.token();
            let before = self.before.replace((word.position, word.offset_from));
            let joined = before.filter(|&(at, _)| at + 1 == word.position);
            if let Some((_, from)) = joined {
                let at = if self.pair.text.is_empty() { 0 } else { self.pair.position + 1 };
                self.pair.text.clear();
                self.pair.text.push_str(&self.word);
                self.pair.text.push(' ');
                self.pair.text.push_str(&word.text);
                (self.pair.position, self.pair.offset_from, self.pair.offset_to) = (at, from, word.offset_to);
            }
            self.word.clear();
            self.word.push_str(&word.text);
            if joined.is_some() {
                return true;
            }
        }
        false
    }

    fn token(&self) -> &Token {
        &self.pair
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.pair
    }
}

/// The tokens `analyzer` makes of `text`.
fn words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<Token> {
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    while let Some(word) = stream.next() {
        words.push(word.clone());
    }
    words
}

/// Whether two words follow each other in their text (no word dropped between them).
fn adjacent(two: &[Token]) -> bool {
    two[0].position + 1 == two[1].position
}

pub(crate) struct SearchIndex {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// Set when a redacted message's document was deleted: its segment is to be rewritten.
    deleted: std::sync::atomic::AtomicBool,
    /// Set when expired messages' documents were deleted: segments they left mostly empty are
    /// to be rewritten.
    expired: std::sync::atomic::AtomicBool,
    /// The file [`ERASE_STATE`] names.
    erase_state: std::path::PathBuf,
}

/// A file in the data directory that says whether redacted messages' documents may still be in
/// the index's files: "pending" from before the commit that deletes them (made durable first)
/// until their segments are rewritten, then "done". Expiries delete documents too, which need
/// no rewrite; this tells the two apart at start, so a relay with retention does not open the
/// index's writer and rewrite segments each time it starts. Without the file (an index made
/// before it existed), any segment with deletions counts as pending.
const ERASE_STATE: &str = "search.erase";

/// Share of a segment's documents that, once deleted by expiries, has it rewritten: the index
/// stays within about 1.25x of what it holds.
const RECLAIM_SHARE: f64 = 0.2;

fn failed(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::corrupt(format!("search index: {what}: {e}"))
}

/// The index's layout: its schema and fields.
fn schema() -> (Schema, Fields) {
    let mut schema = Schema::builder();
    let pairs = TextFieldIndexing::default().set_tokenizer(PAIRS).set_index_option(WithFreqs);
    let fields = Fields {
        id: schema.add_u64_field("id", INDEXED | STORED | FAST),
        ts: schema.add_f64_field("ts", INDEXED | STORED),
        channel: schema.add_text_field("channel", STRING | STORED),
        sender: schema.add_text_field("sender", STRING | STORED),
        text: schema.add_text_field("text", TEXT | STORED),
        pairs: schema.add_text_field(PAIRS, TextOptions::default().set_indexing_options(pairs)),
    };
    (schema.build(), fields)
}

/// Where an index being removed goes first: a removal cut short leaves no part of it in `DIR`.
const OLD_DIR: &str = "search.old";

/// Removes `path` and everything in it; nothing there is fine.
fn remove(path: &Path) -> Result<(), StoreError> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StoreError::io(format!("cannot remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Removes the index in `dir` (the data directory): renamed away first, then deleted.
fn remove_index(dir: &Path) -> Result<(), StoreError> {
    let (path, old) = (dir.join(DIR), dir.join(OLD_DIR));
    match std::fs::rename(&path, &old) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(StoreError::io(format!("cannot move {} away", path.display()), e))
        }
        _ => remove(&old),
    }
}

/// Whether the index in `dir` (the data directory) has this version's layout; `check` compares
/// only such an index with the log (an older one is indexed again at the next start).
pub(crate) fn laid_out_now(dir: &Path) -> Result<bool, StoreError> {
    let index = Index::open_in_dir(dir.join(DIR)).map_err(|e| failed("opening", e))?;
    Ok(index.schema() == schema().0)
}

impl SearchIndex {
    /// Opens the index in `dir` (the data directory), creating it when there is none.
    pub(crate) fn open(dir: &Path) -> Result<SearchIndex, StoreError> {
        let (schema, fields) = schema();
        let path = dir.join(DIR);
        // A removal cut short (below) leaves this: files no index tracks.
        remove(&dir.join(OLD_DIR))?;
        let existed = path.join("meta.json").exists();
        let open = || {
            std::fs::create_dir_all(&path)
                .map_err(|e| StoreError::io(format!("cannot create {}", path.display()), e))?;
            let directory =
                tantivy::directory::MmapDirectory::open(&path).map_err(|e| failed("opening", e))?;
            Ok::<_, StoreError>(Index::open_or_create(directory, schema.clone()))
        };
        let index = match open()? {
            // An index of an older layout (before `pairs`): indexed again from the log, like a
            // new one.
            Err(tantivy::TantivyError::SchemaError(_)) => {
                remove_index(dir)?;
                open()?
            }
            opened => opened,
        }
        .map_err(|e| failed("opening", e))?;
        let words = index.tokenizer_for_field(fields.text).map_err(|e| failed("opening", e))?;
        index.tokenizers().register(PAIRS, Pairs(words));
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()
            .map_err(|e| failed("opening a reader", e))?;
        let erase_state = dir.join(ERASE_STATE);
        let (deleted, expired) = Default::default();
        let opened = SearchIndex { index, reader, fields, deleted, expired, erase_state };
        if !existed {
            opened.set_erase_state("done")?;
        }
        Ok(opened)
    }

    /// Whether redacted messages' documents may still be in the index's files (see
    /// [`ERASE_STATE`]).
    pub(crate) fn erase_pending(&self) -> Result<bool, StoreError> {
        match std::fs::read(&self.erase_state) {
            Ok(state) => Ok(state != b"done"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(self.segments()?.iter().any(|m| m.has_deletes()))
            }
            Err(e) => Err(StoreError::io(format!("cannot read {}", self.erase_state.display()), e)),
        }
    }

    /// Writes `state` to [`ERASE_STATE`], durably (a torn write reads as pending).
    fn set_erase_state(&self, state: &str) -> Result<(), StoreError> {
        let path = &self.erase_state;
        let written = std::fs::File::create(path).and_then(|mut file| {
            std::io::Write::write_all(&mut file, state.as_bytes())?;
            file.sync_all()
        });
        let folder = path.parent().map(std::fs::File::open);
        written
            .and_then(|()| folder.map_or(Ok(()), |f| f.and_then(|f| f.sync_all())))
            .map_err(|e| StoreError::io(format!("cannot write {}", path.display()), e))
    }

    /// The id of the last event the index holds (0 for a new index).
    pub(crate) fn checkpoint(&self) -> Result<u64, StoreError> {
        let metas = self.index.load_metas().map_err(|e| failed("reading its metadata", e))?;
        Ok(metas.payload.and_then(|p| p.parse().ok()).unwrap_or(0))
    }

    pub(crate) fn writer(&self) -> Result<IndexWriter, StoreError> {
        self.index.writer_with_num_threads(1, WRITER_BYTES).map_err(|e| failed("opening its writer", e))
    }

    /// Indexes the messages after `from` up to `upto` (from the groups `fed` when they hold
    /// them, else from the log) and commits them with `upto`'s id as the checkpoint; returns the
    /// new checkpoint.
    pub(crate) fn follow(
        &self,
        writer: &mut IndexWriter,
        log: &dyn EventLog,
        fed: &mut VecDeque<Group>,
        mut from: u64,
        upto: u64,
    ) -> Result<u64, StoreError> {
        let (start, mut redacted) = (from, false);
        while from < upto {
            let events = events_after(log, fed, from, upto, CHUNK)?;
            let Some(last) = events.last().map(Event::id) else { break };
            let f = self.fields;
            for event in &events {
                match event {
                    Event::MessagePosted(m) => {
                        let document = doc!(f.id => m.id, f.ts => m.ts, f.channel => m.target.as_str(),
                            f.sender => m.sender.as_str(), f.text => m.text.as_str(), f.pairs => m.text.as_str());
                        writer.add_document(document).map_err(|e| failed("adding a message", e))?;
                    }
                    Event::MessageRedacted(r) => {
                        writer.delete_term(Term::from_field_u64(f.id, r.message));
                        redacted = true;
                    }
                    // Expired: deleted, and left to tantivy's merges (not erasure).
                    Event::MessagesExpired(x) => {
                        writer
                            .delete_query(Box::new(self.upto(&x.target, x.upto)))
                            .map_err(|e| failed("deleting expired messages", e))?;
                        self.expired.store(true, std::sync::atomic::Ordering::Relaxed);
                    }
                    _ => {}
                }
            }
            from = last;
        }
        if redacted {
            self.set_erase_state("pending")?;
            self.deleted.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if from > start {
            let mut commit = writer.prepare_commit().map_err(|e| failed("committing", e))?;
            commit.set_payload(&from.to_string());
            commit.commit().map_err(|e| failed("committing", e))?;
        }
        Ok(from)
    }

    pub(crate) fn segments(&self) -> Result<Vec<tantivy::index::SegmentMeta>, StoreError> {
        self.index.searchable_segment_metas().map_err(|e| failed("reading its segments", e))
    }

    /// Rewrites each segment that holds deleted (redacted) messages without them, and removes
    /// the files no segment uses any more: a redacted text leaves the index's files. The
    /// search thread tries it on start and after each commit that deleted documents, until it
    /// succeeds (a merge tantivy runs on its own may hold a segment meanwhile; it drops the
    /// deletions too).
    fn erase(&self, writer: &mut IndexWriter) -> Result<(), StoreError> {
        self.rewrite(writer, |m| m.has_deletes())
    }

    /// Rewrites the segments expiries left with more than [`RECLAIM_SHARE`] of their documents
    /// deleted, so the disk the index takes follows what it holds.
    fn reclaim(&self, writer: &mut IndexWriter) -> Result<(), StoreError> {
        let share =
            |m: &tantivy::index::SegmentMeta| f64::from(m.num_deleted_docs()) / f64::from(m.max_doc().max(1));
        self.rewrite(writer, |m| share(m) > RECLAIM_SHARE)
    }

    /// Rewrites the segments `chosen` picks as one, without their deleted documents, and
    /// removes the files no segment uses any more.
    fn rewrite(
        &self,
        writer: &mut IndexWriter,
        chosen: impl Fn(&tantivy::index::SegmentMeta) -> bool,
    ) -> Result<(), StoreError> {
        let deleted: Vec<_> = self.segments()?.iter().filter(|m| chosen(m)).map(|m| m.id()).collect();
        if deleted.is_empty() {
            return Ok(());
        }
        writer
            .merge(&deleted)
            .wait()
            .map_err(|e| failed("rewriting segments without deleted messages", e))?;
        writer.garbage_collect_files().wait().map_err(|e| failed("removing unused files", e))?;
        Ok(())
    }

    /// Messages matching `query` (within the channels `within` when given), at most `limit`,
    /// and how many match in all.
    pub fn search(
        &self,
        query: &str,
        within: Option<&[String]>,
        order: SearchOrder,
        limit: usize,
    ) -> Result<(Vec<Hit>, u64), SearchError> {
        let f = self.fields;
        let mut parser = QueryParser::for_index(&self.index, vec![f.text]);
        parser.set_conjunction_by_default();
        let text = match within {
            // A channel name is one term: quoted, any character in it is literal.
            Some(channels) => {
                let quoted = |c: &String| format!("channel:\"{}\"", c.replace(['\\', '"'], " "));
                let any: Vec<String> = channels.iter().map(quoted).collect();
                if any.is_empty() {
                    // Within no channel: the query is still checked.
                    parser.parse_query(query).map_err(|e| SearchError::Query(e.to_string()))?;
                    return Ok((Vec::new(), 0));
                }
                format!("({query}) AND ({})", any.join(" OR "))
            }
            None => query.to_owned(),
        };
        let ast = tantivy::query_grammar::parse_query(&text)
            .map_err(|_| SearchError::Query(QueryParserError::SyntaxError(text.clone()).to_string()))?;
        let build =
            |ast| parser.build_query_from_user_input_ast(ast).map_err(|e| SearchError::Query(e.to_string()));
        // The query as written gives the snippets' highlights (its terms); the one searched
        // looks its phrases up by their pairs.
        let parsed = build(ast.clone())?;
        let searched = build(self.by_pairs(ast)?)?;
        self.reader.reload().map_err(|e| failed("reloading", e))?;
        let searcher = self.reader.searcher();
        let top = TopDocs::with_limit(limit.max(1));
        let (found, total): (Vec<DocAddress>, usize) = match order {
            SearchOrder::Newest => {
                let newest = top.order_by_fast_field::<u64>("id", Order::Desc);
                let (top, total) =
                    searcher.search(&searched, &(newest, Count)).map_err(|e| failed("searching", e))?;
                (top.into_iter().map(|(_, at)| at).collect(), total)
            }
            SearchOrder::Relevance => {
                let best = top.order_by_score();
                let (top, total) =
                    searcher.search(&searched, &(best, Count)).map_err(|e| failed("searching", e))?;
                (top.into_iter().map(|(_, at)| at).collect(), total)
            }
        };
        let snippets =
            SnippetGenerator::create(&searcher, &*parsed, f.text).map_err(|e| failed("snippets", e))?;
        let mut hits = Vec::with_capacity(found.len());
        for at in found {
            let document: TantivyDocument = searcher.doc(at).map_err(|e| failed("reading a document", e))?;
            let text =
                |field| document.get_first(field).and_then(|v| v.as_str()).unwrap_or_default().to_owned();
            let found = snippets.snippet_from_doc(&document);
            let (snippet, highlights) = if found.is_empty() {
                // Nothing in the text matched (a query on id, ts, sender or channel alone).
                (text(f.text).chars().take(SNIPPET_CHARS).collect(), Vec::new())
            } else {
                let fragment = found.fragment();
                let chars = |byte: usize| fragment[..byte].chars().count();
                let ranges = found.highlighted().iter().map(|r| [chars(r.start), chars(r.end)]).collect();
                (fragment.to_owned(), ranges)
            };
            hits.push(Hit {
                id: document.get_first(f.id).and_then(|v| v.as_u64()).unwrap_or(0),
                ts: document.get_first(f.ts).and_then(|v| v.as_f64()).unwrap_or(0.0),
                target: text(f.channel),
                sender: text(f.sender),
                snippet,
                highlights,
            });
        }
        Ok((hits, total as u64))
    }

    /// `query` with each phrase of the text field (two words or more, exact, nothing between
    /// them dropped by the tokenizer) looked up through its pairs: two words are the one pair;
    /// more must have every pair, and the words in place (the pairs may lie apart).
    fn by_pairs(&self, query: UserInputAst) -> Result<UserInputAst, SearchError> {
        let literal = |leaf: UserInputLeaf| UserInputAst::Leaf(Box::new(leaf));
        Ok(match query {
            UserInputAst::Clause(clauses) => UserInputAst::Clause(
                clauses
                    .into_iter()
                    .map(|(occur, q)| Ok((occur, self.by_pairs(q)?)))
                    .collect::<Result<_, SearchError>>()?,
            ),
            UserInputAst::Boost(q, boost) => UserInputAst::Boost(Box::new(self.by_pairs(*q)?), boost),
            UserInputAst::Leaf(leaf) => match *leaf {
                // The pairs are this index's own: not a field to search.
                UserInputLeaf::Literal(l) if l.field_name.as_deref() == Some(PAIRS) => {
                    return Err(SearchError::Query(format!("Field does not exist: '{PAIRS}'")))
                }
                UserInputLeaf::Literal(phrase)
                    if phrase.field_name.as_deref().is_none_or(|f| f == "text")
                        && phrase.slop == 0
                        && !phrase.prefix =>
                {
                    match self.pairs_of(&phrase) {
                        Some(mut all) => {
                            if all.len() > 1 {
                                all.push((Some(Occur::Must), literal(UserInputLeaf::Literal(phrase))));
                            }
                            UserInputAst::Clause(all)
                        }
                        None => literal(UserInputLeaf::Literal(phrase)),
                    }
                }
                other => literal(other),
            },
        })
    }

    /// The pairs of `phrase` as literals of the `pairs` field, each required: `None` when it is
    /// one word, when the tokenizer dropped a word inside it, or when a pair would not come back
    /// as the one same token from the pairs' tokenizer (lowercasing can change a word's length
    /// or split it: "İ").
    fn pairs_of(&self, phrase: &UserInputLiteral) -> Option<Vec<(Option<Occur>, UserInputAst)>> {
        let mut words_of = self.index.tokenizer_for_field(self.fields.text).ok()?;
        let mut pairs_of = self.index.tokenizer_for_field(self.fields.pairs).ok()?;
        let found = words(&mut words_of, &phrase.phrase);
        if found.len() < 2 || !found.windows(2).all(adjacent) {
            return None;
        }
        let pair = |w: &[Token]| {
            let text = format!("{} {}", w[0].text, w[1].text);
            let again = words(&mut pairs_of, &text);
            (again.len() == 1 && again[0].text == text).then(|| {
                let pair =
                    UserInputLiteral { field_name: Some(PAIRS.into()), phrase: text, ..phrase.clone() };
                (Some(Occur::Must), UserInputAst::Leaf(Box::new(UserInputLeaf::Literal(pair))))
            })
        };
        found.windows(2).map(pair).collect()
    }

    /// How many messages the index holds.
    pub(crate) fn count(&self) -> Result<u64, StoreError> {
        self.reader.reload().map_err(|e| failed("reloading", e))?;
        Ok(self.reader.searcher().num_docs())
    }

    /// The messages of `channel` up to the id `upto`: what an expiry covers.
    fn upto(&self, channel: &str, upto: u64) -> BooleanQuery {
        let f = self.fields;
        let channel = TermQuery::new(Term::from_field_text(f.channel, channel), Basic);
        let ids = RangeQuery::new(Unbounded, Included(Term::from_field_u64(f.id, upto)));
        BooleanQuery::intersection(vec![Box::new(channel), Box::new(ids)])
    }

    /// How many messages of `channel` up to the id `upto` the index holds.
    pub(crate) fn count_upto(&self, channel: &str, upto: u64) -> Result<u64, StoreError> {
        self.reader.reload().map_err(|e| failed("reloading", e))?;
        let count = self.reader.searcher().search(&self.upto(channel, upto), &Count);
        Ok(count.map_err(|e| failed("counting expired messages", e))? as u64)
    }
}

/// The index is committed at most this often, so a burst of posts makes a few commits (and
/// segments), not one each.
const COMMIT_EVERY: std::time::Duration = std::time::Duration::from_millis(200);

/// Starts the thread that keeps the index: it catches up with the log, then follows each group
/// the views applied, until the projector is gone (the store closes).
pub(crate) fn spawn(
    shared: std::sync::Arc<crate::store::shared::Shared>,
    index: std::sync::Arc<SearchIndex>,
    groups: Groups,
) -> Result<std::thread::JoinHandle<()>, StoreError> {
    let mut done = index.checkpoint()?;
    let mut fed = VecDeque::new();
    let mut upto = *shared.commits.borrow();
    // Opened when there is something to index: an idle writer holds memory (and starts merges).
    let mut writer: Option<IndexWriter> = None;
    // Segments may hold redacted messages still (a crash after the commit that deleted them);
    // only then is the writer opened at start (an idle writer holds memory).
    let mut erasing = index.erase_pending()?;
    let spawned = std::thread::Builder::new().name("relay-search".into()).spawn(move || loop {
        let started = std::time::Instant::now();
        if (done < upto || erasing) && writer.is_none() {
            match index.writer() {
                Ok(opened) => writer = Some(opened),
                Err(e) => slog::error!(shared.logger, "search index: no writer"; "error" => %e),
            }
        }
        if let Some(writer) = writer.as_mut() {
            match index.follow(writer, &*shared.log, &mut fed, done, upto) {
                Ok(at) => {
                    erasing |= index.deleted.swap(false, std::sync::atomic::Ordering::Relaxed);
                    done = at;
                }
                Err(e) => {
                    // Posts go on; what was added since the last commit is dropped and added again.
                    slog::error!(shared.logger, "search index behind the log"; "error" => %e, "at" => done);
                    if let Err(e) = writer.rollback() {
                        slog::error!(shared.logger, "search index: rolling back failed"; "error" => %e);
                    }
                }
            }
            if erasing {
                match index.erase(writer).and_then(|()| index.set_erase_state("done")) {
                    Ok(()) => erasing = false,
                    Err(e) => slog::error!(shared.logger, "search index: redacted messages not erased yet"; "error" => %e),
                }
            } else if index.expired.swap(false, std::sync::atomic::Ordering::Relaxed) {
                if let Err(e) = index.reclaim(writer) {
                    slog::warn!(shared.logger, "search index: space of expired messages not reclaimed yet"; "error" => %e);
                    index.expired.store(true, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        std::thread::sleep(COMMIT_EVERY.saturating_sub(started.elapsed()));
        let Some(next) = groups.next(&mut fed, &shared, None) else { return };
        upto = next;
    });
    spawned.map_err(|e| StoreError::io("cannot start the search thread", e))
}

/// Drops the index in `dir` and indexes the whole of `log` again (`rebuild`).
pub(crate) fn rebuild(dir: &Path, log: &dyn EventLog) -> Result<u64, StoreError> {
    remove_index(dir)?;
    let index = SearchIndex::open(dir)?;
    let mut writer = index.writer()?;
    let last = log.last_id()?;
    index.follow(&mut writer, log, &mut Default::default(), 0, last)?;
    index.erase(&mut writer)?;
    index.set_erase_state("done")?;
    writer.wait_merging_threads().map_err(|e| failed("merging", e))?;
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_adjacent_words_as_the_text_field_splits_them() {
        let dir = tempfile::tempdir().unwrap();
        let index = SearchIndex::open(dir.path()).unwrap();
        let mut pairs = index.index.tokenizer_for_field(index.fields.pairs).unwrap();
        let mut tokens = |text: &str| -> Vec<(usize, String)> {
            words(&mut pairs, text).into_iter().map(|t| (t.position, t.text)).collect()
        };
        let expected =
            [(0, "retry policy"), (1, "policy then"), (2, "then it"), (3, "it changed"), (4, "changed x")];
        assert_eq!(
            tokens("Retry-Policy, then it changed; x"),
            expected.map(|(at, pair)| (at, pair.to_owned()))
        );
        // A word the tokenizer drops (40 bytes or more) leaves no pair across its place.
        assert_eq!(tokens(&format!("one {} two three", "x".repeat(40))), [(0, "two three".to_owned())]);
    }

    /// An index made before the `pairs` field is dropped on open and indexed again from the log.
    #[test]
    fn an_index_of_the_older_layout_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let mut schema = Schema::builder();
        let text = schema.add_text_field("text", TEXT | STORED);
        let path = dir.path().join(DIR);
        std::fs::create_dir_all(&path).unwrap();
        let old = Index::create_in_dir(&path, schema.build()).unwrap();
        let mut writer: IndexWriter = old.writer_with_num_threads(1, WRITER_BYTES).unwrap();
        writer.add_document(doc!(text => "review packet")).unwrap();
        let mut commit = writer.prepare_commit().unwrap();
        commit.set_payload("7");
        commit.commit().unwrap();
        drop((writer, old));
        // And what a removal cut short left.
        std::fs::create_dir_all(dir.path().join(OLD_DIR)).unwrap();
        std::fs::write(dir.path().join(OLD_DIR).join("x.idx"), "left").unwrap();

        assert!(!laid_out_now(dir.path()).unwrap(), "check leaves it as it is");
        let index = SearchIndex::open(dir.path()).unwrap();
        assert!(laid_out_now(dir.path()).unwrap() && !dir.path().join(OLD_DIR).exists());
        assert_eq!((index.checkpoint().unwrap(), index.count().unwrap()), (0, 0));
        assert!(index.index.schema().get_field(PAIRS).is_ok());
    }
}
