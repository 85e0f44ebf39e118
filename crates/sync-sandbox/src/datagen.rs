//! A seedable generator of realistic CRM contacts: names (accents included), emails
//! with a share of duplicates and of mixed case, phone numbers in several national
//! and international formats, tags from a configurable set, lifecycle stages, and
//! which of them also exist as community users.
//!
//! The same configuration always generates the same contacts.
//!
//! ```
//! use sync_sandbox::datagen::{generate, DataGenConfig};
//!
//! let contacts = generate(&DataGenConfig::default().with_contacts(500).with_seed(7));
//! assert_eq!(contacts.len(), 500);
//! assert_eq!(contacts, generate(&DataGenConfig::default().with_contacts(500).with_seed(7)));
//! ```

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

/// Tags offered by default (the seed guide's `Pago Anual` among them).
pub const DEFAULT_TAGS: [&str; 6] = [
    "Pago Anual",
    "Pago Mensal",
    "VIP",
    "Speaker",
    "Beta",
    "Churned",
];

const FIRST_NAMES: [&str; 40] = [
    "Ana",
    "João",
    "Maria",
    "José",
    "Mary Jane",
    "Pedro",
    "Lucas",
    "Juliana",
    "Fernanda",
    "Rafael",
    "Camila",
    "Bruno",
    "Letícia",
    "Gabriel",
    "Beatriz",
    "Mateus",
    "Larissa",
    "Thiago",
    "Sofia",
    "Gustavo",
    "Emma",
    "Liam",
    "Olivia",
    "Noah",
    "Ava",
    "Ethan",
    "Isabella",
    "Mason",
    "Mia",
    "Logan",
    "Zoë",
    "Chloé",
    "André",
    "Renée",
    "Conceição",
    "Íris",
    "Otávio",
    "Cauã",
    "Heloísa",
    "Raphaël",
];

const LAST_NAMES: [&str; 40] = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Rodrigues",
    "Ferreira",
    "Alves",
    "Pereira",
    "Lima",
    "Gomes",
    "Costa",
    "Ribeiro",
    "Martins",
    "Carvalho",
    "Almeida",
    "Lopes",
    "Soares",
    "Fernandes",
    "Vieira",
    "Barbosa",
    "Watson",
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Miller",
    "Davis",
    "García",
    "Müller",
    "da Silva",
    "de Souza",
    "dos Santos",
    "O'Brien",
    "Nuñez",
    "Gonçalves",
    "Araújo",
    "Magalhães",
    "Schröder",
    "Le Blanc",
];

const DOMAINS: [&str; 8] = [
    "example.com",
    "example.org",
    "example.net",
    "mail.example.com",
    "acme.example",
    "corp.example.com",
    "exemplo.com.br",
    "empresa.example.br",
];

/// Generator settings. `DataGenConfig::default()` makes 100 contacts with seed 0.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct DataGenConfig {
    /// RNG seed.
    pub seed: u64,
    /// How many contacts.
    pub contacts: usize,
    /// Share of contacts reusing an earlier contact's email (a duplicate person).
    pub duplicate_email_share: f64,
    /// Share of emails written in mixed case (`Maria.Silva@Example.com`).
    pub mixed_case_share: f64,
    /// Tags to draw from.
    pub tags: Vec<String>,
    /// Chance that a contact carries each tag.
    pub tag_probability: f64,
    /// Share of contacts with a phone number.
    pub phone_share: f64,
    /// Share of contacts that are also community users.
    pub community_share: f64,
}

impl Default for DataGenConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            contacts: 100,
            duplicate_email_share: 0.02,
            mixed_case_share: 0.1,
            tags: DEFAULT_TAGS.iter().map(|t| (*t).to_owned()).collect(),
            tag_probability: 0.25,
            phone_share: 0.7,
            community_share: 0.6,
        }
    }
}

