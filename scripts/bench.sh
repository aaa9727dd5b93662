#!/usr/bin/env bash
# Benchmark zkwarden against the other ZooKeeper clients on a local ZooKeeper server: the
# zookeeper-client crate ("peer"), the C client ("c", libzookeeper_mt) and Curator ("curator").
#
#   scripts/bench.sh                         full size, 3 passes (about 15 minutes)
#   BENCH_SCALE=0.2 PASSES=3 scripts/bench.sh
#   CLIENTS="zkwarden peer" scripts/bench.sh the Rust clients only
#
# Builds examples/zkbench and examples/zkserver in release mode, the C peer
# (examples/zkbench/peers/zkbench.c) with gcc and the Curator peer
# (examples/zkbench/peers/ZkBench.java) with javac against the Debian jars (both installed by
# scripts/install-zookeeper.sh --with-peers), starts one ZooKeeper server, warms it up, then
# runs every workload with every client (the Rust ones on both tokio runtimes), PASSES times,
# interleaved (all clients back to back, the order reversed every other pass) so that drift
# and noise hit all. The JSON lines go to
# target/bench/results-<timestamp>.jsonl; the Markdown table of medians goes to stdout and
# to target/bench/table-<timestamp>.md. The server is stopped on exit, however it happens.
#
# Environment:
#   PASSES=3           passes over everything
#   BENCH_SCALE=1      multiplies every N below (at least 1 op stays)
#   N_CONNECT=200 N_GET_SEQ=5000 N_GET_PIPE=100000 N_SET_PIPE=50000 N_CREATE_SEQ=2000
#   N_WATCH_FANOUT=2000
#   INFLIGHT=1000      outstanding requests in the pipelined workloads
#   SIZE=100           node data size in bytes
#   WORKLOADS="connect get_seq get_pipe set_pipe create_seq watch_fanout"
#   RUNTIMES="current multi"   (tokio runtimes of the Rust clients)
#   CLIENTS="zkwarden peer c curator raw"   raw: no library, a bare pipelined socket on
#                      get_pipe/set_pipe only, the server's ceiling for one session
#   RAW_BATCH=0        the raw client's most requests per write (0: everything allowed in one
#                      write; 1: one request per write, as the C and Java clients write)
#   ZK_FORCE_SYNC=no   yes to fsync the server's log on every write, as in production
#   BENCH_TIMEOUT=600  seconds one zkbench run may take
#   BASELINE=REV       also run zkwarden as built at git revision REV (built once, in release,
#                      under target/bench/baseline-*), interleaved as a third client
#                      "baseline", and print a before/after table: how a change moved our
#                      own figures, measured in one sitting
set -euo pipefail
cd "$(dirname "$0")/.."

PASSES=${PASSES:-3}
BENCH_SCALE=${BENCH_SCALE:-1}
INFLIGHT=${INFLIGHT:-1000}
SIZE=${SIZE:-100}
WORKLOADS=${WORKLOADS:-"connect get_seq get_pipe set_pipe create_seq watch_fanout"}
RUNTIMES=${RUNTIMES:-"current multi"}
CLIENTS=${CLIENTS:-"zkwarden peer c curator raw"}
BENCH_TIMEOUT=${BENCH_TIMEOUT:-600}
RAW_BATCH=${RAW_BATCH:-0}
export ZK_FORCE_SYNC=${ZK_FORCE_SYNC:-no}

die() {
    echo "bench: $*" >&2
    exit 1
}

[[ "$RAW_BATCH" =~ ^[0-9]+$ ]] || die "RAW_BATCH must be a whole number, not '$RAW_BATCH'"
[[ "$PASSES" =~ ^[1-9][0-9]*$ ]] || die "PASSES must be a positive whole number, not '$PASSES'"
[[ "$BENCH_SCALE" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] && awk -v s="$BENCH_SCALE" 'BEGIN { exit !(s > 0) }' ||
    die "BENCH_SCALE must be a positive number, not '$BENCH_SCALE'"

# The unscaled size of a workload.
base_n() {
    case "$1" in
        connect) echo "${N_CONNECT:-200}" ;;
        get_seq) echo "${N_GET_SEQ:-5000}" ;;
        get_pipe) echo "${N_GET_PIPE:-100000}" ;;
        set_pipe) echo "${N_SET_PIPE:-50000}" ;;
        create_seq) echo "${N_CREATE_SEQ:-2000}" ;;
        watch_fanout) echo "${N_WATCH_FANOUT:-2000}" ;;
        *) die "unknown workload '$1'" ;;
    esac
}

