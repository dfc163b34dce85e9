//! Rate-limit headroom: how many requests a tracker says a source has left, read by the host
//! from the responses the HTTP import relays, so every plugin gets it without writing a line.
//!
//! Trackers announce their limits in response headers, following a few common conventions
//! rather than one standard. This module knows the conventions, never a tracker:
//! - the IETF draft's `RateLimit-Remaining`/`-Limit`/`-Reset` fields and its later single
//!   structured `RateLimit` field (`limit=100, remaining=7, reset=30` or `"p";r=7;t=30`);
//! - the de-facto `X-RateLimit-Remaining`/`-Limit`/`-Reset`;
//! - its `X-RateLimit-Requests-*` variant (request counts, beside other budgets).
//!
//! A reset is read whatever its unit: a small number is seconds from now (the draft's
//! meaning), a number of 10 digits epoch seconds, of 13 epoch milliseconds, and a text an
//! ISO-8601 UTC timestamp such as `2026-11-28T10:15Z`.

use std::collections::HashMap;
use std::sync::Mutex;

use reqwest::header::HeaderMap;
use serde::{Deserialize, Serialize};

/// Header triples (remaining, limit, reset) in the order they are tried; the first whose
/// `remaining` is present and numeric is used.
const CONVENTIONS: [[&str; 3]; 3] = [
    ["ratelimit-remaining", "ratelimit-limit", "ratelimit-reset"],
    [
        "x-ratelimit-remaining",
        "x-ratelimit-limit",
        "x-ratelimit-reset",
    ],
    [
        "x-ratelimit-requests-remaining",
        "x-ratelimit-requests-limit",
        "x-ratelimit-requests-reset",
    ],
];

/// What a tracker's response said about the rate limit of the source it was made for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headroom {
    /// Requests left in the tracker's current window.
    pub remaining: u64,
    /// Requests allowed per window, when the tracker says.
    pub limit: Option<u64>,
    /// When the window resets, in milliseconds since the epoch, when the tracker says.
    pub resets_at: Option<u64>,
    /// When the response was received, in milliseconds since the epoch.
    pub reported_at: u64,
}

impl Headroom {
    /// When the window resets, if the tracker said no request is left in it and the reset is
    /// still ahead of `now` (milliseconds since the epoch).
    pub fn exhausted_until(&self, now: u64) -> Option<u64> {
        let reset = self.resets_at.filter(|_| self.remaining == 0)?;
        (reset > now).then_some(reset)
    }

    /// Reads the headroom a response announces, if it announces one; `now` is in
    /// milliseconds since the epoch.
    pub fn from_headers(headers: &HeaderMap, now: u64) -> Option<Headroom> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let number = |name: &str| text(name).and_then(|v| v.trim().parse::<u64>().ok());
        for [remaining, limit, reset] in CONVENTIONS {
            if let Some(left) = number(remaining) {
                return Some(Headroom {
                    remaining: left,
                    limit: number(limit),
                    resets_at: text(reset).and_then(|v| reset_at(v, now)),
                    reported_at: now,
                });
            }
        }
        text("ratelimit").and_then(|v| structured(v, now))
    }
}

/// The single `RateLimit` field: `limit=100, remaining=7, reset=30` (early drafts) or
/// `"policy";r=7;t=30` (later drafts).
fn structured(value: &str, now: u64) -> Option<Headroom> {
    let mut remaining = None;
    let (mut limit, mut resets_at) = (None, None);
    for param in value.split([',', ';']) {
        let Some((name, v)) = param.split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        match name.trim().to_ascii_lowercase().as_str() {
            "remaining" | "r" => remaining = v.parse().ok(),
            "limit" => limit = v.parse().ok(),
            "reset" | "t" => resets_at = reset_at(v, now),
            _ => {}
        }
    }
    Some(Headroom {
        remaining: remaining?,
        limit,
        resets_at,
        reported_at: now,
    })
}

/// A reset value in milliseconds since the epoch (see the module documentation for the
/// units understood); `None` when it is unreadable.
fn reset_at(value: &str, now: u64) -> Option<u64> {
    let value = value.trim();
    if let Ok(n) = value.parse::<u64>() {
        return Some(match n {
            1_000_000_000_000.. => n,
            1_000_000_000.. => n.saturating_mul(1000),
            _ => now.saturating_add(n.saturating_mul(1000)),
        });
    }
    if let Ok(secs) = value.parse::<f64>()
        && (0.0..1e9).contains(&secs)
    {
        return Some(now + (secs * 1000.0) as u64);
    }
    iso8601_utc(value)
}

/// `YYYY-MM-DDTHH:MM[:SS[.fff]]` followed by `Z` or `+00:00`-style offset, in milliseconds
/// since the epoch.
fn iso8601_utc(text: &str) -> Option<u64> {
    let (date, time) = text.split_once(['T', 't', ' '])?;
    let mut ymd = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let (clock, offset_secs) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else {
        let at = time.rfind(['+', '-'])?;
        let (clock, offset) = time.split_at(at);
        let sign = if offset.starts_with('-') { -1 } else { 1 };
        let (oh, om) = offset[1..].split_once(':').unwrap_or((&offset[1..], "0"));
        (
            clock,
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60),
        )
    };
    let mut hms = clock.splitn(3, ':');
    let h = hms.next()?.parse::<i64>().ok()?;
    let min = hms.next()?.parse::<i64>().ok()?;
    let secs = hms.next().map_or(Some(0.0), |s| s.parse::<f64>().ok())?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || min > 59 || secs >= 61.0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    let epoch_secs = days * 86_400 + h * 3600 + min * 60 - offset_secs;
    let ms = epoch_secs * 1000 + (secs * 1000.0) as i64;
    u64::try_from(ms).ok()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The latest headroom reported for each stored source, kept by the plugin host.