impl DataGenConfig {
    /// Sets the number of contacts.
    pub fn with_contacts(mut self, n: usize) -> Self {
        self.contacts = n;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets the tag set.
    pub fn with_tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.tags = tags.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the chance of each tag.
    pub fn with_tag_probability(mut self, p: f64) -> Self {
        self.tag_probability = p;
        self
    }

    /// Sets the share of duplicated emails.
    pub fn with_duplicate_email_share(mut self, share: f64) -> Self {
        self.duplicate_email_share = share;
        self
    }

    /// Sets the share of mixed-case emails.
    pub fn with_mixed_case_share(mut self, share: f64) -> Self {
        self.mixed_case_share = share;
        self
    }

    /// Sets the share of contacts that are community users.
    pub fn with_community_share(mut self, share: f64) -> Self {
        self.community_share = share;
        self
    }
}

/// One generated person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct GeneratedContact {
    /// Position in the generated sequence.
    pub index: usize,
    /// First name (may contain spaces and accents).
    pub first_name: String,
    /// Last name.
    pub last_name: String,
    /// Email as written in the CRM (mixed case for some).
    pub email: String,
    /// Phone number as a person typed it, if any.
    pub phone: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// HubSpot lifecycle stage.
    pub lifecycle_stage: String,
    /// Job title.
    pub job_title: Option<String>,
    /// Company.
    pub company: Option<String>,
    /// Whether this person also has a community account (same email, any case).
    pub in_community: bool,
    /// Whether the email repeats an earlier contact's.
    pub duplicate_of: Option<usize>,
}

impl GeneratedContact {
    /// The normalized (trimmed, lowercased) email.
    pub fn normalized_email(&self) -> String {
        self.email.trim().to_lowercase()
    }

    /// HubSpot property map, tags `;`-joined into `tags_property`.
    pub fn hubspot_properties(&self, tags_property: &str) -> BTreeMap<String, String> {
        let mut p = BTreeMap::new();
        p.insert("firstname".into(), self.first_name.clone());
        p.insert("lastname".into(), self.last_name.clone());
        p.insert("email".into(), self.email.clone());
        p.insert("lifecyclestage".into(), self.lifecycle_stage.clone());
        if let Some(ph) = &self.phone {
            p.insert("phone".into(), ph.clone());
        }
        if let Some(j) = &self.job_title {
            p.insert("jobtitle".into(), j.clone());
        }
        if let Some(c) = &self.company {
            p.insert("company".into(), c.clone());
        }
        if !self.tags.is_empty() {
            p.insert(tags_property.into(), self.tags.join(";"));
        }
        p
    }
}

/// Lifecycle stages with weights: most contacts are early in the funnel.
const STAGES: [(&str, u32); 7] = [
    ("subscriber", 20),
    ("lead", 30),
    ("marketingqualifiedlead", 12),
    ("salesqualifiedlead", 8),
    ("opportunity", 8),
    ("customer", 18),
    ("evangelist", 4),
];

const TITLES: [&str; 8] = [
    "Head of Community",
    "Marketing Manager",
    "CEO",
    "Software Engineer",
    "Analista de Marketing",
    "Customer Success",
    "Founder",
    "Product Designer",
];

const COMPANIES: [&str; 8] = [
    "Acme Ltda",
    "Globex",
    "Initech",
    "Umbrella SA",
    "Hooli",
    "Vandelay Industries",
    "Padaria Pão Quente",
    "Stark & Filhos",
];

/// Folds accents and drops what cannot appear in an email local part.
fn ascii_fold(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            let folded = match c {
                'á' | 'à' | 'â' | 'ã' | 'ä' => 'a',
                'é' | 'è' | 'ê' | 'ë' => 'e',
                'í' | 'ì' | 'î' | 'ï' | 'Í' => 'i',
                'ó' | 'ò' | 'ô' | 'õ' | 'ö' => 'o',
                'ú' | 'ù' | 'û' | 'ü' => 'u',
                'ç' => 'c',
                'ñ' => 'n',
                c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
                ' ' | '\'' => return None,
                _ => return None,
            };
            Some(folded)
        })
        .collect()
}

fn pick<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn phone(rng: &mut StdRng) -> String {
    let d = |rng: &mut StdRng, n: usize| -> String {
        (0..n)
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect()
    };
    match rng.random_range(0..5) {
        0 => format!("+55 11 9{}-{}", d(rng, 4), d(rng, 4)),
        1 => format!("(21) 9{}-{}", d(rng, 4), d(rng, 4)),
        2 => format!("+1 415-555-01{}", d(rng, 2)),
        3 => format!("415.555.01{}", d(rng, 2)),
        _ => format!("+4420 7946 0{}", d(rng, 3)),
    }
}

fn mixed_case(rng: &mut StdRng, email: &str) -> String {
    let capitalize = |s: &str| {
        let mut c = s.chars();
        c.next()
            .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
            .unwrap_or_default()
    };
    match rng.random_range(0..3) {
        0 => email.to_uppercase(),
        1 => email
            .split('.')
            .map(capitalize)
            .collect::<Vec<_>>()
            .join("."),
        _ => {
            let (local, domain) = email.split_once('@').unwrap_or((email, ""));
            format!("{}@{}", capitalize(local), capitalize(domain))
        }
    }
}

