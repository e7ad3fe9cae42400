#!/usr/bin/env bash
# End-to-end throughput of examples/server.rs under wrk on loopback: GET /api/me with a cached
# token against GET /health, alternated round after round in one run, medians compared.
#
#   bash benches/e2e_wrk.sh [rounds] [seconds per run] [connections]
#
# Needs wrk (apt-get install wrk). The server runs in demo mode (embedded emulator), so the
# first /api/me request verifies the token and every later one is a cache hit.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-5}
seconds=${2:-5}
connections=${3:-32}
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

cargo build --release --example server -q
# Where cargo put it: CARGO_TARGET_DIR (or a config's build.target-dir) moves it from target/.
target_dir=$(cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
out=$(mktemp)
LISTEN_ADDR=127.0.0.1:0 RUST_LOG=warn "$target_dir/release/examples/server" >"$out" 2>/dev/null &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$out"' EXIT
for _ in $(seq 50); do grep -q '^curl' "$out" && break; sleep 0.1; done
base=$(sed -n 's/^listening on //p' "$out")
token=$(sed -n "s/^curl -H 'Authorization: Bearer \([^']*\)'.*/\1/p" "$out")
curl -fsS -H "Authorization: Bearer $token" "$base/api/me" >/dev/null # warm the cache

rps() { wrk -t1 -c"$connections" -d"${seconds}s" "$@" | awk '/Requests\/sec/ {print $2}'; }
# /health twice: bare, and carrying the same Authorization header as /api/me, so that the
# request size (which wrk and hyper pay for) is told apart from what the layer costs.
health=(); health_hdr=(); me=()
for round in $(seq "$rounds"); do
    health+=("$(rps "$base/health")")
    health_hdr+=("$(rps -H "Authorization: Bearer $token" "$base/health")")
    me+=("$(rps -H "Authorization: Bearer $token" "$base/api/me")")
    echo "round $round: /health ${health[-1]}, /health with the header ${health_hdr[-1]}, /api/me ${me[-1]} req/s"
done
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a/b}'; }
h=$(median "${health[@]}"); hh=$(median "${health_hdr[@]}"); m=$(median "${me[@]}")
echo "medians: /health $h, /health with the header $hh, /api/me (cached token) $m req/s"
echo "ratio /api/me : /health = $(ratio "$m" "$h"); /api/me : /health with the same header = $(ratio "$m" "$hh")"
