//! Limits that protect the host and the other plugins from one plugin: the per-plugin and
//! per-source call queues, the memory budget shared by all running calls, and the size bounds
//! on what a plugin answers. Uses the test-only `misbehave` and `hotswap` plugins and the
//! shipped ones, through the real wasmtime runtime, with stand-ins on 127.0.0.1.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::Path;
use axum::routing::get;
use host::plugin::{Limits, PluginError, PluginHost, ProviderError, SourceConfig};
use integration_tests::{
    StandIn, TestApp, map, plugin_host_with, plugins_dir, source, test_plugins_dir,
};
use serde_json::json;

async fn host(limits: Limits) -> Arc<PluginHost> {
    plugin_host_with(limits, &[plugins_dir(), test_plugins_dir()]).await
}

fn misbehaving(mode: &str) -> SourceConfig {
    SourceConfig {
        provider: "misbehave".into(),
        base_url: "http://127.0.0.1:1".into(),
        auth_type: "api-token".into(),
        fields: map(&[("user", "robot")]),
        secrets: map(&[("token", "t0ken")]),
        settings: map(&[("mode", mode)]),
        ..Default::default()
    }
}

fn in_flight(host: &PluginHost, provider: &str) -> u64 {
    host.get(provider).unwrap().stats.counts().in_flight
}

