//! Cativa state: users, badges held (with where each came from), the effects the API
//! applied, and the idempotency keys it has seen.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub(crate) fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// A GUID derived from a namespace and a counter: deterministic, unique per sandbox.
pub(crate) fn guid(namespace: &str, n: u64) -> String {
    let h = Sha256::digest(format!("{namespace}:{n}").as_bytes());
    let x = hex::encode(&h[..16]);
    format!(
        "{}-{}-4{}-8{}-{}",
        &x[0..8],
        &x[8..12],
        &x[13..16],
        &x[17..20],
        &x[20..32]
    )
}

/// Where a badge a user holds came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum BadgeSource {
    /// Granted through the (preview) badge API, i.e. by a sync.
    Api,
    /// Granted by something else (paywall purchase, course, admin): a sync must
    /// never remove it.
    Elsewhere,
}

/// One badge a user holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct BadgeGrant {
    /// Badge id.
    pub badge_id: String,
    /// Where it came from.
    pub source: BadgeSource,
    /// When.
    pub granted_at: DateTime<Utc>,
}

/// A community user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CativaUser {
    /// User id (GUID).
    pub id: String,
    /// Email as the user typed it.
    pub email: String,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Display name.
    pub display_name: String,
    /// Username (no spaces).
    pub username: String,
    /// Phone, if given.
    pub phone_number: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Badges held.
    pub badges: Vec<BadgeGrant>,
    /// Created through `POST /social/v1/users` (rather than seeded or signed up).
    pub created_via_api: bool,
}

impl CativaUser {
    /// Ids of the badges held.
    pub fn badge_ids(&self) -> Vec<String> {
        self.badges.iter().map(|b| b.badge_id.clone()).collect()
    }

    /// Whether the user holds `badge_id`.
    pub fn has_badge(&self, badge_id: &str) -> bool {
        self.badges.iter().any(|b| b.badge_id == badge_id)
    }

    /// The nested `User` object of webhook payloads and the API's user shape.
    pub(crate) fn to_json(&self, primary_badge: Option<&str>) -> Value {
        json!({
            "Id": self.id,
            "Email": self.email,
            "FirstName": self.first_name,
            "LastName": self.last_name,
            "DisplayName": self.display_name,
            "Username": self.username,
            "PhoneNumber": self.phone_number,
            "CreatedAt": iso(self.created_at),
            "BadgeId": primary_badge.map(str::to_owned).or_else(|| self.badges.first().map(|b| b.badge_id.clone())),
            "Badges": self.badge_ids(),
        })
    }
}

/// A change the API applied; tests count these to prove "one effect per key".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum Effect {
    /// A user was created through the API.
    UserCreated {
        /// The new user.
        user_id: String,
    },
    /// A badge was granted through the API.
    BadgeGranted {
        /// User.
        user_id: String,
        /// Badge.
        badge_id: String,
    },
    /// A badge was removed through the API.
    BadgeRemoved {
        /// User.
        user_id: String,
        /// Badge.
        badge_id: String,
        /// Where the removed badge had come from.
        source: BadgeSource,
    },
}

/// A stored response for an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) fingerprint: [u8; 32],
    pub(crate) status: u16,
    pub(crate) body: Option<String>,
}

/// Everything a Cativa sandbox holds.
#[derive(Debug, Default)]
pub(crate) struct CativaState {
    pub(crate) users: BTreeMap<String, CativaUser>,
    /// Trimmed, ASCII-lowercased email -> ids of the users with it (emails do not change
    /// through this API; several only when tests sign the same address up twice). The
    /// smallest id first, as a scan of `users` finds them.
    by_email: std::collections::HashMap<String, std::collections::BTreeSet<String>>,
    /// Usernames taken, so a new user's is checked without a scan.
    usernames: std::collections::HashSet<String>,
    counter: u64,
    pub(crate) effects: Vec<Effect>,
    pub(crate) idempotency: BTreeMap<String, Stored>,
    /// Every key received, in order, repeats included.
    pub(crate) keys_seen: Vec<String>,
}

/// The key of [`CativaState::by_email`]: emails compare trimmed and ASCII-case-insensitive.
fn email_key(email: &str) -> String {
    email.trim().to_ascii_lowercase()
}

impl CativaState {
    pub(crate) fn find_by_email(&self, email: &str) -> Option<&CativaUser> {
        let id = self.by_email.get(&email_key(email))?.first()?;
        self.users.get(id)
    }

    pub(crate) fn add_user(
        &mut self,
        email: &str,
        first: &str,
        last: &str,
        phone: Option<String>,
        via_api: bool,
        now: DateTime<Utc>,
    ) -> CativaUser {
        self.counter += 1;
        let id = guid("user", self.counter);
        let display = format!("{first} {last}").trim().to_owned();
        let username = {
            let base: String = email
                .split('@')
                .next()
                .unwrap_or("user")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
                .collect::<String>()
                .to_lowercase();
            if self.usernames.contains(&base) {
                format!("{base}{}", self.counter)
            } else {
                base
            }
        };
        let user = CativaUser {
            id: id.clone(),
            email: email.trim().to_owned(),
            first_name: first.to_owned(),
            last_name: last.to_owned(),
            display_name: display,
            username,
            phone_number: phone,
            created_at: now,
            badges: Vec::new(),
            created_via_api: via_api,
        };
        self.by_email
            .entry(email_key(&user.email))
            .or_default()
            .insert(id.clone());
        self.usernames.insert(user.username.clone());
        self.users.insert(id.clone(), user.clone());
        if via_api {
            self.effects.push(Effect::UserCreated { user_id: id });
        }
        user
    }

    /// Grants a badge; `true` when the user did not hold it yet.
    pub(crate) fn grant(
        &mut self,
        user_id: &str,
        badge_id: &str,
        source: BadgeSource,
        now: DateTime<Utc>,
    ) -> Option<bool> {
        let user = self.users.get_mut(user_id)?;
        if user.has_badge(badge_id) {
            return Some(false);
        }
        user.badges.push(BadgeGrant {
            badge_id: badge_id.to_owned(),
            source,
            granted_at: now,
        });
        if source == BadgeSource::Api {
            self.effects.push(Effect::BadgeGranted {
                user_id: user_id.to_owned(),
                badge_id: badge_id.to_owned(),
            });
        }
        Some(true)
    }

    /// Removes a badge; `Some(true)` when it was held.
    pub(crate) fn revoke(&mut self, user_id: &str, badge_id: &str, via_api: bool) -> Option<bool> {
        let user = self.users.get_mut(user_id)?;
        let Some(pos) = user.badges.iter().position(|b| b.badge_id == badge_id) else {
            return Some(false);
        };
        let grant = user.badges.remove(pos);
        if via_api {
            self.effects.push(Effect::BadgeRemoved {
                user_id: user_id.to_owned(),
                badge_id: badge_id.to_owned(),
                source: grant.source,
            });
        }
        Some(true)
    }
}