# N scaled by `scale` (default BENCH_SCALE), rounded, at least 1.
scaled_n() {
    local base
    base=$(base_n "$1")
    [[ "$base" =~ ^[1-9][0-9]*$ ]] || die "the N of $1 must be a positive whole number, not '$base'"
    awk -v n="$base" -v s="${2:-$BENCH_SCALE}" 'BEGIN { v = int(n * s + 0.5); print (v < 1 ? 1 : v) }'
}

for w in $WORKLOADS; do base_n "$w" >/dev/null; done
BASELINE=${BASELINE:-}
if [[ -n "$BASELINE" ]]; then
    git rev-parse --verify --quiet "$BASELINE^{commit}" >/dev/null || die "BASELINE '$BASELINE' is not a git revision"
    CLIENTS="$CLIENTS baseline"
fi
for c in $CLIENTS; do
    case "$c" in zkwarden | peer | baseline | c | curator | raw) ;; *) die "unknown client '$c'" ;; esac
done
for r in $RUNTIMES; do [[ "$r" == current || "$r" == multi ]] || die "unknown runtime '$r'"; done
command -v python3 >/dev/null || die "python3 is needed for the table"

wants() { [[ " $CLIENTS " == *" $1 "* ]]; }
if wants c || wants curator; then
    scripts/install-zookeeper.sh --with-peers >&2
else
    scripts/install-zookeeper.sh >&2
fi

echo "bench: building (release)..." >&2
cargo build --quiet --release --features testing --example zkbench --example zkserver
ZKBENCH=target/release/examples/zkbench
ZKSERVER=target/release/examples/zkserver
BASELINE_BENCH=""
if [[ -n "$BASELINE" ]]; then
    rev=$(git rev-parse --short "$BASELINE^{commit}")
    src="target/bench/baseline-src-$rev"
    if [[ ! -d "$src" ]]; then
        git worktree add --detach --force "$src" "$rev" >&2
    fi
    echo "bench: building the baseline $rev (release)..." >&2
    (cd "$src" && CARGO_TARGET_DIR="$PWD/../baseline-target" cargo build --quiet --release --example zkbench)
    BASELINE_BENCH="target/bench/baseline-target/release/examples/zkbench"
fi

OUT=target/bench
mkdir -p "$OUT"
# The peers are built from source at every run (a second or two), so they always match it.
C_BENCH="$OUT/zkbench-c"
if wants c; then
    echo "bench: building the C peer..." >&2
    gcc -O2 -Wall -o "$C_BENCH" examples/zkbench/peers/zkbench.c -lzookeeper_mt -lpthread ||
        die "cannot build the C peer (scripts/install-zookeeper.sh --with-peers installs libzookeeper-mt-dev and gcc)"
fi
CURATOR_CP=""
if wants curator; then
    echo "bench: compiling the Curator peer..." >&2
    for jar in curator-framework curator-client zookeeper zookeeper-jute slf4j-api guava \
        slf4j-nop failureaccess netty-buffer netty-codec netty-common netty-handler netty-resolver \
        netty-transport netty-transport-native-epoll netty-transport-native-unix-common; do
        [[ -f "/usr/share/java/$jar.jar" ]] && CURATOR_CP="$CURATOR_CP:/usr/share/java/$jar.jar"
    done
    rm -rf "$OUT/curator-classes"
    mkdir -p "$OUT/curator-classes"
    javac -nowarn -cp "${CURATOR_CP#:}" -d "$OUT/curator-classes" examples/zkbench/peers/ZkBench.java ||
        die "cannot compile the Curator peer (scripts/install-zookeeper.sh --with-peers installs Curator and a JDK)"
    CURATOR_CP="$OUT/curator-classes$CURATOR_CP"
