//! A small Markdown reader for comments (contract 1.1, `add-comment`), for trackers that do not
//! store Markdown (Jira's Atlassian Document Format, Azure DevOps' HTML): it reads the subset
//! people write in a test result and turns it into [`Block`]s a plugin renders.
//!
//! The subset: paragraphs (a line break inside one is kept), fenced code blocks (```` ``` ````,
//! optionally with a language), bullet lists (`-`, `*`, `+`), numbered lists (`1.`, `1)`), and
//! inline `**strong**`/`__strong__`, `*emphasis*`/`_emphasis_`, `` `code` ``, `[text](url)`
//! links and bare `http(s)://` URLs. Anything else is kept as text, never lost.

/// One block of a comment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Block {
    /// Text; [`Inline::Break`] where the author broke the line.
    Paragraph(Vec<Inline>),
    /// A fenced code block, verbatim.
    Code {
        /// The language after the opening fence, if any.
        language: Option<String>,
        /// The lines between the fences.
        text: String,
    },
    /// A bullet list: one item per entry.
    Bullets(Vec<Vec<Inline>>),
    /// A numbered list: one item per entry.
    Numbered(Vec<Vec<Inline>>),
}

/// A piece of text inside a block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inline {
    /// Text with its marks.
    Text(Span),
    /// A line break.
    Break,
}

/// A run of text and how it is marked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// The text (never empty).
    pub text: String,
    /// `**strong**`.
    pub strong: bool,
    /// `*emphasis*`.
    pub em: bool,
    /// `` `code` `` (never combined with strong or emphasis).
    pub code: bool,
    /// The target of a link.
    pub link: Option<String>,
}

/// Reads a comment's Markdown into blocks.
pub fn parse(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut lines = markdown.lines().peekable();
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            flush(&mut paragraph, &mut blocks);
            let mut code = Vec::new();
            for inner in lines.by_ref() {
                if inner.trim_start().starts_with("```") {
                    break;
                }
                code.push(inner);
            }
            let language = info.trim();
            blocks.push(Block::Code {
                language: (!language.is_empty()).then(|| language.to_string()),
                text: code.join("\n"),
            });
        } else if trimmed.is_empty() {
            flush(&mut paragraph, &mut blocks);
        } else if let Some(item) = list_item(trimmed) {
            flush(&mut paragraph, &mut blocks);
            let numbered = item.0;
            let mut items = vec![inlines(item.1)];
            while let Some(next) = lines.peek().map(|l| l.trim_start()) {
                match list_item(next) {
                    Some((n, text)) if n == numbered => {
                        items.push(inlines(text));
                        lines.next();
                    }
                    _ => break,
                }
            }
            blocks.push(if numbered {
                Block::Numbered(items)
            } else {
                Block::Bullets(items)
            });
        } else {
            paragraph.push(line.trim());
        }
    }
    flush(&mut paragraph, &mut blocks);
    blocks
}

/// Ends the paragraph being read, if any.
fn flush(paragraph: &mut Vec<&str>, blocks: &mut Vec<Block>) {
    if paragraph.is_empty() {
        return;
    }
    let mut content = Vec::new();
    for (i, line) in paragraph.drain(..).enumerate() {
        if i > 0 {
            content.push(Inline::Break);
        }
        content.extend(inlines(line));
    }
    blocks.push(Block::Paragraph(content));
}

/// `- item`, `* item`, `+ item` (false) or `1. item`, `1) item` (true), with the item's text.
fn list_item(line: &str) -> Option<(bool, &str)> {
    for bullet in ["- ", "* ", "+ "] {
        if let Some(text) = line.strip_prefix(bullet) {
            return Some((false, text.trim()));
        }
    }
    let digits = line.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 9 {
        return None;
    }
    let rest = &line[digits..];
    let text = rest
        .strip_prefix(". ")
        .or_else(|| rest.strip_prefix(") "))?;
    Some((true, text.trim()))
}

