#!/usr/bin/env bash
# wrangler_bundle.sh WRANGLER: the real wrangler CLI reads both worker configs
# of deploy/cloudflare/ and bundles their entry files, the way `wrangler
# versions upload` does before it sends anything (`deploy --dry-run`, no
# network). The app around them is a stand-in for OpenNext's build output at
# the exact paths the entry files import. Fails on a bundling error, on any
# wrangler warning (an unknown or misplaced config field), or when a binding
# the controller and the entry files rely on is missing.
set -euo pipefail

wrangler=${1:?usage: wrangler_bundle.sh WRANGLER}
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../deploy/cloudflare" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

app=$tmp/app
mkdir -p "$app/deploy" "$tmp/home" "$tmp/tmp/update-check"
cp -r "$src" "$app/deploy/cloudflare"
on=$app/.open-next
mkdir -p "$on/cloudflare" "$on/middleware" "$on/server-functions/default" \
  "$on/.build/durable-objects" "$on/assets"
echo 'export async function runWithCloudflareRequestContext(r, e, c, fn) { return fn(); }' \
  >"$on/cloudflare/init.js"
echo 'export async function handler(request) { return request; }' >"$on/middleware/handler.mjs"
echo 'export async function handler() { return new Response("page"); }' \
  >"$on/server-functions/default/handler.mjs"
for cls in queue:DOQueueHandler sharded-tag-cache:DOShardedTagCache; do
  printf 'import { DurableObject } from "cloudflare:workers";\nexport class %s extends DurableObject {}\n' \
    "${cls#*:}" >"$on/.build/durable-objects/${cls%%:*}.js"
done
echo 'User-agent: *' >"$on/assets/robots.txt"

# Offline: skip wrangler's npm update check, send no metrics.
printf '{"latest":"0.0.0","lastUpdate":%s000}\n' "$(date +%s)" \
  >"$tmp/tmp/update-check/wrangler-latest.json"
export HOME=$tmp/home TMPDIR=$tmp/tmp WRANGLER_SEND_METRICS=false NO_COLOR=1

fail=0
check() { # worker, pattern that must appear in wrangler's output
  if ! grep -qE -e "$2" "$tmp/$1.log"; then
    echo "FAIL $1: wrangler output lacks /$2/"
    fail=1
  fi
}
for worker in middleware server; do
  if ! (cd "$app" && timeout 120 "$wrangler" deploy --dry-run --outdir "$tmp/out-$worker" \
        --config "deploy/cloudflare/$worker.jsonc") >"$tmp/$worker.log" 2>&1; then
    echo "FAIL $worker: wrangler exited non-zero"
    fail=1
  fi
  if grep -q 'WARNING' "$tmp/$worker.log"; then
    echo "FAIL $worker: wrangler warned about the config"
    fail=1
  fi
  check "$worker" 'env\.CF_VERSION_METADATA +Worker Version Metadata'
  check "$worker" '--dry-run: exiting now'
  if [ ! -s "$tmp/out-$worker/$worker.js" ]; then
    echo "FAIL $worker: no bundle written"
    fail=1
  fi
done
check middleware 'env\.DEFAULT_WORKER \(main-server\) +Worker'
check middleware 'env\.WORKER_VERSION_ID \("'
check middleware 'env\.SERVER_WORKER_NAME \("main-server"\)'
# The middleware bundle carries the corrected override and both the handler
# from OpenNext's output and lib.mjs's logic.
grep -q 'Cloudflare-Workers-Version-Overrides' "$tmp/out-middleware/middleware.js" ||
  { echo "FAIL middleware: bundle lacks the override header"; fail=1; }
grep -q 'x-canary-server-version' "$tmp/out-server/server.js" ||
  { echo "FAIL server: bundle lacks the version header"; fail=1; }

if [ "$fail" -ne 0 ]; then
  for worker in middleware server; do
    echo "---- wrangler output ($worker)"
    cat "$tmp/$worker.log"
  done
  exit 1
fi
echo "ok: both workers bundle with $("$wrangler" --version 2>/dev/null | tail -1)"
