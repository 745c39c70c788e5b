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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::LazyLock;

    static RENDERER: LazyLock<Renderer> = LazyLock::new(Renderer::new);

    fn md(text: &str) -> String {
        RENDERER.markdown(text)
    }

    #[test]
    fn github_flavoured_markdown() {
        let cases = [
            ("one\n\ntwo", "<p>one</p>\n<p>two</p>"),
            ("line one\nline two", "<p>line one<br>\nline two</p>"),
            ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
            ("3. c\n4. d", "<ol start=\"3\">"),
            ("**bold** _it_ ~~gone~~", "<strong>bold</strong> <em>it</em> <del>gone</del>"),
            ("use `x < y`", "<code>x &lt; y</code>"),
            ("| a | b |\n|---|---|\n| 1 | 2 |", "<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody>\n<tr><td>1</td><td>2</td></tr>"),
            ("[docs](https://example.com/d)", "<a href=\"https://example.com/d\" rel=\"noopener noreferrer nofollow\">docs</a>"),
            ("see https://example.com/x.", "see <a href=\"https://example.com/x\" rel=\"noopener noreferrer nofollow\">https://example.com/x</a>."),
            ("(http://a.b/c)", "(<a href=\"http://a.b/c\" rel=\"noopener noreferrer nofollow\">http://a.b/c</a>)"),
            ("just http:// here", "<p>just http:// here</p>"),
            ("- [x] done\n- [ ] todo", "<li><span class=\"task\">☑</span> done</li>"),
            ("# Title", "<h1>Title</h1>"),
            ("a `Vec<String>` and Vec<String>", "<code>Vec&lt;String&gt;</code> and Vec&lt;String&gt;"),
            ("<details><summary>x</summary></details>", "&lt;details&gt;&lt;summary&gt;x&lt;/summary&gt;&lt;/details&gt;"),
            ("![diagram](https://example.com/d.png)", "<a href=\"https://example.com/d.png\" rel=\"noopener noreferrer nofollow\">diagram</a>"),
            ("> quoted", "<blockquote>\n<p>quoted</p>\n</blockquote>"),
        ];
        for (text, expected) in cases {
            let html = md(text);
            assert!(html.contains(expected), "{text:?}\n got: {html}\nwant: {expected}");
        }
    }

    #[test]
    fn fenced_code_is_highlighted_by_its_language() {
        let cases = [
            ("rust", "hl-source hl-rust"),
            ("python", "hl-source hl-python"),
            ("py", "hl-source hl-python"),
            ("javascript", "hl-source hl-js"),
            ("js", "hl-source hl-js"),
            ("typescript", "hl-source hl-ts"),
            ("ts", "hl-source hl-ts"),
            ("json", "hl-source hl-json"),
            ("toml", "hl-source hl-toml"),
            ("yaml", "hl-source hl-yaml"),
            ("yml", "hl-source hl-yaml"),
            ("bash", "hl-source hl-shell hl-bash"),
            ("sh", "hl-source hl-shell hl-bash"),
            ("shell", "hl-source hl-shell hl-bash"),
            ("sql", "hl-source hl-sql"),
            ("go", "hl-source hl-go"),
            ("c", "hl-source hl-c"),
            ("cpp", "hl-source hl-c++"),
            ("c++", "hl-source hl-c++"),
            ("Rust", "hl-source hl-rust"),
        ];
        for (lang, class) in cases {
            let html = md(&format!("```{lang}\nlet x = \"s\"; // c\n```"));
            assert!(html.contains(&format!("<span class=\"{class}\">")), "{lang}: {html}");
            assert!(html.contains(&format!("<div class=\"code-lang\">{lang}</div>")), "{lang}: {html}");
        }
        let rust = md("```rust\nfn main() { let s = \"hi\"; } // done\n```");
        for class in ["hl-storage", "hl-entity hl-name hl-function", "hl-string", "hl-comment"] {
            assert!(rust.contains(class), "{class}: {rust}");
        }
        let plain = md("```\n<b>x</b>\n```");
        assert!(plain.contains("<pre><code>&lt;b&gt;x&lt;/b&gt;\n</code></pre>"), "{plain}");
        assert!(!plain.contains("code-lang"));
        let unknown = md("```nosuchlang\na < b\n```");
        assert!(unknown.contains("<pre><code>a &lt; b\n</code></pre>"), "{unknown}");
    }

    #[test]
    fn diff_lines_are_classed_whole() {
        let html =
            md("```diff\ndiff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n ctx\n-old <a>\n+new\n```");
        for expected in [
            "<span class=\"diff-file\">diff --git a/x b/x\n</span>",
            "<span class=\"diff-file\">--- a/x\n</span>",
            "<span class=\"diff-file\">+++ b/x\n</span>",
            "<span class=\"diff-hunk\">@@ -1 +1 @@\n</span>",
            "<span class=\"diff-ctx\"> ctx\n</span>",
            "<span class=\"diff-del\">-old &lt;a&gt;\n</span>",
            "<span class=\"diff-add\">+new\n</span>",
        ] {
            assert!(html.contains(expected), "{expected:?}: {html}");
        }
        assert!(md("```patch\n+x\n```").contains("diff-add"));
    }

    #[test]
    fn huge_code_is_shown_plain() {
        let code = "let x = 1;\n".repeat(MAX_HIGHLIGHT_BYTES / 11 + 1);
        let html = md(&format!("```rust\n{code}```"));
        assert!(!html.contains("hl-rust") && html.contains("let x = 1;"));
    }

    /// Hostile text an agent (or whoever reaches it) might post. None may yield a script, an
    /// event handler, a `javascript:` URL, a frame, a form, an image or inline style.
    const XSS: &[&str] = &[
        "<script>alert(1)</script>",
        "<SCRIPT SRC=//evil.example/x.js></SCRIPT>",
        "<img src=x onerror=alert(1)>",
        "<svg onload=alert(1)>",
        "<svg><script>alert(1)</script></svg>",
        "<iframe src=\"javascript:alert(1)\"></iframe>",
        "<iframe srcdoc=\"<script>alert(1)</script>\"></iframe>",
        "<body onload=alert(1)>",
        "<input autofocus onfocus=alert(1)>",
        "<details open ontoggle=alert(1)>",
        "<video><source onerror=alert(1)></video>",
        "<marquee onstart=alert(1)>x</marquee>",
        "<div style=\"background:url(javascript:alert(1))\">x</div>",
        "<style>body{display:none}</style>",
        "<form action=\"https://evil.example\"><button>go</button></form>",
        "<object data=\"javascript:alert(1)\"></object>",
        "<embed src=\"javascript:alert(1)\">",
        "<base href=\"https://evil.example/\">",
        "<meta http-equiv=\"refresh\" content=\"0;url=javascript:alert(1)\">",
        "<link rel=stylesheet href=\"https://evil.example/x.css\">",
        "<a href=\"javascript:alert(1)\">x</a>",
        "<a href=\"&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1)\">x</a>",
        "[x](javascript:alert(1))",
        "[x](JAVASCRIPT:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](javascript&#58;alert(1))",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "[x](<javascript:alert(1)>)",
        "[x]: javascript:alert(1)\n\n[y][x]",
        "<javascript:alert(1)>",
        "![x](javascript:alert(1))",
        "![x](https://example.com/x.png \"a\\\" onerror=\\\"alert(1)\")",
        "[x](https://example.com \"t\\\" onmouseover=\\\"alert(1)\")",
        "<https://example.com/\" onmouseover=\"alert(1)>",
        "```\"><script>alert(1)</script>\ncode\n```",
        "```html\n<script>alert(1)</script>\n```",
        "~~~\n</code></pre><script>alert(1)</script>\n~~~",
        "`<script>alert(1)</script>`",
        "| a |\n|---|\n| <script>alert(1)</script> |",
        "<scr<script>ipt>alert(1)</script>",
        "\"><script>alert(1)</script>",
        "<<script>script>alert(1)<</script>/script>",
        "&lt;script&gt;alert(1)&lt;/script&gt;",
        "&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;",
        "<!--><script>alert(1)</script>-->",
        "<![CDATA[<script>alert(1)</script>]]>",
        "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>",
        "<noscript><p title=\"</noscript><img src=x onerror=alert(1)>\">",
        "<img src=\"x`onerror=alert(1)>",
        "see https://example.com/\"onmouseover=\"alert(1) now",
        "http://x.example/<script>alert(1)</script>",
        "- [x] <img src=x onerror=alert(1)>",
        "# <svg onload=alert(1)>",
        "> <iframe src=//evil.example>",
        "**<a href=javascript:alert(1)>bold</a>**",
        "[<img src=x onerror=alert(1)>](https://example.com)",
        "x\u{0}<script>alert(1)</script>",
    ];

    /// Tags and attributes the renderer may produce; anything else fails the XSS test.
    const SAFE_TAGS: &[&str] = &[
        "p",
        "br",
        "a",
        "code",
        "pre",
        "span",
        "div",
        "strong",
        "em",
        "del",
        "ul",
        "ol",
        "li",
        "table",
        "thead",
        "tbody",
        "tr",
        "th",
        "td",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "hr",
    ];
    const SAFE_ATTRIBUTES: &[&str] = &["href", "rel", "class", "title", "start"];

    /// Every tag in `html` as (name, [(attribute, value)]). Text `<` is always escaped in our
    /// output, so each `<` opens a tag, which ends at the first `>` outside quotes.
    fn tags(html: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut out = Vec::new();
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let mut quoted = false;
            let end = rest[start..]
                .char_indices()
                .find(|&(_, c)| {
                    quoted ^= c == '"';
                    c == '>' && !quoted
                })
                .map_or(rest.len(), |(i, _)| start + i);
            let inner = rest[start + 1..end].trim_matches('/').trim();
            rest = &rest[(end + 1).min(rest.len())..];
            let (name, mut attrs) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
            let mut attributes = Vec::new();
            while !attrs.trim_start().is_empty() {
                attrs = attrs.trim_start();
                let key_end = attrs.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(attrs.len());
                let key = attrs[..key_end].to_ascii_lowercase();
                attrs = &attrs[key_end..];
                let mut value = "";
                if let Some(after) = attrs.trim_start().strip_prefix("=\"") {
                    (value, attrs) = after.split_once('"').unwrap_or((after, ""));
                }
                attributes.push((key, value.to_owned()));
            }
            out.push((name.to_ascii_lowercase(), attributes));
        }
        out
    }

    #[test]
    fn hostile_text_renders_harmless() {
        assert!(XSS.len() >= 50, "the set keeps at least 50 payloads");
        for payload in XSS {
            for text in
                [payload.to_string(), format!("intro\n\n{payload}\n\noutro"), format!("a {payload} b")]
            {
                let html = md(&text);
                for (tag, attributes) in tags(&html) {
                    assert!(SAFE_TAGS.contains(&tag.as_str()), "<{tag}> from {text:?}: {html}");
                    for (name, value) in attributes {
                        assert!(
                            SAFE_ATTRIBUTES.contains(&name.as_str()),
                            "{name}= on <{tag}> from {text:?}: {html}"
                        );
                        if name == "href" {
                            let scheme_ok =
                                ["http://", "https://", "mailto:"].iter().any(|s| value.starts_with(s));
                            assert!(scheme_ok, "href {value:?} from {text:?}: {html}");
                        }
                    }
                }
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 2000, failure_persistence: None, ..Default::default() })]
        /// Any text built from markdown's and HTML's special characters renders to the allow-list.
        #[test]
        fn any_text_renders_within_the_allow_list(text in "([<>\"'=/:;&#`*_\\\\\\[\\]()!\n -]|[a-z]{1,6}|javascript|script|onerror|https?|```|data|\u{0}){0,40}") {
            let html = md(&text);
            for (tag, attributes) in tags(&html) {
                proptest::prop_assert!(SAFE_TAGS.contains(&tag.as_str()), "<{}> from {:?}: {}", tag, text, html);
                for (name, value) in attributes {
                    proptest::prop_assert!(SAFE_ATTRIBUTES.contains(&name.as_str()), "{}= from {:?}", name, text);
                    if name == "href" {
                        proptest::prop_assert!(["http://", "https://", "mailto:"].iter().any(|s| value.starts_with(s)), "href {:?} from {:?}", value, text);
                    }
                }
            }
        }
    }

    #[test]
    fn unterminated_fence_still_renders() {
        let html = md("```rust\nfn x() {");
        assert!(html.contains("hl-rust") && html.contains("</code></pre></div>"), "{html}");
    }
}
