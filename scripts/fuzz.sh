#!/usr/bin/env bash
# Runs the fuzz targets in fuzz/ (cargo-fuzz and libFuzzer, one target per decoder of
# untrusted input) for SECONDS each, and prints what each did: executions, and whether
# it crashed. Exits 1 if any target crashed (a panic, a failed check, a hang past
# 10 s or a blow-up past 2 GB), leaving the input in fuzz/artifacts/<target>/.
#
# Stable Rust is enough: the targets build without a sanitizer (`--sanitizer none`;
# AddressSanitizer would need nightly, and the code it checks is safe Rust), in
# release mode with debug assertions (so arithmetic overflow panics) and 16 codegen
# units (cargo-fuzz's default of 1 would more than double the build time). `--quick`
# builds them in fuzz/'s dev profile instead (unoptimised, debug assertions): a third
# of the build's CPU time for a few hundredths of the executions, what a run of seconds
# (CI's) wants.
# cargo-fuzz itself is installed from crates.io into .cache/cargo-fuzz on first use.
# The corpus each run grows is kept in .cache/fuzz/corpus/<target>; the seeds in
# fuzz/corpus/<target> are read, never written.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
BUILD_FLAGS=(--release --debug-assertions --sanitizer none --codegen-units 16)
if [[ "${1:-}" == "--quick" ]]; then
  BUILD_FLAGS=(--dev --sanitizer none)
  shift
fi

usage() {
  cat <<EOF
Usage: scripts/fuzz.sh [--quick] [SECONDS] [TARGET...]

Builds the fuzz targets of fuzz/ and runs each (or the TARGETs named) for SECONDS
(default 60), one after the other. --quick builds them less optimised (a faster
build, slower runs: for runs of seconds). Prints each target's executions and whether it
crashed; exits 1 if any did, with the crashing input in fuzz/artifacts/<target>/.

Targets: $(targets | tr '\n' ' ')

Reproduce a crash:  .cache/cargo-fuzz/bin/cargo-fuzz run ${BUILD_FLAGS[*]} TARGET fuzz/artifacts/TARGET/crash-...
Run one for long:   scripts/fuzz.sh 3600 ot

CI runs "scripts/fuzz.sh --quick 5" from scripts/test.sh (FUZZ=0 skips it).
EOF
}

targets() {
  sed -n 's/^name = "\(.*\)"$/\1/p' fuzz/Cargo.toml | grep -v '^turntable-fuzz$'
}

if [[ "${1:-}" == "-h" || "${1:-}" == "--help" ]]; then
  usage
  exit 0
fi
seconds="${1:-60}"
if ! [[ "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  usage >&2
  exit 2
fi
shift || true
if [[ $# -gt 0 ]]; then
  chosen=("$@")
  for target in "${chosen[@]}"; do
    targets | grep -qx "$target" || { echo "fuzz.sh: no target $target" >&2; exit 2; }
  done
else
  mapfile -t chosen < <(targets)
fi

cargo_fuzz=.cache/cargo-fuzz/bin/cargo-fuzz
if [[ "$("$cargo_fuzz" --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]]; then
  echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION into .cache/cargo-fuzz" >&2
  # --debug: it only starts cargo and the targets, and builds in half the time.
  cargo install --quiet --locked --debug --root .cache/cargo-fuzz cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

echo "fuzz.sh: building the targets" >&2
"$cargo_fuzz" build "${BUILD_FLAGS[@]}"

mkdir -p .cache/fuzz/logs
failed=()
summary=()
for target in "${chosen[@]}"; do
  corpus=.cache/fuzz/corpus/$target
  log=.cache/fuzz/logs/$target.log
  mkdir -p "$corpus"
  seeds=()
  [[ -d fuzz/corpus/$target ]] && seeds=("fuzz/corpus/$target")
  status=0
  "$cargo_fuzz" run "${BUILD_FLAGS[@]}" "$target" "$corpus" "${seeds[@]}" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$log" 2>&1 || status=$?
  executions="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  speed="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n1)"
  if [[ $status -eq 0 ]]; then
    result=ok
  else
    artifact="$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -n1)"
    result="CRASHED (exit $status): ${artifact:-see $log}"
    failed+=("$target")
    grep -m1 -A3 -E "panicked at|ERROR: libFuzzer" "$log" >&2 || tail -n 20 "$log" >&2
  fi
  line="$(printf '%-24s %12s executions %8s/s  %s' "$target" "${executions:-?}" "${speed:-?}" "$result")"
  echo "$line" >&2
  summary+=("$line")
done

printf '\nfuzz.sh: %s s per target\n' "$seconds"
printf '%s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
  printf 'fuzz.sh: %d target(s) crashed: %s (logs in .cache/fuzz/logs/)\n' "${#failed[@]}" "${failed[*]}" >&2
  exit 1
fi
