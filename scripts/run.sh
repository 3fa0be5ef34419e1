#!/bin/sh
# mxgate's main job on its embedded default, as root on Debian 12:
# installs what it needs, builds, creates the network namespace `mxgate`,
# starts the gateway there on a net_tap port (kernel side 198.18.0.1/24
# and fd00:6d78::1/64, gateway 198.18.0.2 and fd00:6d78::2, SMTP on 25
# and 587 with STARTTLS and on 465 with implicit TLS), delivering to a
# local Maildir
# (MXGATE_MAILDIR, default /var/lib/mxgate/Maildir) whose path it prints;
# sends one message with swaks over IPv4 and one over IPv6 and shows they
# arrived, and, on the first run (when it made the submission user and
# so knows its password), one authenticated submission over STARTTLS on
# 587; stays in the
# foreground until Ctrl-C. The embedded default is written once to
# MXGATE_CONF (default /var/lib/mxgate/mxgate.conf, from
# `mxgate --print-default-config`) and run from there, so that it can be
# edited and reloaded (`mxgatectl reload`).   --check: do the demonstration, stop, exit
# (non-zero also when mxgate's own exit status is).
# MXGATE_STATE (default /var/lib/mxgate): the state directory (TLS
# material, the users file, the Maildir); a configuration written here
# for another state directory names its files there.
# MXGATE_BIN: run that mxgate binary (a test's build, e.g. the sanitizer
# one) instead of building and running ./build's.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CHECK=0
if [ "${1:-}" = "--check" ]; then CHECK=1; shift; fi

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: must run as root (network namespace, tap port)" >&2
	exit 2
fi
./scripts/install-deps.sh
if [ -n "${MXGATE_BIN:-}" ]; then
	BIN=$MXGATE_BIN
else
	[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
	ninja -C build >/dev/null
	BIN="$ROOT/build/dataplane/mxgate"
fi

NS=mxgate
TAP=mxg0
STATS=/run/mxgate-stats.json
STATE=${MXGATE_STATE:-/var/lib/mxgate}
MAILDIR=${MXGATE_MAILDIR:-$STATE/Maildir}
LOG=/run/mxgate.log
CONF=${MXGATE_CONF:-$STATE/mxgate.conf}
if [ ! -f "$CONF" ]; then
	mkdir -p "$(dirname "$CONF")"
	"$BIN" --print-default-config | sed "s#/var/lib/mxgate#$STATE#g" \
		>"$CONF.tmp" && mv "$CONF.tmp" "$CONF"
	echo "run.sh: wrote the embedded default configuration to $CONF"
fi
# TLS material for the gateway's name and the submission user, made on
# the first run under the state directory: the embedded default offers
# STARTTLS on 25 and 587 and implicit TLS on 465 with it and requires
# AUTH on 587 and 465. mxgate prints the user's password only when it
# makes the user.
"$ROOT/scripts/make-tls-certs.sh" "$STATE/tls"
"$BIN" --init-state "$STATE" | tee /tmp/mxgate-init.log
AUTH_USER=mxgate
AUTH_PW=$(sed -n 's/.* user "mxgate" with password "\(.*\)"$/\1/p' \
	/tmp/mxgate-init.log)
rm -f /tmp/mxgate-init.log
"$BIN" --check-config "$CONF" >/dev/null || {
	"$BIN" --check-config "$CONF"
	echo "run.sh: $CONF is invalid (remove it to start again from the default)" >&2
	exit 1; }
ip netns del $NS 2>/dev/null || true
ip netns add $NS
ip -n $NS link set lo up

PID=""
cleanup() {
	rc=$?
	trap - INT TERM EXIT
	st=0
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		wait "$PID" || st=$?
		echo "run.sh: mxgate stopped, exit status $st"
	fi
	ip netns del $NS 2>/dev/null || true
	if [ $CHECK = 1 ] && [ $st != 0 ] && [ $rc = 0 ]; then rc=1; fi
	exit $rc
}
trap cleanup INT TERM EXIT

# The embedded default: tap port, 198.18.0.2/24, listeners 25 (mx) and 587
# (submission) with STARTTLS, 465 (implicit TLS), next hop the local
# Maildir.
echo "run.sh: binary $BIN"
echo "run.sh: configuration $CONF"
# A configuration written before the default had IPv6 gets the IPv6
# address from the command line instead.
IP6=""
grep -q '^[[:space:]]*address6' "$CONF" || IP6="--ip6 fd00:6d78::2/64"
# shellcheck disable=SC2086
ip netns exec $NS "$BIN" --config "$CONF" $IP6 \
	--maildir "$MAILDIR" --stats-file $STATS --log-file $LOG "$@" &
PID=$!

i=0
until ip -n $NS link show $TAP >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 300 ] && { echo "run.sh: tap port never appeared" >&2; exit 1; }
	kill -0 $PID 2>/dev/null || { echo "run.sh: mxgate exited" >&2; exit 1; }
	sleep 0.1
done
ip -n $NS addr add 198.18.0.1/24 dev $TAP
ip -n $NS addr add fd00:6d78::1/64 dev $TAP nodad
ip -n $NS link set $TAP up
sleep 0.5
# the gateway's IPv6 address answers once its DAD is done (about 1 s):
# wait for a TCP connection to port 25 to open
i=0
until ip netns exec $NS timeout 2 bash -c \
	'exec 3<>/dev/tcp/fd00:6d78::2/25' >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 20 ] && { echo "run.sh: fd00:6d78::2 never answered" >&2; exit 1; }
	sleep 0.2
