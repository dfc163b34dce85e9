//! Conditional requests: an unchanged resource costs the tracker nothing.
//!
//! Trackers that send an `ETag` (GitHub's and GitLab's REST APIs) answer a request carrying it
//! in `If-None-Match` with `304 Not Modified` while the resource is unchanged, and GitHub does
//! not count such an answer against the rate limit. Plugins keep no state between calls, so
//! the host keeps the validators: for each stored source, the `ETag` and (redacted) reply of
//! its latest `GET`s. A `GET` to the same URL sends the `ETag`, and a `304` hands the plugin the
//! kept reply as if the tracker had sent it again. Drafts (no source id) are never cached; an
//! edit of the tracker or account forgets the source's entries.

use std::collections::HashMap;
use std::sync::Mutex;

use super::egress::Reply;

/// The largest reply kept (bigger ones are refetched every time).
const MAX_ENTRY_BYTES: usize = 256 << 10;

/// The most bytes kept in all; past it the cache starts over.
const MAX_TOTAL_BYTES: usize = 32 << 20;

/// What tells two requests apart: the source, the URL, and whether credentials went along.
type Key = (String, String, bool);

/// The validators and replies kept, per source and URL.
#[derive(Default)]
pub struct Validators {
    entries: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    by_key: HashMap<Key, (String, Reply)>,
    bytes: usize,
}

impl Validators {
    /// The `ETag` and reply kept for a `GET` of `url` on `source`, if any.
    pub fn lookup(&self, source: &str, url: &str, authenticated: bool) -> Option<(String, Reply)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let key = (source.to_string(), url.to_string(), authenticated);
        entries.by_key.get(&key).cloned()
    }

    /// Keeps `reply` (a `200` to a `GET` of `url` on `source`) under its `etag`.
    pub fn store(&self, source: &str, url: &str, authenticated: bool, etag: &str, reply: &Reply) {
        let size = reply.body.len() + url.len() + etag.len();
        if size > MAX_ENTRY_BYTES {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.bytes + size > MAX_TOTAL_BYTES {
            *entries = Entries::default();
        }
        let key = (source.to_string(), url.to_string(), authenticated);
        if let Some((etag, old)) = entries
            .by_key
            .insert(key, (etag.to_string(), reply.clone()))
        {
            entries.bytes -= old.body.len() + url.len() + etag.len();
        }
        entries.bytes += size;
    }

    /// Forgets everything kept for `source`.
    pub fn forget(&self, source: &str) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let Entries { by_key, bytes } = &mut *entries;
        by_key.retain(|(s, url, _), (etag, reply)| {
            let keep = s != source;
            if !keep {
                *bytes -= reply.body.len() + url.len() + etag.len();
            }
            keep
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &[u8]) -> Reply {
        Reply {
            status: 200,
            headers: vec![("etag".into(), "\"v1\"".into())],
            body: body.to_vec(),
        }
    }

    #[test]
    fn replies_are_kept_per_source_url_and_credentials_and_forgotten_per_source() {
        let v = Validators::default();
        v.store("src_1", "https://t/x", true, "\"v1\"", &reply(b"one"));
        v.store("src_2", "https://t/x", true, "\"v9\"", &reply(b"two"));
        let (etag, kept) = v.lookup("src_1", "https://t/x", true).unwrap();
        assert_eq!(
            (etag.as_str(), kept.body.as_slice()),
            ("\"v1\"", &b"one"[..])
        );
        assert!(v.lookup("src_1", "https://t/x", false).is_none());
        assert!(v.lookup("src_1", "https://t/y", true).is_none());
        v.forget("src_1");
        assert!(v.lookup("src_1", "https://t/x", true).is_none());
        assert!(v.lookup("src_2", "https://t/x", true).is_some());
        v.forget("src_2");
        assert_eq!(v.entries.lock().unwrap().bytes, 0);
    }

    #[test]
    fn big_replies_are_not_kept() {
        let v = Validators::default();
        v.store(
            "s",
            "u",
            true,
            "e",
            &reply(&vec![b'x'; MAX_ENTRY_BYTES + 1]),
        );
        assert!(v.lookup("s", "u", true).is_none());
    }
}
