//! Plans a full reconcile of 1,000,000 contacts (5 properties, 3 tags, 2 badge rules, 10% of
//! them changed) against a matching 1,000,000-row store view.
//!
//! Targets (issue 2): at least 2,000,000 contacts/s on one core, at most 200 bytes of extra
//! heap per contact. The heap figure is printed once before the timed runs.

use std::hint::black_box;
use std::time::Instant;

use cativa_crm_sync_benches::{CountingAlloc, thread_cpu_time};
use chrono::{TimeZone, Utc};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sync_core::config::{BadgeRule, Condition, SyncConfig};
use sync_core::planner::{PlanInput, StateView, plan};
use sync_core::{
    BadgeGrant, CrmContact, CrmRecordId, Email, Mapping, PlanMode, Provenance, TenantId,
};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc::new();

const N: usize = 1_000_000;

fn world() -> (Vec<CrmContact>, StateView, sync_core::ValidatedConfig) {
    let mut raw = SyncConfig::default();
    raw.badge_rules = vec![
        BadgeRule::new("annual", "Premium", Condition::Tag("Pago Anual".into())),
        BadgeRule::new(
            "customers",
            "Customer",
            Condition::LifecycleStageIn(vec!["customer".into()]),
        ),
    ];
    let config = raw.validate().expect("valid config");
    let t0 = Utc.timestamp_opt(1_700_000_000, 0).single().expect("time");
    let mut contacts = Vec::with_capacity(N);
    let mut rows = Vec::with_capacity(N);
    for i in 0..N {
        let email = Email::parse(&format!("user{i}@example.com")).expect("email");
        let annual = i % 2 == 0;
        let customer = i % 3 == 0;
        let id = CrmRecordId::hubspot((100_000_000 + i).to_string());
        let mut c = CrmContact::new(id.clone(), Some(email.clone()), t0)
            .with_property("firstname", format!("First{i}"))
            .with_property("lastname", format!("Last{i}"))
            .with_property("company", "Acme")
            .with_property("phone", "+14155552671")
            .with_property("city", "Lisbon")
            .with_tag("newsletter")
            .with_tag("webinar");
        c = c.with_tag(if annual { "Pago Anual" } else { "Pago Mensal" });
        if customer {
            c = c.with_lifecycle_stage("customer");
        } else {
            c = c.with_lifecycle_stage("lead");
        }
        let mut row = Mapping::new(email, t0)
            .with_user(format!("u-{i}").into())
            .with_crm(id);
        if annual {
            row = row.with_badge(BadgeGrant::new("Premium", Provenance::sync("annual"), t0));
        }
        if customer {
            row = row.with_badge(BadgeGrant::new(
                "Customer",
                Provenance::sync("customers"),
                t0,
            ));
        }
        // 10% changed since the last sync: half lost the tag, half gained it.
        if i % 10 == 0 {
            c.tags.remove("Pago Anual");
            c.tags.remove("Pago Mensal");
            c.tags
                .insert(if annual { "Pago Mensal" } else { "Pago Anual" }.to_owned());
            c.updated_at = t0 + chrono::Duration::seconds(60);
        }
        contacts.push(c);
        rows.push(row);
    }
    (contacts, StateView::new(rows), config)
}

fn bench(c: &mut Criterion) {
    let (contacts, view, config) = world();
    let tenant = TenantId::new("bench");
    let now = Utc.timestamp_opt(1_800_000_000, 0).single().expect("time");
    let input = PlanInput::new(&tenant, &config, &view, now);
    let mode = PlanMode::FullReconcile {
        scan_complete: true,
    };

    let baseline = ALLOC.reset_peak();
    let cpu_before = thread_cpu_time();
    let started = Instant::now();
    let p = plan(&input, &contacts, mode);
    let elapsed = started.elapsed();
    let cpu = cpu_before.and_then(|b| thread_cpu_time().map(|a| a - b));
    let extra = ALLOC.peak().saturating_sub(baseline);
    assert_eq!(
        p.actions.len(),
        N / 10,
        "every changed contact plans exactly one badge action"
    );
    println!(
        "planner: {} contacts in {:.3} s = {:.0} contacts/s (single run); peak extra heap {} bytes = {:.1} bytes/contact",
        N,
        elapsed.as_secs_f64(),
        N as f64 / elapsed.as_secs_f64(),
        extra,
        extra as f64 / N as f64
    );
    if let Some(cpu) = cpu {
        println!(
            "planner: cpu time {:.3} s = {:.0} contacts/s per core",
            cpu.as_secs_f64(),
            N as f64 / cpu.as_secs_f64().max(0.001)
        );
    }
    drop(p);

    let mut group = c.benchmark_group("planner");
    group.sample_size(10);
    group.throughput(Throughput::Elements(N as u64));
    group.bench_function("full_reconcile_1m_contacts", |b| {
        b.iter_with_large_drop(|| plan(&input, black_box(&contacts), mode))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