done

echo "run.sh: mxgate is up in netns '$NS' at 198.18.0.2 and fd00:6d78::2 (ports 25 and 587 with STARTTLS, 465 implicit TLS)"
echo "run.sh: kernel side of the tap port: 198.18.0.1/24 and fd00:6d78::1/64"
echo "run.sh: next hop: the Maildir $MAILDIR"
before=$(ls "$MAILDIR/new" 2>/dev/null | wc -l)
SUBJ="mxgate run.sh check $(date +%s)"
echo "run.sh: sending one message with swaks from inside the namespace..."
ip netns exec $NS swaks --server 198.18.0.2 --port 25 \
	--from sender@example.org --to postmaster@example.com \
	--header "Subject: $SUBJ" --timeout 30 >/tmp/mxgate-swaks.log 2>&1 || {
	cat /tmp/mxgate-swaks.log; echo "run.sh: swaks failed" >&2; exit 1; }
grep -E '^<-  250 2\.0\.0' /tmp/mxgate-swaks.log | tail -1
after=$(ls "$MAILDIR/new" | wc -l)
file=$(grep -l "Subject: $SUBJ" "$MAILDIR"/new/* 2>/dev/null | head -1)
if [ -z "$file" ] || [ "$after" -le "$before" ]; then
	echo "run.sh: the message did not arrive in $MAILDIR/new" >&2
	exit 1
fi
echo "run.sh: arrived: $file"
sed -n '1,4p' "$file"
SUBJ6="mxgate run.sh IPv6 check $(date +%s)"
echo "run.sh: sending one message with swaks over IPv6 (fd00:6d78::2)..."
ip netns exec $NS swaks -6 --server fd00:6d78::2 --port 25 \
	--from sender@example.org --to postmaster@example.com \
	--header "Subject: $SUBJ6" --timeout 30 >/tmp/mxgate-swaks6.log 2>&1 || {
	cat /tmp/mxgate-swaks6.log; echo "run.sh: swaks over IPv6 failed" >&2; exit 1; }
grep -E '^<-  250 2\.0\.0' /tmp/mxgate-swaks6.log | tail -1
file6=$(grep -l "Subject: $SUBJ6" "$MAILDIR"/new/* 2>/dev/null | head -1)
if [ -z "$file6" ]; then
	echo "run.sh: the IPv6 message did not arrive in $MAILDIR/new" >&2
	exit 1
fi
echo "run.sh: arrived: $file6"
sed -n '1,4p' "$file6"
if [ -n "$AUTH_PW" ] && grep -q users_file "$CONF"; then
	SUBJA="mxgate run.sh submission check $(date +%s)"
	echo "run.sh: submitting one message as \"$AUTH_USER\" on 587 (STARTTLS, AUTH)..."
	ip netns exec $NS swaks --server 198.18.0.2 --port 587 --tls \
		--auth-user "$AUTH_USER" --auth-password "$AUTH_PW" --to you@example.com \
		--header "Subject: $SUBJA" --timeout 30 >/tmp/mxgate-swaksa.log 2>&1 || {
		cat /tmp/mxgate-swaksa.log; echo "run.sh: submission failed" >&2; exit 1; }
	grep -E '^<~  235 ' /tmp/mxgate-swaksa.log | tail -1
	filea=$(grep -l "Subject: $SUBJA" "$MAILDIR"/new/* 2>/dev/null | head -1)
	if [ -z "$filea" ] || ! grep -q "with ESMTPSA" "$filea"; then
		echo "run.sh: the submitted message did not arrive (with ESMTPSA) in $MAILDIR/new" >&2
		exit 1
	fi
	echo "run.sh: arrived (authenticated, with ESMTPSA): $filea"
	# the same without AUTH: refused (587 requires it)
	if ip netns exec $NS swaks --server 198.18.0.2 --port 587 --tls \
		--from "$AUTH_USER@example.com" --to you@example.com \
		--timeout 30 >/tmp/mxgate-swaksa.log 2>&1 ||
		! grep -qE '^<~\*+ +530 5\.7\.0' /tmp/mxgate-swaksa.log; then
		cat /tmp/mxgate-swaksa.log
		echo "run.sh: 587 without AUTH was not refused with 530 5.7.0" >&2
		exit 1
	fi
	echo "run.sh: without AUTH on 587: $(grep -E '^<~\*+ +530' /tmp/mxgate-swaksa.log)"
else
	echo "run.sh: submission on 587/465 needs the user's password, printed on the first run only (add users with mxgate-mkpasswd to $STATE/users)"
fi
echo "run.sh: log: $LOG  counters: $STATS"
cat <<EOT
run.sh: try next (from another shell; README.md explains each):
  ip netns exec $NS swaks --server 198.18.0.2 --to you@example.com --tls
  watch -n1 "$ROOT/build/control/mxgatectl stats | head -40"
  $ROOT/build/control/mxgatectl block 198.18.0.1/32 --expire 60
  \$EDITOR $CONF && $ROOT/build/control/mxgatectl reload
  tail -f $LOG
EOT

if [ $CHECK = 1 ]; then
	echo "run.sh: --check done"
	exit 0
fi
echo "run.sh: running; Ctrl-C stops it"
wait $PID
