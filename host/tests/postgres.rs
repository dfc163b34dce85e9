//! The PostgreSQL engine of `store` against a real PostgreSQL server the test starts itself
//! (see `tests/src/postgres.rs`): transactions, serialised writes across handles (replicas),
//! schema migrations, and the URL's password kept out of every message.

#[path = "../../tests/src/postgres.rs"]
#[allow(dead_code)]
mod pg_server;

use host::store::{DatabaseUrl, PROJECTS, Read, Store, StoreError};
use serde_json::{Value, json};

fn new_database() -> DatabaseUrl {
    pg_server::database().parse().unwrap()
}

async fn connect(url: &DatabaseUrl) -> Store {
    Store::connect(url, 4).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_write_leaves_nothing_and_a_commit_is_seen_by_another_replica() {
    let url = new_database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    a.write(|w| w.put(PROJECTS, "p1", &json!({"name": "one"})))
        .await
        .unwrap();
    let failed: Result<(), StoreError> = a
        .write(|w| {
            w.put(PROJECTS, "p2", &json!({"name": "two"}))?;
            w.audit(&json!({"action": "never"}))?;
            Err(StoreError::Postgres("refused by the test".into()))
        })
        .await;
    assert!(failed.is_err());
    let all: Vec<(String, Value)> = b.read(|r| r.all(PROJECTS)).await.unwrap();
    assert_eq!(all, vec![("p1".to_string(), json!({"name": "one"}))]);
    let audit = b.read(|r| r.audit_page(u64::MAX, 10)).await.unwrap();
    assert!(audit.is_empty(), "{audit:?}");
    assert_eq!(b.engine(), "postgres");
}

/// Read-modify-write from two handles at once (two replicas): without the write lock,
/// READ COMMITTED loses updates; with it, every increment counts.
#[tokio::test(flavor = "multi_thread")]
async fn writes_from_several_replicas_are_serialised() {
    let url = new_database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    a.write(|w| w.put(PROJECTS, "counter", &json!(0)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .write(|w| {
                    let n: u64 = w.get(PROJECTS, "counter")?.unwrap();
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    w.put(PROJECTS, "counter", &json!(n + 1))?;
                    w.audit(&json!({"n": n}))
                })
                .await
                .unwrap()
        }));
    }
    let mut seqs = Vec::new();
    for task in tasks {
        seqs.push(task.await.unwrap());
    }
    let n: u64 = a
        .read(|r| r.get(PROJECTS, "counter"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(n, 40);
    seqs.sort();
    assert_eq!(seqs, (1..=40).collect::<Vec<u64>>(), "audit numbers unique");
}

#[tokio::test(flavor = "multi_thread")]
async fn ids_are_listed_in_byte_order_and_audit_pages_newest_first() {
    let url = new_database();
    let store = connect(&url).await;
    store
        .write(|w| {
            for id in ["b", "B", "a", "_", "ä"] {
                w.put(PROJECTS, id, &json!(id))?;
            }
            for n in 0..5 {
                w.audit(&json!({"n": n}))?;
            }
            Ok::<_, StoreError>(())
        })
        .await
        .unwrap();
    let ids: Vec<String> = store
        .read(|r| r.all::<Value>(PROJECTS))
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(ids, ["B", "_", "a", "b", "ä"]);
    let page = store.read(|r| r.audit_page(4, 2)).await.unwrap();
    assert_eq!(page, vec![(3, json!({"n": 2})), (2, json!({"n": 1}))]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_with_a_newer_schema_is_refused() {
    let url = new_database();
    drop(connect(&url).await);
    let name = url.expose().rsplit('/').next().unwrap().to_string();
    pg_server::server().sql_in(
        &name,
        "INSERT INTO schema_migrations (version, applied_at) VALUES (9999, 0)",
    );
    match Store::connect(&url, 2).await {
        Err(e @ StoreError::TooNew { found: 9999, .. }) => {
            assert!(e.to_string().contains("supports up to"), "{e}");
        }
        Err(e) => panic!("refused for another reason: {e}"),
        Ok(_) => panic!("a newer schema was accepted"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_password_of_the_url_never_shows() {
    let url: DatabaseUrl = "postgres://admin:hunter2-pw%21@127.0.0.1:9/nothing"
        .parse()
        .unwrap();
    assert!(!url.to_string().contains("hunter2"), "{url}");
    assert!(!format!("{url:?}").contains("hunter2"), "{url:?}");
    assert!(
        url.to_string().contains("admin:[redacted]@127.0.0.1:9"),
        "{url}"
    );
    let err = match Store::connect(&url, 1).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected to a closed port"),
    };
    assert!(err.contains("127.0.0.1:9"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
    // Whatever the driver reports is scrubbed of the password, raw and percent-decoded.
    assert_eq!(
        url.scrub("a hunter2-pw%21 b hunter2-pw! c"),
        "a [redacted] b [redacted] c"
    );
    // The other way libpq takes a password: a query parameter.
    let url: DatabaseUrl =
        "postgres://admin@127.0.0.1:9/nothing?sslmode=disable&password=s3cr%3Ft&sslpassword=k3y"
            .parse()
            .unwrap();
    for shown in [url.to_string(), format!("{url:?}")] {
        assert!(
            !shown.contains("s3cr") && !shown.contains("k3y") && shown.contains("sslmode=disable"),
            "{shown}"
        );
    }
    assert_eq!(
        url.scrub("s3cr?t, s3cr%3Ft, k3y"),
        "[redacted], [redacted], [redacted]"
    );
    let err = match Store::connect(&url, 1).await {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected to a closed port"),
    };
    assert!(!err.contains("s3cr") && !err.contains("k3y"), "{err}");
    let bad: DatabaseUrl = "mysql://root:pw@x/db".parse().unwrap();
    let refused = bad.check().unwrap_err();
    assert!(
        !refused.contains(":pw@") && refused.contains("postgres://"),
        "{refused}"
    );
}

/// A plugin published through one replica is announced to another at once (LISTEN/NOTIFY),
/// and readable by digest, with its signature.
#[tokio::test(flavor = "multi_thread")]
async fn an_uploaded_plugin_is_announced_to_the_other_replicas() {
    let url = new_database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    let mut uploads = b
        .listen_uploads()
        .await
        .expect("LISTEN works on PostgreSQL");
    a.publish_plugin("hotswap", "d1", b"\0asm one", Some("signature one"))
        .await
        .unwrap();
    let announced = tokio::time::timeout(std::time::Duration::from_secs(2), uploads.next())
        .await
        .expect("announced within 2 s");
    assert_eq!(announced.as_deref(), Some("hotswap"));
    assert_eq!(
        b.plugin_digests().await.unwrap(),
        [("hotswap".to_string(), "d1".to_string(), false)]
    );
    let (wasm, signature) = b.plugin_binary("hotswap", "d1").await.unwrap().unwrap();
    assert_eq!(wasm, b"\0asm one");
    assert_eq!(signature.as_deref(), Some("signature one"));
    assert_eq!(b.plugin_binary("hotswap", "d0").await.unwrap(), None);
}

/// Link creation is group-committed on PostgreSQL as on redb (`links::LinkWriter`, the same
/// code on both engines): 300 concurrent creations commit in fewer write transactions than
/// creations, and every acknowledged link is in the database, read through a new connection.
#[tokio::test(flavor = "multi_thread")]
async fn concurrent_link_creations_share_transactions_and_each_acknowledged_one_is_durable() {
    use host::links::{LinkWriter, NewLink};
    use host::store::records::SourceRecord;
    let url = new_database();
    let store = connect(&url).await;
    // The project and source every link goes through, as link creation's checks saw them.
    let source: SourceRecord = serde_json::from_value(json!({
        "provider": "custom", "display_name": "Tracker", "base_url": "https://tracker.example",
        "auth_type": "none", "auth_fields": {}, "secrets_set": [], "settings": {},
        "issue_url_template": null, "create_url_template": null, "key_pattern": null,
        "enabled": true, "capabilities": {}, "projects": {"mode": "all"}, "last_test": null,
        "created_at": 1, "updated_at": 1,
    }))
    .unwrap();
    store
        .write(move |w| {
            w.put(PROJECTS, "prj_1", &json!({"name": "One", "created_at": 1}))?;
            w.put(host::store::SOURCES, "src_1", &source)
        })
        .await
        .unwrap();
    let plugins = host::plugin::PluginHost::new(Default::default(), None).unwrap();
    let (key, _) = host::crypto::MasterKey::generate();
    let dir = tempfile::tempdir().unwrap();
    let state = host::app::AppState::new(
        store.clone(),
        std::sync::Arc::new(plugins),
        key,
        dir.path().into(),
    );
    let seen = state.link_sources.load(&state, "src_1").await.unwrap();
    let writer = std::sync::Arc::new(LinkWriter::start(store.clone()));
    let before = store.write_commits();
    let mut creations = Vec::new();
    for n in 0..300 {
        let (writer, source) = (writer.clone(), seen.clone());
        creations.push(tokio::spawn(async move {
            let record = serde_json::from_value(json!({
                "project": "prj_1", "test_object": format!("test-case:{n}"),
                "source_id": "src_1", "source_name": "Tracker", "provider": "custom",
                "key": format!("BUG-{n}"), "url": null, "snapshot": null, "last_error": null,
                "created_at": 1, "created_by": "test",
            }))
            .unwrap();
            let id = format!("lnk_{n:04}");
            writer
                .insert(id.clone(), NewLink { record, source })
                .await
                .map(|_| id)
        }));
    }
    let mut acknowledged = Vec::new();
    for creation in creations {
        acknowledged.push(creation.await.unwrap().unwrap());
    }
    let transactions = store.write_commits() - before;
    assert!(
        transactions < acknowledged.len() as u64 / 2,
        "{} creations took {transactions} transactions",
        acknowledged.len()
    );
    let again = connect(&url).await;
    let stored: Vec<(String, Value)> = again.read(|r| r.all(host::store::LINKS)).await.unwrap();
    let stored: Vec<String> = stored.into_iter().map(|(id, _)| id).collect();
    assert_eq!(stored, acknowledged, "every acknowledged link, once");
}

/// `write_additions` (link creation's group commit) from two handles at once: one id added by
/// twenty of them is stored once, and an addition waits for a write holding the lock, so what
/// it reads holds until it commits.
#[tokio::test(flavor = "multi_thread")]
async fn additions_from_several_replicas_store_an_id_once_and_wait_for_writes() {
    use host::store::LINK_IDENTITIES;
    let url = new_database();
    let (a, b) = (connect(&url).await, connect(&url).await);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            store
                .write_additions(move |w| {
                    let added = w.insert_new(LINK_IDENTITIES, &[("same".into(), vec![i as u8])])?;
                    std::thread::sleep(std::time::Duration::from_millis(2));
                    Ok::<_, StoreError>(added.len())
                })
                .await
                .unwrap()
        }));
    }
    let mut added = 0;
    for task in tasks {
        added += task.await.unwrap();
    }
    assert_eq!(added, 1, "one id stored once");

    let writing = tokio::spawn(async move {
        a.write(|w| {
            std::thread::sleep(std::time::Duration::from_millis(300));
            w.put(PROJECTS, "written", &json!(1))
        })
        .await
        .unwrap()
    });
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let seen: Option<Value> = b
        .write_additions(|w| w.get(PROJECTS, "written"))
        .await
        .unwrap();
    assert_eq!(seen, Some(json!(1)), "the addition waited for the write");
    writing.await.unwrap();
}
