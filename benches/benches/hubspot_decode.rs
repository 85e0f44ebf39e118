//! Decoding a page of 100 HubSpot contacts with 20 properties each (the list endpoint's
//! largest page) into `CrmContact`s: JSON parse, email normalization, tags from a
//! multiple-checkboxes property and a predicate, lifecycle stage, modification time.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crm_hubspot::{ContactMapping, TagMatch, TagSource};
use serde_json::json;

const CONTACTS: usize = 100;

fn page() -> Vec<u8> {
    let results: Vec<_> = (0..CONTACTS)
        .map(|i| {
            json!({
                "id": format!("5138817{i:05}"),
                "properties": {
                    "email": format!("Member.{i}@Example.com"),
                    "firstname": "Mary Jane",
                    "lastname": format!("Watson {i}"),
                    "createdate": "2025-12-22T18:16:33.376Z",
                    "lastmodifieddate": format!("2026-11-{:02}T{:02}:{:02}:{:02}.376Z", 1 + i % 28, i % 24, i % 60, (i * 7) % 60),
                    "hs_object_id": format!("5138817{i:05}"),
                    "lifecyclestage": (["lead", "customer", "evangelist"][i % 3]),
                    "cativa_tags": if i % 2 == 0 { "Pago Anual;VIP;Early Adopter" } else { "Pago Mensual" },
                    "plan": if i % 2 == 0 { "annual" } else { "monthly" },
                    "community_email": if i % 3 == 0 { json!(format!("alt{i}@example.org")) } else { json!(null) },
                    "phone": "+55 11 91234-5678",
                    "jobtitle": "Head of Community",
                    "company": "Cativa",
                    "city": "São Paulo",
                    "country": "Brazil",
                    "website": "https://cativa.digital",
                    "hs_language": "pt-br",
                    "cativa_user_id": format!("9f8b6c1e-0000-4000-8000-{i:012}"),
                    "cativa_member_id": format!("m-{i}"),
                    "hs_merged_object_ids": null
                },
                "createdAt": "2025-12-22T18:16:33.376Z",
                "updatedAt": "2026-11-01T10:00:00.000Z",
                "archived": false,
                "url": format!("https://app.hubspot.com/contacts/1/record/0-1/5138817{i:05}")
            })
        })
        .collect();
    serde_json::to_vec(
        &json!({"results": results, "paging": {"next": {"after": "513881800100",
        "link": "https://api.hubapi.com/crm/v3/objects/contacts?after=513881800100"}}}),
    )
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let body = page();
    let mapping = ContactMapping::default()
        .with_alternate_email("community_email")
        .with_tags(TagSource::CheckboxProperty("cativa_tags".into()))
        .with_tags(TagSource::Predicate {
            tag: "Annual".into(),
            property: "plan".into(),
            matches: TagMatch::Equals("annual".into()),
        });
    let mut g = c.benchmark_group("hubspot_decode");
    g.throughput(Throughput::Elements(CONTACTS as u64));
    g.bench_function(
        "list_page_100_contacts_20_properties_to_crm_contacts",
        |b| {
            b.iter(|| {
                let (contacts, next) = mapping
                    .decode_page(std::hint::black_box(&body), None)
                    .unwrap();
                assert_eq!(contacts.len(), CONTACTS);
                std::hint::black_box((contacts, next))
            })
        },
    );
    // The JSON parse alone, to see what the conversion adds.
    g.bench_function("list_page_100_contacts_parse_only", |b| {
        b.iter(|| {
            let page: crm_hubspot::model::Page<crm_hubspot::model::HubSpotObject> =
                serde_json::from_slice(std::hint::black_box(&body)).unwrap();
            std::hint::black_box(page)
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
