#!/usr/bin/env bash
# Runs the cargo-fuzz targets of fuzz/ for a bounded time each and prints one summary
# line per target (executions, coverage, crash). Not part of scripts/test.sh.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   FUZZ_SECONDS=300 scripts/fuzz.sh params ticket
#
# Environment: FUZZ_SECONDS (per target, default 60), FUZZ_JOBS (parallel libFuzzer
# workers per target, default 1), FUZZ_SANITIZER (none|address, default none: our
# crates forbid unsafe code, so the fuzzers look for panics, overflows and runaway
# allocation, which need no sanitizer), FUZZ_RSS_MB (libFuzzer's memory limit, default
# 2048), FUZZ_MAX_LEN (largest input, default 65536).
# Seeds are fuzz/corpus/<target>/ (committed, read only); what libFuzzer adds goes to
# fuzz/corpus-work/<target>/ (ignored by git). A crash leaves its input in
# fuzz/artifacts/<target>/ and makes the script exit non-zero; reproduce it with
# `RUSTC_BOOTSTRAP=1 cargo fuzz run --sanitizer none <target> <file>` in fuzz/.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$ROOT/fuzz"

SECONDS_EACH=${FUZZ_SECONDS:-60}
JOBS=${FUZZ_JOBS:-1}
SANITIZER=${FUZZ_SANITIZER:-none}
RSS_MB=${FUZZ_RSS_MB:-2048}
MAX_LEN=${FUZZ_MAX_LEN:-65536}
ALL=(params ticket config redis_command influx_chunked)
# flight_ipc joins the list once its target exists.
[[ -f fuzz_targets/flight_ipc.rs ]] && ALL+=(flight_ipc)
TARGETS=("$@")
((${#TARGETS[@]})) || TARGETS=("${ALL[@]}")

# cargo-fuzz needs nightly flags; RUSTC_BOOTSTRAP lets the stable toolchain accept them.
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
  log "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

log "building ${TARGETS[*]} (sanitizer: $SANITIZER)"
for t in "${TARGETS[@]}"; do
  cargo fuzz build --sanitizer "$SANITIZER" "$t"
done

SUMMARY=()
FAILED=0
for t in "${TARGETS[@]}"; do
  mkdir -p "corpus-work/$t" "corpus/$t" "artifacts/$t"
  extra=()
  [[ -f "dict/$t.dict" ]] && extra+=("-dict=dict/$t.dict")
  # -jobs starts child processes logging to fuzz-<n>.log: only when asked for more than one.
  ((JOBS > 1)) && extra+=("-jobs=$JOBS" "-workers=$JOBS")
  log "fuzzing $t for ${SECONDS_EACH}s"
  logfile="artifacts/$t/last-run.log"
  rc=0
  # The working corpus first: libFuzzer writes new inputs there, not into the seeds.
  cargo fuzz run --sanitizer "$SANITIZER" "$t" "corpus-work/$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_EACH" -rss_limit_mb="$RSS_MB" -max_len="$MAX_LEN" \
    -timeout=10 -print_final_stats=1 "${extra[@]}" \
    >"$logfile" 2>&1 || rc=$?
  # libFuzzer's last status line ("#N DONE cov: … ft: … corp: …" or the line before a crash).
  stats=$(grep -E '^#[0-9]+' "$logfile" | tail -n 1 || true)
  execs=$(grep -E '^stat::number_of_executed_units' "$logfile" | awk '{s+=$2} END {print s+0}')
  if ((rc != 0)); then
    FAILED=1
    crash=$(grep -Eo 'Test unit written to [^ ]+' "$logfile" | tail -n 1 | sed 's/Test unit written to //')
    SUMMARY+=("$(printf '%-15s CRASH  execs=%s  %s  input=%s (log: fuzz/%s)' "$t" "$execs" "${stats#* }" "${crash:-?}" "$logfile")")
  else
    SUMMARY+=("$(printf '%-15s ok     execs=%s  %s' "$t" "$execs" "${stats#* }")")
  fi
done

printf '\n==> fuzz.sh summary (%ss per target)\n' "$SECONDS_EACH"
printf '  %s\n' "${SUMMARY[@]}"
exit "$FAILED"
