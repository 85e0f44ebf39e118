#!/usr/bin/env bash
# Builds each example as a partner who copied it would: every `examples/*.rs` (with its
# `examples/<name>/` folder, if any) becomes `src/main.rs` of a fresh crate outside this
# workspace, whose only dependency from here is the `cativa-crm-sync` facade (by path), plus
# crates from crates.io. It uses the workspace's Cargo.lock and target directory, so nothing
# is fetched or rebuilt twice.
#
#   scripts/check-examples-standalone.sh            # every example
#   scripts/check-examples-standalone.sh quickstart # one
#
# The dependency list mirrors examples/Cargo.toml's [dependencies]: keep them in step.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ "$#" -gt 0 ]; then
    names=("$@")
else
    names=()
    for f in "$repo"/examples/*.rs; do names+=("$(basename "$f" .rs)"); done
fi

for name in "${names[@]}"; do
    crate="$work/$name"
    mkdir -p "$crate/src"
    cp "$repo/examples/$name.rs" "$crate/src/main.rs"
    if [ -d "$repo/examples/$name" ]; then
        cp -r "$repo/examples/$name" "$crate/src/$name"
    fi
    lines=$(wc -l <"$repo/examples/$name.rs")
    if [ "$lines" -gt 120 ]; then
        echo "examples/$name.rs has $lines lines; an example stays within 120" >&2
        exit 1
    fi
    cat >"$crate/Cargo.toml" <<TOML
[package]
name = "copied-$name"
version = "0.1.0"
edition = "2024"
publish = false

[dependencies]
cativa-crm-sync = { path = "$repo/crates/cativa-crm-sync", features = ["hubspot", "salesforce", "sqlite", "postgres", "sandbox", "service", "progress"] }
async-trait = "0.1"
axum = { version = "0.8", default-features = false, features = ["http1", "json", "query", "tokio"] }
clap = { version = "4", features = ["derive", "env"] }
reqwest = { version = "0.13", default-features = false, features = ["rustls", "json", "query"] }
serde = { version = "1", features = ["derive"] }
serde_json = "1"
tempfile = "3"
tokio = { version = "1", features = ["rt-multi-thread", "macros", "net", "signal", "time"] }
tracing-subscriber = { version = "0.3", features = ["env-filter", "fmt"] }

[workspace]
TOML
    cp "$repo/Cargo.lock" "$crate/Cargo.lock"
    (cd "$crate" && CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}" cargo build --quiet)
    echo "examples/$name.rs ($lines lines) builds alone against the published crates"
done
