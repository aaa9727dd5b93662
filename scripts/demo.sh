#!/usr/bin/env bash
# The zkwarden demo, in under a minute: a service holding a warden, a lock, a config watch and
# a tree cache on a ZooKeeper server of its own, through two real faults (its session expired
# on the server; its connection blackholed by a fault proxy). It prints every state change,
# the lock reported lost and re-taken with a higher fencing token, the cache resynced and the
# config value kept. Source: cli/examples/demo.rs.
#
# Installs ZooKeeper and Java from Debian's packages if they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-zookeeper.sh
exec cargo run --quiet -p zkwarden-cli --example demo
