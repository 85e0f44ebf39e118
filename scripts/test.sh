#!/usr/bin/env bash
# The whole test suite, as the README says: brings up a throwaway PostgreSQL (installing
# Debian's package if missing), then runs `cargo test` for the workspace against it.
#
#   scripts/test.sh            # every test, PostgreSQL included (a skip is a failure)
#   scripts/test.sh -p sync-core   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# The property tests run on a fixed seed here, so a landing is reproducible (set
# PROPTEST_RNG_SEED to explore others; a plain `cargo test` draws a random seed each run).
# A failing seed goes into the test's proptest-regressions file and is replayed first.
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-2026120601}"

# PostgreSQL-backed tests must run here, not skip.
export SYNC_TEST_POSTGRES_REQUIRED=1
# The end-to-end tests run the examples as processes: build them first, with the tests' features.
cargo build --workspace --all-features --examples
exec scripts/with-postgres.sh cargo test --workspace --all-features "$@"
