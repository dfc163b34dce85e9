//! Redaction of a call's secrets from everything that comes back from a tracker or a plugin.
//!
//! The host is the only place a secret exists in clear, and it knows, for every call, the exact
//! values it may put on the wire: the source's secret fields and the credential header built from
//! them. A tracker (or a proxy in front of it) may echo them back: in an error body, a header, a
//! debug page. [`Redactor`] replaces every form the host could have sent, and the common ways an
//! echo re-encodes it, with [`MARKER`]:
//!
//! - each secret value as it is, JSON-escaped (`\"`, `\\`, `\/`, and `\uXXXX` as Python and Go
//!   write it), HTML-escaped, and percent-encoded with each common safe set (`+` for space as in
//!   forms); matched regardless of ASCII case, so hex digits may be upper or lower case;
//! - base64 (standard and URL-safe, padded or not) of the secret, of `:secret` and of
//!   `user:secret` for every non-secret field value `user` (HTTP Basic);
//! - the whole credential header value (`Bearer ...`, `Basic ...`, `token ...`).
//!
//! It is applied to response bodies and headers before the guest sees them, to egress errors,
//! to the guest's log lines and output, and to everything a call returns (so to everything the
//! host stores or shows). Texts shorter than [`MIN_LEN`] bytes are not searched for as they are
//! (they would match ordinary words, and no real credential is that short); their encoded forms
//! and the header value still are.

use aho_corasick::{AhoCorasick, MatchKind};
use base64::Engine as _;

/// What a redacted secret becomes.
pub const MARKER: &str = "[redacted]";

/// Needles shorter than this are left alone.
pub const MIN_LEN: usize = 4;

/// Replaces a call's secrets, in every derived form, with [`MARKER`]. The default redacts
/// nothing (a call without secrets).
#[derive(Default)]
pub struct Redactor {
    matcher: Option<AhoCorasick>,
}

impl std::fmt::Debug for Redactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redactor")
            .field("active", &self.matcher.is_some())
            .finish()
    }
}

impl Redactor {
    /// A redactor for `secrets`, sent as the password of HTTP Basic with any of `users`, and for
    /// the literal credential header values in `applied`.
    pub fn new<'a>(
        secrets: impl IntoIterator<Item = &'a str>,
        users: impl IntoIterator<Item = &'a str> + Clone,
        applied: impl IntoIterator<Item = &'a str>,
    ) -> Redactor {
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for secret in secrets.into_iter().filter(|s| !s.is_empty()) {
            if secret.len() >= MIN_LEN {
                needles.extend(textual_forms(secret));
            }
            let basic = std::iter::once(String::new())
                .chain(users.clone().into_iter().map(str::to_string))
                .map(|user| format!("{user}:{secret}"));
            for plain in std::iter::once(secret.to_string()).chain(basic) {
                needles.extend(base64_forms(plain.as_bytes()));
            }
        }
        needles.extend(applied.into_iter().map(|v| v.as_bytes().to_vec()));
        needles.retain(|n| n.len() >= MIN_LEN);
        needles.sort();
        needles.dedup();
        if needles.is_empty() {
            return Redactor::default();
        }
        let matcher = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(true)
            .build(&needles)
            .expect("plain byte needles always build");
        Redactor {
            matcher: Some(matcher),
        }
    }

    /// True when there is nothing to redact.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_none()
    }

    /// `bytes` with every secret form replaced.
    pub fn bytes(&self, bytes: Vec<u8>) -> Vec<u8> {
        match &self.matcher {
            Some(m) if m.is_match(&bytes) => {
                m.replace_all_bytes(&bytes, &vec![MARKER.as_bytes(); m.patterns_len()])
            }
            _ => bytes,
        }
    }

    /// `text` with every secret form replaced.
    pub fn text(&self, text: String) -> String {
        match &self.matcher {
            Some(m) if m.is_match(&text) => m.replace_all(&text, &vec![MARKER; m.patterns_len()]),
            _ => text,
        }
    }

    /// Like [`Redactor::text`], for a borrowed string.
    pub fn str<'a>(&self, text: &'a str) -> std::borrow::Cow<'a, str> {
        match &self.matcher {
            Some(m) if m.is_match(text) => {
                std::borrow::Cow::Owned(m.replace_all(text, &vec![MARKER; m.patterns_len()]))
            }
            _ => std::borrow::Cow::Borrowed(text),
        }
    }
}

