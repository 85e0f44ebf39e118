//! Decoding a 2,000-record Salesforce query page (the largest batch `query` returns) into
//! `CrmContact`s: JSON parse, then field, tag and date decoding per record. Two ways: a
//! `serde_json::Map` per record (`decode_contact`, the old path, kept for comparison),
//! records borrowed from the body (`RawQueryPage::records` and `decode_record`), and the
//! same records streamed through one buffer (`RawQueryPage::for_each_record`, what the
//! source reads with); plus the JSON parse alone for the first two.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crm_salesforce::models::{QueryPage, RawQueryPage, Record};
use crm_salesforce::{ContactSchema, TagSource, decode_contact, decode_record};
use serde_json::json;

const RECORDS: usize = 2_000;
const STAGES: [&str; 3] = ["lead", "customer", "evangelist"];

fn page() -> Vec<u8> {
    let records: Vec<_> = (0..RECORDS)
        .map(|i| {
            json!({
                "attributes": {"type": "Contact", "url": format!("/services/data/v66.0/sobjects/Contact/003A{i:014}")},
                "Id": format!("003A{i:014}"),
                "SystemModstamp": format!("2026-11-{:02}T{:02}:{:02}:{:02}.000+0000", 1 + i % 28, i % 24, i % 60, (i * 7) % 60),
                "IsDeleted": i % 50 == 0,
                "MasterRecordId": if i % 100 == 0 { json!("003A00000000000001") } else { json!(null) },
                "Email": format!("Member.{i}@Example.com"),
                "Community_Email__c": if i % 3 == 0 { json!(format!("alt{i}@example.org")) } else { json!(null) },
                "Cativa_Member_Id__c": format!("9f8b6c1e-0000-4000-8000-{i:012}"),
                "FirstName": "Mary Jane",
                "LastName": format!("Watson {i}"),
                "Title": "Head of Community",
                "Phone": "+55 11 91234-5678",
                "Stage__c": STAGES[i % 3],
                "Community_Tags__c": if i % 2 == 0 { "Pago Anual;VIP;Early Adopter" } else { "Pago Mensual" },
                "Annual__c": i % 2 == 0
            })
        })
        .collect();
    serde_json::to_vec(&json!({"totalSize": RECORDS, "done": false,
        "nextRecordsUrl": "/services/data/v66.0/query/01gRO0000016PIAYA2-2000", "records": records}))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let body = page();
    let schema = ContactSchema::contact()
        .with_alternate_email_field("Community_Email__c")
        .with_lifecycle_field("Stage__c")
        .with_external_id_field("Cativa_Member_Id__c")
        .with_property("FirstName")
        .with_property("LastName")
        .with_property("Title")
        .with_property("Phone")
        .with_tags(TagSource::MultiSelect {
            field: "Community_Tags__c".into(),
        })
        .with_tags(TagSource::Checkbox {
            field: "Annual__c".into(),
            tag: "Annual".into(),
        });
    let mut g = c.benchmark_group("salesforce_decode");
    g.throughput(Throughput::Elements(RECORDS as u64));
    g.bench_function("query_page_2000_records_to_crm_contacts", |b| {
        b.iter(|| {
            let page: QueryPage<Record> =
                serde_json::from_slice(std::hint::black_box(&body)).unwrap();
            let contacts: Vec<_> = page
                .records
                .iter()
                .map(|r| decode_contact(&schema, r).unwrap())
                .collect();
            assert_eq!(contacts.len(), RECORDS);
            contacts
        })
    });
    let raw = RawQueryPage::new(body.clone().into());
    g.bench_function("query_page_2000_records_borrowed_to_crm_contacts", |b| {
        b.iter(|| {
            let page = std::hint::black_box(&raw).records().unwrap();
            let contacts: Vec<_> = page
                .records
                .iter()
                .map(|r| decode_record(&schema, r).unwrap())
                .collect();
            assert_eq!(contacts.len(), RECORDS);
            contacts
        })
    });
    g.bench_function("query_page_2000_records_streamed_to_crm_contacts", |b| {
        b.iter(|| {
            let mut contacts = Vec::with_capacity(RECORDS);
            std::hint::black_box(&raw)
                .for_each_record(|r| {
                    contacts.push(decode_record(&schema, r)?);
                    Ok(())
                })
                .unwrap();
            assert_eq!(contacts.len(), RECORDS);
            contacts
        })
    });
    g.bench_function("parse_only_maps", |b| {
        b.iter(|| {
            let page: QueryPage<Record> =
                serde_json::from_slice(std::hint::black_box(&body)).unwrap();
            page.records.len()
        })
    });
    g.bench_function("parse_only_borrowed", |b| {
        b.iter(|| std::hint::black_box(&raw).records().unwrap().records.len())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
