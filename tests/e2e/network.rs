//! Per-source network settings through the real router: a CA bundle lets the HTTP import
//! trust a tracker whose certificate a private authority signed, a certificate problem is
//! reported as what it is, and a proxy setting sends the source's requests through the proxy.
//!
//! The trackers are stand-ins on 127.0.0.1: an HTTPS server (tokio-rustls, certificates made
//! by rcgen for each test) and a tiny HTTP proxy that records request lines and either answers
//! plain-HTTP requests itself or tunnels `CONNECT`. The `misbehave` test plugin's `egress` mode
//! makes the request (a GET of its `forbidden-url` setting, here a URL on the base URL's
//! origin) and its connection test reports `HTTP <status>` or the error it got.

use std::sync::{Arc, Mutex};

use host::store::records::SourceRecord;
use integration_tests::TestApp;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A private certificate authority.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A server certificate for `names`, valid now unless `expired`.
    fn server(&self, names: &[&str], expired: bool) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "stand-in tracker");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()).into(),
        }
    }
}

struct ServerCert {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A server on 127.0.0.1 recording the first line of every request it reads.
struct Recorder {
    /// `https://127.0.0.1:PORT` or `http://127.0.0.1:PORT`.
    url: String,
    /// `host:port`.
    addr: String,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// Reads a request head (up to the blank line); returns it as text.
async fn read_head<S: AsyncReadExt + Unpin>(stream: &mut S) -> Option<String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 << 10 || stream.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(String::from_utf8_lossy(&head).into_owned())
}

const OK_RESPONSE: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";

/// An HTTPS stand-in tracker presenting `cert`, answering 200 to everything.
async fn https_stand_in(cert: ServerCert) -> Recorder {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(cert.chain, cert.key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let log = lines.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                // A client that rejects the certificate ends the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Some(head) = read_head(&mut tls).await else {
                    return;
                };
                log.lock()
                    .unwrap()
                    .push(head.lines().next().unwrap_or("").to_string());
                let _ = tls.write_all(OK_RESPONSE).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    Recorder {
        url: format!("https://{addr}"),
        addr,
        lines,
    }
}

/// A forward proxy: a plain-HTTP request (absolute-form) is answered here with 200, a
/// `CONNECT host:port` is tunnelled to that address. Records each request line and whether a
/// request carried an `authorization` header.
async fn proxy_stand_in() -> (Recorder, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let lines = Arc::new(Mutex::new(Vec::new()));
    let auth = Arc::new(Mutex::new(Vec::new()));
    let (log, auth_log) = (lines.clone(), auth.clone());
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let (log, auth_log) = (log.clone(), auth_log.clone());
            tokio::spawn(async move {
                let Some(head) = read_head(&mut client).await else {
                    return;
                };
                let line = head.lines().next().unwrap_or("").to_string();
                log.lock().unwrap().push(line.clone());
                for header in head.lines().skip(1) {
                    if let Some((name, value)) = header.split_once(':')
                        && name.eq_ignore_ascii_case("authorization")
                    {
                        auth_log.lock().unwrap().push(value.trim().to_string());
                    }
                }
                if let Some(target) = line
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                {
                    let Ok(mut upstream) = TcpStream::connect(target).await else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                        return;
                    };
                    let _ = client
                        .write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                        .await;
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                } else {
                    let _ = client.write_all(OK_RESPONSE).await;
                    let _ = client.shutdown().await;
                }
            });
        }
    });
    (
        Recorder {
            url: format!("http://{addr}"),
            addr,
            lines,
        },
        auth,
    )
}

/// A misbehave source whose connection test GETs `{base_url}/whoami`.
fn source(name: &str, base_url: &str, network: Option<Value>) -> Value {
    let mut body = json!({
        "provider": "misbehave",
        "display_name": name,
        "base_url": base_url,
        "auth": {"type": "api-token", "fields": {"user": "robot", "token": "s3cret"}},
        "projects": {"mode": "all"},
        "settings": {"mode": "egress", "forbidden-url": format!("{base_url}/whoami")}
    });
    if let Some(network) = network {
        body["network"] = network;
    }
    body
}

