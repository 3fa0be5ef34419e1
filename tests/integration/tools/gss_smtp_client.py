#!/usr/bin/python3
"""SMTP AUTH GSSAPI client (RFC 4752) for tests/integration/test_auth.py,
run with Debian's /usr/bin/python3 (python3-gssapi). Uses the ticket
cache of KRB5CCNAME. Prints one JSON line: the AUTH reply, and the
replies of a short transaction when AUTH succeeded.

usage: gss_smtp_client.py GATEWAY PORT SRC SERVICE_HOST [--garbage]
                          [--delay SECONDS]
--delay: make the first token, then wait that long before sending it
(a ticket that expires meanwhile). After a failed AUTH the client sends
NOOP ("noop" in the output: the session is still usable).
"""
import base64
import json
import socket
import sys
import time

import gssapi


def main():
    gw, port, src, host = sys.argv[1], int(sys.argv[2]), sys.argv[3], \
        sys.argv[4]
    garbage = "--garbage" in sys.argv
    delay = float(sys.argv[sys.argv.index("--delay") + 1]) \
        if "--delay" in sys.argv else 0
    s = socket.create_connection((gw, port), timeout=20,
                                 source_address=(src, 0))
    f = s.makefile("rb")

    def reply():
        lines = []
        while True:
            ln = f.readline().decode("latin-1").rstrip("\r\n")
            lines.append(ln)
            if len(ln) < 4 or ln[3] != "-":
                return int(lines[-1][:3]), "\n".join(lines)

    def cmd(line):
        s.sendall(line.encode() + b"\r\n")
        return reply()

    out = {"greeting": reply()[0], "ehlo": cmd("EHLO gss.mxgt.test")}
    name = gssapi.Name("smtp@" + host, gssapi.NameType.hostbased_service)
    ctx = gssapi.SecurityContext(name=name, usage="initiate",
                                 flags=[gssapi.RequirementFlag.mutual_authentication,
                                        gssapi.RequirementFlag.integrity])
    tok = b"\x60\x01\x00" if garbage else ctx.step()
    if delay:
        time.sleep(delay)
    r = cmd("AUTH GSSAPI " + base64.b64encode(tok).decode())
    steps = 0
    while r[0] == 334 and steps < 10:
        steps += 1
        data = base64.b64decode(r[1][4:].strip() or "")
        if not ctx.complete:
            t = ctx.step(data)
            r = cmd(base64.b64encode(t or b"").decode())
        else:
            offer = ctx.unwrap(data).message
            out["offer"] = offer.hex()
            # RFC 4752 3.1: no security layer, no authzid
            ans = ctx.wrap(bytes([1, 0, 0, 0]), False).message
            r = cmd(base64.b64encode(ans).decode())
    out["auth"] = r
    if r[0] != 235:
        out["noop"] = cmd("NOOP")
    if r[0] == 235:
        out["mail"] = cmd("MAIL FROM:<alice@ours.example>")
        out["rcpt"] = cmd("RCPT TO:<x@far.example>")
        out["data"] = cmd("DATA")
        if out["data"][0] == 354:
            s.sendall(b"Subject: gss\r\n\r\nkerberos\r\n.\r\n")
            out["dot"] = reply()
    cmd("QUIT")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
