//! Quickstart: a full sync HubSpot -> Cativa badges, on in-process sandboxes.
//!
//! ```text
//! cargo run --example quickstart
//! ```
//!
//! Starts fake HubSpot and Cativa servers on 127.0.0.1, seeds 1,000 generated people (about
//! 600 of them community users), records the community users from signed `user_created`
//! webhooks, prints the plan of a full sync (contacts tagged `Pago Anual` get the Premium
//! badge), runs it with a SQLite store in a temporary directory, and prints the run report.
//! No account, no network, nothing left behind.
//!
//! The code is in `examples/src/quickstart.rs` (`run_quickstart`), so the end-to-end tests
//! run exactly what this prints.

use cativa_crm_sync_examples::quickstart::{QuickstartOptions, run_quickstart};
use cativa_crm_sync_examples::settings::Settings;
use cativa_crm_sync_examples::{ExampleError, init_tracing};

#[tokio::main]
async fn main() -> Result<(), ExampleError> {
    init_tracing();
    let settings = Settings::from_env()?;
    let mut out = std::io::stdout();
    run_quickstart(&settings, &QuickstartOptions::default(), &mut out).await?;
    Ok(())
}
