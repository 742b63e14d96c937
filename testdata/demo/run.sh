#!/usr/bin/env bash
# make demo: sync the bundled Nexus3-style example into a scratch copy of a
# small host tree (containerd 1.6 with a legacy mirrors block, Docker 20.10
# with its own daemon.json, crictl) and show what mirrorctl did.
set -euo pipefail
bin=$(readlink -f "$1"); scratch=$2
here=$(cd "$(dirname "$0")" && pwd)
rm -rf "$scratch" && mkdir -p "$scratch" && cp -a "$here/root/." "$scratch/"
run() { echo "\$ mirrorctl $*"; "$bin" --root "$scratch" --config "$here/spec.yaml" "$@"; echo; }
run detect
run plan || true
marker=$(mktemp); sleep 0.01
run sync
echo "# files written under $scratch:"
(cd "$scratch" && find etc root -type f -newer "$marker" | sort | sed 's/^/  \//')
echo
rm -f "$marker"
run plan --exit-code && echo "second plan: nothing to change (exit 0)"
