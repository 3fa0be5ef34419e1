#!/usr/bin/env python3
"""Backend connection accounting (issue 11), end to end.

Scenarios:
  repro   the reported attack: a pool with max_conns_per_server = 3, six
          MAIL/RCPT/RSET loops with a quoted local part holding '>'
          ("a>b"@...) in MAIL on one session, then six with it in RCPT on
          another. Every such address is relayed as written (250 from the
          backend, which saw the quoted local part verbatim), no backend
          connection is leaked, a legitimate client then delivers with 250,
          and the gateway's live backend connections are all idle in the
          pool (and as many as the backend sees open).
  chaos   seeded, bounded rounds mixing client behaviours (abort at each
          step, RSET, QUIT, disconnect, malformed and quoted addresses)
          with backend faults (4xx/5xx at each step, stall, close) on
          --cores 1 or 2. After each round (sessions gone): the invariant
          counter gw_be_invariant_errors is 0 and every live backend
          connection is idle; at the end a clean delivery, the same checks,
          and mxgate exits 0 (its teardown check would make it exit 5).
"""

import argparse
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import mxgtest  # noqa: E402
import peers  # noqa: E402
import scriptpeer  # noqa: E402
from mxgtest import GATEWAY_IP, KERNEL_IP, log  # noqa: E402
from test_gateway import (TEST_POLICY, check_config, listeners,  # noqa: E402
                          smtp_pool, write_config)

BACKEND_PORT = 2525
STARTED = []


def start_gateway(a, tmp, res, pool, cores=1):
    top = {
        "stack": {"port": "net_tap0,iface=mxgt0",
                  "address": GATEWAY_IP + "/24", "cores": cores},
        "listeners": listeners(),
        "default_pool": pool["name"],
        "pools": [pool],
        "log": {"file": os.path.join(tmp, "mxgate.log"), "level": "info"},
        "policy": TEST_POLICY,
    }
    conf = os.path.join(tmp, "mxgate.conf")
    write_config(conf, top)
    if not check_config(a.mxgate, conf, res):
        raise RuntimeError("config rejected")
    gw = mxgtest.Mxgate(a.mxgate, ["--config", conf])
    STARTED.append(gw)
    gw.start()
    return gw


def settle(gw, backend, timeout=30):
    """Wait (bounded) until no session is live and every live backend
    connection is idle and seen open by the backend; return the totals."""
    deadline = time.time() + timeout
    t = None
    while time.time() < deadline:
        t = gw.stats()["total"]
        if (t["gw_sessions_live"] == 0 and
                t["gw_backend_live"] == t.get("gw_backend_idle", -1) and
                backend.open_conns == t["gw_backend_live"]):
            return t, True
        time.sleep(0.1)
    return t, False


def check_settled(res, gw, backend, what, limit=None, timeout=30):
    t, ok = settle(gw, backend, timeout)
    res.check(ok, "%s: every live backend connection is idle in the pool "
              "(live %d, idle %d, backend sees %d open)" %
              (what, t["gw_backend_live"], t.get("gw_backend_idle", -1),
               backend.open_conns))
    if limit is not None:
        res.check(t["gw_backend_live"] <= limit,
                  "%s: %d backend connections held (limit %d)" %
                  (what, t["gw_backend_live"], limit))
    res.check(t.get("gw_be_invariant_errors") == 0,
              "%s: backend invariant holds (gw_be_invariant_errors %s)" %
              (what, t.get("gw_be_invariant_errors")))
    return t


def deliver(res, what, timeout=60):
    c = peers.SmtpClient(GATEWAY_IP, 25, timeout=timeout)
    try:
        c.ehlo()
        body = peers.message("%s@mxgt.test" % what, "ok@example.org",
                             ["user@example.net"])
        r = c.transaction("ok@example.org", ["user@example.net"], body)
        res.check(r["outcome"] == 250, "%s: a legitimate client delivers "
                  "with 250 (%s)" % (what, r["dot"] or r["rcpts"] or
                                     r["mail"]))
    finally:
        c.quit()


def check_exit(res, gw):
    # The shared shutdown check (exit 0, every mbuf back); exit status 5
    # would be a broken backend invariant at teardown.
    st = gw.shutdown(res)
    if st:
        res.check(st["total"].get("gw_be_invariant_errors") == 0,
                  "final stats: gw_be_invariant_errors 0")


