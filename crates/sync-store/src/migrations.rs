//! The schema migrations, embedded in the library and run by sqlx's `Migrator`.
//!
//! sqlx's `migrate!` macro would embed them too, but it needs sqlx's proc-macro crate, which
//! compiles a second sqlx (with tokio and chrono) for the build host: a partner's first build
//! is much faster without it. The files are read at compile time with `include_str!`; a test
//! checks that this list and the `migrations/` folders agree. Checksums are sqlx's own
//! (`Migration::new`), so databases migrated by earlier versions validate unchanged.

use std::borrow::Cow;

use futures::future::BoxFuture;
use sqlx::error::BoxDynError;
use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

/// One migration file: its name (`0001_initial.sql`) and its SQL.
type File = (&'static str, &'static str);

macro_rules! embed {
    ($dialect:literal, $file:literal) => {
        (
            $file,
            include_str!(concat!("../migrations/", $dialect, "/", $file)),
        )
    };
}

/// The SQLite migrations, oldest first. Add a line here with each new file.
#[cfg(feature = "sqlite")]
pub(crate) const SQLITE: &[File] = &[
    embed!("sqlite", "0001_initial.sql"),
    embed!("sqlite", "0002_worker_incarnations.sql"),
    embed!("sqlite", "0003_retention.sql"),
    embed!("sqlite", "0004_status.sql"),
    embed!("sqlite", "0005_mapping_generation.sql"),
    embed!("sqlite", "0006_status_retention.sql"),
    embed!("sqlite", "0007_crm_credentials.sql"),
    embed!("sqlite", "0008_outbox_requeues.sql"),
];

/// The PostgreSQL migrations, oldest first. Add a line here with each new file.
#[cfg(feature = "postgres")]
pub(crate) const POSTGRES: &[File] = &[
    embed!("postgres", "0001_initial.sql"),
    embed!("postgres", "0002_worker_incarnations.sql"),
    embed!("postgres", "0003_retention.sql"),
    embed!("postgres", "0004_status.sql"),
    embed!("postgres", "0005_mapping_generation.sql"),
    embed!("postgres", "0006_status_retention.sql"),
    embed!("postgres", "0007_crm_credentials.sql"),
    embed!("postgres", "0008_outbox_requeues.sql"),
];

/// A list of embedded files as a sqlx migration source.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Embedded(pub(crate) &'static [File]);

impl Embedded {
    /// The migrator for these files.
    pub(crate) async fn migrator(self) -> Result<Migrator, sqlx::migrate::MigrateError> {
        Migrator::new(self).await
    }
}

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> BoxFuture<'s, Result<Vec<Migration>, BoxDynError>> {
        Box::pin(async move {
            let mut all = self
                .0
                .iter()
                .map(|(name, sql)| parse(name, sql))
                .collect::<Result<Vec<_>, _>>()?;
            all.sort_by_key(|m| m.version);
            Ok(all)
        })
    }
}

/// A migration from its file name, as sqlx names them: `<version>_<description>.sql`, the
/// description's underscores read as spaces, `-- no-transaction` on the first line to run
/// outside a transaction.
fn parse(name: &str, sql: &'static str) -> Result<Migration, BoxDynError> {
    let stem = name
        .strip_suffix(".sql")
        .ok_or_else(|| format!("migration {name}: not a .sql file"))?;
    let (version, description) = stem
        .split_once('_')
        .ok_or_else(|| format!("migration {name}: expected <version>_<description>.sql"))?;
    let version: i64 = version
        .parse()
        .map_err(|_| format!("migration {name}: the version is not a number"))?;
    Ok(Migration::new(
        version,
        Cow::Owned(description.replace('_', " ")),
        MigrationType::Simple,
        Cow::Borrowed(sql),
        sql.starts_with("-- no-transaction"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on_disk(dialect: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    }

    fn check(dialect: &str, files: &'static [File]) {
        let listed: Vec<String> = files.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(
            listed,
            on_disk(dialect),
            "migrations/{dialect} and the embedded list differ"
        );
        let migrations = futures::executor::block_on(Embedded(files).resolve()).unwrap();
        let versions: Vec<i64> = migrations.iter().map(|m| m.version).collect();
        assert!(
            versions.windows(2).all(|w| w[0] < w[1]),
            "versions repeat: {versions:?}"
        );
        // The checksum sqlx's `migrate!` recorded: SHA-384 of the file's text.
        let on_disk_sql = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("migrations")
                .join(dialect)
                .join(files[0].0),
        )
        .unwrap();
        let expected = Migration::new(
            0,
            Cow::Borrowed(""),
            MigrationType::Simple,
            Cow::Owned(on_disk_sql),
            false,
        );
        assert_eq!(migrations[0].checksum, expected.checksum);
        assert_eq!(migrations[0].description, "initial");
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn the_sqlite_list_matches_the_folder() {
        check("sqlite", SQLITE);
    }

    #[cfg(feature = "postgres")]
    #[test]
    fn the_postgres_list_matches_the_folder() {
        check("postgres", POSTGRES);
    }
}
