#!/usr/bin/env bash
# Every native endpoint with curl, against a running `fiscald demo`.
# The demo asks for its operator token (printed at start, kept in
# demo-state/operator.token); FISCALD_TOKEN overrides it.
set -euo pipefail
BASE=${FISCALD_URL:-http://127.0.0.1:8730}
TOKEN=${FISCALD_TOKEN:-$(cat "${FISCALD_STATE:-demo-state}/operator.token")}
AUTH="Authorization: Bearer $TOKEN"
HERE=$(dirname "$0")

curl -sS -H "$AUTH" "$BASE/v1/health"; echo
# Journal a receipt; repeat it safely with the same Idempotency-Key.
reply=$(curl -sS -X POST "$BASE/v1/receipts" -H "$AUTH" -H 'Content-Type: application/json' \
  -H "Idempotency-Key: example-$(date +%s)" --data-binary @"$HERE/receipt.json")
echo "$reply"
id=$(printf '%s' "$reply" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
curl -sS -H "$AUTH" "$BASE/v1/receipts/$id"; echo
curl -sS -H "$AUTH" "$BASE/v1/receipts?limit=5"; echo
# Operator endpoints (an operator token; a pos token gets 403).
curl -sS -H "$AUTH" "$BASE/v1/devices"; echo
curl -sS -X POST -H "$AUTH" "$BASE/v1/drawer/open"; echo
