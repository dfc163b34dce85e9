//! A test-only provider that misbehaves on request. The setting `mode` picks the fault that
//! `normalize-key`, `test-connection` and `fetch-issue(s)` commit:
//!
//! - `loop`: spins forever (the CPU deadline must stop it);
//! - `sleep-http`: asks a URL that never answers (the wall-clock timeout must stop it);
//! - `bomb`: allocates until memory runs out (the memory cap must stop it);
//! - `panic`: panics (a trap);
//! - `egress`: calls a host that is not on the allow-list and reports what happened;
//! - `anonymous`: like `egress`, but the request is not marked authenticated;
//! - `echo`: reports everything it can see (source, environment, files, the response of the
//!   `echo-url` stand-in), to prove no secret reaches the guest;
//! - `echo-hex`: the same, hex-encoded, so that what the guest saw reaches the test as it was
//!   (the host redacts secrets from plugin answers too, and would hide a leak into the guest);
//! - `garbage`: answers things the contract forbids (an empty key, a non-URL, a short batch);
//! - `huge`: answers 1 MiB where a short text belongs (a provider error's message, a
//!   connection's detail, an issue's assignee);
//! - `remember` (`normalize-key` only): looks through its whole linear memory for what an
//!   earlier call left behind, answers it (or `clean`), then leaves its own key behind in a
//!   global and across 8 MiB of heap, to prove nothing survives from one call to the next;
//! - anything else: behaves.
//!
//! `describe` takes no input, so its faults are chosen in the binary instead: the sandbox tests
//! replace the bytes of [`INFLATE`] in the compiled `.wasm` (same length) to get a plugin whose
//! description is too large.

use testorchestrator_provider_sdk::*;

struct Misbehave;

/// What `describe` inflates: `inflate:name....` (a 1 MiB name), `inflate:fields..` (20,000 auth
/// fields), anything else nothing. Fixed-width; read through `black_box` so that the compiler
/// cannot fold it.
const INFLATE: &str = "inflate:nothing.";

/// One MiB of text.
fn mebibyte() -> String {
    "x".repeat(1 << 20)
}

/// Makes `info` too large as [`INFLATE`] says.
fn inflate(info: &mut ProviderInfo) {
    match std::hint::black_box(INFLATE).trim_end_matches('.') {
        "inflate:name" => info.name = mebibyte(),
        "inflate:fields" => info.auth_types[0]
            .fields
            .extend((0..20_000).map(|i| AuthField {
                name: format!("field-{i}"),
                label: format!("Field {i}"),
                secret: false,
                required: false,
                help: None,
            })),
        _ => {}
    }
}

fn mode(source: &Source) -> &str {
    setting(source, "mode").unwrap_or("")
}

/// Everything the guest can observe, as one string.
fn everything_visible(source: &Source) -> String {
    let env: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
    let args: Vec<String> = std::env::args().collect();
    let root = std::fs::read_dir("/")
        .map(|d| d.count())
        .map_err(|e| e.to_string());
    let echoed = setting(source, "echo-url")
        .map(|url| match get(url).send() {
            Ok(resp) => resp.text(),
            Err(e) => format!("{e:?}"),
        })
        .unwrap_or_default();
    format!("source={source:?} env={env:?} args={args:?} root={root:?} echoed={echoed}")
}

/// The `echo-url` stand-in's response as the guest got it: status, headers and body.
fn echoed_response(source: &Source) -> String {
    let url = setting(source, "echo-url").unwrap_or("http://127.0.0.1:9/");
    match get(url).send() {
        Ok(resp) => format!("{} {:?} {}", resp.status, resp.headers, resp.text()),
        Err(e) => format!("{e:?}"),
    }
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

fn misbehave(source: &Source) -> Result<String, ProviderError> {
    match mode(source) {
        "loop" => {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_add(1));
            }
        }
        "sleep-http" => {
            let url = setting(source, "slow-url").unwrap_or("http://127.0.0.1:9/");
            get(url).send().map(|r| r.text())
        }
        "bomb" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "panic" => panic!("the misbehave plugin panics on purpose"),
        "egress" => {
            let url = setting(source, "forbidden-url").unwrap_or("https://example.org/");
            match get(url).send() {
                Ok(resp) => Ok(format!("reached {url}: HTTP {}", resp.status)),
                Err(e) => Err(e),
            }
        }
        "anonymous" => {
            let url = setting(source, "forbidden-url").unwrap_or("https://example.org/");
            get(url)
                .anonymous()
                .send()
                .map(|resp| format!("HTTP {}", resp.status))
        }
        "echo" => Err(ProviderError::Provider(everything_visible(source))),
        "echo-hex" => Err(ProviderError::Provider(hex(&echoed_response(source)))),
        "huge" => Err(ProviderError::Provider(mebibyte())),
        _ => Ok("OK-1".into()),
    }
}

/// The mark `remember` leaves before a key. It is written XOR a mask the compiler cannot fold
/// (see [`mask`]), so that the bytes searched for are in memory only where a call left them.
const MARK: &[u8] = b"left-behind-by-an-earlier-call:";

fn mask() -> u8 {
    std::hint::black_box(0x5a)
}

