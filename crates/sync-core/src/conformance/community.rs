//! The community connector contracts ([`BadgeSink`](crate::ports::BadgeSink) and
//! [`Inviter`](crate::ports::Inviter)).

use std::sync::Arc;

use super::CommunityHarness;
use crate::domain::CrmRecordId;
use crate::plan::IdempotencyKey;
use crate::ports::{BadgeChange, BadgeOp, Invite};

fn key(parts: &[&str]) -> IdempotencyKey {
    IdempotencyKey::derive(parts)
}

/// A badge change repeated under the same key (a retry after a timeout) has one effect, and
/// a removal takes the badge away.
pub async fn badge_changes_are_idempotent_by_key(h: Arc<dyn CommunityHarness>) {
    let users = h.users();
    assert!(users.len() >= 2, "the harness must give at least two users");
    let badge = h.badge();
    let tenant = h.tenant();
    let sink = h.badge_sink();
    let changes: Vec<BadgeChange> = users
        .iter()
        .map(|(u, e)| {
            BadgeChange::new(
                u.clone(),
                e.clone(),
                badge.clone(),
                BadgeOp::Assign,
                key(&["conformance", "assign", u.as_str()]),
            )
        })
        .collect();
    for round in 0..2 {
        let results = sink
            .apply_badges(&tenant, &changes)
            .await
            .unwrap_or_else(|e| panic!("apply_badges failed (round {round}): {e}"));
        assert_eq!(
            results.len(),
            changes.len(),
            "one result per change, in order"
        );
        for (i, r) in results.iter().enumerate() {
            assert!(r.is_ok(), "round {round}: change {i} failed: {r:?}");
        }
    }
    for (user, _) in &users {
        assert!(
            h.badges_of(user).await.contains(&badge),
            "{user} must hold the badge after an assign"
        );
        assert_eq!(
            h.grant_effects(user, &badge).await,
            1,
            "a repeated assign under the same key must have one effect for {user}"
        );
    }
    let (user, email) = &users[0];
    let removal = BadgeChange::new(
        user.clone(),
        email.clone(),
        badge.clone(),
        BadgeOp::Remove,
        key(&["conformance", "remove", user.as_str()]),
    );
    for _ in 0..2 {
        let results = sink
            .apply_badges(&tenant, std::slice::from_ref(&removal))
            .await
            .unwrap_or_else(|e| panic!("apply_badges (remove) failed: {e}"));
        assert!(
            results[0].is_ok(),
            "a repeated removal must succeed: {:?}",
            results[0]
        );
    }
    assert!(
        !h.badges_of(user).await.contains(&badge),
        "{user} must not hold the badge after a removal"
    );
}

/// One change for a user that does not exist fails alone, permanently; the others apply.
pub async fn badge_sink_reports_per_record_results(h: Arc<dyn CommunityHarness>) {
    let users = h.users();
    let badge = h.badge();
    let (user, email) = &users[0];
    let changes = vec![
        BadgeChange::new(
            h.unknown_user(),
            email.clone(),
            badge.clone(),
            BadgeOp::Assign,
            key(&["conformance", "unknown"]),
        ),
        BadgeChange::new(
            user.clone(),
            email.clone(),
            badge.clone(),
            BadgeOp::Assign,
            key(&["conformance", "known", user.as_str()]),
        ),
    ];
    let results = h
        .badge_sink()
        .apply_badges(&h.tenant(), &changes)
        .await
        .unwrap_or_else(|e| panic!("one unknown user must not fail the whole batch: {e}"));
    assert_eq!(results.len(), 2, "one result per change");
    match &results[0] {
        Err(e) => assert!(
            !e.is_retryable(),
            "an unknown user is a permanent failure: {e}"
        ),
        Ok(()) => panic!("a change for an unknown user was reported applied"),
    }
    assert!(
        results[1].is_ok(),
        "the valid change must apply: {:?}",
        results[1]
    );
    assert!(h.badges_of(user).await.contains(&badge));
}

/// An invite repeated under the same key produces one invite.
pub async fn invites_are_idempotent_by_key(h: Arc<dyn CommunityHarness>) {
    let Some(inviter) = h.inviter() else {
        println!("skipped: the harness has no inviter");
        return;
    };
    let email = crate::domain::Email::parse("invitee@conformance.example")
        .unwrap_or_else(|e| panic!("{e}"));
    let invite = Invite::new(
        email.clone(),
        CrmRecordId::hubspot("1"),
        vec![h.badge()],
        key(&["conformance", "invite"]),
    );
    for round in 0..2 {
        let results = inviter
            .invite(&h.tenant(), std::slice::from_ref(&invite))
            .await
            .unwrap_or_else(|e| panic!("invite failed (round {round}): {e}"));
        assert_eq!(results.len(), 1, "one result per invite");
        assert!(results[0].is_ok(), "round {round}: {:?}", results[0]);
    }
    assert_eq!(
        h.invites_for(&email).await,
        1,
        "a repeated invite under the same key must produce one invite"
    );
}