/// Creates the source and runs its connection test; returns the outcome.
async fn create_and_test(app: &TestApp, body: Value) -> Value {
    let created = app.admin("POST", "/api/v1/sources", Some(body)).await;
    let id = created.expect(201)["id"].as_str().unwrap().to_string();
    app.admin("POST", &format!("/api/v1/sources/{id}/test"), None)
        .await
        .expect(200)
        .clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ca_bundle_lets_the_source_reach_a_privately_signed_tracker() {
    let app = TestApp::start().await;
    let ca = Ca::new("Acme Private CA");
    let tracker = https_stand_in(ca.server(&["localhost", "127.0.0.1"], false)).await;

    // Without the bundle, the certificate's authority is unknown, and the message says so.
    let outcome = create_and_test(&app, source("No CA", &tracker.url, None)).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(outcome["code"], "unreachable", "{outcome}");
    let message = outcome["message"].as_str().unwrap();
    assert!(
        message.contains(
            "TLS: the server's certificate for 127.0.0.1 is signed by an unknown authority"
        ) && message.contains("CA bundle"),
        "{message}"
    );
    assert!(tracker.lines().is_empty(), "no request got through");

    // With the CA's certificate as the source's bundle, the same tracker is reached.
    let network = json!({"ca_bundle_pem": ca.pem});
    let created = app
        .admin(
            "POST",
            "/api/v1/sources",
            Some(source("With CA", &tracker.url, Some(network))),
        )
        .await;
    let body = created.expect(201).clone();
    assert_eq!(body["network"]["ca_bundle_pem"], ca.pem.trim());
    assert_eq!(body["network"]["proxy_url"], Value::Null);
    let id = body["id"].as_str().unwrap();
    for _ in 0..2 {
        let outcome = app
            .admin("POST", &format!("/api/v1/sources/{id}/test"), None)
            .await;
        let outcome = outcome.expect(200);
        assert_eq!(outcome["ok"], true, "{outcome}");
        assert!(
            outcome["message"]
                .as_str()
                .unwrap()
                .ends_with("/whoami: HTTP 200"),
            "{outcome}"
        );
    }
    assert_eq!(
        tracker.lines(),
        ["GET /whoami HTTP/1.1", "GET /whoami HTTP/1.1"]
    );

    // The bundle is per source: the first source still fails, and a draft test uses its own.
    let sources = app.admin("GET", "/api/v1/sources", None).await;
    let first = sources.expect(200).as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let again = app
        .admin("POST", &format!("/api/v1/sources/{first}/test"), None)
        .await;
    assert_eq!(again.expect(200)["ok"], false, "{}", again.text);
    let draft = app
        .admin(
            "POST",
            "/api/v1/sources/test",
            Some(source(
                "Draft",
                &tracker.url,
                Some(json!({"ca_bundle_pem": ca.pem})),
            )),
        )
        .await;
    assert_eq!(draft.expect(200)["ok"], true, "{}", draft.text);

    // A bundle with another authority's certificate does not help.
    let other = Ca::new("Someone Else");
    let outcome = create_and_test(
        &app,
        source(
            "Wrong CA",
            &tracker.url,
            Some(json!({"ca_bundle_pem": other.pem})),
        ),
    )
    .await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("unknown authority"),
        "{outcome}"
    );

    // The settings survive a restart and are used after it.
    let app = app.restart().await;
    let outcome = app
        .admin("POST", &format!("/api/v1/sources/{id}/test"), None)
        .await;
    assert_eq!(outcome.expect(200)["ok"], true, "{}", outcome.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_or_misnamed_certificate_is_named_as_such() {
    let app = TestApp::start().await;
    let ca = Ca::new("Acme Private CA");
    let network = || Some(json!({"ca_bundle_pem": ca.pem}));

    let expired = https_stand_in(ca.server(&["127.0.0.1"], true)).await;
    let outcome = create_and_test(&app, source("Expired", &expired.url, network())).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("TLS: the server's certificate for 127.0.0.1 has expired"),
        "{outcome}"
    );

    let misnamed = https_stand_in(ca.server(&["tracker.example.com"], false)).await;
    let outcome = create_and_test(&app, source("Misnamed", &misnamed.url, network())).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert!(
        outcome["message"]
            .as_str()
            .unwrap()
            .contains("TLS: the server's certificate is not valid for host 127.0.0.1"),
        "{outcome}"
    );
    assert!(expired.lines().is_empty() && misnamed.lines().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_network_settings_are_a_400_naming_the_field() {
    let app = TestApp::start().await;
    let ca = Ca::new("Acme Private CA");
    let garbage =
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n";
    let half = &ca.pem[..ca.pem.len() / 2];
    for (network, field) in [
        (
            json!({"ca_bundle_pem": "not a certificate"}),
            "network.ca_bundle_pem",
        ),
        (json!({"ca_bundle_pem": garbage}), "network.ca_bundle_pem"),
        (json!({"ca_bundle_pem": half}), "network.ca_bundle_pem"),
        (
            json!({"proxy_url": "proxy.example.com:3128"}),
            "network.proxy_url",
        ),
        (
            json!({"proxy_url": "socks5://127.0.0.1:1080"}),
            "network.proxy_url",
        ),
        (
            json!({"proxy_url": "http://user:pw@127.0.0.1:3128"}),
            "network.proxy_url",
        ),
    ] {
        let body = source("Bad", "https://t.example.com", Some(network.clone()));
        let created = app
            .admin("POST", "/api/v1/sources", Some(body.clone()))
            .await;
        let message = created.expect_error(400, field);
        assert!(!message.is_empty(), "{network}");
        let draft = app.admin("POST", "/api/v1/sources/test", Some(body)).await;
        draft.expect_error(400, field);
    }
    let sources = app.admin("GET", "/api/v1/sources", None).await;
    assert_eq!(sources.expect(200), &json!([]), "nothing stored");

    // Blank values are no setting, and an edit without `network` clears it.
    let created = app
        .admin(
            "POST",
            "/api/v1/sources",
            Some(source(
                "Blank",
                "https://t.example.com",
                Some(json!({"ca_bundle_pem": "  ", "proxy_url": ""})),
            )),
        )
        .await;
    let body = created.expect(201).clone();
    assert_eq!(
        body["network"],
        json!({"ca_bundle_pem": null, "proxy_url": null})
    );
    let path = format!("/api/v1/sources/{}", body["id"].as_str().unwrap());
    let edited = app
        .admin(
            "PUT",
            &path,
            Some(source(
                "Blank",
                "https://t.example.com",
                Some(json!({"ca_bundle_pem": ca.pem, "proxy_url": "http://127.0.0.1:3128"})),
            )),
        )
        .await;
    assert_eq!(
        edited.expect(200)["network"]["proxy_url"],
        "http://127.0.0.1:3128"
    );
    let cleared = app
        .admin(
            "PUT",
            &path,
            Some(source("Blank", "https://t.example.com", None)),
        )
        .await;
    assert_eq!(
        cleared.expect(200)["network"],
        json!({"ca_bundle_pem": null, "proxy_url": null})
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_proxy_setting_sends_the_sources_requests_through_the_proxy() {
    let app = TestApp::start().await;
    let (proxy, auth) = proxy_stand_in().await;

    // A plain-HTTP target goes to the proxy in absolute form; the target's name need not
    // resolve here (only the proxy resolves it), and the credentials travel with the request.
    let target = "http://tracker.internal.test:8080";
    let outcome = create_and_test(
        &app,
        source(
            "Behind a proxy",
            target,
            Some(json!({"proxy_url": proxy.url})),
        ),
    )
    .await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(
        proxy.lines(),
        ["GET http://tracker.internal.test:8080/whoami HTTP/1.1"]
    );
    assert_eq!(auth.lock().unwrap().len(), 1, "credentials applied");

    // Without the setting, a request goes straight to its target, not to the proxy (nothing
    // listens on port 1; the name above is not looked up, to send no DNS query from a test).
    let outcome = create_and_test(&app, source("Direct", "http://127.0.0.1:1", None)).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(proxy.lines().len(), 1, "the proxy saw nothing more");

    // HTTPS through the proxy is a CONNECT tunnel, and the CA bundle still applies inside it.
    let ca = Ca::new("Acme Private CA");
    let tracker = https_stand_in(ca.server(&["127.0.0.1"], false)).await;
    let outcome = create_and_test(
        &app,
        source(
            "Tunnelled",
            &tracker.url,
            Some(json!({"proxy_url": proxy.url, "ca_bundle_pem": ca.pem})),
        ),
    )
    .await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert_eq!(
        proxy.lines()[1],
        format!("CONNECT {} HTTP/1.1", tracker.addr)
    );
    assert_eq!(tracker.lines(), ["GET /whoami HTTP/1.1"]);
    assert_eq!(
        auth.lock().unwrap().len(),
        1,
        "a tunnel shows the proxy no header"
    );

    // The allow-list is still checked on the target: a proxy does not widen it.
    let mut escape = source("Escape", target, Some(json!({"proxy_url": proxy.url})));
    escape["settings"]["forbidden-url"] = json!("http://elsewhere.internal.test/");
    let outcome = create_and_test(&app, escape).await;
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(proxy.lines().len(), 2, "the denied request never left");
}

#[test]
fn a_record_written_before_network_settings_existed_still_reads() {
    let record: SourceRecord = serde_json::from_value(json!({
        "provider": "misbehave",
        "display_name": "Old",
        "base_url": "https://t.example.com",
        "auth_type": "api-token",
        "auth_fields": {},
        "secrets_set": [],
        "settings": {},
        "issue_url_template": null,
        "create_url_template": null,
        "key_pattern": null,
        "enabled": true,
        "capabilities": {},
        "projects": {"mode": "all"},
        "last_test": null,
        "created_at": 1,
        "updated_at": 1
    }))
    .unwrap();
    assert!(record.network.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_and_link_local_targets_need_the_operator_setting() {
    use axum::routing::get;
    let tracker = integration_tests::StandIn::start(
        axum::Router::new().route("/whoami", get(|| async { "ok" })),
    )
    .await;
    let port = tracker.url.rsplit(':').next().unwrap().to_string();

    // By default an admin's draft cannot probe this machine or the cloud metadata service,
    // whether the URL names an address or a name that resolves to one.
    let refusing = TestApp::start_refusing_loopback_targets().await;
    for base_url in [
        tracker.url.clone(),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.1]:{port}"),
        "http://169.254.169.254".to_string(),
        "http://[fe80::1]".to_string(),
    ] {
        let draft = source("Probe", &base_url, None);
        let outcome = refusing
            .admin("POST", "/api/v1/sources/test", Some(draft))
            .await;
        let outcome = outcome.expect(200);
        assert_eq!(outcome["ok"], false, "{base_url}: {outcome}");
        let message = outcome["message"].as_str().unwrap();
        assert!(
            message.contains("--allow-loopback-targets")
                && message.contains("INTEGRATION_ALLOW_LOOPBACK_TARGETS"),
            "{base_url}: {message}"
        );
    }
    // A proxy on this machine is such a target too.
    let proxied = source(
        "Proxied",
        "http://tracker.internal.test",
        Some(json!({"proxy_url": tracker.url})),
    );
    let outcome = refusing
        .admin("POST", "/api/v1/sources/test", Some(proxied))
        .await;
    let message = outcome.expect(200)["message"].as_str().unwrap().to_string();
    assert!(message.contains("--allow-loopback-targets"), "{message}");
    assert!(
        tracker.requests().is_empty(),
        "nothing reached the stand-in"
    );

    // With the setting on (as in every other test), the same draft reaches it.
    let allowing = TestApp::start().await;
    let outcome = allowing
        .admin(
            "POST",
            "/api/v1/sources/test",
            Some(source("Probe", &tracker.url, None)),
        )
        .await;
    assert_eq!(outcome.expect(200)["ok"], true, "{}", outcome.text);
    assert_eq!(tracker.requests().len(), 1);
}
