#!/usr/bin/env bash
# Every native endpoint with curl, against a running `fiscald demo`.
set -euo pipefail
BASE=${FISCALD_URL:-http://127.0.0.1:8730}
HERE=$(dirname "$0")

curl -sS "$BASE/v1/health"; echo
# Journal a receipt; repeat it safely with the same Idempotency-Key.
reply=$(curl -sS -X POST "$BASE/v1/receipts" -H 'Content-Type: application/json' \
  -H "Idempotency-Key: example-$(date +%s)" --data-binary @"$HERE/receipt.json")
echo "$reply"
id=$(printf '%s' "$reply" | sed -n 's/^{"id":"\([^"]*\)".*/\1/p')
curl -sS "$BASE/v1/receipts/$id"; echo
curl -sS "$BASE/v1/receipts?limit=5"; echo
