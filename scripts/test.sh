#!/usr/bin/env bash
# Run the whole zkwarden test suite: formatting, lints, docs, unit tests and integration
# tests against real ZooKeeper servers (installed from Debian's packages when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

# --with-kerberos: --all-features below includes `kerberos`, which links the system GSS-API.
scripts/install-zookeeper.sh --with-peers --with-kerberos

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings

echo "== cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps --locked --quiet

echo "== benches build"
cargo build --workspace --all-features --benches --locked --quiet

echo "== cargo test"
cargo test --workspace --exclude zkwarden-sim --all-features --locked

# The simulation seeds tokio's own generator too (`--cfg tokio_unstable`), so that every seed
# replays exactly (docs/simulation.md); its own target directory keeps the flag from
# invalidating the main build.
echo "== simulation (2,000 client seeds, 500 recipe seeds, differential test)"
RUSTFLAGS="--cfg tokio_unstable" CARGO_TARGET_DIR=target/sim cargo test -p zkwarden-sim --locked
