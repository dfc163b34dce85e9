//! The authenticity checks of webhook events, as pure functions over the raw request: HMAC
//! signatures, shared-token headers, Basic credentials, replay windows and the memory of
//! delivery ids. Every comparison with the secret runs in constant time, whatever the lengths.
//!
//! The facts behind each check (header names, encodings, vendors' test vectors, redelivery
//! horizons) are in `../shared/providers-events.md`, sections 1.B to 5.B and 7.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::plugin::model::{
    Authenticity, DigestEncoding, EventScheme, Locator, SignedContent, TimeUnit,
};
use crate::store::records::Millis;

/// The prefix of a Standard Webhooks secret (GitLab signing tokens): the key is the base64
/// after it.
const STANDARD_WEBHOOKS_SECRET_PREFIX: &str = "whsec_";

/// The HMAC key a secret stands for: the decoded bytes of a Standard Webhooks `whsec_` secret
/// when `standard_webhooks` is set and it decodes, else the secret's own bytes.
pub fn hmac_key(secret: &str, standard_webhooks: bool) -> Vec<u8> {
    secret
        .strip_prefix(STANDARD_WEBHOOKS_SECRET_PREFIX)
        .filter(|_| standard_webhooks)
        .and_then(|b64| BASE64.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// True when one of the space-separated signatures in `header_value` is `prefix` followed by
/// the HMAC-SHA256 of the concatenated `parts` under `key`, written in hex (either case) or
/// standard base64. Several signatures are how trackers rotate a secret: one match is enough.
pub fn hmac_matches(
    key: &[u8],
    parts: &[&[u8]],
    header_value: &str,
    prefix: &str,
    base64: bool,
) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    for part in parts {
        mac.update(part);
    }
    header_value.split_whitespace().any(|signature| {
        let Some(digest) = signature.strip_prefix(prefix) else {
            return false;
        };
        let decoded = if base64 {
            BASE64.decode(digest).ok()
        } else {
            hex::decode(digest).ok()
        };
        decoded.is_some_and(|bytes| mac.clone().verify_slice(&bytes).is_ok())
    })
}

/// True when `given` is exactly `secret`, compared in constant time whatever the lengths
/// (both are hashed first, so neither the length nor a prefix leaks).
pub fn token_matches(secret: &str, given: &str) -> bool {
    let (a, b) = (
        Sha256::digest(secret.as_bytes()),
        Sha256::digest(given.as_bytes()),
    );
    bool::from(a.ct_eq(&b))
}

/// True when an `Authorization` header holds Basic credentials whose password is `secret`
/// (the user name is not checked: Azure DevOps lets the admin type any).
pub fn basic_matches(secret: &str, authorization: &str) -> bool {
    let Some((scheme, encoded)) = authorization.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Some(decoded) = BASE64.decode(encoded.trim()).ok() else {
        return false;
    };
    let text = String::from_utf8_lossy(&decoded);
    let password = text.split_once(':').map_or("", |(_, p)| p);
    token_matches(secret, password)
}

/// True when `sent` (Unix time in seconds, or milliseconds when `millis`) is within
/// `tolerance_secs` of `now` (milliseconds), in the past or the future.
pub fn within_window(sent: u64, millis: bool, tolerance_secs: u32, now: Millis) -> bool {
    let sent_ms = if millis {
        sent
    } else {
        sent.saturating_mul(1000)
    };
    now.abs_diff(sent_ms) <= u64::from(tolerance_secs) * 1000
}

/// The value at a JSON pointer (RFC 6901) of a body, as text: a string as it is, a number or a
/// boolean written out; none when the body is not JSON or the pointer finds nothing else.
pub fn pointer_value(body: &[u8], pointer: &str) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    match json.pointer(pointer)? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Why an event was refused by its scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The signature, token or credentials are missing or wrong.
    Signature,
    /// The signed send time is missing or outside the replay window.
    Replay,
}

/// What a verified event says about itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verified {
    /// The tracker's delivery id, when the scheme names where it is and the event has one.
    pub delivery_id: Option<String>,
}

