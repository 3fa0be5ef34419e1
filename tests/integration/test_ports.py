#!/usr/bin/env python3
"""mxgate on the other port kinds the issue names (issue 2):

  af_packet  mxgate on net_af_packet bound to one end of a veth pair in a
             namespace; the kernel at the other end echoes 1 MiB through
             the stack's echo service, five times, byte-exact;
  memif      two mxgate processes joined by net_memif (server and client);
             the client's stack actively opens to the server's echo service
             and verifies 1 MiB each way, three times.

usage: test_ports.py MXGATE
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
from mxgtest import log, sh  # noqa: E402
import test_stack  # noqa: E402

MIB = 1 << 20


def af_packet(binary, res):
    with mxgtest.Netns("afp"):
        sh("ip", "link", "add", "mxga", "type", "veth", "peer", "name",
           "mxgb")
        # The kernel would leave TCP checksums to "hardware" on a veth;
        # af_packet then hands the stack half-done checksums. Real NICs
        # do not do that; turn it off on the kernel side.
        sh("ethtool", "-K", "mxgb", "tx", "off", check=False)
        sh("ethtool", "-K", "mxga", "rx", "off", "tx", "off", check=False)
        sh("ip", "link", "set", "mxga", "up")
        sh("ip", "addr", "add", "198.18.0.1/24", "dev", "mxgb")
        sh("ip", "link", "set", "mxgb", "up")
        stats = os.path.join(tempfile.gettempdir(),
                             "mxgate-afp-%d.json" % os.getpid())
        out = open(stats + ".log", "w")
        p = subprocess.Popen([binary, "--port",
                              "net_af_packet0,iface=mxga",
                              "--ip", "198.18.0.2/24", "--no-gateway",
                              "--echo-port", "7", "--stats-file",
                              stats], stdout=out, stderr=subprocess.STDOUT)
        try:
            time.sleep(1.5)
            res.check(p.poll() is None, "mxgate runs on net_af_packet")
            bad = [r for r in (test_stack.echo_roundtrip(i, MIB)
                               for i in range(5)) if r]
            res.check(not bad, "5 x 1 MiB echo over af_packet byte-exact "
                      "(%s)" % bad[:2])
            p.terminate()
            rc = p.wait(30)
            out.close()
            mxgtest.check_exit(res, rc, mxgtest.read_stats(stats),
                               "af_packet mxgate")
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            if res.failures:
                log(open(stats + ".log").read()[-2000:])


def memif(binary, res):
    with mxgtest.Netns("memif"):
        sock = os.path.join(tempfile.gettempdir(),
                            "mxgate-memif-%d.sock" % os.getpid())
        logs = [sock + ".srv.log", sock + ".cli.log"]
        srv = subprocess.Popen(
            [binary, "--port",
             "net_memif0,role=server,socket=%s,id=0" % sock,
             "--ip", "198.18.1.2/24", "--no-gateway", "--echo-port", "7",
             "--stats-file", sock + ".srv.json"],
            stdout=open(logs[0], "w"), stderr=subprocess.STDOUT)
        cli = None
        try:
            time.sleep(1.5)
            res.check(srv.poll() is None, "memif server mxgate runs")
            cli = subprocess.Popen(
                [binary, "--port",
                 "net_memif0,role=client,socket=%s,id=0" % sock,
                 "--ip", "198.18.1.3/24", "--no-gateway", "--echo-port", "0",
                 "--discard-port", "0",
                 "--connect", "198.18.1.2:7", "--connect-bytes", str(MIB),
                 "--connect-count", "3", "--exit-after-connect",
                 "--stats-file", sock + ".cli.json"],
                stdout=open(logs[1], "w"), stderr=subprocess.STDOUT)
            rc = cli.wait(180)
            text = open(logs[1]).read()
            log(text.strip())
            res.check("3 ok, 0 failed, 3145728 bytes verified" in text,
                      "memif: client stack verified 3 x 1 MiB echoed by "
                      "the server stack")
            mxgtest.check_exit(res, rc, mxgtest.read_stats(
                sock + ".cli.json"), "memif client mxgate")
            srv.terminate()
            rc = srv.wait(30)
            mxgtest.check_exit(res, rc, mxgtest.read_stats(
                sock + ".srv.json"), "memif server mxgate")
        finally:
            for p in (srv, cli):
                if p and p.poll() is None:
                    p.kill()
                    p.wait()
            if res.failures:
                for lg in logs:
                    log(lg, open(lg).read()[-2000:])
            for f in [sock, sock + ".srv.json", sock + ".cli.json"] + logs:
                try:
                    os.unlink(f)
                except OSError:
                    pass


def main():
    res = mxgtest.Result("stack-ports")
    binary = sys.argv[1]
    for fn in (af_packet, memif):
        try:
            fn(binary, res)
        except Exception as e:  # noqa: BLE001
            res.check(False, "%s: exception %r" % (fn.__name__, e))
    res.finish()


if __name__ == "__main__":
    main()
