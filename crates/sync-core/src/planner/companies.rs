//! The company pass: each live contact's company domain, derived as the `[companies]`
//! configuration says, becomes an `associate_company` action when the contact has no
//! company yet, or when its company is one the sync set and the domain changed. A company
//! the CRM owner set is never replaced (ownership, see ARCHITECTURE.md).

use super::{Builder, millis};
use crate::config::{CompanyConfig, CompanySource, normalize_domain};
use crate::domain::{CrmContact, Email};
use crate::plan::{ActionKind, Reason};

/// What the sync recorded when it set a contact's company: `<company id>|<domain>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompanyProvenance {
    /// The company (or account) id the sync associated the contact with.
    pub company_id: String,
    /// The domain it was found or created by.
    pub domain: String,
}

impl CompanyProvenance {
    /// Parses the provenance property's value; `None` for a blank or foreign value.
    pub fn parse(raw: &str) -> Option<Self> {
        let (id, domain) = raw.trim().split_once('|')?;
        (!id.is_empty() && !domain.is_empty()).then(|| Self {
            company_id: id.to_owned(),
            domain: domain.to_owned(),
        })
    }

    /// The value to write to the provenance property.
    pub fn encode(company_id: &str, domain: &str) -> String {
        format!("{company_id}|{domain}")
    }
}

/// What the pass decided for one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Decision {
    /// Associate, replacing the sync's own company if any.
    Associate {
        replaces: Option<String>,
        detail: &'static str,
    },
    /// Nothing to do (already there, or the owner's company).
    Keep,
}

fn decide(config: &CompanyConfig, c: &CrmContact, domain: &str) -> Decision {
    let current = c
        .property(&config.current_property)
        .map(str::trim)
        .filter(|v| !v.is_empty());
    let Some(current) = current else {
        return Decision::Associate {
            replaces: None,
            detail: "no company set",
        };
    };
    let ours = c
        .property(&config.provenance_property)
        .and_then(CompanyProvenance::parse)
        .filter(|p| p.company_id == current);
    match ours {
        Some(p) if p.domain != domain => Decision::Associate {
            replaces: Some(p.company_id),
            detail: "the company the sync set no longer matches",
        },
        // Ours and still right, or the owner's: never moved.
        _ => Decision::Keep,
    }
}

impl Builder<'_, '_> {
    /// Plans the company association of each live contact with an email.
    pub(super) fn pass_companies(&mut self, contacts: &[CrmContact]) {
        let Some(config) = self.input.config.companies() else {
            return;
        };
        for c in contacts {
            if c.archived || c.merged_into.is_some() {
                continue;
            }
            let Some(email) = &c.email else { continue };
            let Some((domain, from)) = self.company_domain(config, c, email) else {
                continue;
            };
            if config.is_free_mail(&domain) {
                continue;
            }
            let Decision::Associate { replaces, detail } = decide(config, c, &domain) else {
                continue;
            };
            let at = millis(c.updated_at);
            let key_parts = [
                "associate_company".to_owned(),
                c.id.to_string(),
                domain.clone(),
                replaces.clone().unwrap_or_default(),
                at,
            ];
            let key_parts: Vec<&str> = key_parts.iter().map(String::as_str).collect();
            let kind = ActionKind::AssociateCompany {
                crm_id: c.id.clone(),
                email: email.clone(),
                domain,
                replaces,
                provenance_property: config.provenance_property.clone(),
            };
            let reason = Reason::Company {
                from,
                detail: detail.to_owned(),
            };
            self.push(kind, reason, &key_parts);
        }
    }