#[derive(Default)]
pub struct Board {
    by_source: Mutex<HashMap<String, Headroom>>,
}

impl Board {
    /// Keeps `headroom` as `source_id`'s, unless a later report is already kept (calls that
    /// overlap may finish in any order).
    pub fn report(&self, source_id: &str, headroom: Headroom) {
        let mut all = self.lock();
        match all.get(source_id) {
            Some(kept) if kept.reported_at > headroom.reported_at => {}
            _ => {
                all.insert(source_id.to_string(), headroom);
            }
        }
    }

    /// The latest headroom reported for `source_id`.
    pub fn get(&self, source_id: &str) -> Option<Headroom> {
        self.lock().get(source_id).copied()
    }

    /// Every source's latest headroom, sorted by source id.
    pub fn all(&self) -> Vec<(String, Headroom)> {
        let mut out: Vec<_> = self.lock().iter().map(|(id, h)| (id.clone(), *h)).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Forgets a source's headroom.
    pub fn forget(&self, source_id: &str) {
        self.lock().remove(source_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Headroom>> {
        // A panic while holding the lock leaves a usable map: readings are independent.
        self.by_source.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_795_000_000_000;

    fn read(pairs: &[(&'static str, &'static str)]) -> Option<Headroom> {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        Headroom::from_headers(&headers, NOW)
    }

    #[test]
    fn each_convention_is_read_with_its_reset_unit() {
        // Epoch seconds.
        let h = read(&[
            ("x-ratelimit-remaining", "4990"),
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-reset", "1795000600"),
        ])
        .unwrap();
        assert_eq!(
            (h.remaining, h.limit, h.resets_at),
            (4990, Some(5000), Some(1_795_000_600_000))
        );
        // Epoch milliseconds.
        let h = read(&[
            ("x-ratelimit-requests-remaining", "1499"),
            ("x-ratelimit-requests-reset", "1795000060123"),
        ])
        .unwrap();
        assert_eq!((h.remaining, h.resets_at), (1499, Some(1_795_000_060_123)));
        // Seconds from now.
        let h = read(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "30")]).unwrap();
        assert_eq!((h.remaining, h.resets_at), (0, Some(NOW + 30_000)));
        // An ISO-8601 timestamp without seconds.
        let h = read(&[
            ("x-ratelimit-remaining", "12"),
            ("x-ratelimit-reset", "2026-11-20T08:30Z"),
        ])
        .unwrap();
        assert_eq!(h.resets_at, Some(1_795_163_400_000));
        assert_eq!(h.reported_at, NOW);
    }

    #[test]
    fn the_structured_field_is_read_in_both_draft_forms() {
        let h = read(&[("ratelimit", "limit=100, remaining=7, reset=30")]).unwrap();
        assert_eq!(
            (h.remaining, h.limit, h.resets_at),
            (7, Some(100), Some(NOW + 30_000))
        );
        let h = read(&[("ratelimit", "\"default\";r=7;t=30")]).unwrap();
        assert_eq!(
            (h.remaining, h.limit, h.resets_at),
            (7, None, Some(NOW + 30_000))
        );
    }

    #[test]
    fn responses_without_usable_figures_report_nothing() {
        assert_eq!(read(&[]), None);
        assert_eq!(read(&[("x-ratelimit-remaining", "many")]), None);
        assert_eq!(read(&[("ratelimit", "limit=100")]), None);
        assert_eq!(read(&[("retry-after", "120")]), None);
        let h = read(&[
            ("x-ratelimit-remaining", "3"),
            ("x-ratelimit-reset", "soon"),
        ])
        .unwrap();
        assert_eq!((h.remaining, h.resets_at), (3, None));
    }

    #[test]
    fn timestamps_with_offsets_and_fractions_are_read() {
        assert_eq!(iso8601_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            iso8601_utc("2000-03-01T00:00:00.250Z"),
            Some(951_868_800_250)
        );
        assert_eq!(
            iso8601_utc("2026-11-20T10:30+02:00"),
            iso8601_utc("2026-11-20T08:30Z")
        );
        assert_eq!(iso8601_utc("2026-13-20T08:30Z"), None);
        assert_eq!(iso8601_utc("yesterday"), None);
    }

    #[test]
    fn the_board_keeps_the_latest_report() {
        let board = Board::default();
        let at = |reported_at, remaining| Headroom {
            remaining,
            limit: None,
            resets_at: None,
            reported_at,
        };
        board.report("s1", at(2, 10));
        board.report("s1", at(1, 20));
        assert_eq!(board.get("s1").unwrap().remaining, 10);
        board.report("s1", at(3, 5));
        board.report("s0", at(1, 7));
        assert_eq!(board.get("s1").unwrap().remaining, 5);
        assert_eq!(
            board.all(),
            vec![("s0".into(), at(1, 7)), ("s1".into(), at(3, 5))]
        );
        board.forget("s1");
        assert_eq!(board.get("s1"), None);
    }
}
