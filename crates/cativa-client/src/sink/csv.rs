//! [`CsvBadgeSink`]: the bulk-import spreadsheet, the documented workaround while the badge
//! endpoints are not public.

use std::path::PathBuf;

use async_trait::async_trait;
use sync_core::ports::{BadgeChange, BadgeOp, BadgeSink, ItemResult};
use sync_core::{Error, TenantId};

use super::keyed_csv::{KeyedCsv, file_part};

/// The header of the bulk-import file.
pub const BADGE_CSV_HEADER: &[&str] = &["email", "user_id", "badge", "action", "idempotency_key"];

/// Writes badge changes to `badges-<tenant>.csv` in a directory, the spreadsheet the
/// Cativa team imports through the Console (coordinate at dev@cativa.digital).
///
/// Columns: `email`, `user_id`, `badge`, `action` (`assign` or `remove`), and
/// `idempotency_key` last: a change whose key is already in the file is not written again,
/// also after a restart, so re-running a sync never duplicates rows. Files are appended
/// to, never rewritten; hand over a file and move it away to start a new one.
#[derive(Debug, Clone)]
pub struct CsvBadgeSink {
    dir: PathBuf,
    files: KeyedCsv,
}

impl CsvBadgeSink {
    /// Writes into `dir` (which must exist).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            files: KeyedCsv::default(),
        }
    }

    /// The file for `tenant`.
    pub fn path_for(&self, tenant: &TenantId) -> PathBuf {
        self.dir
            .join(format!("badges-{}.csv", file_part(tenant.as_str())))
    }
}

#[async_trait]
impl BadgeSink for CsvBadgeSink {
    fn max_batch(&self) -> usize {
        1000
    }

    async fn apply_badges(
        &self,
        tenant: &TenantId,
        changes: &[BadgeChange],
    ) -> Result<Vec<ItemResult<()>>, Error> {
        let rows = changes
            .iter()
            .map(|c| {
                vec![
                    c.email.as_str().to_owned(),
                    c.user.as_str().to_owned(),
                    c.badge.as_str().to_owned(),
                    match c.op {
                        BadgeOp::Assign => "assign",
                        BadgeOp::Remove => "remove",
                    }
                    .to_owned(),
                    c.key.as_str().to_owned(),
                ]
            })
            .collect();
        self.files
            .append(self.path_for(tenant), BADGE_CSV_HEADER, rows)
            .await?;
        Ok(changes.iter().map(|_| Ok(())).collect())
    }
}