/// Generates contacts from `config`; deterministic for a given configuration.
pub fn generate(config: &DataGenConfig) -> Vec<GeneratedContact> {
    let mut rng = StdRng::seed_from_u64(config.seed);
    let total_weight: u32 = STAGES.iter().map(|(_, w)| w).sum();
    let mut out: Vec<GeneratedContact> = Vec::with_capacity(config.contacts);
    for index in 0..config.contacts {
        let first = pick(&mut rng, &FIRST_NAMES).to_owned();
        let last = pick(&mut rng, &LAST_NAMES).to_owned();
        let duplicate_of = (!out.is_empty()
            && rng.random_bool(config.duplicate_email_share.clamp(0.0, 1.0)))
        .then(|| rng.random_range(0..out.len()));
        let email = match duplicate_of {
            Some(i) => {
                // Same person entered twice: same address, perhaps differently cased.
                let base = out[i].normalized_email();
                if rng.random_bool(0.5) {
                    mixed_case(&mut rng, &base)
                } else {
                    base
                }
            }
            None => {
                let domain = pick(&mut rng, &DOMAINS);
                let base = format!(
                    "{}.{}{}@{}",
                    ascii_fold(&first),
                    ascii_fold(&last),
                    index,
                    domain
                );
                if rng.random_bool(config.mixed_case_share.clamp(0.0, 1.0)) {
                    mixed_case(&mut rng, &base)
                } else {
                    base
                }
            }
        };
        let tags: Vec<String> = config
            .tags
            .iter()
            .filter(|_| rng.random_bool(config.tag_probability.clamp(0.0, 1.0)))
            .cloned()
            .collect();
        let mut roll = rng.random_range(0..total_weight);
        let mut stage = STAGES[0].0;
        for (s, w) in STAGES {
            if roll < w {
                stage = s;
                break;
            }
            roll -= w;
        }
        let phone = rng
            .random_bool(config.phone_share.clamp(0.0, 1.0))
            .then(|| phone(&mut rng));
        let job_title = rng
            .random_bool(0.5)
            .then(|| pick(&mut rng, &TITLES).to_owned());
        let company = rng
            .random_bool(0.5)
            .then(|| pick(&mut rng, &COMPANIES).to_owned());
        let in_community = match duplicate_of {
            Some(i) => out[i].in_community,
            None => rng.random_bool(config.community_share.clamp(0.0, 1.0)),
        };
        out.push(GeneratedContact {
            index,
            first_name: first,
            last_name: last,
            email,
            phone,
            tags,
            lifecycle_stage: stage.to_owned(),
            job_title,
            company,
            in_community,
            duplicate_of,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_realistic() {
        let cfg = DataGenConfig::default().with_contacts(2_000).with_seed(11);
        let a = generate(&cfg);
        assert_eq!(a, generate(&cfg));
        assert_ne!(a, generate(&cfg.clone().with_seed(12)));
        let dups = a.iter().filter(|c| c.duplicate_of.is_some()).count();
        assert!((10..=80).contains(&dups), "about 2% duplicates, got {dups}");
        for c in a.iter().filter_map(|c| c.duplicate_of.map(|i| (c, i))) {
            assert_eq!(c.0.normalized_email(), a[c.1].normalized_email());
        }
        let mixed = a.iter().filter(|c| c.email != c.normalized_email()).count();
        assert!(mixed > 100, "some mixed-case emails, got {mixed}");
        assert!(
            a.iter()
                .all(|c| c.email.contains('@') && c.email.is_ascii())
        );
        assert!(a.iter().any(|c| c.tags.iter().any(|t| t == "Pago Anual")));
        assert!(a.iter().any(|c| c.phone.is_none()) && a.iter().any(|c| c.phone.is_some()));
        assert!(
            a.iter()
                .any(|c| c.first_name.contains(|ch: char| !ch.is_ascii()))
        );
    }

    #[test]
    fn folds_accents_in_emails() {
        assert_eq!(ascii_fold("Conceição"), "conceicao");
        assert_eq!(ascii_fold("O'Brien"), "obrien");
        assert_eq!(ascii_fold("da Silva"), "dasilva");
    }
}