/// Reads the inline marks of one line.
fn inlines(line: &str) -> Vec<Inline> {
    let mut out = Reader::default();
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let rest: String = chars[i..].iter().collect();
        let boundary = i == 0 || !chars[i - 1].is_alphanumeric();
        if chars[i] == '\\' && i + 1 < chars.len() && chars[i + 1].is_ascii_punctuation() {
            out.text.push(chars[i + 1]);
            i += 2;
        } else if chars[i] == '`'
            && let Some(end) = rest[1..].find('`')
        {
            let code = &rest[1..1 + end];
            out.push_code(code);
            i += 2 + code.chars().count();
        } else if (rest.starts_with("**") || rest.starts_with("__"))
            && (out.strong || rest[2..].contains(&rest[..2]))
        {
            out.flush();
            out.strong = !out.strong;
            i += 2;
        } else if (chars[i] == '*' || (chars[i] == '_' && (boundary || out.em)))
            && (out.em || rest[1..].contains(chars[i]))
            && (out.em || chars.get(i + 1).is_some_and(|c| !c.is_whitespace()))
        {
            out.flush();
            out.em = !out.em;
            i += 1;
        } else if chars[i] == '['
            && let Some((text, url, used)) = link(&rest)
        {
            out.push_link(text, url);
            i += used;
        } else if boundary && (rest.starts_with("https://") || rest.starts_with("http://")) {
            let url = bare_url(&rest);
            out.push_link(url, url);
            i += url.chars().count();
        } else {
            out.text.push(chars[i]);
            i += 1;
        }
    }
    out.flush();
    out.spans
}

/// `[text](http...)` at the start of `rest`: the text, the URL and the characters used.
fn link(rest: &str) -> Option<(&str, &str, usize)> {
    let close = rest.find("](")?;
    let text = &rest[1..close];
    let end = rest[close + 2..].find(')')? + close + 2;
    let url = rest[close + 2..end].trim();
    let allowed = ["https://", "http://", "mailto:"];
    if text.is_empty() || text.contains('[') || !allowed.iter().any(|p| url.starts_with(p)) {
        return None;
    }
    Some((text, url, rest[..=end].chars().count()))
}

/// A bare URL: up to whitespace, without trailing punctuation.
fn bare_url(rest: &str) -> &str {
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    rest[..end].trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '\'', '"'])
}

/// Builds the spans of a line.
#[derive(Default)]
struct Reader {
    spans: Vec<Inline>,
    text: String,
    strong: bool,
    em: bool,
}

impl Reader {
    fn flush(&mut self) {
        if !self.text.is_empty() {
            let text = std::mem::take(&mut self.text);
            let span = self.span(text);
            self.spans.push(Inline::Text(span));
        }
    }

    fn span(&self, text: String) -> Span {
        Span {
            text,
            strong: self.strong,
            em: self.em,
            ..Span::default()
        }
    }

    fn push_code(&mut self, code: &str) {
        self.flush();
        if !code.is_empty() {
            self.spans.push(Inline::Text(Span {
                text: code.to_string(),
                code: true,
                ..Span::default()
            }));
        }
    }

    fn push_link(&mut self, text: &str, url: &str) {
        self.flush();
        let mut span = self.span(text.to_string());
        span.link = Some(url.to_string());
        self.spans.push(Inline::Text(span));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str) -> Inline {
        Inline::Text(Span {
            text: t.into(),
            ..Span::default()
        })
    }

    #[test]
    fn reads_the_subset() {
        let blocks = parse(
            "Run **42** _failed_ in `login`:\nsee [the log](https://ci.example/42).\n\n- one\n- two\n\n1. first\n2) second\n\n```rust\nlet x = 1;\n```",
        );
        assert_eq!(blocks.len(), 4);
        let Block::Paragraph(p) = &blocks[0] else {
            panic!("{blocks:?}")
        };
        assert_eq!(p[0], text("Run "));
        assert!(matches!(&p[1], Inline::Text(s) if s.strong && s.text == "42"));
        assert!(matches!(&p[3], Inline::Text(s) if s.em && s.text == "failed"));
        assert!(matches!(&p[5], Inline::Text(s) if s.code && s.text == "login"));
        assert!(p.contains(&Inline::Break));
        assert!(p.iter().any(|i| matches!(i, Inline::Text(s)
            if s.text == "the log" && s.link.as_deref() == Some("https://ci.example/42"))));
        assert_eq!(
            blocks[1],
            Block::Bullets(vec![vec![text("one")], vec![text("two")]])
        );
        assert_eq!(
            blocks[2],
            Block::Numbered(vec![vec![text("first")], vec![text("second")]])
        );
        assert_eq!(
            blocks[3],
            Block::Code {
                language: Some("rust".into()),
                text: "let x = 1;".into()
            }
        );
    }

    #[test]
    fn keeps_what_it_does_not_read_as_text() {
        assert_eq!(
            parse("a snake_case_name, 2 * 3 and [not a link](javascript:x)"),
            vec![Block::Paragraph(vec![text(
                "a snake_case_name, 2 * 3 and [not a link](javascript:x)"
            )])]
        );
        let Block::Paragraph(p) = &parse("see https://x.example/a.")[0] else {
            panic!()
        };
        assert!(
            matches!(&p[1], Inline::Text(s) if s.link.as_deref() == Some("https://x.example/a"))
        );
        assert_eq!(p[2], text("."));
    }
}
