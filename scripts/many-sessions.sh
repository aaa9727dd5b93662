#!/usr/bin/env bash
# Many idle sessions against one ZooKeeper server: client memory per session, recovery after a
# server restart and the reconnect storm, zkwarden beside the zookeeper-client crate
# (benches/many_sessions.rs has the details).
#
#   scripts/many-sessions.sh                          10,000 sessions per client, T = 30 s
#   SESSIONS=2000 SESSION_TIMEOUT_SECS=6 CLIENTS=zkwarden scripts/many-sessions.sh
#
# The server and each client process hold one file descriptor per session: the soft limit is
# raised to the hard one here (the bench checks it is enough). The table goes to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

export SESSIONS=${SESSIONS:-10000}
export SESSION_TIMEOUT_SECS=${SESSION_TIMEOUT_SECS:-30}
export CLIENTS=${CLIENTS:-"zkwarden kezhuw"}
ulimit -n "$(ulimit -Hn)"
scripts/install-zookeeper.sh >&2
cargo bench --quiet --features testing --bench many_sessions
