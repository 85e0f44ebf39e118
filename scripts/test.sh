#!/usr/bin/env bash
# The whole test suite, as the README says: brings up a throwaway PostgreSQL (installing
# Debian's package if missing), then runs `cargo test` for the workspace against it.
#
#   scripts/test.sh            # every test, PostgreSQL included (a skip is a failure)
#   scripts/test.sh -p sync-core   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# PostgreSQL-backed tests must run here, not skip.
export SYNC_TEST_POSTGRES_REQUIRED=1
exec scripts/with-postgres.sh cargo test --workspace --all-features "$@"