#[tokio::test(flavor = "multi_thread")]
async fn a_looping_plugin_hammered_with_calls_does_not_hold_up_another_plugin() {
    let cpu = Duration::from_secs(1);
    let host = host(Limits {
        cpu_time: cpu,
        wall_time: Duration::from_secs(3),
        max_concurrent_calls: 8,
        max_calls_per_plugin: 4,
        ..Limits::default()
    })
    .await;
    // Three times as many looping calls as the host has slots.
    let hostile: Vec<_> = (0..24)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move { host.test_connection(&misbehaving("loop")).await })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(5);
    while in_flight(&host, "misbehave") < 4 {
        assert!(Instant::now() < deadline, "the looping calls never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let jira = source("jira-cloud", "https://acme.atlassian.net");
    let started = Instant::now();
    let key = host.normalize_key(&jira, "abc-1").await.unwrap();
    let took = started.elapsed();
    assert_eq!(key, "ABC-1");
    assert!(
        took < cpu / 2,
        "another plugin's call took {took:?} behind the looping ones"
    );
    assert_eq!(
        in_flight(&host, "misbehave"),
        4,
        "the looping calls were still running, and no more than their plugin's cap"
    );

    let mut busy = 0;
    for call in hostile {
        match call.await.unwrap().unwrap_err() {
            PluginError::CpuLimit(_) | PluginError::Timeout { .. } => {}
            PluginError::Busy(message) => {
                assert!(
                    message.contains("\"misbehave\"") && message.contains("max_calls_per_plugin"),
                    "{message}"
                );
                busy += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        busy > 0,
        "calls queued past their wall-clock limit fail as busy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn looping_calls_take_turns_on_the_cpu_and_leave_the_api_its_speed() {
    let app = TestApp::start().await;
    let project = app.create("/api/v1/projects", json!({"name": "P"})).await;
    let source = app
        .create(
            "/api/v1/sources",
            json!({
                "provider": "gitlab", "display_name": "GitLab",
                "base_url": "http://127.0.0.1:1/group/project",
                "auth": {"type": "api-token", "fields": {"token": "glpat-x"}},
                "projects": {"mode": "all"},
            }),
        )
        .await;
    let next = std::sync::atomic::AtomicUsize::new(1);
    // The median time of link creations through the API.
    let median = || async {
        let mut times = Vec::new();
        for _ in 0..11 {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let body =
                json!({"test_object": "test-case:1", "source_id": source, "key": format!("#{n}")});
            let started = Instant::now();
            app.admin(
                "POST",
                &format!("/api/v1/projects/{project}/links"),
                Some(body),
            )
            .await
            .expect(201);
            times.push(started.elapsed());
        }
        times.sort();
        times[times.len() / 2]
    };
    let idle = median().await;
    // As many looping calls as one plugin may run; they are left running when the test ends.
    let host = app.state.plugins.clone();
    let cap = host.limits().max_calls_per_plugin;
    for _ in 0..cap {
        let host = host.clone();
        tokio::spawn(async move { host.test_connection(&misbehaving("loop")).await });
    }
    while in_flight(&host, "misbehave") < u64::from(cap) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let loaded = median().await;
    assert!(
        loaded < (idle * 5).max(Duration::from_millis(50)),
        "link creation: idle {idle:?}, beside {cap} looping calls {loaded:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_of_one_source_queue_behind_its_cap_while_other_sources_run() {
    // Each answer takes 300 ms; the stand-in notes when each request arrived, by source.
    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let log = arrivals.clone();
    let tracker = StandIn::start(Router::new().route(
        "/{source}/whoami",
        get(move |Path(source): Path<String>| {
            let log = log.clone();
            async move {
                log.lock().unwrap().push((source, Instant::now()));
                tokio::time::sleep(Duration::from_millis(300)).await;
                "{}"
            }
        }),
    ))
    .await;
    let host = host(Limits {
        max_calls_per_source: 1,
        ..Limits::default()
    })
    .await;
    let stored = |id: &str| SourceConfig {
        source_id: Some(id.into()),
        ..source("hotswap", &format!("{}/{id}", tracker.url))
    };
    let started = Instant::now();
    let calls: Vec<_> = ["src-a", "src-a", "src-b"]
        .into_iter()
        .map(|id| {
            let (host, source) = (host.clone(), stored(id));
            tokio::spawn(async move { host.test_connection(&source).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }

    let arrivals = arrivals.lock().unwrap().clone();
    let at = |id: &str| -> Vec<Duration> {
        arrivals
            .iter()
            .filter(|(s, _)| s == id)
            .map(|(_, t)| *t - started)
            .collect()
    };
    let (a, b) = (at("src-a"), at("src-b"));
    assert_eq!((a.len(), b.len()), (2, 1), "{arrivals:?}");
    assert!(
        a[1] - a[0] >= Duration::from_millis(290),
        "the second call of src-a ran while the first was in flight: {a:?}"
    );
    assert!(
        b[0] < a[1],
        "src-b waited for src-a's queue: src-a {a:?}, src-b {b:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_memory_bombs_are_stopped_at_the_budget_instead_of_exceeding_it() {
    let budget = 48 << 20;
    let host = host(Limits {
        memory_bytes: 32 << 20,
        memory_budget_bytes: budget,
        // The plugin may use the whole budget, so the host's budget is what stops it.
        max_calls_per_plugin: 64,
        ..Limits::default()
    })
    .await;
    let watcher = {
        let host = host.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            loop {
                peak = peak.max(host.memory_in_use());
                if host.get("misbehave").unwrap().stats.counts().calls >= 8
                    && in_flight(&host, "misbehave") == 0
                {
                    return peak;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        })
    };
    let bombs: Vec<_> = (0..8)
        .map(|_| {
            let host = host.clone();
            tokio::spawn(async move { host.test_connection(&misbehaving("bomb")).await })
        })
        .collect();
    let mut refused = 0;
    for bomb in bombs {
        match bomb.await.unwrap().unwrap_err() {
            PluginError::MemoryLimit(_) => {}
            PluginError::MemoryBudget(message) => {
                assert!(message.contains("memory_budget_bytes"), "{message}");
                refused += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let peak = watcher.await.unwrap();
    assert!(refused > 0, "eight 32 MiB calls cannot fit in 48 MiB");
    assert!(peak <= budget, "peak {peak} bytes over the budget");
    assert_eq!(
        host.memory_in_use(),
        0,
        "finished calls give their memory back"
    );
    let ok = misbehaving("");
    assert_eq!(host.normalize_key(&ok, " OK-1 ").await.unwrap(), "OK-1");
}

/// The compiled `misbehave` plugin with its `describe` inflated (see its `INFLATE`).
fn inflated(what: &str) -> Vec<u8> {
    let marker = b"inflate:nothing.";
    let patch = format!("{what:.<16}");
    assert_eq!(patch.len(), marker.len());
    let mut bytes = std::fs::read(test_plugins_dir().join("misbehave.wasm"))
        .expect("misbehave.wasm (run scripts/build-plugins.sh)");
    let at = bytes
        .windows(marker.len())
        .position(|w| w == marker)
        .expect("the INFLATE marker in misbehave.wasm");
    bytes[at..at + marker.len()].copy_from_slice(patch.as_bytes());
    bytes
}

#[tokio::test(flavor = "multi_thread")]
async fn an_oversized_describe_is_refused_naming_the_field_and_the_bound() {
    let host = host(Limits::default()).await;
    let before = host.get("misbehave").unwrap().digest.clone();
    for (what, expected) in [
        (
            "inflate:name",
            "describe: name is 1048576 bytes; the limit is 200",
        ),
        (
            "inflate:fields",
            "describe: auth_types[0].fields has 20002 entries; the limit is 16",
        ),
    ] {
        let err = host
            .prepare(&inflated(what), "test".into())
            .await
            .unwrap_err();
        match err {
            PluginError::Rejected(message) => {
                assert!(message.contains(expected), "{what}: {message}")
            }
            other => panic!("{what}: unexpected {other:?}"),
        }
    }
    assert_eq!(host.get("misbehave").unwrap().digest, before);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_answers_are_refused_naming_the_field_and_the_bound() {
    let host = host(Limits::default()).await;
    let huge = misbehaving("huge");
    let err = host.test_connection(&huge).await.unwrap_err();
    assert!(
        matches!(&err, PluginError::Malformed(m)
            if m.contains("test-connection detail") && m.contains("4096")),
        "{err:?}"
    );
    let err = host.fetch_issue(&huge, "OK-1").await.unwrap_err();
    assert!(
        matches!(&err, PluginError::Malformed(m)
            if m.contains("issue assignee") && m.contains("4096")),
        "{err:?}"
    );
    // A provider error stays the error the plugin meant, its message cut to the bound.
    match host.normalize_key(&huge, "OK-1").await.unwrap_err() {
        PluginError::Provider(ProviderError::Provider(message)) => {
            assert!(message.len() < 4200, "{} bytes", message.len());
            assert!(message.ends_with("the limit is 4096)"), "{message:.200}");
        }
        other => panic!("unexpected {other:?}"),
    }
}
