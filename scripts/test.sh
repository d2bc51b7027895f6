#!/usr/bin/env bash
# The whole test suite: installs what the tests need, then checks formatting,
# lints and runs every test. This is the README's test command and CI's.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked --no-fail-fast