fi
STAMP=$(date +%Y%m%d-%H%M%S)
RESULTS="$OUT/results-$STAMP.jsonl"
ERRORS="$OUT/errors-$STAMP.log"
TABLE="$OUT/table-$STAMP.md"
: >"$RESULTS"

# The server lives as a coprocess: it serves until its stdin (our end of the pipe) closes.
# (Bash unsets ZKSRV and ZKSRV_PID once the coprocess ends, so keep copies of our own.)
server_pid=""
to_server=""
stop_server() {
    if [[ -n "$to_server" ]]; then
        exec {to_server}>&- || true
        to_server=""
    fi
    if [[ -n "$server_pid" ]]; then
        for _ in $(seq 50); do
            kill -0 "$server_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT
trap 'exit 130' INT TERM

echo "bench: starting ZooKeeper..." >&2
coproc ZKSRV { exec "$ZKSERVER"; }
server_pid=$ZKSRV_PID
to_server=${ZKSRV[1]}
from_server=${ZKSRV[0]}
read -r -t 120 CONNECT <&"$from_server" || die "the ZooKeeper server did not come up"
read -r -t 10 ZK_VERSION <&"$from_server" || ZK_VERSION=unknown
echo "bench: ZooKeeper $ZK_VERSION at $CONNECT" >&2
# The server's JVM (zkserver -> sh -> java), whose CPU time each run also reports: the
# server's own cost per op, and whether it is the ceiling.
SERVER_JVM=""
for child in $(pgrep -P "$server_pid" || true); do
    SERVER_JVM=$(pgrep -P "$child" java || true)
    [[ -n "$SERVER_JVM" ]] && break
done
[[ -n "$SERVER_JVM" ]] || echo "bench: the server's JVM was not found; no server CPU figures" >&2
TICKS=$(getconf CLK_TCK)
# CPU seconds (user + system) the server has used so far.
server_cpu() {
    if [[ -n "$SERVER_JVM" && -r "/proc/$SERVER_JVM/stat" ]]; then
        # Fields 14 and 15 counted after the parenthesised command name (which has no spaces).
        awk -v t="$TICKS" '{ print ($14 + $15) / t }' "/proc/$SERVER_JVM/stat"
    else
        echo ""
    fi
}

# Context switches the server's threads have made so far (voluntary + involuntary, summed
# over the threads alive now): the server's hand-offs between its own threads, which is where
# most of its CPU per op goes (see README, Performance).
server_switches() {
    if [[ -n "$SERVER_JVM" && -d "/proc/$SERVER_JVM/task" ]]; then
        cat /proc/"$SERVER_JVM"/task/*/status 2>/dev/null |
            awk '/^(voluntary|nonvoluntary)_ctxt_switches:/ { n += $2 } END { print n + 0 }'
    else
        echo ""
    fi
}

# One zkbench run; its JSON line goes to the results file (when `record` is set).
FAILURES=0
run_one() {
    local record=$1 client=$2 workload=$3 runtime=$4 n=$5 line
    local common=(--connect "$CONNECT" --workload "$workload" --n "$n" --inflight "$INFLIGHT" --size "$SIZE")
    local cmd
    case "$client" in
        c) cmd=(timeout "$BENCH_TIMEOUT" "$C_BENCH" "${common[@]}") ;;
        raw) cmd=("$ZKBENCH" "${common[@]}" --client raw --raw-batch "$RAW_BATCH" --runtime "$runtime" --timeout "$BENCH_TIMEOUT") ;;
        curator) cmd=(timeout "$BENCH_TIMEOUT" java -cp "$CURATOR_CP" ZkBench "${common[@]}") ;;
        baseline) cmd=("$BASELINE_BENCH" "${common[@]}" --client zkwarden --runtime "$runtime" --count-allocs --timeout "$BENCH_TIMEOUT") ;;
        *) cmd=("$ZKBENCH" "${common[@]}" --client "$client" --runtime "$runtime" --count-allocs --timeout "$BENCH_TIMEOUT") ;;
    esac
    local cpu_before cpu_after cs_before cs_after
    cpu_before=$(server_cpu)
    cs_before=$(server_switches)
    if line=$("${cmd[@]}" 2>>"$ERRORS"); then
        cpu_after=$(server_cpu)
        cs_after=$(server_switches)
        # The server's CPU over the whole run (setup and warm-up included, a few % of it).
        line=$(python3 -c '
import json, sys
r = json.loads(sys.argv[1])
if sys.argv[2] == "baseline":
    r["client"] = "baseline"
if sys.argv[3] and sys.argv[4]:
    r["server_cpu_s"] = round(float(sys.argv[4]) - float(sys.argv[3]), 3)
if sys.argv[5] and sys.argv[6]:
    r["server_switches"] = int(sys.argv[6]) - int(sys.argv[5])
print(json.dumps(r))' "$line" "$client" "$cpu_before" "$cpu_after" "$cs_before" "$cs_after")
        if [[ "$record" == yes ]]; then
            echo "$line" >>"$RESULTS"
        fi
        echo "$line"
    else
        FAILURES=$((FAILURES + 1))
        echo "bench: FAILED: $client $workload n=$n ($runtime); see $ERRORS" >&2
        return 0
    fi
}

# True when client $1 does not run workload $2 (the raw ceiling only pipelines).
pipelined_only() { [[ "$1" == raw && "$2" != get_pipe && "$2" != set_pipe ]]; }

# What one pass runs per workload: client:runtime pairs (the C and Curator peers have no
# tokio runtime; they run once per workload).
COLUMNS=""
for c in $CLIENTS; do
    case "$c" in
        c) COLUMNS="$COLUMNS c:native" ;;
        curator) COLUMNS="$COLUMNS curator:jvm" ;;
        raw) COLUMNS="$COLUMNS raw:current" ;;
        *) for r in $RUNTIMES; do COLUMNS="$COLUMNS $c:$r"; done ;;
    esac
done

# Warm up the server's JIT (and the page cache) with a small run of everything.
echo "bench: warming up..." >&2
for w in $WORKLOADS; do
    for c in $CLIENTS; do
        pipelined_only "$c" "$w" && continue
        run_one no "$c" "$w" current "$(scaled_n "$w" 0.05)" >/dev/null
    done
done

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
for pass in $(seq "$PASSES"); do
    if ((pass % 2 == 1)); then order=$COLUMNS; else order=$(echo "$COLUMNS" | awk '{ for (i = NF; i > 0; i--) printf "%s ", $i }'); fi
    for w in $WORKLOADS; do
        n=$(scaled_n "$w")
        for column in $order; do
            c=${column%%:*}
            r=${column#*:}
            pipelined_only "$c" "$w" && continue
            line=$(run_one yes "$c" "$w" "$r" "$n")
            if [[ -n "$line" ]]; then
                ops=$(python3 -c 'import json, sys; print(round(json.loads(sys.argv[1])["ops_per_sec"]))' "$line")
                echo "bench: pass $pass/$PASSES  $w ($r)  $c: $ops ops/s" >&2
            else
                FAILURES=$((FAILURES + 1))
            fi
        done
    done
done

LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?")
stop_server

PEER_VERSION=$(awk '/^name = "zookeeper-client"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
python3 - "$RESULTS" "$PASSES" "$BENCH_SCALE" "$(nproc)" "$(uname -r)" "$ZK_VERSION" \
    "${PEER_VERSION:-?}" "$INFLIGHT" "$SIZE" "$LOAD_START" "$LOAD_END" >"$TABLE" <<'PY'
import json
import statistics
import sys

results, passes, scale, cores, kernel, zk, peer, inflight, size, load_start, load_end = sys.argv[1:]
rows = [json.loads(line) for line in open(results) if line.strip()]

def ops_count(row):
    return row["n"] * (2 if row["workload"] == "create_seq" else 1)

def metrics(row):
    ops = ops_count(row)
    return {
        "ops": row["ops_per_sec"],
        "p50": row.get("p50_us"),
        "p99": row.get("p99_us"),
        "cpu": (row["cpu_user_s"] + row["cpu_sys_s"]) * 1e6 / ops,
        "rss": row["max_rss_kb"],
        "allocs": row.get("allocs_per_op"),
        "server": row["server_cpu_s"] * 1e6 / ops if row.get("server_cpu_s") is not None else None,
        "server_cs": row["server_switches"] / ops if row.get("server_switches") is not None else None,
    }

groups = {}
order = []
for row in rows:
    key = (row["workload"], row.get("runtime", "current"))
    if key not in groups and key[1] in ("current", "multi"):
        order.append(key)
    groups.setdefault(key, {}).setdefault(row["client"], []).append(metrics(row))

def median(samples, field):
    values = [s[field] for s in samples if s[field] is not None]
    return statistics.median(values) if values else None

def fmt(v, digits=0):
    if v is None:
        return "–"
    return f"{v:,.{digits}f}"

def ratio(ours, theirs):
    if ours is None or theirs is None or theirs == 0:
        return "–"
    return f"{ours / theirs:.2f}"

print(f"## zkwarden vs zookeeper-client {peer}, the C client and Curator")
print()
print(f"- machine: {cores} cores (nproc), Linux {kernel}; load average {load_start} before the"
      f" passes, {load_end} after (other work on the machine shows up as noise)")
print(f"- server: ZooKeeper {zk}, standalone on loopback")
print(f"- {passes} passes, BENCH_SCALE={scale}, inflight={inflight}, node data {size} B; "
      "every figure is the median over the passes")
print("- CPU µs/op = (user + sys) of the whole client process (every thread) during the timed"
      " section / ops; latency = issue to completion, pipelined workloads included")
print()
columns = [
    ("zkwarden", "current", "zkwarden current"), ("zkwarden", "multi", "zkwarden multi"),
    ("baseline", "current", "baseline current"), ("baseline", "multi", "baseline multi"),
    ("peer", "current", "kezhuw current"), ("peer", "multi", "kezhuw multi"),
    ("c", "native", "C client"), ("curator", "jvm", "Curator"),
    ("raw", "current", "raw socket (ceiling)"),
]
by_cell = {}
workloads = []
for row in rows:
    if row["workload"] not in workloads:
        workloads.append(row["workload"])
    by_cell.setdefault((row["workload"], row["client"], row.get("runtime", "current")), []).append(metrics(row))
present = [c for c in columns if any((w, c[0], c[1]) in by_cell for w in workloads)]

def cell_median(w, client, runtime, field):
    return median(by_cell.get((w, client, runtime), []), field)

def kilo(v):
    return "–" if v is None else f"{v / 1000:.1f}k/s"

def client_table(title, cell):
    """One row per workload, one column per client; `cell(workload, client, runtime)`."""
    print(title)
    print()
    print("| workload | " + " | ".join(c[2] for c in present) + " |")
    print("|---|" + "---|" * len(present))
    for w in workloads:
        print(f"| {w} | " + " | ".join(cell(w, c, r) for c, r, _ in present) + " |")
    print()

client_table("CPU µs/op · ops/s:", lambda w, c, r:
             f"{fmt(cell_median(w, c, r, 'cpu'), 1)} · {kilo(cell_median(w, c, r, 'ops'))}")
client_table("Latency p50 / p99 µs:", lambda w, c, r:
             f"{fmt(cell_median(w, c, r, 'p50'))} / {fmt(cell_median(w, c, r, 'p99'))}")
client_table("Server CPU µs/op (the ZooKeeper JVM's user + sys over the whole run / timed ops):",
             lambda w, c, r: fmt(cell_median(w, c, r, "server"), 1))
client_table("Server context switches per op (all the JVM's threads, over the whole run / timed ops):",
             lambda w, c, r: fmt(cell_median(w, c, r, "server_cs"), 2))
print("Targets (issue 15): ops/s of each zkwarden runtime / the best peer's; zkwarden current's"
      " CPU/op / kezhuw current's:")
print()
print("| workload | ops/s current / best peer | ops/s multi / best peer | CPU/op vs kezhuw current "
      "| ops/s current / raw ceiling |")
print("|---|--:|--:|--:|--:|")
for w in workloads:
    peers = [cell_median(w, c, r, "ops") for c, r, _ in present if c in ("peer", "c", "curator")]
    raw = cell_median(w, "raw", "current", "ops")
    peers = [p for p in peers if p is not None]
    best = max(peers) if peers else None
    print(f"| {w} | {ratio(cell_median(w, 'zkwarden', 'current', 'ops'), best)} "
          f"| {ratio(cell_median(w, 'zkwarden', 'multi', 'ops'), best)} "
          f"| {ratio(cell_median(w, 'zkwarden', 'current', 'cpu'), cell_median(w, 'peer', 'current', 'cpu'))} "
          f"| {ratio(cell_median(w, 'zkwarden', 'current', 'ops'), raw)} |")
print()
print(f"### zkwarden and zookeeper-client {peer} in detail")
print()
print("- ratio = zkwarden / peer: above 1 is better for ops/s, below 1 is better for the rest")
print()
print("| workload | runtime | n | ops/s ours | ops/s peer | ratio | p99 µs ours | p99 µs peer | ratio "
      "| CPU µs/op ours | CPU µs/op peer | ratio | max RSS KB ours | max RSS KB peer | ratio |")
print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
for key in order:
    workload, runtime = key
    ours = groups[key].get("zkwarden", [])
    theirs = groups[key].get("peer", [])
    n = next((r["n"] for r in rows if (r["workload"], r.get("runtime", "current")) == key), "?")
    cells = [workload, runtime, str(n)]
    for field, digits in (("ops", 0), ("p99", 0), ("cpu", 2), ("rss", 0)):
        a, b = median(ours, field), median(theirs, field)
        cells += [fmt(a, digits), fmt(b, digits), ratio(a, b)]
    print("| " + " | ".join(cells) + " |")
print()
print("Allocations per op (whole process, timed section only; the harness allocates nothing per op):")
print()
print("| workload | runtime | allocs/op ours | allocs/op peer | ratio |")
print("|---|---|--:|--:|--:|")
for key in order:
    a = median(groups[key].get("zkwarden", []), "allocs")
    b = median(groups[key].get("peer", []), "allocs")
    print(f"| {key[0]} | {key[1]} | {fmt(a, 2)} | {fmt(b, 2)} | {ratio(a, b)} |")
counts = {c: sum(1 for r in rows if r["client"] == c) for c in ("zkwarden", "peer", "baseline", "c", "curator", "raw")}
if counts["baseline"]:
    print()
    print("Before/after (BASELINE): this build against the baseline build, same server, same passes;"
          " ratio = this / baseline:")
    print()
    print("| workload | runtime | ops/s this | ops/s baseline | ratio | CPU µs/op this "
          "| CPU µs/op baseline | ratio | allocs/op this | allocs/op baseline |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for key in order:
        ours = groups[key].get("zkwarden", [])
        base = groups[key].get("baseline", [])
        cells = [key[0], key[1]]
        for field, digits in (("ops", 0), ("cpu", 2)):
            a, b = median(ours, field), median(base, field)
            cells += [fmt(a, digits), fmt(b, digits), ratio(a, b)]
        cells += [fmt(median(ours, "allocs"), 2), fmt(median(base, "allocs"), 2)]
        print("| " + " | ".join(cells) + " |")
print()
print("Runs recorded: " + ", ".join(f"{c} {k}" for c, k in counts.items() if k) + ".")
PY
cat "$TABLE"
echo
[[ -s "$ERRORS" ]] || rm -f "$ERRORS"
echo "bench: results in $RESULTS, table in $TABLE" >&2
if ((FAILURES > 0)); then
    echo "bench: $FAILURES run(s) failed; their errors are in $ERRORS" >&2
    exit 1
fi
