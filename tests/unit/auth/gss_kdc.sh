#!/bin/sh
# gss_kdc.sh - starts a real MIT KDC (krb5-kdc) in a private network
# namespace (loopback only, realm MXG.TEST, everything in a temp dir),
# creates alice, smtp/mx.mxg.test and imap/mx.mxg.test with keytabs,
# gets alice a ticket with kinit, and runs test_gss_kdc for each case:
# good; wrong keytab (stale key); no key for the service (454); a ticket
# for another service; an expired ticket. Needs root (unshare -n).
# usage: gss_kdc.sh TEST_GSS_KDC
set -eu
bin=$1
if [ "${MXG_IN_NETNS:-}" != 1 ]; then
	exec env MXG_IN_NETNS=1 unshare -n "$0" "$@"
fi
ip link set lo up
d=$(mktemp -d /tmp/gss_kdc.XXXXXX)
kdcpid=
cleanup() {
	[ -n "$kdcpid" ] && kill "$kdcpid" 2>/dev/null || true
	rm -rf "$d"
}
trap cleanup EXIT INT TERM
port=8888
cat > "$d/krb5.conf" <<EOC
[libdefaults]
	default_realm = MXG.TEST
	dns_lookup_kdc = false
	dns_lookup_realm = false
	rdns = false
	dns_canonicalize_hostname = false
	clockskew = 1
[realms]
	MXG.TEST = {
		kdc = 127.0.0.1:$port
	}
EOC
cat > "$d/kdc.conf" <<EOC
[kdcdefaults]
	kdc_ports = $port
	kdc_tcp_ports = $port
[realms]
	MXG.TEST = {
		database_name = $d/principal
		key_stash_file = $d/stash
		acl_file = $d/kadm5.acl
		max_life = 1h
		supported_enctypes = aes256-cts-hmac-sha1-96:normal
	}
[logging]
	kdc = FILE:$d/kdc.log
EOC
: > "$d/kadm5.acl"
export KRB5_CONFIG="$d/krb5.conf" KRB5_KDC_PROFILE="$d/kdc.conf"
export KRB5CCNAME="FILE:$d/cc"
kdb5_util create -s -r MXG.TEST -P master-pw >/dev/null
ka() { kadmin.local -r MXG.TEST -q "$1" >/dev/null; }
ka "addprinc -pw alice-pw alice"
ka "addprinc -randkey smtp/mx.mxg.test"
ka "addprinc -randkey imap/mx.mxg.test"
# wrong.keytab gets a key that the next ktadd replaces (stale kvno)
ka "ktadd -k $d/wrong.keytab smtp/mx.mxg.test"
ka "ktadd -k $d/smtp.keytab smtp/mx.mxg.test"
ka "ktadd -k $d/imap.keytab imap/mx.mxg.test"
krb5kdc -n -P "$d/kdc.pid" &
kdcpid=$!
ok=0
for i in 1 2 3 4 5 6 7 8 9 10; do
	if echo alice-pw | kinit alice >/dev/null 2>&1; then ok=1; break; fi
	sleep 0.5
done
[ $ok = 1 ] || { echo "kinit failed"; cat "$d/kdc.log"; exit 1; }
svc=smtp/mx.mxg.test@MXG.TEST
fails=0
run() {
	echo "== $1: $*"
	if "$bin" "$@"; then echo "-- pass"; else echo "-- FAIL"; fails=$((fails+1)); fi
}
run good "$d/smtp.keytab" "$svc" "$svc"
run fail "$d/wrong.keytab" "$svc" "$svc"
run temp "$d/imap.keytab" "$svc" "$svc"
run fail "$d/smtp.keytab" "$svc" "imap/mx.mxg.test@MXG.TEST"
# expired: a fresh 5 s ticket, a token made at once, presented late
kdestroy >/dev/null 2>&1 || true
echo alice-pw | kinit -l 5s alice >/dev/null
run expired "$d/smtp.keytab" "$svc" "$svc"
echo "$fails failing case(s)"
[ $fails = 0 ]
