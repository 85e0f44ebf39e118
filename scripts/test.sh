#!/usr/bin/env bash
# The whole test suite, as the README says: brings up a throwaway PostgreSQL (installing
# Debian's package if missing), installs Debian's chromium and chromium-driver if missing
# (the status page's browser test), then runs `cargo test` for the workspace.
#
#   scripts/test.sh            # every test, PostgreSQL and the browser included (a skip is a failure)
#   scripts/test.sh -p sync-core   # extra arguments go to `cargo test`
set -euo pipefail
cd "$(dirname "$0")/.."

# The property tests run on a fixed seed here, so a landing is reproducible (set
# PROPTEST_RNG_SEED to explore others; a plain `cargo test` draws a random seed each run).
# A failing seed goes into the test's proptest-regressions file and is replayed first.
export PROPTEST_RNG_SEED="${PROPTEST_RNG_SEED:-2026120601}"

# PostgreSQL-backed tests must run here, not skip.
export SYNC_TEST_POSTGRES_REQUIRED=1

# The status page's browser test (headless Chromium over WebDriver) must run here, not skip.
export CATIVA_REQUIRE_BROWSER=1
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "test.sh: chromium or chromedriver not found and not root: install Debian's chromium and chromium-driver" >&2
        exit 1
    fi
    echo "test.sh: installing chromium and chromium-driver (apt-get)" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver >&2
fi
# sync-core without its optional `phone` feature (the workspace run below enables every
# feature): a configuration using phone_e164 must be refused there, not pass numbers through.
if [ $# -eq 0 ]; then
    cargo test -p sync-core --lib
fi
# The end-to-end tests run the examples as processes: build them first, with the tests' features.
cargo build --workspace --all-features --examples
exec scripts/with-postgres.sh cargo test --workspace --all-features "$@"
