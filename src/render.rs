//! Agent text to safe HTML: GitHub-flavoured markdown (pulldown-cmark), fenced code highlighted
//! by its language tag (syntect's pure-Rust regex engine, with the extra syntaxes of two-face),
//! then everything through ammonia's sanitiser.
//!
//! Raw HTML in a message is shown as text, never interpreted: agents write `Vec<String>` and
//! `<details>` in prose far more often than they mean markup. The sanitiser still runs over the
//! whole output, so a renderer bug cannot become a script.

use handlebars::html_escape;
use pulldown_cmark::{CodeBlockKind, CowStr, Event, Options, Parser, Tag, TagEnd};
use std::collections::HashSet;
use std::fmt::Write;
use syntect::html::{ClassStyle, ClassedHTMLGenerator};
use syntect::parsing::SyntaxSet;
use syntect::util::LinesWithEndings;

/// Highlighted spans carry classes `hl-<scope atom>`; `static/relay.css` colours them.
const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };

/// Code longer than this is shown plain: highlighting is linear but not cheap, and a page must
/// not stall on one huge paste.
const MAX_HIGHLIGHT_BYTES: usize = 256 * 1024;

/// The languages review packets use most.
const WARM_UP_LANGUAGES: [&str; 13] = [
    "rust",
    "python",
    "javascript",
    "typescript",
    "json",
    "toml",
    "yaml",
    "bash",
    "sql",
    "go",
    "c",
    "cpp",
    "markdown",
];

pub struct Renderer {
    syntaxes: SyntaxSet,
    sanitizer: ammonia::Builder<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Renderer::new()
    }
}

impl Renderer {
    pub fn new() -> Renderer {
        let mut sanitizer = ammonia::Builder::default();
        sanitizer
            .url_schemes(HashSet::from(["http", "https", "mailto"]))
            .link_rel(Some("noopener noreferrer nofollow"))
            .add_generic_attributes(["class"])
            .rm_tags(["img"]);
        Renderer { syntaxes: two_face::syntax::extra_newlines(), sanitizer }
    }

    /// Highlights a sample of each common language once, so the syntaxes' regexes are compiled
    /// before a reader waits on them (syntect compiles them on first use).
    pub fn warm_up(&self) {
        for lang in WARM_UP_LANGUAGES {
            self.code_block(lang, "x = 1 # a \"string\" and a call(2)\n");
        }
    }

    /// One message's text as sanitised HTML.
    pub fn markdown(&self, text: &str) -> String {
        let options = Options::ENABLE_TABLES
            | Options::ENABLE_STRIKETHROUGH
            | Options::ENABLE_TASKLISTS
            | Options::ENABLE_GFM;
        let mut events = Vec::new();
        let mut code: Option<(String, String)> = None;
        let mut link_depth = 0usize;
        for event in Parser::new_ext(text, options) {
            if let Some((_, body)) = code.as_mut() {
                match event {
                    Event::Text(t) => body.push_str(&t),
                    Event::End(TagEnd::CodeBlock) => {
                        let (lang, body) = code.take().unwrap_or_default();
                        events.push(Event::Html(self.code_block(&lang, &body).into()));
                    }
                    _ => {}
                }
                continue;
            }
            match event {
                Event::Start(Tag::CodeBlock(kind)) => {
                    let lang = match kind {
                        CodeBlockKind::Fenced(info) => {
                            info.split_whitespace().next().unwrap_or("").to_owned()
                        }
                        CodeBlockKind::Indented => String::new(),
                    };
                    code = Some((lang, String::new()));
                }
                // Agent-written HTML is shown as the text it is.
                Event::Html(raw) | Event::InlineHtml(raw) => events.push(Event::Text(raw)),
                Event::SoftBreak => events.push(Event::HardBreak),
                Event::TaskListMarker(done) => {
                    let mark = if done { "☑" } else { "☐" };
                    events.push(Event::Html(format!("<span class=\"task\">{mark}</span> ").into()));
                }
                // Images would load from wherever an agent points; show them as links instead.
                Event::Start(Tag::Image { dest_url, title, id, .. }) => {
                    link_depth += 1;
                    events.push(Event::Start(Tag::Link {
                        link_type: pulldown_cmark::LinkType::Inline,
                        dest_url,
                        title,
                        id,
                    }))
                }
                Event::End(TagEnd::Image) => {
                    link_depth -= 1;
                    events.push(Event::End(TagEnd::Link));
                }
                Event::Start(Tag::Link { .. }) => {
                    link_depth += 1;
                    events.push(event);
                }
                Event::End(TagEnd::Link) => {
                    link_depth -= 1;
                    events.push(event);
                }
                Event::Text(t) if link_depth == 0 => linkify(t, &mut events),
                other => events.push(other),
            }
        }
        if let Some((lang, body)) = code.take() {
            events.push(Event::Html(self.code_block(&lang, &body).into()));
        }
        let mut html = String::with_capacity(text.len() * 3 / 2);
        pulldown_cmark::html::push_html(&mut html, events.into_iter());
        self.sanitizer.clean(&html).to_string()
    }

