#!/bin/sh
# Creates, once, the main job's TLS material under DIR (default
# /var/lib/mxgate/tls): a test CA (ca.pem, ca.key), an ECDSA P-256 and an
# RSA 2048 certificate for NAME (default: this host's name; also valid for
# 198.18.0.2), both signed by the CA, keys readable by root only. Prints
# the paths. Existing files are kept (first run only). Test material: a
# real deployment uses certificates from its own CA or ACME.
# Usage: make-tls-certs.sh [DIR [NAME]]
set -eu
DIR=${1:-/var/lib/mxgate/tls}
NAME=${2:-$(hostname)}
mkdir -p "$DIR"
chmod 700 "$DIR"
umask 077
cd "$DIR"
if [ ! -f ca.pem ]; then
	openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
		-keyout ca.key -out ca.pem -days 3650 -sha256 \
		-subj "/O=mxgate test/CN=mxgate test CA" \
		-addext "basicConstraints=critical,CA:TRUE" \
		-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi
leaf() { # name keyopts...
	out=$1; shift
	[ -f "$out.crt" ] && [ -f "$out.key" ] && return 0
	openssl req -new -nodes "$@" -keyout "$out.key" -out "$out.csr" \
		-subj "/O=mxgate test/CN=$NAME" 2>/dev/null
	printf 'subjectAltName=DNS:%s,DNS:localhost,IP:198.18.0.2\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' \
		"$NAME" > "$out.ext"
	openssl x509 -req -in "$out.csr" -CA ca.pem -CAkey ca.key \
		-CAcreateserial -days 825 -sha256 -extfile "$out.ext" \
		-out "$out.crt" 2>/dev/null
	rm -f "$out.csr" "$out.ext"
}
leaf ecdsa -newkey ec -pkeyopt ec_paramgen_curve:P-256
leaf rsa -newkey rsa:2048
chmod 644 ca.pem ecdsa.crt rsa.crt
echo "tls: CA $DIR/ca.pem"
echo "tls: ECDSA P-256 $DIR/ecdsa.crt $DIR/ecdsa.key ($NAME)"
echo "tls: RSA 2048 $DIR/rsa.crt $DIR/rsa.key ($NAME)"