    /// The contact's company domain and where it came from.
    fn company_domain(
        &self,
        config: &CompanyConfig,
        c: &CrmContact,
        email: &Email,
    ) -> Option<(String, String)> {
        match &config.from {
            CompanySource::EmailDomain => {
                normalize_domain(email.as_str()).map(|d| (d, "email domain".to_owned()))
            }
            CompanySource::CrmProperty(p) => c
                .property(p)
                .and_then(normalize_domain)
                .map(|d| (d, format!("crm property {p}"))),
            CompanySource::ProfileField(f) => {
                let view = self.input.view;
                let row = view.by_crm_id(&c.id).or_else(|| view.by_email(email))?;
                row.profile
                    .as_ref()?
                    .fields
                    .get(f)
                    .and_then(|v| normalize_domain(v))
                    .map(|d| (d, format!("profile field {f}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::CompanyProvenance;
    use crate::config::{CompanyConfig, CompanySource, SyncConfig};
    use crate::domain::{CommunityProfile, CrmContact, CrmRecordId, Mapping, TenantId};
    use crate::plan::{ActionKind, ActionType, PlanMode};
    use crate::planner::{PlanInput, StateView, plan};

    fn config(source: CompanySource) -> crate::config::ValidatedConfig {
        let config = SyncConfig {
            companies: Some(
                CompanyConfig::new("associatedcompanyid", "cativa_company").with_source(source),
            ),
            ..SyncConfig::default()
        };
        config.validate().unwrap()
    }

    fn contact(id: &str, email: &str) -> CrmContact {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        CrmContact::new(CrmRecordId::hubspot(id), Some(email.parse().unwrap()), at)
    }

    fn run(
        config: &crate::config::ValidatedConfig,
        view: &StateView,
        c: &[CrmContact],
    ) -> crate::plan::Plan {
        let tenant = TenantId::new("t");
        let now = Utc.with_ymd_and_hms(2026, 1, 2, 0, 0, 0).unwrap();
        plan(
            &PlanInput::new(&tenant, config, view, now),
            c,
            PlanMode::Delta,
        )
    }

    fn domains(p: &crate::plan::Plan) -> Vec<(String, Option<String>)> {
        p.actions
            .iter()
            .filter_map(|a| match &a.kind {
                ActionKind::AssociateCompany {
                    domain, replaces, ..
                } => Some((domain.clone(), replaces.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn an_email_domain_becomes_a_company_and_free_mail_never_does() {
        let config = config(CompanySource::EmailDomain);
        let contacts = [contact("1", "jane@acme.com"), contact("2", "joe@gmail.com")];
        let p = run(&config, &StateView::default(), &contacts);
        assert_eq!(domains(&p), vec![("acme.com".to_owned(), None)]);
        assert_eq!(p.count_of(ActionType::AssociateCompany), 1);
        let line = p.actions[0].to_string();
        assert!(
            line.contains("+ company jane@acme.com -> acme.com"),
            "{line}"
        );
        assert!(line.contains("no company set"), "{line}");
    }

    #[test]
    fn a_company_the_owner_set_is_never_replaced() {
        let config = config(CompanySource::EmailDomain);
        let owned = contact("1", "jane@acme.com").with_property("associatedcompanyid", "900");
        let stale_provenance = contact("2", "joe@acme.com")
            .with_property("associatedcompanyid", "901")
            .with_property("cativa_company", "555|other.com");
        let p = run(&config, &StateView::default(), &[owned, stale_provenance]);
        assert!(domains(&p).is_empty(), "{p}");
    }

    #[test]
    fn the_syncs_own_company_moves_when_the_domain_changes_and_stays_otherwise() {
        let config = config(CompanySource::EmailDomain);
        let moved = contact("1", "jane@beta.com")
            .with_property("associatedcompanyid", "555")
            .with_property(
                "cativa_company",
                CompanyProvenance::encode("555", "acme.com"),
            );
        let settled = contact("2", "joe@acme.com")
            .with_property("associatedcompanyid", "555")
            .with_property("cativa_company", "555|acme.com");
        let p = run(&config, &StateView::default(), &[moved, settled]);
        assert_eq!(
            domains(&p),
            vec![("beta.com".to_owned(), Some("555".to_owned()))]
        );
    }

    #[test]
    fn a_profile_field_names_the_company_and_keys_repeat_for_the_same_input() {
        let config = config(CompanySource::ProfileField("company_site".into()));
        let c = contact("1", "jane@gmail.com");
        let row = Mapping::new("jane@gmail.com".parse().unwrap(), c.updated_at)
            .with_crm(c.id.clone())
            .with_user("u-1".into())
            .with_profile(
                CommunityProfile::new().with_field("company_site", "https://www.Acme.com/"),
            );
        let view = StateView::new(vec![row]);
        let first = run(&config, &view, std::slice::from_ref(&c));
        let second = run(&config, &view, &[c]);
        assert_eq!(domains(&first), vec![("acme.com".to_owned(), None)]);
        let key = |p: &crate::plan::Plan| {
            p.actions
                .iter()
                .find(|a| a.kind.action_type() == ActionType::AssociateCompany)
                .map(|a| a.key.clone())
        };
        assert_eq!(key(&first), key(&second));
    }

    #[test]
    fn without_the_table_nothing_changes() {
        let config = SyncConfig::default().validate().unwrap();
        let p = run(
            &config,
            &StateView::default(),
            &[contact("1", "jane@acme.com")],
        );
        assert_eq!(p.count_of(ActionType::AssociateCompany), 0);
    }
}
