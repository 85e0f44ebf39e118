#!/usr/bin/env bash
# Builds the README's embedding example as a partner would: a fresh crate outside this
# workspace whose only dependency from here is the `cativa-crm-sync` facade (by path), with
# the workspace's Cargo.lock and target directory so nothing is fetched or rebuilt twice.
#
#   scripts/check-partner-crate.sh
#
# The example is the Rust block that follows `<!-- embedding-example -->` in README.md.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/partner/src"
awk '/<!-- embedding-example -->/ {found=1; next}
     found && /^```rust/ {inside=1; next}
     inside && /^```/ {exit}
     inside {print}' "$repo/README.md" >"$work/partner/src/main.rs"
if [ ! -s "$work/partner/src/main.rs" ]; then
    echo "README.md has no Rust block after <!-- embedding-example -->" >&2
    exit 1
fi

cat >"$work/partner/Cargo.toml" <<TOML
[package]
name = "partner-service"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
cativa-crm-sync = { path = "$repo/crates/cativa-crm-sync", features = ["hubspot", "sqlite"] }
tokio = { version = "1", features = ["rt-multi-thread", "macros"] }

[workspace]
TOML
cp "$repo/Cargo.lock" "$work/partner/Cargo.lock"

cd "$work/partner"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}" cargo build --quiet
echo "partner crate built: README embedding example against cativa-crm-sync only"
