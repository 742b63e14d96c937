#!/usr/bin/env bash
# Times a no-op `mirrorctl sync` as a whole process on the demo tree: the
# cost a node pays when nothing changed (issue 2 target: under 20 ms).
set -euo pipefail
bin=$(readlink -f "$1"); scratch=$(mktemp -d); here=$(cd "$(dirname "$0")" && pwd)
trap 'rm -rf "$scratch"' EXIT
cp -a "$here/root/." "$scratch/"
"$bin" --root "$scratch" --config "$here/spec.yaml" sync --adopt >/dev/null 2>&1 || true
n=50; start=$(date +%s%N)
for ((i = 0; i < n; i++)); do
  "$bin" --root "$scratch" --config "$here/spec.yaml" sync >/dev/null 2>&1
done
echo "no-op sync process: $(( ($(date +%s%N) - start) / n / 1000 )) µs per run (mean of $n)"