# ------------------------------------------------------------------ repro

def scenario_repro(a, tmp, res):
    pool = smtp_pool("default", port=BACKEND_PORT, max_conns_per_server=3)
    gw = start_gateway(a, tmp, res, pool)
    with scriptpeer.ScriptServer(KERNEL_IP, BACKEND_PORT) as be:
        quoted = '"a>b"@attacker.test'
        for where in ("MAIL", "RCPT"):
            c = peers.SmtpClient(GATEWAY_IP, 25, timeout=30)
            c.ehlo()
            codes = []
            for i in range(6):
                if where == "MAIL":
                    m = c.cmd("MAIL FROM:<%s>" % quoted)
                    r = c.cmd("RCPT TO:<user%d@example.net>" % i)
                else:
                    m = c.cmd("MAIL FROM:<ok@example.org>")
                    r = c.cmd("RCPT TO:<\"a>b\"@example.net>")
                rs = c.cmd("RSET")
                codes.append((m[0], r[0], rs[0]))
                log("  loop %d (%s): MAIL %s / RCPT %s / RSET %s" %
                    (i + 1, where, m[1], r[1], rs[1]))
            c.quit()
            res.check(all(x == (250, 250, 250) for x in codes),
                      "six loops with a quoted '>' in %s: MAIL, RCPT and "
                      "RSET all 250, the address relayed as written (%s)" %
                      (where, codes))
            t = check_settled(res, gw, be, "after the %s loops" % where,
                              limit=3)
            log("  totals: live %d idle %s connects %d reused %d" %
                (t["gw_backend_live"], t.get("gw_backend_idle"),
                 t["gw_backend_connects"], t["gw_backend_reused"]))
        sent = [x for _, x in be.commands]
        res.check("MAIL FROM:<%s>" % quoted in sent,
                  "the backend got MAIL FROM:<%s> verbatim" % quoted)
        res.check('RCPT TO:<"a>b"@example.net>' in sent,
                  "the backend got the quoted recipient verbatim")
        deliver(res, "after the loops")
        check_settled(res, gw, be, "at the end", limit=3)
        check_exit(res, gw)


# ------------------------------------------------------------------ chaos

GOOD_FROM = ["ok@example.org", '"john doe"@example.org',
             '"a>b"@example.org', "\u00fcser@example.org", ""]
BAD_PATHS = ["<a b@example.org>", "<a..b@example.org>", "<@x>",
             "<\"unterminated@example.org>", "<a@-bad.example>",
             "<a@[300.1.1.1]>"]
GOOD_RCPT = ["user@example.net", '"x>y"@example.net', "u@[198.18.0.1]",
             "postmaster", "first.last+tag@example.net",
             "\u00fc@example.net"]
STEPS = ("mail", "rcpt", "data", "body", "dot", "done")
ENDINGS = ("rset", "quit", "disconnect", "continue")


