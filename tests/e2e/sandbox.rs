//! The sandbox contains misbehaving plugins: each fault becomes an error for that call, and a
//! normal call on the same host succeeds right after. Uses the test-only `misbehave` plugin
//! (tests/plugins/misbehave) and the shipped plugins, through the real wasmtime runtime.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use host::plugin::{Limits, PluginError, PluginHost, ProviderError, SourceConfig};
use integration_tests::{StandIn, map, plugin_host_with, plugins_dir, test_plugins_dir};

const CANARY: &str = "canary-7f3a9c1e5b2d48e6a0f4c8b1d9e3a7f5-SECRET";

async fn host() -> std::sync::Arc<PluginHost> {
    let limits = Limits {
        cpu_time: Duration::from_millis(300),
        wall_time: Duration::from_secs(2),
        memory_bytes: 32 << 20,
        ..Limits::default()
    };
    plugin_host_with(limits, &[plugins_dir(), test_plugins_dir()]).await
}

fn misbehaving(mode: &str, base_url: &str) -> SourceConfig {
    SourceConfig {
        provider: "misbehave".into(),
        base_url: base_url.into(),
        auth_type: "api-token".into(),
        fields: map(&[("user", "robot")]),
        secrets: map(&[("token", CANARY)]),
        settings: map(&[("mode", mode)]),
        ..Default::default()
    }
}

