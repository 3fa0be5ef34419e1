"""scriptpeer - a scriptable fake SMTP backend for mxgate's backend tests.

ScriptServer is an asyncio SMTP server (own thread) bound inside the
calling test's network namespace. It answers like a well-behaved MTA
(PIPELINING, ENHANCEDSTATUSCODES, 8BITMIME, SIZE, SMTPUTF8) unless its
`decide(step, cid)` hook returns a fault for the step it is at:

  "4xx"    answer 451 4.3.0 (greeting: 421 and close)
  "5xx"    answer 554 5.3.0 (greeting: 554 and close)
  "stall"  stop answering; read and drop until the peer closes
  "close"  abort the TCP connection at once

Steps: greeting, ehlo, mail, rcpt, data, dot, rset. It records every
command line (conn id, text), the number of connections opened and open
now, and the bodies it accepted. Every loop is bounded by the peer closing
or by stop(), which aborts every connection. Nothing here leaves the
namespace.
"""

import asyncio
import contextlib
import random

import peers
from mxgtest import log

STEPS = ("greeting", "ehlo", "mail", "rcpt", "data", "dot", "rset")
FAULTS = ("4xx", "5xx", "stall", "close")


def random_faults(seed, rate):
    """A decide() hook: each step faults with probability `rate`, the
    fault chosen uniformly; seeded (one RNG, steps in arrival order)."""
    rng = random.Random(seed)

    def decide(step, cid):
        if rng.random() < rate:
            return rng.choice(FAULTS)
        return None
    return decide


class ScriptServer(peers.StallServer):
    """The thread, event loop, start/stop and bookkeeping are StallServer's
    (which, with stall_count=0, never stalls by itself); the conversation
    is this class's _handle."""

    def __init__(self, ip, port, decide=None, hostname="script.mxgt.test"):
        super().__init__(ip, port, stall_count=0, hostname=hostname)
        self.decide = decide or (lambda step, cid: None)
        self.faults = []       # (conn id, step, fault)

    def _fault(self, step, cid):
        f = self.decide(step, cid)
        if f:
            self.faults.append((cid, step, f))
        return f

    async def _swallow(self, reader):
        with contextlib.suppress(ConnectionError, OSError,
                                 asyncio.CancelledError):
            while await reader.read(65536):
                pass

    async def _handle(self, reader, writer):
        self.conns += 1
        self.open_conns += 1
        cid = self.conns
        self._writers.add(writer)

        def send(s):
            writer.write(s.encode() + b"\r\n")

        async def fault(step):
            """Apply a fault at step; True when the connection is over."""
            f = self._fault(step, cid)
            if f is None:
                return False
            if f == "close":
                writer.transport.abort()
                return True
            if f == "stall":
                await self._swallow(reader)
                return True
            if step == "greeting":
                send("421 4.3.0 busy" if f == "4xx" else "554 5.3.0 no")
                await writer.drain()
                return True
            send("451 4.3.0 try later" if f == "4xx"
                 else "554 5.3.0 refused")
            return "answered"

        try:
            if await fault("greeting"):
                return
            send("220 %s ESMTP script" % self.hostname)
            await writer.drain()
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode("utf-8", "replace").rstrip("\r\n")
                self.commands.append((cid, text))
                verb = text.split(" ", 1)[0].upper()
                step = {"EHLO": "ehlo", "HELO": "ehlo", "MAIL": "mail",
                        "RCPT": "rcpt", "DATA": "data",
                        "RSET": "rset"}.get(verb)
                r = await fault(step) if step else False
                if r is True:
                    return
                if r == "answered":
                    await writer.drain()
                    continue
                if verb == "EHLO":
                    ext = ["PIPELINING", "ENHANCEDSTATUSCODES", "8BITMIME",
                           "SMTPUTF8", "SIZE 52428800"]
                    send("250-%s" % self.hostname)
                    for i, e in enumerate(ext):
                        send("250%s%s" % (" " if i == len(ext) - 1 else "-",
                                          e))
                elif verb == "HELO":
                    send("250 %s" % self.hostname)
                elif verb == "MAIL":
                    send("250 2.1.0 Ok")
                elif verb == "RCPT":
                    send("250 2.1.5 Ok")
                elif verb == "DATA":
                    send("354 End data with <CR><LF>.<CR><LF>")
                    await writer.drain()
                    body = bytearray()
                    while True:
                        ln = await reader.readline()
                        if not ln:
                            return
                        if ln == b".\r\n":
                            break
                        body += ln
                    r = await fault("dot")
                    if r is True:
                        return
                    if r != "answered":
                        self.messages.append(bytes(body))
                        send("250 2.0.0 Ok: queued as S%d" %
                             len(self.messages))
                elif verb in ("RSET", "NOOP"):
                    send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    send("221 2.0.0 Bye")
                    await writer.drain()
                    return
                else:
                    send("502 5.5.2 Error: command not recognized")
                await writer.drain()
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.open_conns -= 1
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    def start(self):
        super().start()
        log("peer: script server on %s:%d (faults by its decide hook)" %
            (self.ip, self.port))
        return self
