#!/usr/bin/env bash
# Proves the Debian package: builds the .deb with cargo-deb, checks its file
# list, modes and conffiles against packaging/expected-files.txt, then runs
# the package's whole life in a scratch root — install, the installed
# `fiscald check-config` on the installed config as the fiscald account,
# `systemd-analyze verify` and `security` on the installed unit, a real
# receipt journaled by the installed daemon, an upgrade (journal and the
# edited config kept), a remove (journal kept) and a purge (journal, config
# and account gone).
#
# The scratch root is an overlay of this machine's own / in a private mount
# namespace: every write (dpkg's database, /etc/passwd, /var/lib/fiscald)
# lands in a temporary upper directory and disappears with it; the host is
# never changed. Needs root (CI runs as root) and overlayfs.
#
# The .deb is built from the debug binary (`--no-build --profile dev`, then
# stripped): a release build takes many minutes on CI's two cores, and the
# package's layout and scripts do not depend on the profile. Release
# packages: `cargo deb` (see packaging/README.md).
#
# Usage: scripts/package-check.sh   (after `cargo build`)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD

fail() { echo "package-check: FAIL: $*" >&2; exit 1; }
step() { echo "package-check: $*"; }

if [ "${1:-}" != "--inside" ]; then
  [ "$(id -u)" = 0 ] || fail "needs root (an overlay mount and a chroot); CI runs as root"
  command -v cargo-deb >/dev/null || fail "cargo-deb is missing: run scripts/setup.sh"
  command -v systemd-analyze >/dev/null || fail "systemd-analyze is missing: run scripts/setup.sh"
  [ -x target/debug/fiscald ] || fail "target/debug/fiscald is missing: run cargo build first"

  WORK=$(mktemp -d /tmp/fiscald-package-check.XXXXXX)
  trap 'rm -rf "$WORK"' EXIT
  mkdir -p "$WORK/deb"
  step "building the .deb (debug binary, stripped) and its upgrade"
  cargo deb --locked --no-build --profile dev --strip --fast -o "$WORK/deb/v1.deb" 2>&1 \
    | grep -v 'dev profile is not supported\|To enable debug symbols\|^$' || true
  cargo deb --locked --no-build --profile dev --strip --fast --deb-version 0.1.0-2 \
    -o "$WORK/deb/v2.deb" 2>&1 \
    | grep -v 'dev profile is not supported\|To enable debug symbols\|^$' || true
  [ -s "$WORK/deb/v1.deb" ] && [ -s "$WORK/deb/v2.deb" ] || fail "cargo deb built no package"

  step "file list and modes against packaging/expected-files.txt"
  dpkg-deb -c "$WORK/deb/v1.deb" | awk '$1 !~ /^d/ {sub(/^\.\//, "/", $6); print $1, $2, $6}' \
    | LC_ALL=C sort > "$WORK/files.txt"
  # Everything outside /usr/share/doc/fiscald/ must match exactly; the docs
  # listed must be there (docs/ grows with every change, so more are fine),
  # and every doc is a plain 0644 file owned by root.
  DOC=' /usr/share/doc/fiscald/'
  if ! diff -u <(grep -v "$DOC" packaging/expected-files.txt) <(grep -v "$DOC" "$WORK/files.txt"); then
    fail "the package's files differ from packaging/expected-files.txt (update it if the change is meant)"
  fi
  missing=$(LC_ALL=C comm -23 <(grep "$DOC" packaging/expected-files.txt | LC_ALL=C sort) <(grep "$DOC" "$WORK/files.txt" | LC_ALL=C sort))
  [ -z "$missing" ] || fail "documentation missing from the package: $missing"
  bad=$(grep "$DOC" "$WORK/files.txt" | grep -v '^-rw-r--r-- 0/0 ' || true)
  [ -z "$bad" ] || fail "documentation with the wrong mode or owner: $bad"
  mkdir "$WORK/control"
  dpkg-deb -e "$WORK/deb/v1.deb" "$WORK/control"
  [ "$(cat "$WORK/control/conffiles")" = "/etc/fiscald/fiscald.toml" ] \
    || fail "conffiles is not exactly /etc/fiscald/fiscald.toml: $(cat "$WORK/control/conffiles")"
  grep -q '^Depends:.*adduser' "$WORK/control/control" || fail "Depends lacks adduser"
  for s in postinst prerm postrm; do
    [ -x "$WORK/control/$s" ] || fail "maintainer script $s is missing"
    grep -q 'DEBHELPER' "$WORK/control/$s" && fail "$s still holds the debhelper token"
  done
  cmp -s <(dpkg-deb --fsys-tarfile "$WORK/deb/v1.deb" | tar -xO ./usr/lib/systemd/system/fiscald.service) \
    systemd/fiscald.service || fail "the packaged unit differs from systemd/fiscald.service"

  unshare --mount --propagation private -- "$0" --inside "$WORK"
  exit $?
