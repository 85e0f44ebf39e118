//! Store throughput (issue 6): upsert 100,000 mappings in batches of 1,000 (`put_mappings`)
//! into an empty store and over existing rows, then look up 100,000 rows by email, by CRM
//! record id and by Cativa user id, on SQLite (a temporary file) and, when
//! `SYNC_TEST_POSTGRES_URL` is set (e.g. under `scripts/with-postgres.sh`), on PostgreSQL.
//!
//! Target: at least 20,000 mapping upserts/s batched on SQLite. Lookups run from 4
//! concurrent tasks, as a service handling concurrent webhooks would.
//!
//! ```text
//! cargo bench -p cativa-crm-sync-benches --bench store
//! scripts/with-postgres.sh cargo bench -p cativa-crm-sync-benches --bench store
//! ```

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use sync_core::ports::Store;
use sync_core::{
    BadgeGrant, CativaUserId, CommunityProfile, CrmRecordId, Email, Mapping, Provenance, TenantId,
};
use sync_store::{PostgresOptions, PostgresStore, SqliteStore};
use tokio::runtime::Runtime;

const N: usize = 100_000;
const BATCH: usize = 1_000;
const LOOKUP_TASKS: usize = 4;

fn rows(generation: i64) -> Vec<Mapping> {
    let t0 = Utc
        .timestamp_opt(1_750_000_000 + generation, 0)
        .single()
        .expect("time");
    (0..N)
        .map(|i| {
            let mut m = Mapping::new(
                Email::parse(&format!("member{i}@example.com")).expect("email"),
                t0,
            )
            .with_user(CativaUserId::new(format!("user-{i:08}")))
            .with_crm(CrmRecordId::hubspot((100_000_000 + i).to_string()))
            .with_badge(BadgeGrant::new("Premium", Provenance::sync("annual"), t0))
            .with_profile(
                CommunityProfile::new()
                    .with_field("firstName", format!("First{i}"))
                    .with_field("lastName", "Doe"),
            );
            if i % 4 == 0 {
                m = m.with_badge(BadgeGrant::new(
                    "Alumni",
                    Provenance::external("paywall"),
                    t0,
                ));
            }
            if generation > 0 && i % 2 == 0 {
                m.badges.clear();
            }
            m
        })
        .collect()
}

async fn upsert_all(store: &dyn Store, tenant: &TenantId, rows: &[Mapping]) {
    for chunk in rows.chunks(BATCH) {
        store
            .put_mappings(tenant, chunk)
            .await
            .expect("put_mappings");
    }
}

/// A fresh empty store of the backend.
type Factory = Box<dyn Fn(&Runtime) -> Arc<dyn Store>>;

fn bench_backend(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    fresh: Factory,
) {
    let tenant = TenantId::new("bench");
    let first = rows(0);
    let second = rows(1);

    group.throughput(Throughput::Elements(N as u64));
    group.bench_function(format!("{name}/upsert_new_100k_batched"), |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let store = fresh(rt);
                let start = Instant::now();
                rt.block_on(upsert_all(store.as_ref(), &tenant, &first));
                total += start.elapsed();
            }
            total
        })
    });

    let store = fresh(rt);
    rt.block_on(upsert_all(store.as_ref(), &tenant, &first));
    group.bench_function(format!("{name}/upsert_existing_100k_batched"), |b| {
        let mut flip = false;
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                flip = !flip;
                rt.block_on(upsert_all(
                    store.as_ref(),
                    &tenant,
                    if flip { &second } else { &first },
                ));
            }
            start.elapsed()
        })
    });
    assert_eq!(
        rt.block_on(store.count_mappings(&tenant)).expect("count"),
        N as u64
    );

    let rows = Arc::new(first);
    for key in [Key::Email, Key::CrmId, Key::User] {
        group.bench_function(format!("{name}/lookup_by_{}_100k", key.name()), |b| {
            b.iter(|| rt.block_on(lookup_all(&store, &tenant, &rows, key)))
        });
    }
}

#[derive(Clone, Copy)]
enum Key {
    Email,
    CrmId,
    User,
}

impl Key {
    fn name(self) -> &'static str {
        match self {
            Key::Email => "email",
            Key::CrmId => "crm_id",
            Key::User => "user",
        }
    }
}

/// Looks every row up once by `key`, from `LOOKUP_TASKS` concurrent tasks (as a service
/// handling concurrent webhooks would).
async fn lookup_all(store: &Arc<dyn Store>, tenant: &TenantId, rows: &Arc<Vec<Mapping>>, key: Key) {
    let chunk = N.div_ceil(LOOKUP_TASKS);
    let tasks: Vec<_> = (0..LOOKUP_TASKS)
        .map(|task| {
            let (store, tenant, rows) = (store.clone(), tenant.clone(), rows.clone());
            tokio::spawn(async move {
                for m in rows.iter().skip(task * chunk).take(chunk) {
                    let found = match key {
                        Key::Email => store.mapping_by_email(&tenant, &m.email).await,
                        Key::CrmId => {
                            store
                                .mapping_by_crm_id(&tenant, m.crm_id.as_ref().expect("crm id"))
                                .await
                        }
                        Key::User => {
                            store
                                .mapping_by_user(&tenant, m.cativa_user_id.as_ref().expect("user"))
                                .await
                        }
                    };
                    black_box(found.expect("lookup").expect("row"));
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("lookup task");
    }
}

fn store_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("store");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(5));

    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().to_path_buf();
    let files = AtomicU32::new(0);
    bench_backend(
        &mut group,
        &rt,
        "sqlite",
        Box::new(move |rt| {
            let path = root.join(format!(
                "bench-{}.db",
                files.fetch_add(1, Ordering::Relaxed)
            ));
            Arc::new(rt.block_on(SqliteStore::open(path)).expect("open SQLite"))
        }),
    );

    match std::env::var("SYNC_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => {
            let schemas = AtomicU32::new(0);
            bench_backend(
                &mut group,
                &rt,
                "postgres",
                Box::new(move |rt| {
                    let schema = format!(
                        "bench_{}_{}",
                        std::process::id(),
                        schemas.fetch_add(1, Ordering::Relaxed)
                    );
                    let options = PostgresOptions::new(url.clone()).schema(schema);
                    Arc::new(
                        rt.block_on(PostgresStore::connect(options))
                            .expect("connect PostgreSQL"),
                    )
                }),
            );
        }
        _ => println!("skipped: SYNC_TEST_POSTGRES_URL not set (PostgreSQL store benches)"),
    }
    group.finish();
}

criterion_group!(benches, store_benches);
criterion_main!(benches);
