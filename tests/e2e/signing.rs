//! Signed plugins through the real router, the real runtime and real minisign keys made here:
//! with signatures required, unsigned, untrusted, mismatched and malformed uploads are refused
//! with the reason (audited, never compiled) and a signed one is admitted and listed with its
//! signer; a plugin file without or with a bad `.minisig` is refused (logged, listed as a
//! problem) while the old version keeps serving; with signing off, everything works unsigned.
//!
//! "Version 2" of the `hotswap` test plugin is version 1 with its fixed-width version marker
//! patched in the binary: a different, valid binary.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use host::plugin::{Limits, PluginHost};
use host::plugin_registry::signatures::SigningPolicy;
use integration_tests::{ADMIN_TOKEN, LogSink, compile_cache_dir, test_plugins_dir};
use serde_json::Value;

const MARKER: &str = "1.0.0-hotswap.00000000";
const V2: &str = "2.0.0-hotswap.00000002";
const V3: &str = "3.0.0-hotswap.00000003";

/// The hotswap plugin, with another version string unless `version` is its own.
fn hotswap(version: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(test_plugins_dir().join("hotswap.wasm"))
        .expect("target/test-plugins/hotswap.wasm (run scripts/build-plugins.sh)");
    let at = bytes
        .windows(MARKER.len())
        .position(|w| w == MARKER.as_bytes())
        .expect("the version marker is in hotswap.wasm");
    bytes[at..at + MARKER.len()].copy_from_slice(version.as_bytes());
    bytes
}

/// A plugin vendor: a minisign key pair, made here.
struct Vendor {
    pk: minisign::PublicKey,
    sk: minisign::SecretKey,
}

impl Vendor {
    fn new() -> Vendor {
        let minisign::KeyPair { pk, sk } =
            minisign::KeyPair::generate_unencrypted_keypair().unwrap();
        Vendor { pk, sk }
    }

    /// The `.pub` file the vendor publishes.
    fn public_key_file(&self) -> String {
        self.pk.to_box().unwrap().into_string()
    }

    /// The key id as minisign prints it.
    fn key_id(&self) -> String {
        let id: [u8; 8] = self.pk.keynum().try_into().unwrap();
        format!("{:016X}", u64::from_le_bytes(id))
    }

    /// The `.minisig` of `bytes`, as `minisign -S` writes it.
    fn sign(&self, bytes: &[u8]) -> String {
        let trusted = "timestamp:1765000000\tfile:hotswap.wasm";
        minisign::sign(Some(&self.pk), &self.sk, bytes, Some(trusted), None)
            .unwrap()
            .into_string()
    }
}

/// The operator trusts `vendor` under the name `acme` (a directory holding `acme.pub`).
fn trusting(dir: &Path, vendor: &Vendor, required: bool) -> SigningPolicy {
    let keys = dir.join("trusted-keys");
    std::fs::create_dir_all(&keys).unwrap();
    std::fs::write(keys.join("acme.pub"), vendor.public_key_file()).unwrap();
    SigningPolicy::load(Some(&keys), required).unwrap()
}

/// The real router on a real port, with its own data and plugins directories and a signing
/// policy.
struct App {
    url: String,
    state: host::app::AppState,
    client: reqwest::Client,
    dirs: tempfile::TempDir,
}