/// The value of a request header (`headers` have lower-case names).
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let name = name.to_ascii_lowercase();
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

/// `text` with every `{setting:NAME}` replaced by the source's setting (empty when unset): how
/// a Custom Tracker names its signature header and prefix per source.
pub fn with_settings(text: &str, settings: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("{setting:") {
        let Some(len) = rest[start..].find('}') else {
            break;
        };
        out.push_str(&rest[..start]);
        let name = &rest[start + "{setting:".len()..start + len];
        out.push_str(settings.get(name).map_or("", |v| v.trim()));
        rest = &rest[start + len + 1..];
    }
    out.push_str(rest);
    out
}

/// The header that carries the proof of `scheme` (none for Basic, which uses
/// `authorization`), settings filled in.
pub fn proof_header(scheme: &EventScheme, settings: &BTreeMap<String, String>) -> String {
    match &scheme.authenticity {
        Authenticity::HmacSha256(h) => with_settings(&h.header, settings),
        Authenticity::TokenHeader(name) => with_settings(name, settings),
        Authenticity::Basic => "authorization".to_string(),
    }
    .to_ascii_lowercase()
}

/// The value a locator points at in the event.
pub fn locate(locator: &Locator, headers: &[(String, String)], body: &[u8]) -> Option<String> {
    match locator {
        Locator::Header(name) => header(headers, name).map(str::to_string),
        Locator::BodyPointer(pointer) => pointer_value(body, pointer),
    }
}

/// Checks an event by `scheme` with the source's webhook `secret` and `settings`, at `now`:
/// the proof first (in constant time, over the raw bytes), then the replay window; returns
/// its delivery id.
pub fn check_event(
    scheme: &EventScheme,
    settings: &BTreeMap<String, String>,
    secret: &str,
    headers: &[(String, String)],
    body: &[u8],
    now: Millis,
) -> Result<Verified, Rejection> {
    if secret.is_empty() {
        return Err(Rejection::Signature);
    }
    let given = header(headers, &proof_header(scheme, settings)).unwrap_or("");
    let proven = match &scheme.authenticity {
        Authenticity::HmacSha256(h) => {
            let prefix = with_settings(&h.prefix, settings);
            let base64 = h.encoding == DigestEncoding::Base64;
            match &h.content {
                SignedContent::Body => {
                    hmac_matches(&hmac_key(secret, false), &[body], given, &prefix, base64)
                }
                SignedContent::IdTimestampBody(names) => {
                    let id = header(headers, &names.id).unwrap_or("");
                    let sent = header(headers, &names.timestamp).unwrap_or("");
                    let parts: [&[u8]; 5] = [id.as_bytes(), b".", sent.as_bytes(), b".", body];
                    !id.is_empty()
                        && !sent.is_empty()
                        && hmac_matches(&hmac_key(secret, true), &parts, given, &prefix, base64)
                }
            }
        }
        Authenticity::TokenHeader(_) => token_matches(secret, given),
        Authenticity::Basic => basic_matches(secret, given),
    };
    if !proven {
        return Err(Rejection::Signature);
    }
    if let Some(window) = &scheme.replay {
        let sent = locate(&window.timestamp, headers, body).and_then(|t| t.trim().parse().ok());
        let millis = window.unit == TimeUnit::Milliseconds;
        if !sent.is_some_and(|sent| within_window(sent, millis, window.tolerance_secs, now)) {
            return Err(Rejection::Replay);
        }
    }
    let delivery_id = scheme
        .delivery_id
        .as_ref()
        .and_then(|l| locate(l, headers, body))
        .filter(|id| !id.trim().is_empty());
    Ok(Verified { delivery_id })
}

