#!/bin/sh
# Installs every Debian 12 package that mxgate's build, tests and benchmarks
# need. Idempotent: runs `apt-get update` at most once and installs only what
# is missing. Must run as root on Debian 12 (bookworm).
set -eu

PKGS="build-essential meson ninja-build pkg-config
      dpdk-dev libdpdk-dev libssl-dev libhyperscan-dev libjemalloc-dev
      clang llvm libclang-rt-14-dev
      iproute2 procps psmisc python3 swaks libio-socket-inet6-perl openssl
      postfix postfix-pcre gnuplot-nox jq libconfig-dev libjansson-dev ethtool libpcre2-dev
      debhelper dpkg-dev fakeroot lintian systemd logrotate adduser
      man-db groff-base dpdk
      libcrypt-dev libkrb5-dev krb5-kdc krb5-admin-server krb5-user whois
      python3-gssapi"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing="$missing $p"
	fi
done

if [ -n "$missing" ]; then
	echo "install-deps: installing:$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Postfix asks questions at install time; answer them up front.
	echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
	apt-get update -q
	apt-get install -y -q --no-install-recommends $missing
else
	echo "install-deps: all packages present"
fi
