//! Companies and accounts: where a contact's company comes from, and where the sync records
//! that it set it (the `[companies]` table; off unless present).

use serde::{Deserialize, Serialize};

use super::ConfigIssue;

/// The built-in free-mail domains, one a line (`#` starts a comment).
const FREE_MAIL: &str = include_str!("free_mail_domains.txt");

/// Where a contact's company domain comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CompanySource {
    /// The domain of the contact's email (`jane@acme.com` -> `acme.com`).
    #[default]
    EmailDomain,
    /// A community profile field holding the company's domain or web site
    /// (`{ profile_field = "company_site" }`); contacts without a community user or with the
    /// field blank get no company.
    ProfileField(String),
    /// A CRM contact property holding the company's domain or web site
    /// (`{ crm_property = "website" }`).
    CrmProperty(String),
}

/// The `[companies]` table: derive each contact's company, find or create it by domain
/// (HubSpot company `domain`, or the Salesforce Account field the sink is configured with)
/// and associate the contact with it.
///
/// The sync never moves a contact the CRM owner placed in a company: it fills the company
/// only when the contact has none, or moves it when the company is the one the sync set
/// (recorded in `provenance_property` as `<company id>|<domain>`).
///
/// ```
/// use sync_core::config::SyncConfig;
/// let config = SyncConfig::from_toml_str(r#"
///     [companies]
///     from = "email_domain"
///     current_property = "associatedcompanyid"
///     provenance_property = "cativa_company"
///     free_mail_domains = ["example-mail.com"]
/// "#)?.validate()?;
/// let companies = config.companies().unwrap();
/// assert!(companies.is_free_mail("gmail.com"));
/// assert!(companies.is_free_mail("example-mail.com"));
/// assert!(!companies.is_free_mail("acme.com"));
/// # Ok::<(), sync_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CompanyConfig {
    /// Where the company domain comes from (default: the email domain).
    #[serde(default)]
    pub from: CompanySource,
    /// The contact property holding its current company or account id (HubSpot
    /// `associatedcompanyid`, Salesforce `AccountId`). The source must read it (HubSpot:
    /// list it in the source mapping's properties).
    pub current_property: String,
    /// A contact property the sync owns, where it records the company it set
    /// (`<company id>|<domain>`), so it moves only contacts it placed itself.
    pub provenance_property: String,
    /// Domains to treat as free mail on top of the built-in list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub free_mail_domains: Vec<String>,
    /// Skip the built-in free-mail list (default false: `gmail.com` and the like never
    /// become companies).
    #[serde(default)]
    pub ignore_builtin_free_mail: bool,
}

impl CompanyConfig {
    /// A configuration deriving companies from email domains.
    pub fn new(
        current_property: impl Into<String>,
        provenance_property: impl Into<String>,
    ) -> Self {
        Self {
            from: CompanySource::EmailDomain,
            current_property: current_property.into(),
            provenance_property: provenance_property.into(),
            free_mail_domains: Vec::new(),
            ignore_builtin_free_mail: false,
        }
    }

    /// Takes the company domain from `source` instead (builder style).
    pub fn with_source(mut self, source: CompanySource) -> Self {
        self.from = source;
        self
    }

    /// Whether `domain` (lower case) is a free-mail domain, which never becomes a company.
    pub fn is_free_mail(&self, domain: &str) -> bool {
        self.free_mail_domains
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
            || (!self.ignore_builtin_free_mail && builtin_free_mail().any(|d| d == domain))
    }

    /// The CRM properties the company pass reads.
    pub fn crm_properties(&self) -> Vec<String> {
        let mut out = vec![
            self.current_property.clone(),
            self.provenance_property.clone(),
        ];
        if let CompanySource::CrmProperty(p) = &self.from {
            out.push(p.clone());
        }
        out
    }

    pub(super) fn validate(&self, issues: &mut Vec<ConfigIssue>) {
        for (key, value) in [
            ("companies.current_property", &self.current_property),
            ("companies.provenance_property", &self.provenance_property),
        ] {
            if value.trim().is_empty() {
                issues.push(ConfigIssue::new(key, "must name a CRM contact property"));
            }
        }
        if self.current_property == self.provenance_property {
            issues.push(ConfigIssue::new(
                "companies.provenance_property",
                "must differ from current_property: the sync records there which company it set",
            ));
        }
        match &self.from {
            CompanySource::ProfileField(f) | CompanySource::CrmProperty(f)
                if f.trim().is_empty() =>
            {
                issues.push(ConfigIssue::new(
                    "companies.from",
                    "name the field holding the company's domain, or use \"email_domain\"",
                ));
            }
            _ => {}
        }
    }
}

/// The built-in free-mail domains.
pub fn builtin_free_mail() -> impl Iterator<Item = &'static str> {
    FREE_MAIL
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
}

/// A company domain from what a person typed: an email, a URL or a bare domain, lower case,
/// without `www.`. `None` when nothing domain-like is left.
pub fn normalize_domain(raw: &str) -> Option<String> {
    let mut s = raw.trim().to_ascii_lowercase();
    if let Some(at) = s.rfind('@') {
        s = s[at + 1..].to_owned();
    }
    for scheme in ["https://", "http://"] {
        if let Some(rest) = s.strip_prefix(scheme) {
            s = rest.to_owned();
        }
    }
    let host = s.split(['/', '?', '#', ':']).next().unwrap_or_default();
    let host = host
        .strip_prefix("www.")
        .unwrap_or(host)
        .trim_end_matches('.');
    let ok = host.contains('.')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !host.starts_with('.')
        && !host.contains("..");
    ok.then(|| host.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalized_from_emails_urls_and_hosts() {
        assert_eq!(
            normalize_domain("Jane@Acme.COM").as_deref(),
            Some("acme.com")
        );
        assert_eq!(
            normalize_domain("https://www.acme.com/about?x=1").as_deref(),
            Some("acme.com")
        );
        assert_eq!(
            normalize_domain("acme.co.uk").as_deref(),
            Some("acme.co.uk")
        );
        assert_eq!(normalize_domain("Acme Inc"), None);
        assert_eq!(normalize_domain(""), None);
    }

    #[test]
    fn the_builtin_list_has_the_big_providers_and_no_comments() {
        let all: Vec<_> = builtin_free_mail().collect();
        assert!(all.contains(&"gmail.com") && all.contains(&"outlook.com"));
        assert!(
            all.iter()
                .all(|d| normalize_domain(d).as_deref() == Some(*d))
        );
    }
}
