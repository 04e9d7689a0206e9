#!/usr/bin/env bash
# Run fieldsync's fuzz targets with cargo-fuzz on stable Rust (libFuzzer, no sanitizer).
#
#   fuzz/run.sh [--ci] [--keep] SECONDS [TARGET...]
#
# SECONDS is the time per target (libFuzzer's -max_total_time, corpus loading included).
# Targets default to all four; `--ci` means the CI set (all but change_info, see below), a
# quick build (opt-level 1, 16 codegen units) and installing cargo-fuzz if it is missing.
# New inputs go to fuzz/target/new-corpus/TARGET unless `--keep` puts them into the committed
# corpus fuzz/corpus/TARGET (then minimise, see the README). A crash stops the run, is saved
# under fuzz/artifacts/TARGET/ and makes this script fail.
#
# change_info runs automerge in-process, where its known failures (allocation aborts, run-
# length time bombs) are crashes of the fuzz process that the server's sandbox absorbs; it
# runs in fork mode, keeps going past them, and saves them for triage instead of failing.
#
# The push targets start `fieldsync-server worker` processes: FIELDSYNC_SERVER_BIN, by default
# target/debug/fieldsync-server of the workspace (built here if it is missing).
set -euo pipefail
cd "$(dirname "$0")"

ci=0
keep=0
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --ci) ci=1 ;;
    --keep) keep=1 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
secs=${1:?usage: fuzz/run.sh [--ci] [--keep] SECONDS [TARGET...]}
shift
if [[ $# -gt 0 ]]; then
  targets=("$@")
elif [[ $ci == 1 ]]; then
  targets=(wire_decode push_path push_changes)
else
  targets=(wire_decode change_info push_path push_changes)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
  if [[ $ci == 1 ]]; then
    cargo install --locked cargo-fuzz
  else
    echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz" >&2
    exit 1
  fi
fi

# `cargo fuzz run` rebuilds with its own options: both get the same ones.
opts=(-s none)
if [[ $ci == 1 ]]; then
  # A third less build time on 2 cores; the push targets spend their time in the worker
  # processes and SQLite, not in optimised code.
  export CARGO_PROFILE_RELEASE_OPT_LEVEL=1
  opts+=(--codegen-units 16)
fi
start=$SECONDS
cargo fuzz build "${opts[@]}"
echo "fuzz: built in $((SECONDS - start)) s"

if [[ -z ${FIELDSYNC_SERVER_BIN:-} ]]; then
  export FIELDSYNC_SERVER_BIN="$PWD/../target/debug/fieldsync-server"
  if [[ ! -x $FIELDSYNC_SERVER_BIN ]]; then
    (cd .. && cargo build -p fieldsync-server)
  fi
fi

mkdir -p target/logs
for t in "${targets[@]}"; do
  case $t in
    wire_decode) flags=(-max_len=8192 -timeout=10 -rss_limit_mb=2048) ;;
    change_info) flags=(-max_len=4096 -timeout=10 -rss_limit_mb=2048 -fork=1
                        -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1) ;;
    push_path | push_changes)
      flags=(-max_len=16384 -timeout=60 -rss_limit_mb=4096 -entropic_scale_per_exec_time=1) ;;
    *) echo "unknown target $t" >&2; exit 2 ;;
  esac
  corpus=(corpus/"$t")
  if [[ $keep == 0 ]]; then
    mkdir -p target/new-corpus/"$t"
    corpus=(target/new-corpus/"$t" corpus/"$t")
  fi
  mkdir -p artifacts/"$t"
  log=target/logs/$t.log
  echo "fuzz: $t for ${secs}s (log $log)"
  start=$SECONDS
  status=0
  cargo fuzz run "${opts[@]}" "$t" "${corpus[@]}" -- -max_total_time="$secs" -print_final_stats=1 \
    "${flags[@]}" >"$log" 2>&1 || status=$?
  took=$((SECONDS - start))
  execs=$(grep -E '^stat::number_of_executed_units' "$log" | tail -1 | awk '{print $2}' || true)
  rate=$(grep -E '^stat::average_exec_per_sec' "$log" | tail -1 | awk '{print $2}' || true)
  if [[ $t == change_info ]]; then
    # fork mode: the children's totals are in the last status line
    execs=$(grep -E '^#[0-9]+' "$log" | tail -1 | sed -E 's/^#([0-9]+).*/\1/' || true)
    rate=$((${execs:-0} / (took > 0 ? took : 1)))
    found=$(grep -cE 'crash-|timeout-|oom-' <(ls artifacts/"$t") || true)
    echo "fuzz: change_info: $found automerge failures saved in fuzz/artifacts/change_info for triage"
  fi
  echo "fuzz: $t: ${execs:-?} runs in ${took}s (${rate:-?}/s), exit $status"
  if [[ $status != 0 ]]; then
    grep -E 'violated|panicked|deadly signal|Test unit written|SUMMARY|ERROR' "$log" | head -20 >&2 || true
    echo "fuzz: $t FAILED; the input is in fuzz/artifacts/$t/ (log $log)" >&2
    exit 1
  fi
done
