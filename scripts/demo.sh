#!/usr/bin/env bash
# Run the zkwarden demo. Installs ZooKeeper and Java from Debian's packages if they are
# missing; the demo starts its own throwaway server unless ZK_CONNECT points at one.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-zookeeper.sh
exec cargo run --quiet --features testing --example quickstart