fi

# ---- inside a private mount namespace ------------------------------------
WORK=$2
R=$WORK/root
mkdir -p "$WORK/upper" "$WORK/work" "$R"
mount -t overlay overlay -o "lowerdir=/,upperdir=$WORK/upper,workdir=$WORK/work" "$R" \
  || fail "cannot mount an overlay of / (overlayfs needed for the scratch root)"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount -t tmpfs tmpfs "$R/tmp"
mount -t tmpfs tmpfs "$R/run"
cp "$WORK/deb/v1.deb" "$WORK/deb/v2.deb" "$R/tmp/"
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
as_fiscald() { chroot --userspec=fiscald:fiscald "$R" env -i PATH=/usr/bin:/bin LANG=C.UTF-8 "$@"; }

if in_root dpkg -s fiscald >/dev/null 2>&1; then
  fail "fiscald is installed on this machine; the scratch root must start without it"
fi

step "install"
in_root dpkg -i /tmp/v1.deb >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -i failed"; }
in_root getent passwd fiscald >/dev/null || fail "postinst created no fiscald account"
[ "$(in_root stat -c "%U:%G %a" /etc/fiscald/fiscald.toml)" = "root:fiscald 640" ] \
  || fail "installed config is $(in_root stat -c "%U:%G %a" /etc/fiscald/fiscald.toml), want root:fiscald 640"
[ -L "$R/etc/systemd/system/multi-user.target.wants/fiscald.service" ] \
  || fail "postinst did not enable fiscald.service"

step "installed fiscald check-config on the installed config, as the fiscald account"
as_fiscald /usr/bin/fiscald check-config /etc/fiscald/fiscald.toml || fail "check-config refused the installed config"
as_fiscald /usr/bin/fiscald --version

step "systemd-analyze verify (the installed unit, identical to systemd/fiscald.service)"
in_root systemd-analyze verify /usr/lib/systemd/system/fiscald.service \
  || fail "systemd-analyze verify found problems"
step "systemd-analyze security (exposure; docs/OPERATIONS.md records it)"
in_root systemd-analyze security --offline=true --no-pager /usr/lib/systemd/system/fiscald.service \
  >"$WORK/security.txt" 2>&1 || true
exposure=$(sed -n 's/.*Overall exposure level for fiscald.service: \([0-9.]*\) \(.*\)$/\1 \2/p' "$WORK/security.txt")
[ -n "$exposure" ] || { cat "$WORK/security.txt"; fail "no exposure level in systemd-analyze security's output"; }
echo "package-check: exposure $exposure"
case "$exposure" in
  *PERFECT*|*SAFE*|*OK*) ;;
  *) fail "exposure $exposure is worse than the OK band: harden systemd/fiscald.service" ;;
esac