def client_run(seed, port, log_lines):
    """One client with its own seeded script; returns nothing, raises
    nothing (a hang is bounded by the socket time-out)."""
    rng = random.Random(seed)
    try:
        c = peers.SmtpClient(GATEWAY_IP, port, timeout=30, connect_retries=5)
    except OSError as e:
        log_lines.append("client %d: connect %r" % (seed, e))
        return
    try:
        c.ehlo()
        for _txn in range(rng.randint(1, 3)):
            stop = rng.choice(STEPS)
            frm = rng.choice(GOOD_FROM)
            if rng.random() < 0.2:
                c.cmd("MAIL FROM:%s" % rng.choice(BAD_PATHS))
            utf8 = any(ord(ch) > 127 for ch in frm) or rng.random() < 0.5
            mail = "MAIL FROM:<%s>%s" % (frm, " SMTPUTF8" if utf8 else "")
            if stop not in ("mail", "rcpt") and rng.random() < 0.35:
                # RFC 2920: MAIL, 2-4 RCPTs and DATA in one write, so a
                # backend fault lands on a middle RCPT of a pipelined
                # group; every command gets exactly one reply, in order.
                rcpts = [rng.choice(GOOD_RCPT)
                         for _ in range(rng.randint(2, 4))]
                if not utf8:
                    rcpts = [r if all(ord(ch) < 128 for ch in r)
                             else "user@example.net" for r in rcpts]
                c.send("".join(x + "\r\n" for x in
                               [mail] + ["RCPT TO:<%s>" % r for r in rcpts]
                               + ["DATA"]))
                codes = [c.reply()[0] for _ in range(len(rcpts) + 2)]
                check_group(seed, codes)
                if codes[-1] == 354:
                    c.send(".\r\n")   # an empty message
                    c.reply()
                c.quit()
                return
            m = c.cmd(mail)
            if stop == "mail" or m[0] != 250:
                pass
            else:
                ok = 0
                for _ in range(rng.randint(1, 3)):
                    if rng.random() < 0.15:
                        c.cmd("RCPT TO:%s" % rng.choice(BAD_PATHS))
                    rcpt = rng.choice(GOOD_RCPT)
                    if not utf8 and any(ord(ch) > 127 for ch in rcpt):
                        rcpt = "user@example.net"
                    r = c.cmd("RCPT TO:<%s>" % rcpt)
                    ok += r[0] == 250
                if stop != "rcpt" and ok:
                    d = c.cmd("DATA")
                    if d[0] == 354 and stop != "data":
                        body = peers.message("c%d@mxgt.test" % seed, frm,
                                             ["user@example.net"],
                                             size=rng.choice((200, 5000)))
                        if stop == "body":
                            c.send(peers.dot_stuff(body)[:100])
                        else:
                            c.send(peers.dot_stuff(body) + b".\r\n")
                            c.reply()
                    elif d[0] == 354:
                        stop = "body"
            end = rng.choice(ENDINGS)
            if stop == "body" and end in ("rset", "continue"):
                end = "disconnect"   # mid-body the only way out
            if end == "rset":
                c.cmd("RSET")
            elif end == "quit":
                c.quit()
                return
            elif end == "disconnect":
                with_rst = rng.random() < 0.5
                if with_rst:
                    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.close()
                return
        c.quit()
    except (OSError, peers.SmtpError) as e:
        log_lines.append("client %d: %r" % (seed, e))
        c.close()


GROUP_ERRORS = []   # replies of a pipelined group that cannot be in order