/// The secret as text may carry it: raw; JSON-escaped as serde does, with `\/`, and with
/// `\uXXXX` escapes (non-ASCII as Python's `ensure_ascii` writes them; `<`, `>`, `&` as Go's
/// encoder; every character but letters and digits); HTML-escaped; percent-encoded with each of
/// the common safe sets (RFC 3986's unreserved, JavaScript's `encodeURIComponent` and
/// `encodeURI`, Python's `quote`, forms). Hex digits may come in either case: the matcher
/// ignores ASCII case.
fn textual_forms(secret: &str) -> Vec<Vec<u8>> {
    let json = serde_json::to_string(secret).expect("a string serialises");
    let json = &json[1..json.len() - 1];
    let html = |apostrophe: &str| {
        secret
            .replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
            .replace('"', "&quot;")
            .replace('\'', apostrophe)
    };
    let forms = [
        secret.to_string(),
        json.to_string(),
        json.replace('/', "\\/"),
        json_escaped(secret, |c| !c.is_ascii()),
        json_escaped(secret, |c| matches!(c, '<' | '>' | '&')),
        json_escaped(secret, |c| !c.is_ascii_alphanumeric()),
        html("&#39;"),
        html("&#x27;"),
        percent_encode(secret, ""),
        percent_encode(secret, "!'()*"),
        percent_encode(secret, "!'()*;,/?:@&=+$#"),
        percent_encode(secret, "/"),
        form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
    ];
    forms.into_iter().map(String::into_bytes).collect()
}

/// `text` as a JSON string's contents, with the characters `escape` picks as `\uXXXX` (UTF-16
/// code units) and the others as serde writes them.
fn json_escaped(text: &str, escape: impl Fn(char) -> bool) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if escape(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            let one = serde_json::to_string(&c.to_string()).expect("a string serialises");
            out.push_str(&one[1..one.len() - 1]);
        }
    }
    out
}

/// Every byte outside RFC 3986's unreserved set and `safe` as `%XX`.
fn percent_encode(text: &str, safe: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || safe.as_bytes().contains(&b)
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `plain` in base64: standard and URL-safe alphabets, with and without padding.
fn base64_forms(plain: &[u8]) -> Vec<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .map(|engine| engine.encode(plain).into_bytes())
        .collect()
}

/// Values that can be redacted in place: the host's results, errors and messages.
pub trait Redact {
    /// `self` with every secret form replaced.
    fn redact(self, r: &Redactor) -> Self;
}

impl Redact for String {
    fn redact(self, r: &Redactor) -> Self {
        r.text(self)
    }
}

impl<T: Redact> Redact for Option<T> {
    fn redact(self, r: &Redactor) -> Self {
        self.map(|v| v.redact(r))
    }
}

impl<T: Redact> Redact for Vec<T> {
    fn redact(self, r: &Redactor) -> Self {
        self.into_iter().map(|v| v.redact(r)).collect()
    }
}

impl<T: Redact, E: Redact> Redact for Result<T, E> {
    fn redact(self, r: &Redactor) -> Self {
        self.map(|v| v.redact(r)).map_err(|e| e.redact(r))
    }
}

impl Redact for super::ConnectionInfo {
    fn redact(self, r: &Redactor) -> Self {
        super::ConnectionInfo {
            account: r.text(self.account),
            detail: self.detail.redact(r),
        }
    }
}

impl Redact for super::CommentInfo {
    fn redact(self, r: &Redactor) -> Self {
        super::CommentInfo {
            id: r.text(self.id),
            web_url: self.web_url.redact(r),
        }
    }
}

impl Redact for super::Issue {
    fn redact(self, r: &Redactor) -> Self {
        super::Issue {
            key: r.text(self.key),
            title: r.text(self.title),
            status: r.text(self.status),
            status_category: self.status_category,
            assignee: self.assignee.redact(r),
            web_url: r.text(self.web_url),
        }
    }
}

impl Redact for super::ProviderError {
    fn redact(self, r: &Redactor) -> Self {
        use super::ProviderError as E;
        match self {
            E::InvalidInput(m) => E::InvalidInput(r.text(m)),
            E::Unauthorized(m) => E::Unauthorized(r.text(m)),
            E::Forbidden(m) => E::Forbidden(r.text(m)),
            E::NotFound(m) => E::NotFound(r.text(m)),
            E::RateLimited {
                retry_after_secs,
                message,
            } => E::RateLimited {
                retry_after_secs,
                message: r.text(message),
            },
            E::Unreachable(m) => E::Unreachable(r.text(m)),
            E::Unsupported(m) => E::Unsupported(r.text(m)),
            E::Provider(m) => E::Provider(r.text(m)),
        }
    }
}

