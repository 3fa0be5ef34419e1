#!/bin/sh
# mxgate's main job on its embedded default, as root on Debian 12:
# installs what it needs, builds, creates the network namespace `mxgate`,
# starts the gateway there on a net_tap port (kernel side 198.18.0.1/24,
# gateway 198.18.0.2), shows that it works, and stays in the foreground
# until Ctrl-C.   --check: run the demonstration, then stop and exit.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CHECK=0
[ "${1:-}" = "--check" ] && CHECK=1

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: must run as root (network namespace, tap port)" >&2
	exit 2
fi
./scripts/install-deps.sh
[ -f build/build.ninja ] || meson setup build -Dwerror=true >/dev/null
ninja -C build >/dev/null

NS=mxgate
TAP=mxg0
STATS=/run/mxgate-stats.json
ip netns del $NS 2>/dev/null || true
ip netns add $NS
ip -n $NS link set lo up

PID=""
cleanup() {
	trap - INT TERM EXIT
	if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
		kill -TERM "$PID"
		wait "$PID" || true
	fi
	ip netns del $NS 2>/dev/null || true
}
trap cleanup INT TERM EXIT

ip netns exec $NS "$ROOT/build/dataplane/mxgate" \
	--port "net_tap0,iface=$TAP" --ip 198.18.0.2/24 \
	--stats-file $STATS "$@" &
PID=$!

i=0
until ip -n $NS link show $TAP >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -gt 300 ] && { echo "run.sh: tap port never appeared" >&2; exit 1; }
	kill -0 $PID 2>/dev/null || { echo "run.sh: mxgate exited" >&2; exit 1; }
	sleep 0.1
done
ip -n $NS addr add 198.18.0.1/24 dev $TAP
ip -n $NS link set $TAP up

echo "run.sh: mxgate is up in netns '$NS' at 198.18.0.2 (echo on 7, discard on 9)"
echo "run.sh: checking the echo service from the namespace..."
ip netns exec $NS python3 - <<'PY'
import socket, time
for _ in range(100):
    try:
        s = socket.create_connection(("198.18.0.2", 7), timeout=5)
        break
    except OSError:
        time.sleep(0.1)
msg = b"hello from the kernel through mxgate's userspace TCP\n"
s.sendall(msg)
got = b""
while len(got) < len(msg):
    got += s.recv(100)
s.close()
print("run.sh: echo reply:", got.decode().strip())
assert got == msg
PY
echo "run.sh: try: ip netns exec $NS nc 198.18.0.2 7   (counters: $STATS)"

if [ $CHECK = 1 ]; then
	echo "run.sh: --check done"
	exit 0
fi
echo "run.sh: running; Ctrl-C stops it"
wait $PID
