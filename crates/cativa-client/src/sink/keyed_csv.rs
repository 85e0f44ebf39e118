//! Append-only CSV files whose last column is an idempotency key: a row whose key is
//! already in the file is not written again (also across restarts: the keys are read back
//! from the file the first time it is touched).

use std::collections::{HashMap, HashSet};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::error::Error;

#[derive(Debug, Clone, Default)]
pub(crate) struct KeyedCsv {
    // File -> keys already in it. One lock for all files: writes are small and rare.
    seen: Arc<Mutex<HashMap<PathBuf, HashSet<String>>>>,
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn read_keys(path: &Path) -> Result<HashSet<String>, Error> {
    let mut keys = HashSet::new();
    if !path.exists() {
        return Ok(keys);
    }
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_path(path)
        .map_err(|e| file_error(path, e))?;
    for rec in rdr.records() {
        let rec = rec.map_err(|e| file_error(path, e))?;
        if let Some(k) = rec.iter().next_back() {
            keys.insert(k.to_owned());
        }
    }
    Ok(keys)
}

impl KeyedCsv {
    /// Appends `rows` (each ending with its key) to `path`, writing `header` first when the
    /// file is new or empty. Returns how many rows were written (duplicates skipped).
    pub(crate) async fn append(
        &self,
        path: PathBuf,
        header: &'static [&'static str],
        rows: Vec<Vec<String>>,
    ) -> Result<usize, Error> {
        let seen = Arc::clone(&self.seen);
        let task_path = path.clone();
        tokio::task::spawn_blocking(move || {
            let path = task_path;
            let mut seen = seen
                .lock()
                .map_err(|_| file_error(&path, "a previous writer panicked"))?;
            if !seen.contains_key(&path) {
                let keys = read_keys(&path)?;
                seen.insert(path.clone(), keys);
            }
            let keys = seen.entry(path.clone()).or_default();
            let file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|e| file_error(&path, e))?;
            let empty = file.metadata().map_err(|e| file_error(&path, e))?.len() == 0;
            let mut w = csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(file);
            if empty {
                w.write_record(header).map_err(|e| file_error(&path, e))?;
            }
            let mut written = 0;
            for row in rows {
                let Some(key) = row.last() else { continue };
                if keys.contains(key) {
                    continue;
                }
                w.write_record(&row).map_err(|e| file_error(&path, e))?;
                keys.insert(key.clone());
                written += 1;
            }
            w.flush().map_err(|e| file_error(&path, e))?;
            let mut file = w.into_inner().map_err(|e| file_error(&path, e.error()))?;
            file.flush().map_err(|e| file_error(&path, e))?;
            file.sync_data().map_err(|e| file_error(&path, e))?;
            Ok(written)
        })
        .await
        .map_err(|e| file_error(&path, e))?
    }
}

/// A file name part from a tenant id: letters, digits, `-` and `_` kept, the rest `_`,
/// plus a short hash of the original when anything was replaced (so `a.b` and `a_b` never
/// share a file).
pub(crate) fn file_part(s: &str) -> String {
    use sha2::{Digest, Sha256};
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == s && !s.is_empty() {
        return clean;
    }
    let digest = Sha256::digest(s.as_bytes());
    format!("{clean}-{}", hex::encode(&digest[..4]))
}

#[cfg(test)]
mod tests {
    use super::file_part;

    #[test]
    fn file_parts_are_safe_and_distinct() {
        assert_eq!(file_part("tenant-1"), "tenant-1");
        let a = file_part("a.b");
        let b = file_part("a_b");
        assert_ne!(a, b);
        assert!(a.starts_with("a_b-"));
        assert!(!file_part("../etc/passwd").contains('/'));
        assert!(!file_part("").is_empty());
    }
}