def check_group(seed, codes):
    """The replies to MAIL, RCPT x n, DATA sent as one group. In order,
    only DATA may get 354, and DATA gets 354 or 4xx/5xx. A MAIL that
    opened the transaction (250) makes DATA 354 only after an accepted
    RCPT (RFC 2920 3.1); a MAIL refused with anything but 503 (503: a
    transaction of this session is still open and the RCPTs join it)
    leaves no transaction, so no RCPT is accepted and DATA is refused.
    A reply shifted by one command (one too many or too few) breaks one
    of these."""
    mail, rcpt, data = codes[0], codes[1:-1], codes[-1]
    rcpt_ok = any(x in (250, 251) for x in rcpt)
    ok = mail != 354 and 354 not in rcpt and \
        all(x // 100 in (2, 4, 5) for x in codes[:-1]) and \
        (data == 354 or data // 100 in (4, 5))
    if mail == 250 and not rcpt_ok:
        ok = ok and data != 354
    if mail not in (250, 503):
        ok = ok and not rcpt_ok and data != 354
    if not ok:
        GROUP_ERRORS.append("client %d: pipelined replies %s" %
                            (seed, codes))


def scenario_chaos(a, tmp, res):
    seed = a.seed
    rounds, clients = a.rounds, 4
    log("chaos: seed %d, %d rounds of %d clients, %d core(s)" %
        (seed, rounds, clients, a.cores))
    pool = smtp_pool("default", port=BACKEND_PORT, max_conns_per_server=4,
                     idle_max=3,
                     timeouts={"connect": 2, "greeting": 2, "ehlo": 2,
                               "mail": 2, "rcpt": 2, "data": 2,
                               "data_block": 2, "data_end": 2, "rset": 2,
                               "quit": 2},
                     health={"interval": 0, "fail_after": 100, "retry": 1})
    decide = covering_faults(seed, a.fault_rate)
    faults_on = [True]
    gw = start_gateway(a, tmp, res, pool, cores=a.cores)
    deadline = time.time() + a.budget
    with scriptpeer.ScriptServer(KERNEL_IP, BACKEND_PORT,
                                 decide=lambda st, cid: decide(st, cid)
                                 if faults_on[0] else None) as be:
        done = 0
        for rnd in range(rounds):
            if time.time() > deadline:
                break
            notes = []
            th = [threading.Thread(target=client_run,
                                   args=(seed * 1000 + rnd * 10 + k,
                                         rng_port(seed, rnd, k), notes),
                                   daemon=True) for k in range(clients)]
            for t in th:
                t.start()
            for t in th:
                t.join(90)
            res.check(not any(t.is_alive() for t in th),
                      "round %d: every client finished" % rnd)
            res.check(not GROUP_ERRORS, "round %d: pipelined groups "
                      "answered in order %s" % (rnd, GROUP_ERRORS[:3]))
            del GROUP_ERRORS[:]
            t, ok = settle(gw, be, timeout=20)
            done += 1
            log("round %d: live %d idle %d backend-open %d invariant %d "
                "faults so far %d%s" %
                (rnd, t["gw_backend_live"], t["gw_backend_idle"],
                 be.open_conns, t["gw_be_invariant_errors"], len(be.faults),
                 "" if ok else " (NOT settled)"))
            if not ok or t["gw_be_invariant_errors"]:
                res.check(False, "round %d: settled with the invariant "
                          "holding (%s)" % (rnd, t))
                break
        res.check(done >= min(rounds, 5), "%d rounds run (of %d; budget "
                  "%d s)" % (done, rounds, a.budget))
        kinds = {(s, f) for _, s, f in be.faults}
        log("backend faults injected: %d, kinds: %s" %
            (len(be.faults), sorted(kinds)))
        res.check(len(kinds) >= 18, "the backend injected at least 18 "
                  "of the 24 step/fault kinds (%d)" % len(kinds))
        faults_on[0] = False
        deliver(res, "after chaos")
        check_settled(res, gw, be, "after chaos", limit=4)
        check_exit(res, gw)


def covering_faults(seed, rate):
    """Like scriptpeer.random_faults (each step faults with probability
    `rate`, seeded), but each step takes the faults in a shuffled rotation,
    so a step that faults n times has seen min(n, 4) different kinds."""
    rng = random.Random(seed)
    rotation = {}

    def decide(step, cid):
        if rng.random() >= rate:
            return None
        q = rotation.setdefault(step, [])
        if not q:
            q.extend(rng.sample(scriptpeer.FAULTS, len(scriptpeer.FAULTS)))
        return q.pop()
    return decide


def rng_port(seed, rnd, k):
    return 587 if (seed + rnd + k) % 3 == 0 else 25


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mxgate")
    ap.add_argument("scenario", choices=("repro", "chaos"))
    ap.add_argument("--cores", type=int, default=1)
    ap.add_argument("--seed", type=int, default=11)
    # 12 rounds at a fault rate of 0.2 inject about as many faults of as
    # many kinds as 25 rounds at 0.12 did, in a third of the time
    # (docs/status.md).
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--fault-rate", type=float, default=0.2)
    ap.add_argument("--budget", type=int, default=240,
                    help="seconds of rounds at most")
    a = ap.parse_args()
    a.mxgate = os.path.abspath(a.mxgate)
    res = mxgtest.Result("backend-%s-%d" % (a.scenario, a.cores))
    tmp = tempfile.mkdtemp(prefix="mxgt-be-%s-" % a.scenario)
    os.chmod(tmp, 0o755)
    try:
        with mxgtest.Netns("be" + a.scenario[:5]):
            try:
                globals()["scenario_" + a.scenario](a, tmp, res)
            except Exception as e:  # noqa: BLE001
                import traceback
                traceback.print_exc()
                res.check(False, "exception: %r" % e)
            finally:
                for gw in STARTED:
                    gw.kill()
    finally:
        if res.failures:
            try:
                with open(os.path.join(tmp, "mxgate.log"),
                          errors="replace") as f:
                    tail = f.read()[-4000:]
                log("--- mxgate log (tail) ---\n" + tail)
            except OSError:
                pass
            for gw in STARTED:
                log("--- mxgate output (tail) ---\n" + gw.output()[-3000:])
            log("(kept %s for inspection)" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    res.finish()


if __name__ == "__main__":
    main()