impl App {
    /// An app whose plugins directory holds `files` (name, bytes), loaded under `policy`
    /// (made in the app's directory by `policy`); a refused file is left unloaded.
    async fn start(files: &[(&str, Vec<u8>)], policy: impl FnOnce(&Path) -> SigningPolicy) -> App {
        let dirs = tempfile::tempdir().unwrap();
        let plugins_dir = dirs.path().join("plugins");
        std::fs::create_dir_all(&plugins_dir).unwrap();
        for (name, bytes) in files {
            std::fs::write(plugins_dir.join(name), bytes).unwrap();
        }
        let host = PluginHost::new(Limits::default(), Some(compile_cache_dir())).unwrap();
        let host = Arc::new(host.allow_loopback_targets(true).unwrap());
        host.set_signing(policy(dirs.path()));
        host.load_dir(&plugins_dir).await;
        let store = host::store::Store::open(&dirs.path().join("integration.redb")).unwrap();
        let key = host::crypto::MasterKey::load_or_create(&dirs.path().join("master.key")).unwrap();
        host::api::tokens::bootstrap_admin(&store, Some(ADMIN_TOKEN.into()))
            .await
            .unwrap();
        let state = host::app::AppState::new(store, host, key, plugins_dir);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let app = host::app::router(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        App {
            url,
            state,
            client: reqwest::Client::new(),
            dirs,
        }
    }

    fn plugins_dir(&self) -> PathBuf {
        self.state.plugins_dir.clone()
    }

    async fn get(&self, path: &str) -> Value {
        let resp = self
            .client
            .get(format!("{}/api/v1{path}", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.json().await.unwrap()
    }

    /// `PUT /api/v1/plugins/{id}?wait=true` with the signature header's value, if any.
    async fn upload(&self, id: &str, bytes: Vec<u8>, signature: Option<&str>) -> (u16, Value) {
        let mut req = self
            .client
            .put(format!("{}/api/v1/plugins/{id}?wait=true", self.url))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/wasm")
            .body(bytes);
        if let Some(signature) = signature {
            req = req.header("X-Plugin-Signature", signature);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    /// The listing entry of plugin `id`.
    async fn listed(&self, id: &str) -> Value {
        let list = self.get("/plugins").await;
        let plugins = list["plugins"].as_array().unwrap();
        plugins.iter().find(|p| p["id"] == id).unwrap().clone()
    }

    /// Audit events with this action, oldest first.
    async fn audit(&self, action: &str) -> Vec<Value> {
        use host::store::Read;
        let mut events: Vec<Value> = (self.state.store)
            .read(|r| r.audit_page(u64::MAX, 10_000))
            .await
            .unwrap()
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| e["action"] == action)
            .collect();
        events.reverse();
        events
    }

    /// Waits until the listing satisfies `done`; panics naming `what` after 20 s.
    async fn wait_for(&self, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let list = self.get("/plugins").await;
            if done(&list) {
                return list;
            }
            assert!(Instant::now() < deadline, "never {what}: {list}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// The problem the listing shows for the file named `name`, if any.
fn problem(list: &Value, name: &str) -> Option<String> {
    let problems = list["problems"].as_array()?;
    problems
        .iter()
        .find(|p| p["file"].as_str().is_some_and(|f| f.ends_with(name)))
        .map(|p| p["error"].as_str().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn with_signatures_required_only_an_upload_signed_by_a_trusted_key_is_admitted() {
    let (acme, stranger) = (Vendor::new(), Vendor::new());
    let v1 = hotswap(MARKER);
    let files = [
        ("hotswap.wasm", v1.clone()),
        ("hotswap.wasm.minisig", acme.sign(&v1).into_bytes()),
    ];
    let app = App::start(&files, |dir| trusting(dir, &acme, true)).await;
    let listed = app.listed("hotswap").await;
    assert_eq!(listed["signed_by"]["key_name"], "acme", "{listed}");
    let list = app.get("/plugins").await;
    assert_eq!(list["signing"]["required"], true);
    assert_eq!(list["signing"]["trusted_keys"][0]["key_id"], acme.key_id());
    let compiles = |list: &Value| {
        list["compile"]["compiled"].as_u64().unwrap()
            + list["compile"]["from_cache"].as_u64().unwrap()
    };
    let compiled_before = compiles(&list);

    let v2 = hotswap(V2);
    let stranger_id = stranger.key_id();
    let refusals = [
        // (signature header, status, code, words the reason must hold)
        (None, 400, "signature-required", "X-Plugin-Signature"),
        (
            Some(base64(&stranger.sign(&v2))),
            422,
            "signature-untrusted",
            stranger_id.as_str(),
        ),
        (
            Some(base64(&acme.sign(&hotswap(V3)))),
            422,
            "signature-mismatch",
            "does not match",
        ),
        (
            Some(base64("untrusted comment: nothing\nnot a signature\n")),
            400,
            "signature-malformed",
            "minisign",
        ),
        (
            Some("%%% not base64".into()),
            400,
            "signature-malformed",
            "base64",
        ),
    ];
    for (signature, status, code, words) in &refusals {
        let (got, body) = app
            .upload("hotswap", v2.clone(), signature.as_deref())
            .await;
        assert_eq!(got, *status, "{code}: {body}");
        assert_eq!(body["error"]["code"], *code, "{body}");
        assert_eq!(body["error"]["field"], "X-Plugin-Signature", "{body}");
        let reason = body["error"]["message"].as_str().unwrap();
        assert!(reason.contains(words), "{code}: {reason}");
        assert_eq!(app.listed("hotswap").await["version"], MARKER);
    }
    // Every refusal is audited with its reason, and none reached the compiler.
    let rejected = app.audit("plugin.rejected").await;
    let codes: Vec<&str> = rejected
        .iter()
        .map(|e| e["details"]["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        refusals.iter().map(|r| r.2).collect::<Vec<_>>(),
        "{rejected:?}"
    );
    assert_eq!(compiles(&app.get("/plugins").await), compiled_before);

    // Signed by the trusted key: admitted, listed and audited with its signer, and saved with
    // its signature, so a restart admits it again.
    let signature = acme.sign(&v2);
    let (status, body) = app.upload("hotswap", v2, Some(&base64(&signature))).await;
    assert_eq!(status, 200, "{body}");
    let listed = app.listed("hotswap").await;
    assert_eq!(listed["version"], V2);
    assert_eq!(listed["signed_by"]["key_name"], "acme", "{listed}");
    assert_eq!(listed["signed_by"]["key_id"], acme.key_id());
    assert_eq!(
        listed["signed_by"]["trusted_comment"],
        "timestamp:1765000000\tfile:hotswap.wasm"
    );
    let swapped = app.audit("plugin.swapped").await;
    assert_eq!(swapped[0]["details"]["signed_by"]["key_id"], acme.key_id());
    let saved = app.plugins_dir().join("hotswap.wasm.minisig");
    assert_eq!(std::fs::read_to_string(saved).unwrap(), signature);
    let restarted = PluginHost::new(Limits::default(), Some(compile_cache_dir())).unwrap();
    restarted.set_signing(trusting(app.dirs.path(), &acme, true));
    for (path, loaded) in restarted.load_dir(&app.plugins_dir()).await {
        let loaded = loaded.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(loaded.info.version, V2);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn with_signatures_required_a_file_without_or_with_a_bad_signature_is_refused_and_the_old_version_serves()
 {
    let logs = LogSink::capture();
    let acme = Vendor::new();
    let v1 = hotswap(MARKER);
    let files = [
        ("hotswap.wasm", v1.clone()),
        ("hotswap.wasm.minisig", acme.sign(&v1).into_bytes()),
        // Unsigned at start-up: refused, listed as a problem, never loaded.
        (
            "misbehave.wasm",
            std::fs::read(test_plugins_dir().join("misbehave.wasm")).unwrap(),
        ),
    ];
    let app = App::start(&files, |dir| trusting(dir, &acme, true)).await;
    let list = app.get("/plugins").await;
    let unsigned = problem(&list, "misbehave.wasm").expect("the unsigned file is listed");
    assert!(unsigned.contains("not signed"), "{unsigned}");
    assert!(unsigned.contains("misbehave.wasm.minisig"), "{unsigned}");
    assert!(!list["plugins"].to_string().contains("misbehave"), "{list}");
    let watcher = host::api::plugins::spawn_watcher(&app.state, Duration::from_millis(100));
    let dir = app.plugins_dir();

    // A new version whose old signature no longer matches: refused, the old version serves.
    std::fs::write(dir.join("hotswap.wasm"), hotswap(V2)).unwrap();
    let list = app
        .wait_for("refused the mismatched file", |l| {
            problem(l, "hotswap.wasm").is_some()
        })
        .await;
    let mismatch = problem(&list, "hotswap.wasm").unwrap();
    assert!(mismatch.contains("does not match"), "{mismatch}");
    assert_eq!(app.listed("hotswap").await["version"], MARKER);
    let logged = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    assert!(
        logged.contains("plugin file rejected") && logged.contains("does not match"),
        "no log line of the refusal"
    );

    // Without its signature: refused as unsigned, saying which file to put beside it.
    std::fs::remove_file(dir.join("hotswap.wasm.minisig")).unwrap();
    let list = app
        .wait_for("refused the unsigned file", |l| {
            problem(l, "hotswap.wasm").is_some_and(|p| p.contains("not signed"))
        })
        .await;
    assert!(
        problem(&list, "hotswap.wasm")
            .unwrap()
            .contains("hotswap.wasm.minisig")
    );
    assert_eq!(app.listed("hotswap").await["version"], MARKER);

    // The vendor's signature put beside it: swapped in, signed, the problem gone.
    std::fs::write(dir.join("hotswap.wasm.minisig"), acme.sign(&hotswap(V2))).unwrap();
    let list = app
        .wait_for("swapped in the signed file", |l| {
            l["plugins"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["version"] == V2)
        })
        .await;
    assert_eq!(problem(&list, "hotswap.wasm"), None, "{list}");
    assert_eq!(app.listed("hotswap").await["signed_by"]["key_name"], "acme");
    watcher.abort();
}

#[tokio::test(flavor = "multi_thread")]
async fn with_signing_off_unsigned_plugins_are_admitted_and_listed_as_unsigned() {
    let app = App::start(&[("hotswap.wasm", hotswap(MARKER))], |_| {
        SigningPolicy::default()
    })
    .await;
    let list = app.get("/plugins").await;
    assert_eq!(list["signing"]["required"], false);
    assert_eq!(list["problems"], serde_json::json!([]));
    assert_eq!(app.listed("hotswap").await["signed_by"], Value::Null);
    let (status, body) = app.upload("hotswap", hotswap(V2), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plugin"]["signed_by"], Value::Null);
    assert_eq!(app.listed("hotswap").await["version"], V2);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_keys_but_signatures_optional_an_unsigned_upload_passes_and_a_bad_signature_does_not()
{
    let acme = Vendor::new();
    let app = App::start(&[("hotswap.wasm", hotswap(MARKER))], |dir| {
        trusting(dir, &acme, false)
    })
    .await;
    let (status, body) = app.upload("hotswap", hotswap(V2), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plugin"]["signed_by"], Value::Null);
    let wrong = base64(&acme.sign(&hotswap(V2)));
    let (status, body) = app.upload("hotswap", hotswap(V3), Some(&wrong)).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &"signature-mismatch".into()),
        "{body}"
    );
    let right = base64(&acme.sign(&hotswap(V3)));
    let (status, body) = app.upload("hotswap", hotswap(V3), Some(&right)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["plugin"]["signed_by"]["key_name"], "acme");
}

/// The operator's keys: one file holding `.pub` files one after another (each named by its
/// comment) or bare key lines (named after the key, else by their id), or a directory of
/// `.pub` files named by their file names.
#[test]
fn trusted_keys_are_read_from_a_file_of_keys_or_a_directory_of_pub_files() {
    let (a, b, c) = (Vendor::new(), Vendor::new(), Vendor::new());
    let dir = tempfile::tempdir().unwrap();
    let bare = |v: &Vendor| v.public_key_file().lines().nth(1).unwrap().to_string();
    let file = dir.path().join("keys");
    let text = format!(
        "# vendors we trust\n{}\n{} Globex Corp\n\n{}\n",
        a.public_key_file(),
        bare(&b),
        bare(&c)
    );
    std::fs::write(&file, text).unwrap();
    let policy = SigningPolicy::load(Some(&file), true).unwrap();
    let keys: Vec<(&str, &str)> = policy.keys().iter().map(|k| (k.name(), k.id())).collect();
    let pub_file = a.public_key_file();
    let a_comment = pub_file.lines().next().unwrap();
    let a_comment = a_comment.strip_prefix("untrusted comment: ").unwrap();
    assert!(a_comment.contains(&a.key_id()), "{a_comment}");
    assert_eq!(
        keys,
        [
            (a_comment, a.key_id().as_str()),
            ("Globex Corp", b.key_id().as_str()),
            (c.key_id().as_str(), c.key_id().as_str()),
        ]
    );
    let signer = policy.check(b"bytes", Some(&b.sign(b"bytes"))).unwrap();
    assert_eq!(signer.unwrap().key_name, "Globex Corp");

    let directory = trusting(dir.path(), &a, false);
    assert_eq!(directory.keys()[0].name(), "acme");
    assert!(!directory.required());
}