/// After any fault, the same host still serves a well-behaved call.
async fn still_serves(host: &PluginHost) {
    let ok = misbehaving("", "http://127.0.0.1:1");
    assert_eq!(host.normalize_key(&ok, " OK-1 ").await.unwrap(), "OK-1");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_shipped_plugin_loads_and_answers_each_export() {
    let host = host().await;
    let ids: Vec<String> = host.list().iter().map(|p| p.info.id.clone()).collect();
    for id in [
        "jira-cloud",
        "github",
        "gitlab",
        "azure-devops",
        "linear",
        "custom",
        "misbehave",
    ] {
        assert!(ids.contains(&id.to_string()), "{id} not loaded: {ids:?}");
    }
    for plugin in host.list() {
        let info = &plugin.info;
        assert!(
            plugin.contract.starts_with("1."),
            "{}: contract {}",
            info.id,
            plugin.contract
        );
        assert_eq!(plugin.digest.len(), 64);
        let source = SourceConfig {
            provider: info.id.clone(),
            base_url: "http://127.0.0.1:1/acme/shop".into(),
            auth_type: info.auth_types[0].id.clone(),
            issue_url_template: Some("{baseUrl}/i/{key}".into()),
            create_url_template: Some("{baseUrl}/new".into()),
            ..Default::default()
        };
        // Each export runs and answers in the contract's terms: a value or a provider error,
        // never a fault (nothing listens on port 1, so network calls fail as unreachable).
        let key = host.normalize_key(&source, &info.key_example).await;
        assert!(
            matches!(key, Ok(_) | Err(PluginError::Provider(_))),
            "{}: {key:?}",
            info.id
        );
        let key = key.unwrap_or_else(|_| info.key_example.clone());
        let url = host.issue_url(&source, &key).await;
        assert!(
            matches!(url, Ok(_) | Err(PluginError::Provider(_))),
            "{}: {url:?}",
            info.id
        );
        let create = host.create_url(&source).await;
        assert!(
            matches!(create, Ok(_) | Err(PluginError::Provider(_))),
            "{}: {create:?}",
            info.id
        );
        let test = host.test_connection(&source).await;
        assert!(
            matches!(test, Ok(_) | Err(PluginError::Provider(_))),
            "{}: {test:?}",
            info.id
        );
        let fetch = host.fetch_issue(&source, &key).await;
        assert!(
            matches!(fetch, Ok(_) | Err(PluginError::Provider(_))),
            "{}: {fetch:?}",
            info.id
        );
        let batch = host.fetch_issues(&source, std::slice::from_ref(&key)).await;
        assert!(
            matches!(batch, Ok(_) | Err(PluginError::Provider(_))),
            "{}: {batch:?}",
            info.id
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_is_stopped_by_the_cpu_deadline() {
    let host = host().await;
    let started = Instant::now();
    let err = host
        .test_connection(&misbehaving("loop", "http://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::CpuLimit(_)), "{err:?}");
    assert!(
        started.elapsed() < host.limits().wall_time,
        "took {:?}",
        started.elapsed()
    );
    still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_blocked_in_http_is_stopped_by_the_wall_clock() {
    // A stand-in that accepts the request and never answers.
    let slow = StandIn::start(Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "late"
        }),
    ))
    .await;
    let host = host().await;
    let mut source = misbehaving("sleep-http", &slow.url);
    source
        .settings
        .insert("slow-url".into(), format!("{}/slow", slow.url));
    let started = Instant::now();
    let err = host.test_connection(&source).await.unwrap_err();
    // The message names the tracker that did not answer and the stage, whichever timer fired.
    assert!(matches!(err, PluginError::Timeout { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "Misbehave (test only) ({}) did not answer within 2 s (waiting for the response); \
             the call was stopped",
            slow.url
        )
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "took {:?}",
        started.elapsed()
    );
    still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_hits_the_cap() {
    let host = host().await;
    let err = host
        .test_connection(&misbehaving("bomb", "http://127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::MemoryLimit(_)), "{err:?}");
    still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_panic_is_a_trap_for_that_call_only() {
    let host = host().await;
    let err = host
        .fetch_issue(&misbehaving("panic", "http://127.0.0.1:1"), "OK-1")
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Trap(_)), "{err:?}");
    still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_to_a_host_not_allowed_is_refused() {
    // The forbidden target is a live server on another port: the refusal must come from the
    // host's allow-list, not from a failed connection.
    let target =
        StandIn::start(Router::new().route("/", get(|| async { "you should not see this" }))).await;
    let host = host().await;
    // `forbidden-url` is a text setting, so it does not widen the allow-list.
    let mut source = misbehaving("egress", "http://127.0.0.1:1");
    source
        .settings
        .insert("forbidden-url".into(), format!("{}/", target.url));
    let err = host.test_connection(&source).await.unwrap_err();
    match err {
        PluginError::Provider(ProviderError::Unreachable(message)) => {
            assert!(message.contains("not an allowed destination"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        target.requests().is_empty(),
        "the request reached the target"
    );
    // Once the admin makes it the source's base URL, the same request goes through.
    source.base_url = target.url.clone();
    let reached = host.test_connection(&source).await.unwrap();
    assert!(reached.account.contains("HTTP 200"), "{reached:?}");
    assert_eq!(target.requests().len(), 1);
    still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn key_and_url_operations_may_not_use_the_network_even_to_the_base_url() {
    let target = StandIn::start(Router::new().route("/", get(|| async { "hello" }))).await;
    let host = host().await;
    let mut source = misbehaving("egress", &target.url);
    source
        .settings
        .insert("forbidden-url".into(), format!("{}/", target.url));
    // The contract says normalize-key must not use the network; the host holds it to that.
    match host.normalize_key(&source, "K-1").await.unwrap_err() {
        PluginError::Provider(ProviderError::Unreachable(message)) => {
            assert!(
                message.contains("normalize-key must not use the network"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(
        target.requests().is_empty(),
        "normalize-key reached the tracker"
    );
    // The same request from a connection test goes through: the URL itself is allowed.
    let reached = host.test_connection(&source).await.unwrap();
    assert!(reached.account.contains("HTTP 200"), "{reached:?}");
    assert_eq!(target.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_off_the_allowed_hosts_is_refused() {
    let elsewhere = StandIn::start(Router::new().route("/", get(|| async { "elsewhere" }))).await;
    let location = format!("{}/", elsewhere.url);
    let origin = StandIn::start(Router::new().route(
        "/hop",
        get(move || {
            let location = location.clone();
            async move { (axum::http::StatusCode::FOUND, [("location", location)], "") }
        }),
    ))
    .await;
    let host = host().await;
    // The first hop is on the allow-list (the base URL's origin); the redirect is not.
    let mut source = misbehaving("egress", &origin.url);
    source
        .settings
        .insert("forbidden-url".into(), format!("{}/hop", origin.url));
    let err = host.test_connection(&source).await.unwrap_err();
    match err {
        PluginError::Provider(ProviderError::Unreachable(message)) => {
            assert!(message.contains("redirected"), "{message}")
        }
        other => panic!("{other:?}"),
    }
    assert!(elsewhere.requests().is_empty(), "the redirect was followed");
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_reach_the_guest() {
    // The stand-in answers with the request's header *names*: the guest learns its request was
    // authenticated, while the credential itself travels only from the host to the stand-in.
    let echo = StandIn::start(Router::new().route(
        "/echo",
        get(|headers: axum::http::HeaderMap| async move {
            headers
                .keys()
                .map(|k| k.as_str())
                .collect::<Vec<_>>()
                .join(",")
        }),
    ))
    .await;
    let host = host().await;
    let mut source = misbehaving("echo", &echo.url);
    source
        .settings
        .insert("echo-url".into(), format!("{}/echo", echo.url));
    // A caller that misfiles the secret among the plain fields must not leak it either.
    source.fields.insert("token".into(), CANARY.into());
    let err = host.test_connection(&source).await.unwrap_err();
    let seen = match err {
        PluginError::Provider(ProviderError::Provider(seen)) => seen,
        other => panic!("{other:?}"),
    };
    assert!(
        seen.contains("robot"),
        "the echo must show the non-secret fields: {seen}"
    );
    assert!(
        seen.contains("authorization"),
        "the request was authenticated: {seen}"
    );
    assert!(
        !seen.contains(CANARY),
        "the secret reached the guest: {seen}"
    );
    assert!(
        !seen.contains(&CANARY[..16]),
        "part of the secret reached the guest"
    );
    // The stand-in did get the credential, applied by the host as the plugin declared.
    let request = &echo.requests()[0];
    let expected = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("robot:{CANARY}")
        )
    );
    assert_eq!(request.header("authorization"), Some(expected.as_str()));
}

#[tokio::test(flavor = "multi_thread")]
async fn unauthenticated_requests_carry_no_credentials() {
    let echo = StandIn::start(Router::new().route("/", get(|| async { "hello" }))).await;
    let host = host().await;
    let mut source = misbehaving("anonymous", &echo.url);
    source
        .settings
        .insert("forbidden-url".into(), format!("{}/", echo.url));
    host.test_connection(&source).await.unwrap();
    let request = &echo.requests()[0];
    assert_eq!(request.header("authorization"), None, "{request:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_output_is_refused() {
    let host = host().await;
    let source = misbehaving("garbage", "http://127.0.0.1:1");
    let err = host.normalize_key(&source, "OK-1").await.unwrap_err();
    assert!(matches!(err, PluginError::Malformed(_)), "{err:?}");
    let err = host.issue_url(&source, "OK-1").await.unwrap_err();
    assert!(matches!(err, PluginError::Malformed(_)), "{err:?}");
    let err = host
        .fetch_issues(&source, &["A-1".into(), "A-2".into()])
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Malformed(_)), "{err:?}");
    still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_non_component_and_a_wrong_world_are_rejected_at_load() {
    let host = host().await;
    let err = host
        .prepare(b"\0asm\x01\0\0\0", "test".into())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, PluginError::Rejected(m) if m.contains("component")),
        "{err}"
    );
    let err = host
        .prepare(b"not wasm at all", "test".into())
        .await
        .unwrap_err();
    assert!(matches!(err, PluginError::Rejected(_)), "{err}");
    still_serves(&host).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_a_call_leaves_in_memory_reaches_the_next_call() {
    // Each `remember` call looks through its whole linear memory for a mark an earlier call
    // left (in a global and across 8 MiB of heap, past what a reused memory slot keeps
    // resident), then leaves its own. Calls of two sources alternate, one after the other and
    // side by side, so pooled memory slots are reused many times.
    let host = host().await;
    let tenant = |id: &str| SourceConfig {
        source_id: Some(id.into()),
        ..misbehaving("remember", "http://127.0.0.1:1")
    };
    let (a, b) = (tenant("tenant-a"), tenant("tenant-b"));
    for round in 0..10 {
        for (source, key) in [
            (&a, format!("a-secret-{round}")),
            (&b, format!("b-{round}")),
        ] {
            assert_eq!(host.normalize_key(source, &key).await.unwrap(), "clean");
        }
        let (x, y) = tokio::join!(
            host.normalize_key(&a, "a-side-by-side"),
            host.normalize_key(&b, "b-side-by-side")
        );
        assert_eq!((x.unwrap(), y.unwrap()), ("clean".into(), "clean".into()));
    }
}