impl Redact for super::PluginError {
    fn redact(self, r: &Redactor) -> Self {
        use super::PluginError as E;
        match self {
            E::Rejected(m) => E::Rejected(r.text(m)),
            E::Trap(m) => E::Trap(r.text(m)),
            E::Malformed(m) => E::Malformed(r.text(m)),
            E::Provider(e) => E::Provider(e.redact(r)),
            E::MemoryBudget(m) => E::MemoryBudget(r.text(m)),
            E::Busy(m) => E::Busy(r.text(m)),
            other @ (E::NotLoaded(_) | E::CpuLimit(_) | E::Timeout { .. } | E::MemoryLimit(_)) => {
                other
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "s3cr3t/+tok=en value";

    fn redactor() -> Redactor {
        Redactor::new(
            [SECRET],
            ["mia@example.com"],
            ["Bearer s3cr3t/+tok=en value"],
        )
    }

    #[test]
    fn every_derived_form_is_replaced() {
        use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
        let r = redactor();
        let forms = [
            SECRET.to_string(),
            "s3cr3t\\/+tok=en value".to_string(),
            "s3cr3t%2F%2Btok%3Den%20value".to_string(),
            "s3cr3t%2f%2btok%3den%20value".to_string(),
            "s3cr3t%2F%2Btok%3Den+value".to_string(),
            "s3cr3t%2f%2btok%3den+value".to_string(),
            // Partial and mixed-case percent-encodings (encodeURIComponent, encodeURI, quote).
            "s3cr3t%2F%2Btok%3den%20value".to_string(),
            "s3cr3t/+tok=en%20value".to_string(),
            "s3cr3t/%2Btok%3Den%20value".to_string(),
            // \u escapes, as Python (non-ASCII) and Go (<, >, &) write them, or everywhere.
            "s3cr3t\\u002f\\u002btok\\u003den\\u0020value".to_string(),
            "s3cr3t\\u002F\\u002Btok\\u003Den\\u0020value".to_string(),
            STANDARD.encode(SECRET),
            STANDARD.encode(format!(":{SECRET}")),
            STANDARD.encode(format!("mia@example.com:{SECRET}")),
            URL_SAFE_NO_PAD.encode(format!("mia@example.com:{SECRET}")),
        ];
        for form in forms {
            let echoed = format!("{{\"message\":\"got Authorization: Basic {form}\"}}");
            let out = r.text(echoed.clone());
            assert!(!out.contains(&form), "{form} survived in {out}");
            assert!(out.contains(MARKER), "{out}");
            let out = String::from_utf8(r.bytes(echoed.into_bytes())).unwrap();
            assert!(!out.contains(&form), "{form} survived in bytes: {out}");
        }
    }

    #[test]
    fn escaped_forms_of_special_characters_are_replaced() {
        let secret = "p<á>&'\"x";
        let r = Redactor::new([secret], [], []);
        for form in [
            "p\\u003c\\u00e1\\u003e\\u0026\\u0027\\u0022x",
            "p<\\u00e1>&'\\\"x",
            "p\\u003c\u{e1}\\u003e\\u0026'\\\"x",
            "p&lt;á&gt;&amp;&#39;&quot;x",
            "p&lt;á&gt;&amp;&#x27;&quot;x",
        ] {
            let out = r.text(format!("echo: {form}."));
            assert_eq!(out, "echo: [redacted].", "{form}");
        }
    }

    #[test]
    fn text_without_secrets_is_untouched_and_json_stays_json() {
        let r = redactor();
        let body = format!("{{\"a\":\"{SECRET}\",\"b\":[1,2]}}");
        let out = r.text(body);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["a"], MARKER);
        assert_eq!(r.text("nothing here".into()), "nothing here");
    }

    #[test]
    fn short_values_are_redacted_only_in_their_encoded_forms() {
        let r = Redactor::new(["abc"], ["u"], ["Bearer abc"]);
        assert_eq!(r.text("abc".into()), "abc");
        assert_eq!(
            r.text("Bearer abc OmFiYw==".into()),
            "[redacted] [redacted]"
        );
        assert!(Redactor::default().is_empty());
        assert!(Redactor::new([""], ["u"], []).is_empty());
    }
}
