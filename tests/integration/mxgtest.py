"""mxgtest - shared harness of mxgate's integration tests.

Every test creates its own network namespace (unique name), enters it with
setns(2) so that the mxgate process it starts and every socket it opens live
there, puts mxgate's net_tap port in it with the kernel side at
198.18.0.1/24 (gateway at 198.18.0.2), and removes the namespace when it
ends, pass or fail. Nothing here ever targets an address outside loopback
or that namespace.
"""

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time

CLONE_NEWNET = 0x40000000
KERNEL_IP = "198.18.0.1"
GATEWAY_IP = "198.18.0.2"

_libc = ctypes.CDLL(None, use_errno=True)


def log(*a):
    print(*a, flush=True)


def sh(*cmd, check=True):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), r.stderr.strip()))
    return r.stdout


class Netns:
    """A fresh network namespace that this process enters."""

    def __init__(self, tag, ipv6=False):
        self.name = "mxgt-%s-%d" % (tag, os.getpid())
        self._orig = None
        self.ipv6 = ipv6  # IPv6 tests keep it on (without RAs accepted)

    def __enter__(self):
        sh("ip", "netns", "add", self.name)
        self._orig = os.open("/proc/self/ns/net", os.O_RDONLY)
        fd = os.open("/run/netns/" + self.name, os.O_RDONLY)
        if _libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns")
        os.close(fd)
        sh("ip", "link", "set", "lo", "up")
        # Keep IPv6 chatter (router solicitations) off the test port.
        off = "0" if self.ipv6 else "1"
        sh("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=" + off,
           check=False)
        sh("sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=" + off,
           check=False)
        return self

    def __exit__(self, *exc):
        if self._orig is not None:
            _libc.setns(self._orig, CLONE_NEWNET)
            os.close(self._orig)
        sh("ip", "netns", "del", self.name, check=False)
        return False


class Mxgate:
    """An mxgate process on a net_tap port inside the current netns."""

    def __init__(self, binary, args=(), tap="mxgt0", kernel_ip=KERNEL_IP,
                 ip=GATEWAY_IP + "/24", stats_dir="/tmp"):
        self.binary = binary
        self.tap = tap
        self.kernel_ip = kernel_ip
        self.stats_file = os.path.join(
            stats_dir, "mxgate-stats-%d-%s.json" % (os.getpid(), tap))
        self.args = ["--port", "net_tap0,iface=%s" % tap, "--ip", ip,
                     "--stats-file", self.stats_file,
                     "--stats-interval-ms", "100"] + list(args)
        self.proc = None
        self.out_path = self.stats_file + ".log"

    def start(self, wait=True):
        # The stats file's name holds this test's pid: a file left by an
        # earlier process with the same pid (a killed run) would pass for
        # this mxgate's until it writes its own.
        for p in (self.stats_file, self.stats_file + ".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(p)
        self._out = open(self.out_path, "w")
        log("start:", self.binary, " ".join(self.args))
        self.proc = subprocess.Popen([self.binary] + self.args,
                                     stdout=self._out,
                                     stderr=subprocess.STDOUT)
        if wait:
            self._wait_tap()
        return self

    def _wait_tap(self, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mxgate exited early (%d): %s" %
                                   (self.proc.returncode, self.output()))
            r = subprocess.run(["ip", "link", "show", self.tap],
                               capture_output=True)
            if r.returncode == 0 and os.path.exists(self.stats_file):
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("tap %s never appeared: %s" %
                               (self.tap, self.output()))
        sh("ip", "addr", "add", self.kernel_ip + "/24", "dev", self.tap)
        sh("ip", "link", "set", self.tap, "up")

    def output(self):
        try:
            with open(self.out_path) as f:
                return f.read()
        except OSError:
            return ""

    def stats(self):
        for _ in range(50):
            try:
                with open(self.stats_file) as f:
                    return json.load(f)
            except (OSError, ValueError):
                time.sleep(0.05)
        raise RuntimeError("no stats from mxgate")

    def total(self, key):
        return self.stats()["total"][key]

    def wait_for(self, pred, timeout, what):
        deadline = time.time() + timeout
        s = None
        while time.time() < deadline:
            s = self.stats()
            if pred(s["total"]):
                return s
            time.sleep(0.1)
        raise AssertionError("timed out waiting for %s; last totals: %s" %
                             (what, json.dumps(s["total"]) if s else None))

    def _stop(self, timeout=30):
        """SIGTERM (unless it already exited), wait, and return (exit
        status, final stats). Private: tests stop mxgate with shutdown(),
        which also checks how it ended."""
        if self.proc is None:
            return None, None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("mxgate did not stop on SIGTERM")
        if not self._out.closed:
            self._out.close()
        return self.proc.returncode, read_stats(self.stats_file)

    def shutdown(self, res, timeout=30):
        """The one way a test stops mxgate: SIGTERM (or nothing, if it
        already exited by itself: --exit-after-connect, drain), then
        check_exit(): exit status 0 and every mbuf returned. Under ASan a
        leak report or a crash at teardown is a non-zero status, so every
        test fails on it. Returns the final stats (None if absent)."""
        try:
            rc, st = self._stop(timeout)
        except AssertionError as e:
            res.check(False, str(e))
            return None
        if rc is not None and rc != 0:
            log(self.output()[-3000:])
        check_exit(res, rc, st, "mxgate")
        return st

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for p in (self.stats_file, self.stats_file + ".tmp"):
            with contextlib.suppress(OSError):
                os.unlink(p)


def check_exit(res, rc, st, what="mxgate"):
    """The shared shutdown check: exit status 0 and, from the final stats
    (--stats-file), every mbuf back in the pool."""
    res.check(rc == 0, "%s exit status %s at shutdown (0: clean; a "
              "sanitizer report or a crash at teardown is not)" % (what, rc))
    res.check(st is not None and st.get("shutdown", {}).get(
        "all_mbufs_returned") is True, "%s shutdown returned every mbuf "
              "(%s)" % (what, (st or {}).get("shutdown")))


def read_stats(path):
    """A final stats file, or None."""
    with contextlib.suppress(Exception):
        with open(path) as f:
            return json.load(f)
    return None


def connect(ip, port, timeout=10.0, retries=50):
    last = None
    for _ in range(retries):
        try:
            s = socket.create_connection((ip, port), timeout=timeout)
            return s
        except OSError as e:
            last = e
            time.sleep(0.1)
    raise last


def pattern(seed, n):
    """n deterministic pseudo-random bytes for connection `seed`."""
    import random
    return random.Random(seed).randbytes(n)


class Result:
    def __init__(self, name):
        self.name = name
        self.failures = []

    def check(self, cond, msg):
        if cond:
            log("  ok:", msg)
        else:
            log("  FAIL:", msg)
            self.failures.append(msg)

    def finish(self):
        if self.failures:
            log("%s: FAILED (%d)" % (self.name, len(self.failures)))
            for f in self.failures:
                log("   -", f)
            sys.exit(1)
        log("%s: passed" % self.name)
        sys.exit(0)
