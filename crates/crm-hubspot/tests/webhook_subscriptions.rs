#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Webhook subscriptions of a public app against the HubSpot sandbox (127.0.0.1): settings,
//! list, create, and `ensure` creating only what is missing.

use crm_hubspot::subscriptions::{
    NewSubscription, Throttling, WebhookSettings, WebhookSubscriptions, contact_subscriptions,
};
use secrecy::SecretString;
use sync_sandbox::hubspot::{
    DEFAULT_DEVELOPER_API_KEY, HUBSPOT_APP_ID, HubSpotConfig, HubSpotSandbox,
};

fn settings(url: &str) -> WebhookSettings {
    serde_json::from_value(serde_json::json!({
        "targetUrl": url,
        "throttling": {"maxConcurrentRequests": 10, "period": "SECONDLY"}
    }))
    .unwrap()
}

#[tokio::test]
async fn ensure_twice_creates_once() {
    let hs = HubSpotSandbox::start(HubSpotConfig::default())
        .await
        .unwrap();
    let api = WebhookSubscriptions::new(
        hs.base_url(),
        HUBSPOT_APP_ID,
        SecretString::from(DEFAULT_DEVELOPER_API_KEY),
    )
    .unwrap();
    assert_eq!(api.settings().await.unwrap(), None);
    let wanted = contact_subscriptions(&["email", "cativa_tags"]);
    let target = settings("https://partner.example/webhooks/hubspot");

    let first = api.ensure(&target, &wanted).await.unwrap();
    assert!(first.settings_updated);
    assert_eq!(first.created.len(), 5);
    assert!(first.created.iter().all(|s| s.active));

    let second = api.ensure(&target, &wanted).await.unwrap();
    assert!(!second.settings_updated);
    assert!(second.created.is_empty() && second.activated.is_empty());
    assert_eq!(second.unchanged, 5);
    assert_eq!(api.list().await.unwrap().len(), 5);
    let stored = api.settings().await.unwrap().unwrap();
    assert_eq!(
        stored.target_url,
        "https://partner.example/webhooks/hubspot"
    );
    assert_eq!(stored.throttling, Some(Throttling::per_second(10)));

    // A subscription created paused (HubSpot's default) is activated, not duplicated.
    let mut paused = NewSubscription::contact_property("lifecyclestage");
    paused.active = false;
    let created = api.create(&paused).await.unwrap();
    assert!(!created.active);
    let wanted: Vec<_> = wanted
        .into_iter()
        .chain([NewSubscription::contact_property("lifecyclestage")])
        .collect();
    let third = api.ensure(&target, &wanted).await.unwrap();
    assert_eq!(third.activated.len(), 1);
    assert_eq!(third.activated[0].id, created.id);
    assert!(third.created.is_empty());
    assert_eq!(api.list().await.unwrap().len(), 6);

    // A new target URL is written; the subscriptions stay.
    let moved = api
        .ensure(&settings("https://partner.example/v2/hubspot"), &wanted)
        .await
        .unwrap();
    assert!(moved.settings_updated && moved.created.is_empty());
}

#[tokio::test]
async fn a_wrong_developer_key_is_refused_without_showing_it() {
    let hs = HubSpotSandbox::start(HubSpotConfig::default())
        .await
        .unwrap();
    let api = WebhookSubscriptions::new(
        hs.base_url(),
        HUBSPOT_APP_ID,
        SecretString::from("wrong-developer-key-123"),
    )
    .unwrap();
    let err = api.list().await.unwrap_err();
    let text = format!("{err} {err:?} {api:?}");
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("wrong-developer-key-123"), "{text}");
}