/// The byte at address `at` of linear memory.
fn byte(at: usize) -> u8 {
    // SAFETY: every address below the memory's size is readable by the guest (wasm has no
    // unmapped pages); a test plugin reads them as bytes, nothing more.
    unsafe { std::ptr::read_volatile(std::ptr::with_exposed_provenance::<u8>(at)) }
}

/// The key an earlier call left after a mark at `at`, if there is one there.
fn left_behind(at: usize, size: usize, mask: u8) -> Option<String> {
    if at + MARK.len() >= size || !(0..MARK.len()).all(|i| byte(at + i) == MARK[i] ^ mask) {
        return None;
    }
    let key: Vec<u8> = (at + MARK.len()..size.min(at + MARK.len() + 64))
        .map(byte)
        .take_while(|b| *b != 0)
        .collect();
    Some(String::from_utf8_lossy(&key).into_owned())
}

/// Holds what this instance left behind.
static LEFT: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// The `remember` mode: answers `found:KEY` for the first mark an earlier call left anywhere in
/// linear memory, else `clean`; then leaves `key` behind, in a global and across 8 MiB of heap.
fn remember(key: &str) -> String {
    #[cfg(target_arch = "wasm32")]
    let size = core::arch::wasm32::memory_size(0) * 65536;
    #[cfg(not(target_arch = "wasm32"))]
    let size = 0;
    let mask = mask();
    let found = (8..size).find_map(|at| left_behind(at, size, mask));
    let mut mark: Vec<u8> = MARK.iter().map(|b| b ^ mask).collect();
    mark.extend(key.trim().as_bytes());
    mark.push(0);
    let mut heap = Vec::with_capacity(8 << 20);
    while heap.len() + mark.len() <= heap.capacity() {
        heap.extend_from_slice(&mark);
    }
    std::hint::black_box(&heap);
    *LEFT.lock().unwrap() = mark;
    match found {
        Some(key) => format!("found:{key}"),
        None => "clean".into(),
    }
}

impl Provider for Misbehave {
    fn describe() -> ProviderInfo {
        let mut info = ProviderInfo {
            id: "misbehave".into(),
            version: "0.0.1".into(),
            name: "Misbehave (test only)".into(),
            key_hint: "Anything".into(),
            key_example: "OK-1".into(),
            default_key_pattern: None,
            default_issue_url_template: "{baseUrl}/issue/{key}".into(),
            default_create_url_template: Some("{baseUrl}/new".into()),
            base_url_example: "http://127.0.0.1:8080".into(),
            auth_types: vec![AuthType {
                id: "api-token".into(),
                label: "API Token".into(),
                fields: vec![
                    AuthField {
                        name: "user".into(),
                        label: "User".into(),
                        secret: false,
                        required: false,
                        help: None,
                    },
                    AuthField {
                        name: "token".into(),
                        label: "Token".into(),
                        secret: true,
                        required: true,
                        help: None,
                    },
                ],
                scheme: CredentialScheme::Basic(BasicScheme {
                    user_field: Some("user".into()),
                    password_field: "token".into(),
                }),
            }],
            settings: ["mode", "echo-url", "slow-url", "forbidden-url"]
                .into_iter()
                .map(|name| Setting {
                    name: name.into(),
                    label: name.into(),
                    help: String::new(),
                    // `forbidden-url` is text on purpose: it must not widen the allow-list.
                    kind: if matches!(name, "echo-url" | "slow-url") {
                        SettingKind::Url
                    } else {
                        SettingKind::Text
                    },
                    required: false,
                })
                .collect(),
            extra_origins: vec![],
        };
        inflate(&mut info);
        info
    }

    fn normalize_key(source: &Source, key: &str) -> Result<String, ProviderError> {
        match mode(source) {
            "garbage" => return Ok(String::new()),
            "remember" => return Ok(remember(key)),
            _ => {}
        }
        misbehave(source).map(|_| key.trim().to_string())
    }

    fn issue_url(source: &Source, key: &str) -> Result<String, ProviderError> {
        if mode(source) == "garbage" {
            return Ok("javascript:alert(1)".into());
        }
        let template = source
            .issue_url_template
            .as_deref()
            .unwrap_or("{baseUrl}/issue/{key}");
        Ok(render_template(template, &source.base_url, Some(key)))
    }

    fn test_connection(source: &Source) -> Result<ConnectionInfo, ProviderError> {
        if mode(source) == "huge" {
            return Ok(ConnectionInfo {
                account: "robot".into(),
                detail: Some(mebibyte()),
            });
        }
        misbehave(source).map(|account| ConnectionInfo {
            account,
            detail: None,
        })
    }

    fn fetch_issue(source: &Source, key: &str) -> Result<Issue, ProviderError> {
        let huge = mode(source) == "huge";
        if !huge {
            misbehave(source)?;
        }
        Ok(Issue {
            key: key.into(),
            title: "A test issue".into(),
            status: "Open".into(),
            status_category: StatusCategory::ToDo,
            assignee: huge.then(mebibyte),
            web_url: Self::issue_url(source, key)?,
        })
    }

    fn fetch_issues(
        source: &Source,
        keys: &[String],
    ) -> Result<Vec<Result<Issue, ProviderError>>, ProviderError> {
        if mode(source) == "garbage" {
            return Ok(Vec::new());
        }
        Ok(keys.iter().map(|k| Self::fetch_issue(source, k)).collect())
    }
}

export_provider!(Misbehave);
