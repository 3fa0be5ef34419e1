"""idle_clients.py - many idle SMTP sessions from kernel clients.

Shared by bench/sessions.py (RSS per idle session to 100,000) and the
gw_idle integration test. Worker processes (one per source address from
198.18.0.0/15, each under its RLIMIT_NOFILE) open connections in
non-blocking batches, read the 220 greeting and hold them idle. Must run
inside the test's network namespace (mxgtest.Netns), with mxgate reached
at GATEWAY_IP through its --gateway KERNEL_IP.
"""

import contextlib
import errno
import multiprocessing
import resource
import select
import socket
import time

import mxgtest
from mxgtest import GATEWAY_IP

# connections per source address and per client process: under its hard
# RLIMIT_NOFILE (20,000 here; raising the hard limit needs
# CAP_SYS_RESOURCE, which this container's root lacks)
PER_SRC = max(1000, min(
    25000, resource.getrlimit(resource.RLIMIT_NOFILE)[1] - 500))
IP_BIND_ADDRESS_NO_PORT = 24  # linux/in.h (Linux 4.2)
BATCH = 400          # connects in flight at once
STEP_TIMEOUT = 240   # seconds per step, bound (under the 300 s time-out)
GREET_WAIT = 15      # seconds a connection may wait for its greeting


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1])
    return 0


def rss_by_mapping(pid, top=6):
    """The mappings holding most resident memory: [(size_kib, rss_kib,
    name)], so a step's growth can be put on the table it came from."""
    rows, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for ln in f:
            p = ln.split()
            if "-" in p[0] and not p[0].endswith(":"):
                lo, hi = (int(x, 16) for x in p[0].split("-"))
                cur = [(hi - lo) // 1024, 0, p[5] if len(p) > 5 else "anon"]
                rows.append(cur)
            elif p[0] == "Rss:" and cur:
                cur[1] = int(p[1])
    rows.sort(key=lambda r: -r[1])
    return rows[:top]


def add_sources(tap, n):
    srcs = []
    for i in range(n):
        ip = "198.18.%d.1" % (i * 2 + 1) if i else mxgtest.KERNEL_IP
        if i:
            mxgtest.sh("ip", "addr", "add", ip + "/32", "dev", tap)
        srcs.append(ip)
    # mxgate is on 198.18.0.0/24: it reaches the other sources through
    # its --gateway, the kernel end of the tap, which owns them
    return srcs


def open_idle(srcs, held, target, deadline, stats):
    """Open sessions until len(held) == target; each greeted (220)."""
    ep = select.epoll()
    pending = {}
    bad = 0
    while (len(held) < target or pending) and time.time() < deadline:
        while len(pending) < BATCH and len(held) + len(pending) < target:
            k = len(held) + len(pending)
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            # Without this, bind() picks the port alone, among ports no
            # other socket has bound: past half the range (the odd ports
            # bind prefers) each bind scans the port table, and the
            # opening rate fell from ~5,000/s to ~400/s past ~14,000
            # sessions. With it, connect() picks the port for the full
            # 4-tuple, so a source address can use the whole range.
            s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
            s.bind((srcs[0], 0))
            r = s.connect_ex((GATEWAY_IP, 25))
            if r not in (0, errno.EINPROGRESS):
                s.close()
                bad += 1
                continue
            ep.register(s.fileno(), select.EPOLLIN)
            pending[s.fileno()] = [s, b"", time.time()]
        for fd, _ in ep.poll(1.0):
            s, buf, _t = pending[fd]
            try:
                d = s.recv(512)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                d = b""
            buf += d
            pending[fd][1] = buf
            if d and not buf.endswith(b"\r\n"):
                continue
            ep.unregister(fd)
            del pending[fd]
            if buf.startswith(b"220 "):
                held.append(s)
            else:
                bad += 1
                s.close()
        # A connection whose greeting has not come after GREET_WAIT is
        # given up and replaced: under a SYN burst past the gateway's SYN
        # backlog it answers with SYN cookies, and a cookie connection
        # whose third ACK was lost exists only on the client, which waits
        # for a greeting that never comes (server-speaks-first).
        now = time.time()
        for fd in [fd for fd, p in pending.items()
                   if now - p[2] > GREET_WAIT]:
            ep.unregister(fd)
            pending.pop(fd)[0].close()
            stats["retried"] += 1
    ep.close()
    for s, _, _t in pending.values():
        s.close()
    return bad


def timed_client():
    """One full client (greeting, EHLO, QUIT): (ms, served)."""
    t0 = time.time()
    try:
        s = socket.create_connection((GATEWAY_IP, 25), timeout=10)
        f = s.makefile("rb")
        g = f.readline()
        s.sendall(b"EHLO probe.test\r\n")
        while True:
            ln = f.readline()
            if not ln or ln[3:4] != b"-":
                break
        s.sendall(b"QUIT\r\n")
        q = f.readline()
        s.close()
    except OSError:
        return (time.time() - t0) * 1000, False
    return (time.time() - t0) * 1000, g.startswith(b"220") and \
        q.startswith(b"221")


def worker(conn, src):
    """One client process: holds up to PER_SRC sessions from src."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    held = []
    while True:
        msg = conn.recv()
        if msg == "close":
            for s in held:
                s.close()
            conn.send(0)
            return
        st = {"retried": 0}
        bad = open_idle([src], held, msg, time.time() + STEP_TIMEOUT, st)
        conn.send((len(held), bad, st["retried"]))


class IdleClients:
    """Worker processes holding idle greeted sessions, n_max in all."""

    def __init__(self, tap, n_max):
        # per-netns: the whole port range for each source address
        mxgtest.sh("sysctl", "-qw",
                   "net.ipv4.ip_local_port_range=1024 65535")
        self.srcs = add_sources(tap, (n_max + PER_SRC - 1) // PER_SRC)
        self.procs = []
        for ip in self.srcs:
            pa, pb = multiprocessing.Pipe()
            p = multiprocessing.Process(target=worker, args=(pb, ip))
            p.start()
            self.procs.append((p, pa))

    def hold(self, total):
        """Spread total sessions over the workers; returns (held, failed,
        retried) once every worker has its share or its step timed out."""
        left = total
        for p, c in self.procs:
            c.send(min(left, PER_SRC))
            left -= min(left, PER_SRC)
        held = bad = retried = 0
        for p, c in self.procs:
            h, b, rt = c.recv()
            held += h
            bad += b
            retried += rt
        return held, bad, retried

    def close(self):
        for p, c in self.procs:
            with contextlib.suppress(Exception):
                c.send("close")
                c.recv()
            p.join(30)
        self.procs = []