/// The headers a plugin gets: all but the one carrying the proof, `authorization` and
/// `cookie`.
pub fn plugin_headers(
    scheme: &EventScheme,
    settings: &BTreeMap<String, String>,
    headers: &[(String, String)],
) -> Vec<(String, String)> {
    let proof = proof_header(scheme, settings);
    headers
        .iter()
        .filter(|(n, _)| *n != proof && n != "authorization" && n != "cookie")
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's documented example (`../shared/providers-events.md` 2.B); Jira's admin
    /// webhooks and Linear sign the same way.
    const GITHUB_SECRET: &str = "It's a Secret to Everybody";
    const GITHUB_BODY: &[u8] = b"Hello, World!";
    const GITHUB_DIGEST: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";

    #[test]
    fn github_documented_vector_matches_with_its_prefix() {
        let key = hmac_key(GITHUB_SECRET, false);
        let header = format!("sha256={GITHUB_DIGEST}");
        assert!(hmac_matches(
            &key,
            &[GITHUB_BODY],
            &header,
            "sha256=",
            false
        ));
        // Linear: the same digest without a prefix; upper-case hex is the same digest.
        assert!(hmac_matches(&key, &[GITHUB_BODY], GITHUB_DIGEST, "", false));
        let upper = GITHUB_DIGEST.to_uppercase();
        assert!(hmac_matches(&key, &[GITHUB_BODY], &upper, "", false));
    }

    #[test]
    fn a_changed_body_key_prefix_or_digest_fails() {
        let key = hmac_key(GITHUB_SECRET, false);
        let header = format!("sha256={GITHUB_DIGEST}");
        assert!(!hmac_matches(
            &key,
            &[b"Hello, World?"],
            &header,
            "sha256=",
            false
        ));
        assert!(!hmac_matches(
            b"another secret",
            &[GITHUB_BODY],
            &header,
            "sha256=",
            false
        ));
        assert!(!hmac_matches(
            &key,
            &[GITHUB_BODY],
            GITHUB_DIGEST,
            "sha256=",
            false
        ));
        assert!(!hmac_matches(
            &key,
            &[GITHUB_BODY],
            "sha256=757107ea",
            "sha256=",
            false
        ));
        assert!(!hmac_matches(
            &key,
            &[GITHUB_BODY],
            "sha256=zz",
            "sha256=",
            false
        ));
        assert!(!hmac_matches(&key, &[GITHUB_BODY], "", "", false));
    }

    #[test]
    fn one_of_several_space_separated_signatures_is_enough() {
        let key = hmac_key(GITHUB_SECRET, false);
        let header = format!("sha256=00ff sha256={GITHUB_DIGEST}");
        assert!(hmac_matches(
            &key,
            &[GITHUB_BODY],
            &header,
            "sha256=",
            false
        ));
    }

    /// The Standard Webhooks vector (GitLab signing tokens), `../shared/providers-events.md` 5.B.
    #[test]
    fn standard_webhooks_vector_matches() {
        let key = hmac_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", true);
        let parts: [&[u8]; 5] = [
            b"msg_p5jXN8AQM9LWM0D4loKWxJek",
            b".",
            b"1614265330",
            b".",
            br#"{"test": 2432232314}"#,
        ];
        let header = "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        assert!(hmac_matches(&key, &parts, header, "v1,", true));
        let raw = hmac_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", false);
        assert!(!hmac_matches(&raw, &parts, header, "v1,", true));
    }

    #[test]
    fn tokens_compare_whole_values_only() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        assert!(!token_matches("s3cret-token", "s3cret"));
        assert!(!token_matches("s3cret-token", "s3cret-token-and-more"));
        assert!(!token_matches("s3cret-token", ""));
    }

    #[test]
    fn basic_checks_the_password_only() {
        let header = format!("Basic {}", BASE64.encode("ado:pa:ss"));
        assert!(basic_matches("pa:ss", &header));
        assert!(basic_matches("pa:ss", &header.replace("Basic", "basic")));
        assert!(!basic_matches("pass", &header));
        assert!(!basic_matches(
            "pa:ss",
            &format!("Bearer {}", BASE64.encode("ado:pa:ss"))
        ));
        assert!(!basic_matches("pa:ss", "Basic !!!"));
    }

    #[test]
    fn the_window_holds_both_ways_in_either_unit() {
        let now = 1_752_000_000_000;
        assert!(within_window(1_752_000_000_000 - 60_000, true, 60, now));
        assert!(!within_window(1_752_000_000_000 - 60_001, true, 60, now));
        assert!(within_window(1_752_000_000 + 300, false, 300, now));
        assert!(!within_window(1_752_000_000 + 301, false, 300, now));
        assert!(!within_window(u64::MAX, false, 300, now));
    }

    #[test]
    fn pointers_read_strings_and_numbers() {
        let body = br#"{"webhookTimestamp":1752000000123,"data":{"identifier":"ENG-1"}}"#;
        assert_eq!(
            pointer_value(body, "/webhookTimestamp").as_deref(),
            Some("1752000000123")
        );
        assert_eq!(
            pointer_value(body, "/data/identifier").as_deref(),
            Some("ENG-1")
        );
        assert_eq!(pointer_value(body, "/data"), None);
        assert_eq!(pointer_value(b"not json", "/a"), None);
    }

    fn github_scheme() -> EventScheme {
        EventScheme {
            id: "hmac".into(),
            label: "GitHub".into(),
            authenticity: Authenticity::HmacSha256(crate::plugin::model::HmacScheme {
                header: "X-Hub-Signature-256".into(),
                prefix: "sha256=".into(),
                encoding: DigestEncoding::Hex,
                content: SignedContent::Body,
            }),
            replay: None,
            delivery_id: Some(Locator::Header("X-GitHub-Delivery".into())),
            setup: String::new(),
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    #[test]
    fn an_event_is_checked_by_its_scheme_and_named_by_its_delivery_id() {
        let scheme = github_scheme();
        let none = BTreeMap::new();
        let signed = headers(&[
            ("X-Hub-Signature-256", &format!("sha256={GITHUB_DIGEST}")),
            ("X-GitHub-Delivery", "72d3162e"),
            ("X-GitHub-Event", "issues"),
        ]);
        let verified = check_event(&scheme, &none, GITHUB_SECRET, &signed, GITHUB_BODY, 0);
        assert_eq!(verified.unwrap().delivery_id.as_deref(), Some("72d3162e"));
        let forged = check_event(&scheme, &none, "other", &signed, GITHUB_BODY, 0);
        assert_eq!(forged, Err(Rejection::Signature));
        let unsigned = headers(&[("X-GitHub-Delivery", "72d3162e")]);
        let missing = check_event(&scheme, &none, GITHUB_SECRET, &unsigned, GITHUB_BODY, 0);
        assert_eq!(missing, Err(Rejection::Signature));
        assert_eq!(
            check_event(&scheme, &none, "", &signed, GITHUB_BODY, 0),
            Err(Rejection::Signature),
            "an empty secret proves nothing"
        );
        let kept = plugin_headers(&scheme, &none, &signed);
        let names: Vec<&str> = kept.iter().map(|(n, _)| n.as_str()).collect();
        assert!(!names.contains(&"x-hub-signature-256"));
        assert!(names.contains(&"x-github-event"));
    }

    #[test]
    fn a_signed_body_timestamp_outside_the_window_is_a_replay() {
        let mut scheme = github_scheme();
        scheme.replay = Some(crate::plugin::model::ReplayWindow {
            timestamp: Locator::BodyPointer("/webhookTimestamp".into()),
            unit: TimeUnit::Milliseconds,
            tolerance_secs: 60,
        });
        let body = br#"{"webhookTimestamp":1752000000000}"#;
        let key = hmac_key("s", false);
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
        mac.update(body);
        let sig = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let h = headers(&[("X-Hub-Signature-256", &sig)]);
        let none = BTreeMap::new();
        assert!(check_event(&scheme, &none, "s", &h, body, 1_752_000_030_000).is_ok());
        assert_eq!(
            check_event(&scheme, &none, "s", &h, body, 1_752_000_061_000),
            Err(Rejection::Replay)
        );
    }

    #[test]
    fn settings_name_a_custom_header_and_prefix() {
        let settings = BTreeMap::from([("h".to_string(), " X-Sig ".to_string())]);
        assert_eq!(with_settings("{setting:h}", &settings), "X-Sig");
        assert_eq!(with_settings("a{setting:missing}b", &settings), "ab");
        assert_eq!(with_settings("sha256=", &settings), "sha256=");
    }
}
