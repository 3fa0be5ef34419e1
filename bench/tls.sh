#!/bin/sh
# bench/tls.sh - server-side TLS handshakes per second per worker thread
# through tls_session (bench/tls/tls_bench.c: full TLS 1.3 handshakes
# with an ECDSA P-256 and an RSA 2048 certificate, X25519, and resumed
# ones with a ticket), against the bound `openssl speed` gives on this
# machine for the same public-key operations:
#   full, ECDSA:  1 / (1/ecdsa_p256_sign + 2/x25519)
#   full, RSA:    1 / (1/rsa2048_sign    + 2/x25519)
#   resumed:      1 / (2/x25519)          (psk_dhe_ke: ECDHE, no signature)
# "2/x25519": the server's key share is one scalar multiplication and the
# shared secret another; `openssl speed ecdhx25519` times one (derive).
# (The key share is a fixed-base multiplication, which OpenSSL 3.0 does
# no faster than the variable-base one `openssl speed` times: see the
# in-process keygen figure.) Everything else a handshake costs (key
# schedule, certificate and record encoding, allocation, and OpenSSL 3's
# per-operation fetch and context set-up) is what the ratio measures.
# A second bound, "libssl calls", times the same three operations in this
# process through the EVP calls libssl itself makes (a context per
# operation, algorithm fetched by name): 1 / (1/sign + 1/keygen +
# 1/derive); the ratio to it is the share of the handshake beyond the
# public-key operations as OpenSSL 3 performs them. One CPU
# (taskset), CPU time of the server calls only; the load average is
# recorded because the machine is shared.
# usage: bench/tls.sh [seconds-per-test]   (default 3)
# Output: bench/results/tls.json
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build-bench}
secs=${1:-3}

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" --buildtype=release >/dev/null
fi
ninja -C "$build" bench/tls/tls_bench >/dev/null
mkdir -p "$here/results"
out="$here/results/tls.json"
cpu=$(taskset -pc $$ 2>/dev/null | sed 's/.*: *//; s/[,-].*//' || echo 0)
pin="taskset -c $cpu"
command -v taskset >/dev/null 2>&1 || pin=""

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
speed=$($pin openssl speed -seconds "$secs" ecdsap256 rsa2048 ecdhx25519 2>/dev/null)
bench=$($pin "$build/bench/tls/tls_bench" "$secs")
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

SPEED="$speed" BENCH="$bench" LB="$load_before" LA="$load_after" \
CPU="$(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -1)" \
python3 - "$out" <<'PY'
import json, os, re, sys, time
sp = os.environ["SPEED"]
rsa = float(re.search(r"rsa 2048 bits\s+\S+\s+\S+\s+([\d.]+)", sp).group(1))
ec = float(re.search(r"ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)", sp).group(1))
x = float(re.search(r"ecdh \(X25519\)\s+\S+\s+([\d.]+)", sp).group(1))
b = json.loads(os.environ["BENCH"])
bound = {
    "ecdsa_p256_full": 1 / (1 / ec + 2 / x),
    "rsa_2048_full": 1 / (1 / rsa + 2 / x),
    "resumed": 1 / (2 / x),
}
p = b["primitives_per_second"]
kx = 1 / p["x25519_keygen"] + 1 / p["x25519_derive"]
bound_ssl = {
    "ecdsa_p256_full": 1 / (1 / p["ecdsa_p256_sha256_sign"] + kx),
    "rsa_2048_full": 1 / (1 / p["rsa2048_pss_sha256_sign"] + kx),
    "resumed": 1 / kx,
}
r = {
    "openssl_speed": {"rsa2048_sign_per_s": rsa, "ecdsa_p256_sign_per_s": ec,
                      "x25519_per_s": x},
    "bound_per_s": {k: round(v) for k, v in bound.items()},
    "bound_libssl_calls_per_s": {k: round(v) for k, v in bound_ssl.items()},
    "measured_per_s": {
        "ecdsa_p256_full": b["ecdsa_p256"]["full_per_second"],
        "rsa_2048_full": b["rsa_2048"]["full_per_second"],
        "ecdsa_p256_resumed": b["ecdsa_p256"]["resumed_per_second"],
        "rsa_2048_resumed": b["rsa_2048"]["resumed_per_second"],
    },
    "raw": b,
    "load_average_before": os.environ["LB"],
    "load_average_after": os.environ["LA"],
    "cpu_model": os.environ["CPU"],
    "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
}
m = r["measured_per_s"]
r["ratio_to_bound"] = {
    "ecdsa_p256_full": round(m["ecdsa_p256_full"] / bound["ecdsa_p256_full"], 3),
    "rsa_2048_full": round(m["rsa_2048_full"] / bound["rsa_2048_full"], 3),
    "ecdsa_p256_resumed": round(m["ecdsa_p256_resumed"] / bound["resumed"], 3),
}
r["ratio_to_libssl_calls_bound"] = {
    "ecdsa_p256_full": round(m["ecdsa_p256_full"] / bound_ssl["ecdsa_p256_full"], 3),
    "rsa_2048_full": round(m["rsa_2048_full"] / bound_ssl["rsa_2048_full"], 3),
    "ecdsa_p256_resumed": round(m["ecdsa_p256_resumed"] / bound_ssl["resumed"], 3),
}
json.dump(r, open(sys.argv[1], "w"), indent=2)
rows = (("ecdsa_p256_full", "ecdsa_p256_full", "full ECDSA"),
        ("rsa_2048_full", "rsa_2048_full", "full RSA"),
        ("ecdsa_p256_resumed", "resumed", "resumed (ECDSA)"))
for mk, bk, label in rows:
    print(f"{label:16s} {m[mk]:7.0f}/s  speed bound {bound[bk]:7.0f}/s "
          f"({100 * m[mk] / bound[bk]:.0f} %)  libssl-calls bound "
          f"{bound_ssl[bk]:7.0f}/s ({100 * m[mk] / bound_ssl[bk]:.0f} %)")
print("load average", os.environ["LB"], "->", os.environ["LA"])
PY
echo "results: $out"

# Part two (issue 13): the STARTTLS comparison with Postfix and the
# plaintext latency during a handshake flood, as root (netns, tap):
# bench/tls-starttls.sh. STARTTLS=0 skips it.
if [ "${STARTTLS:-1}" != 0 ] && [ "$(id -u)" = 0 ]; then
	"$here/tls-starttls.sh" ${STARTTLS_MSGS:-} ${STARTTLS_SESSIONS:-}
fi
