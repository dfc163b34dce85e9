//! The source editor's webhook section in headless Chromium: the URL, the scheme, a secret
//! generated and shown once, the provider's set-up steps with the URL filled in, and the event
//! counters.

use integration_tests::TestApp;
use integration_tests::webdriver::{Browser, keys};
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn the_editor_sets_up_webhooks_and_shows_the_secret_once() {
    let app = TestApp::start().await;
    let body = json!({
        "provider": "gitlab", "display_name": "GitLab hooks", "base_url": "https://gitlab.example.com/group/shop",
        "auth": {"type": "none"},
        "capabilities": {"read_issue_details": false, "process_webhooks": true},
        "projects": {"mode": "all"},
    });
    let id = app.create("/api/v1/sources", body).await;
    let b = Browser::start().await;
    b.goto(&format!("{}/", app.url)).await;
    let input = b.find("#token").await;
    input.send_keys(&app.admin).await;
    input.send_keys(keys::ENTER).await;
    b.find("#who-name").await;
    b.goto(&format!("{}/#/sources/{id}", app.url)).await;
    b.find("#tab-capabilities").await.click().await;
    let url = b.find("#webhook-url").await;
    assert!(url.value().await.contains("Save the webhook settings"));
    b.find("#webhook-scheme").await.select("token").await;
    b.find("#webhook-generate").await.click().await;
    let generated = b.find("#webhook-generated code").await.text().await;
    assert_eq!(generated.len(), 64, "{generated}");
    let url = b.find("#webhook-url").await.value().await;
    assert!(
        url.starts_with(&format!("{}/hooks/{id}/", app.url)),
        "{url}"
    );
    let steps = b.find("#webhook-steps").await.text().await;
    assert!(
        steps.contains(&url) && steps.contains("Secret token"),
        "{steps}"
    );
    let unlabelled = b
        .execute(
            "return [...document.querySelectorAll('#webhooks input, #webhooks select')]
                .filter(e => e.labels.length === 0).map(e => e.id);",
            vec![],
        )
        .await;
    assert_eq!(unlabelled, json!([]));
    b.screenshot_full("webhooks-editor").await;

    // Shown once: a reload shows that a secret is set, never the secret.
    b.refresh().await;
    b.find("#tab-capabilities").await.click().await;
    b.find("#webhook-health").await;
    assert!(b.try_find("#webhook-generated").await.is_none());
    assert!(!b.page_html().await.contains(&generated));
    let placeholder = b
        .find("#webhook-secret")
        .await
        .attr("placeholder")
        .await
        .unwrap();
    assert!(placeholder.starts_with("Set (not shown)"), "{placeholder}");
}
