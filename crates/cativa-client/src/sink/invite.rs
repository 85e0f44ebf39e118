//! [`SignupInviter`]: sign-up invites (the tenant's sign-up link plus the email) for the
//! CRM side to send, since creating users through the API is not public yet.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sync_core::ports::{Invite, Inviter, ItemResult};
use sync_core::{BadgeId, CrmRecordId, Email, Error, IdempotencyKey, TenantId};
use url::Url;

use super::keyed_csv::{KeyedCsv, file_part};

/// The header of an invites file.
pub const INVITE_CSV_HEADER: &[&str] = &[
    "email",
    "signup_link",
    "crm",
    "crm_id",
    "badges",
    "idempotency_key",
];

/// An invite ready to send: email the person the link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct SignupInvite {
    /// The tenant.
    pub tenant: TenantId,
    /// Who to invite.
    pub email: Email,
    /// The tenant's sign-up link (with the email prefilled when configured).
    pub signup_link: Url,
    /// The CRM record, to send from (HubSpot Email, a Salesforce campaign...).
    pub crm_id: CrmRecordId,
    /// Badges the person will get once they join (`user_created` then grants them).
    pub badges: Vec<BadgeId>,
    /// The invite action's idempotency key.
    pub key: IdempotencyKey,
}

/// Where invites go.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum InviteOutput {
    /// Kept in memory; take them with [`SignupInviter::take_invites`] and hand them to the
    /// CRM side (e.g. set a property that a CRM workflow turns into the invite email).
    Memory,
    /// Appended to `invites-<tenant>.csv` in this directory, for a mailing.
    CsvDir(PathBuf),
}

/// Produces sign-up invites from each tenant's public sign-up link.
///
/// Each invite is produced once per idempotency key (in memory for this process; in the
/// file across restarts for [`InviteOutput::CsvDir`]).
#[derive(Debug, Clone)]
pub struct SignupInviter {
    links: HashMap<TenantId, Url>,
    email_param: Option<String>,
    output: InviteOutput,
    files: KeyedCsv,
    pending: Arc<Mutex<(Vec<SignupInvite>, HashSet<String>)>>,
}

impl SignupInviter {
    /// An inviter writing to `output`, with no tenants yet.
    pub fn new(output: InviteOutput) -> Self {
        Self {
            links: HashMap::new(),
            email_param: None,
            output,
            files: KeyedCsv::default(),
            pending: Arc::new(Mutex::new((Vec::new(), HashSet::new()))),
        }
    }

    /// Sets `tenant`'s sign-up link (from the Console).
    #[must_use]
    pub fn with_signup_link(mut self, tenant: TenantId, link: Url) -> Self {
        self.links.insert(tenant, link);
        self
    }

    /// Prefills the email into the link as the query parameter `name`. Off by default:
    /// Cativa does not document such a parameter; set it only if your sign-up page reads
    /// one.
    #[must_use]
    pub fn with_email_param(mut self, name: impl Into<String>) -> Self {
        self.email_param = Some(name.into());
        self
    }

    /// Takes the invites produced so far ([`InviteOutput::Memory`]).
    pub fn take_invites(&self) -> Vec<SignupInvite> {
        match self.pending.lock() {
            Ok(mut g) => std::mem::take(&mut g.0),
            Err(_) => Vec::new(),
        }
    }

    fn link(&self, base: &Url, email: &Email) -> Url {
        let mut link = base.clone();
        if let Some(p) = &self.email_param {
            link.query_pairs_mut().append_pair(p, email.as_str());
        }
        link
    }
}

#[async_trait]
impl Inviter for SignupInviter {
    async fn invite(
        &self,
        tenant: &TenantId,
        invites: &[Invite],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let base = self
            .links
            .get(tenant)
            .ok_or_else(|| Error::UnknownTenant(tenant.clone()))?;
        let made: Vec<SignupInvite> = invites
            .iter()
            .map(|i| SignupInvite {
                tenant: tenant.clone(),
                email: i.email.clone(),
                signup_link: self.link(base, &i.email),
                crm_id: i.crm_id.clone(),
                badges: i.badges.clone(),
                key: i.key.clone(),
            })
            .collect();
        match &self.output {
            InviteOutput::Memory => {
                let mut g = self.pending.lock().map_err(|_| {
                    Error::store("queue invites", "a previous writer panicked", false)
                })?;
                for inv in made {
                    if g.1.insert(inv.key.as_str().to_owned()) {
                        g.0.push(inv);
                    }
                }
            }
            InviteOutput::CsvDir(dir) => {
                let rows = made
                    .into_iter()
                    .map(|i| {
                        vec![
                            i.email.as_str().to_owned(),
                            i.signup_link.to_string(),
                            i.crm_id.crm.as_str().to_owned(),
                            i.crm_id.id.clone(),
                            i.badges
                                .iter()
                                .map(BadgeId::as_str)
                                .collect::<Vec<_>>()
                                .join(";"),
                            i.key.as_str().to_owned(),
                        ]
                    })
                    .collect();
                let path = dir.join(format!("invites-{}.csv", file_part(tenant.as_str())));
                self.files.append(path, INVITE_CSV_HEADER, rows).await?;
            }
        }
        Ok(invites.iter().map(|_| Ok(())).collect())
    }
}