step "the installed daemon journals a receipt into /var/lib/fiscald as the fiscald account"
# The unit's StateDirectory= makes the directory under systemd; here by hand.
install -d -o "$(in_root id -u fiscald)" -g "$(in_root id -g fiscald)" -m 0700 "$R/var/lib/fiscald"
# Only the first `listen` ([api]); [remote] listen stays off.
sed '0,/^listen = .*/s//listen = "127.0.0.1:0"/' "$R/etc/fiscald/fiscald.toml" >"$R/tmp/run.toml"
chmod 0644 "$R/tmp/run.toml"
# chroot execs env execs fiscald: $! is the daemon itself.
chroot --userspec=fiscald:fiscald "$R" env -i PATH=/usr/bin:/bin \
  /usr/bin/fiscald run --config /tmp/run.toml >"$WORK/run.out" 2>"$WORK/run.err" &
daemon=$!
trap 'kill -KILL "$daemon" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  grep -q 'listening on' "$WORK/run.out" && break
  kill -0 "$daemon" 2>/dev/null || { cat "$WORK/run.err"; fail "the installed daemon exited"; }
  sleep 0.1
done
url=$(sed -n 's/^fiscald listening on \(http:[^ ]*\).*/\1/p' "$WORK/run.out")
[ -n "$url" ] || { kill "$daemon"; cat "$WORK/run.err"; fail "the installed daemon did not start"; }
code=$(curl -sS -m 10 -o "$WORK/receipt.json" -w '%{http_code}' -X POST "$url/v1/receipts" \
  -H 'Content-Type: application/json' -H 'Idempotency-Key: package-check-1' \
  --data-binary @"$ROOT_DIR/docs/examples/receipt.json")
kill -TERM "$daemon"; wait "$daemon" || true
trap - EXIT
[ "$code" = 201 ] || { cat "$WORK/receipt.json"; fail "POST /v1/receipts answered $code"; }
receipt_id=$(sed -n 's/^{"id":"\([^"]*\)".*/\1/p' "$WORK/receipt.json")
[ -s "$R/var/lib/fiscald/journal.sqlite" ] || fail "no journal in /var/lib/fiscald"
journal_has_receipt() {
  python3 - "$R/var/lib/fiscald/journal.sqlite" "$receipt_id" <<'EOF'
import sqlite3, sys
c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
n = c.execute("SELECT count(*) FROM receipts WHERE id = ?", (sys.argv[2],)).fetchone()[0]
sys.exit(0 if n == 1 else 1)
EOF
}
journal_has_receipt || fail "the journal does not hold receipt $receipt_id"

step "upgrade 0.1.0-1 -> 0.1.0-2 keeps the journal and the edited config"
echo '# edited on this till by package-check' >>"$R/etc/fiscald/fiscald.toml"
in_root dpkg -i --force-confold /tmp/v2.deb >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "upgrade failed"; }
[ "$(in_root dpkg-query -W -f '${Version}' fiscald)" = 0.1.0-2 ] || fail "upgrade did not install 0.1.0-2"
grep -q 'edited on this till' "$R/etc/fiscald/fiscald.toml" || fail "upgrade lost the edited config"
journal_has_receipt || fail "upgrade lost the journal"
as_fiscald /usr/bin/fiscald check-config /etc/fiscald/fiscald.toml || fail "check-config after upgrade"

step "remove keeps the journal (and the conffile)"
in_root dpkg -r fiscald >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -r failed"; }
[ ! -e "$R/usr/bin/fiscald" ] || fail "remove left /usr/bin/fiscald"
journal_has_receipt || fail "remove deleted the journal"
[ -f "$R/etc/fiscald/fiscald.toml" ] || fail "remove deleted the conffile"

step "purge deletes the journal, the config and the account"
in_root dpkg -P fiscald >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log"; fail "dpkg -P failed"; }
[ ! -e "$R/var/lib/fiscald" ] || fail "purge left /var/lib/fiscald"
[ ! -e "$R/etc/fiscald" ] || fail "purge left /etc/fiscald"
in_root getent passwd fiscald >/dev/null && fail "purge left the fiscald account"
[ ! -e "$R/etc/systemd/system/multi-user.target.wants/fiscald.service" ] || fail "purge left the unit enabled"

step "ok: built, file list checked, installed, check-config, verify, upgrade, remove, purge"