    /// A fenced block: a header naming the language, then the code, highlighted when the tag
    /// names a known language (`diff` blocks colour whole added and removed lines).
    fn code_block(&self, lang: &str, code: &str) -> String {
        let mut out = String::from("<div class=\"code\">");
        if !lang.is_empty() {
            let _ = write!(out, "<div class=\"code-lang\">{}</div>", html_escape(lang));
        }
        out.push_str("<pre><code>");
        let lower = lang.to_ascii_lowercase();
        if matches!(lower.as_str(), "diff" | "patch" | "udiff") {
            diff_lines(code, &mut out);
        } else {
            match self.syntax_for(&lower).filter(|_| code.len() <= MAX_HIGHLIGHT_BYTES) {
                Some(highlighted) => out.push_str(&self.highlight(highlighted, code)),
                None => out.push_str(&html_escape(code)),
            }
        }
        out.push_str("</code></pre></div>");
        out
    }

    fn syntax_for(&self, lang: &str) -> Option<&syntect::parsing::SyntaxReference> {
        let token = match lang {
            "" => return None,
            "ts" | "tsx" => "typescript",
            "shell" | "console" | "zsh" => "bash",
            "c++" => "cpp",
            "golang" => "go",
            "yml" => "yaml",
            other => other,
        };
        self.syntaxes.find_syntax_by_token(token)
    }

    fn highlight(&self, syntax: &syntect::parsing::SyntaxReference, code: &str) -> String {
        let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, &self.syntaxes, CLASS_STYLE);
        for line in LinesWithEndings::from(code) {
            if generator.parse_html_for_line_which_includes_newline(line).is_err() {
                return html_escape(code);
            }
        }
        generator.finalize()
    }
}

/// Each line of a diff in a block-level span classed by what it is.
fn diff_lines(code: &str, out: &mut String) {
    for line in LinesWithEndings::from(code) {
        let class = match line.as_bytes().first() {
            _ if line.starts_with("+++") || line.starts_with("---") => "diff-file",
            Some(b'+') => "diff-add",
            Some(b'-') => "diff-del",
            Some(b'@') => "diff-hunk",
            _ if line.starts_with("diff ") || line.starts_with("index ") => "diff-file",
            _ => "diff-ctx",
        };
        let _ = write!(out, "<span class=\"{class}\">{}</span>", html_escape(line));
    }
}

/// Bare `http://` and `https://` URLs in text become links, as on GitHub. Trailing punctuation
/// stays outside the link.
fn linkify<'a>(text: CowStr<'a>, events: &mut Vec<Event<'a>>) {
    let mut rest: &str = &text;
    if !rest.contains("http://") && !rest.contains("https://") {
        events.push(Event::Text(text));
        return;
    }
    let mut out = Vec::new();
    while let Some(start) = [rest.find("https://"), rest.find("http://")].into_iter().flatten().min() {
        let tail = &rest[start..];
        let end =
            tail.find(|c: char| c.is_whitespace() || matches!(c, '<' | '>' | '"')).unwrap_or(tail.len());
        let url = tail[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'']);
        if url.split_once("://").is_none_or(|(_, rest)| rest.is_empty()) {
            // A scheme with nothing after it: not a link.
            out.push(Event::Text(rest[..start + url.len()].to_owned().into()));
            rest = &rest[start + url.len()..];
            continue;
        }
        if start > 0 {
            out.push(Event::Text(rest[..start].to_owned().into()));
        }
        out.push(Event::Start(Tag::Link {
            link_type: pulldown_cmark::LinkType::Autolink,
            dest_url: url.to_owned().into(),
            title: "".into(),
            id: "".into(),
        }));
        out.push(Event::Text(url.to_owned().into()));
        out.push(Event::End(TagEnd::Link));
        rest = &rest[start + url.len()..];
    }
    if !rest.is_empty() {
        out.push(Event::Text(rest.to_owned().into()));
    }
    events.extend(out);
}
