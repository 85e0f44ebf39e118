//! The quickstart, as a function: the `quickstart` example prints it, the end-to-end tests
//! run it and check what it claims.

use std::io::Write;
use std::sync::Arc;

use cativa_client::CativaClient;
use cativa_client::sink::{ApiBadgeSink, InviteOutput, SignupInviter};
use crm_hubspot::{HubSpotSink, SinkConfig};
use secrecy::SecretString;
use sync_core::{Plan, PlanMode, RunReport, TenantId};
use sync_engine::{EngineOptions, SyncEngine};
use sync_sandbox::{SandboxConfig, SandboxServer};

use crate::error::ExampleError;
use crate::output::truncated_plan;
use crate::seed::{DeliveryTally, deliver_user_created, seed_people};
use crate::settings::{SANDBOX_PREMIUM_BADGE, Settings};
use crate::setup::{StoreFallback, hubspot_client, hubspot_source, open_store};

/// Quickstart settings.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QuickstartOptions {
    /// People generated (default 1,000).
    pub contacts: usize,
    /// Plan lines printed before the count of the rest (default 25).
    pub plan_lines: usize,
}

impl Default for QuickstartOptions {
    fn default() -> Self {
        Self {
            contacts: 1_000,
            plan_lines: 25,
        }
    }
}

/// What the quickstart did.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct QuickstartOutcome {
    /// HubSpot contacts seeded.
    pub contacts: usize,
    /// Cativa users recorded from `user_created` webhooks.
    pub users: DeliveryTally,
    /// The dry-run plan of the full sync.
    pub plan: Plan,
    /// The report of the full sync.
    pub report: RunReport,
    /// Users holding the Premium badge in the Cativa sandbox afterwards.
    pub premium_holders: usize,
}

/// Runs the quickstart, writing its output to `out`: starts the sandboxes, seeds people,
/// records the community users from signed `user_created` webhooks, prints the plan of a
/// full sync HubSpot -> Cativa badges (tag `Pago Anual` -> Premium), runs it with a SQLite
/// store in a temporary directory and prints the report.
///
/// # Errors
/// The sandbox, the store or the engine failed, or `out` could not be written.
pub async fn run_quickstart(
    settings: &Settings,
    options: &QuickstartOptions,
    out: &mut (dyn Write + Send),
) -> Result<QuickstartOutcome, ExampleError> {
    writeln!(
        out,
        "Sandbox mode: the quickstart always runs on in-process HubSpot and Cativa sandboxes on 127.0.0.1 (it seeds fake people; hubspot_badge_sync uses real accounts from the environment)."
    )?;
    let sandbox = SandboxServer::start(SandboxConfig::default()).await?;
    let people = seed_people(&sandbox, options.contacts)?;
    writeln!(
        out,
        "Seeded {} HubSpot contacts and {} Cativa users (HubSpot {}, Cativa {}).",
        people.len(),
        sandbox.cativa().users().len(),
        sandbox.hubspot().base_url(),
        sandbox.cativa().base_url(),
    )?;
    let store = open_store(settings, StoreFallback::TempDir).await?;
    writeln!(out, "Store: {}.", store.description)?;

    let tenant = TenantId::new("quickstart");
    let config = settings.sync_config()?;

    // The store learns community users the way production does: from Cativa's signed
    // user_created webhooks. This engine has no CRM source, so it only records them; the
    // full reconcile below links every contact by email.
    let community = SyncEngine::builder(config.clone(), store.store.clone()).build();
    let secret: SecretString = sandbox.cativa().webhook_secret().clone();
    let users = deliver_user_created(&sandbox, &community, &tenant, &secret, 8).await?;
    writeln!(
        out,
        "Recorded {} community users from {} signed user_created webhooks (verified with the webhook secret, deduplicated by execution id).",
        users.accepted,
        users.accepted + users.duplicate
    )?;

    let hubspot = hubspot_client(
        sandbox.hubspot().base_url(),
        SecretString::from(sync_sandbox::hubspot::DEFAULT_ACCESS_TOKEN),
    )?;
    let cativa = CativaClient::builder(SecretString::from(sync_sandbox::cativa::DEFAULT_API_KEY))
        .base_url(sandbox.cativa().base_url())
        .build()?;
    // Invites (missing_user = "invite") are kept in memory here; a service hands them to the
    // CRM or a mailing (see `SignupInviter`).
    let signup = url::Url::parse("https://community.example/signup")
        .map_err(|e| ExampleError::Setup(format!("sign-up link: {e}")))?;
    let inviter = SignupInviter::new(InviteOutput::Memory).with_signup_link(tenant.clone(), signup);
    let engine = SyncEngine::builder(config, store.store.clone())
        .source(Arc::new(hubspot_source(
            hubspot.clone(),
            &settings.hubspot_tags_property,
        )))
        .crm_sink(Arc::new(HubSpotSink::new(hubspot, SinkConfig::default())))
        .badge_sink(Arc::new(ApiBadgeSink::new(tenant.clone(), cativa)))
        .inviter(Arc::new(inviter))
        .options(EngineOptions::default())
        .build();

    let plan = engine
        .plan(
            &tenant,
            PlanMode::FullReconcile {
                scan_complete: false,
            },
        )
        .await?;
    writeln!(out, "\nPlan (dry run, nothing written):")?;
    writeln!(out, "{}", truncated_plan(&plan, options.plan_lines))?;

    let report = engine.run_full_reconcile(&tenant).await?;
    writeln!(out, "\nFull sync HubSpot -> Cativa badges:")?;
    write!(out, "{report}")?;

    let premium_holders = sandbox
        .cativa()
        .badges_by_user()
        .values()
        .filter(|grants| grants.iter().any(|g| g.badge_id == SANDBOX_PREMIUM_BADGE))
        .count();
    writeln!(
        out,
        "\nCativa now shows {premium_holders} users holding Premium (badge {SANDBOX_PREMIUM_BADGE})."
    )?;
    sandbox.shutdown().await;
    Ok(QuickstartOutcome {
        contacts: people.len(),
        users,
        plan,
        report,
        premium_holders,
    })
}
