#!/usr/bin/env bash
# Fuzzes the running sandbox against both specs with schemathesis (PyPI):
# no answer may be a server error (5xx), and every answer's status, media
# type and body must be one its spec allows. Generated requests are bounded
# (--max-examples) so that the whole run stays well under three minutes.
#
# Run from anywhere: crates/dynata-sandbox/ci/schemathesis.sh
# It installs schemathesis into a virtualenv under $TMPDIR once, builds and
# starts the sandbox binary on a free loopback port, logs in for a token,
# and stops the sandbox (by its process id) however the run ends.
set -euo pipefail
cd "$(dirname "$0")/../../.."
root="$(pwd)"

venv="${TMPDIR:-/tmp}/dynata-sandbox-schemathesis-venv"
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi

cargo build --locked --quiet -p dynata-sandbox --bin dynata-sandbox
log="$(mktemp)"
# schemathesis keeps a .schemathesis/ directory where it runs: not in the repository.
scratch="$(mktemp -d)"
# Long-lived tokens: the fuzzing must not outlast its bearer token.
target/debug/dynata-sandbox --port 0 --user schemathesis:schemathesis \
  --feasibility-delay 0 --access-ttl 36000 >"$log" 2>&1 &
sandbox_pid=$!
trap 'kill "$sandbox_pid" 2>/dev/null || true; rm -rf "$log" "$scratch"' EXIT

base=""
for _ in $(seq 1 100); do
  base="$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$log" || true)"
  [ -n "$base" ] && break
  sleep 0.1
done
[ -n "$base" ] || { echo "the sandbox did not start:"; cat "$log"; exit 1; }

token="$(python3 - "$base" <<'PY'
import json, sys, urllib.request
body = json.dumps({"clientId": "api", "username": "schemathesis", "password": "schemathesis"}).encode()
request = urllib.request.Request(sys.argv[1] + "/auth/v1/token/password", body,
                                 {"Content-Type": "application/json"})
print(json.load(urllib.request.urlopen(request))["accessToken"])
PY
)"

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance
run() {
  (cd "$scratch" && "$venv/bin/st" run "$@" --checks "$checks" --phases examples,coverage,fuzzing \
    --max-examples 15 --workers 2 --seed 1 --warnings off)
}
run "$root/openapi/dynata-auth.yaml" --url "$base"
run "$root/openapi/dynata-sample.yaml" --url "$base/sample/v1" -H "Authorization: Bearer $token"
