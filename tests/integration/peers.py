"""peers - real SMTP peers and clients for mxgate's gateway tests.

Everything here runs inside the network namespace the calling test has
entered (mxgtest.Netns): the processes and sockets started here inherit it,
so a backend bound to 198.18.0.1 sits on the kernel side of the gateway's
tap port. Every peer is a context manager and stops what it started, pass
or fail, by process id. Nothing here targets an address outside loopback or
that namespace.

Peers:
  SmtpSink     Postfix smtp-sink(1), optionally capturing every transaction
               to its own file (-d) so a test can count messages and read
               their Message-IDs; stop(), kill() (SIGKILL) and restart().
  Postfix      a real Postfix instance from a private config and queue
               directory under a temporary directory: smtpd on one
               address:port, XCLIENT authorised for the gateway, optional
               recipients rejected through check_recipient_access, delivery
               to one Maildir through virtual(8) (or discard, or in-line
               smtpd_proxy_filter), logging to a file (maillog_file).
  StallServer  a deliberate fake: an asyncio SMTP server that behaves
               until a chosen step and then stops answering (keeps reading
               and discarding until the peer closes).

Clients:
  SmtpClient   a raw SMTP client that can pipeline (RFC 2920) and reports
               every reply verbatim; message() builds a test message with a
               unique Message-ID.
"""

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time

from mxgtest import log

NOBODY_UID = 65534
NOBODY_GID = 65534


def wait_listen(ip, port, timeout=20.0, proc=None, what="peer"):
    """Wait until ip:port accepts a TCP connection (closed at once)."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited early with status %d" %
                               (what, proc.returncode))
        try:
            s = socket.create_connection((ip, port), timeout=2)
            s.close()
            return
        except OSError as e:
            last = e
            time.sleep(0.05)
    raise RuntimeError("%s never listened on %s:%d (%s)" %
                       (what, ip, port, last))


def _stop_proc(proc, sig=signal.SIGTERM, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def read_headers(path, limit=65536):
    """Header block of a stored message (LF or CRLF), as a list of
    unfolded 'Name: value' strings."""
    with open(path, "rb") as f:
        data = f.read(limit)
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    head = text.split("\n\n", 1)[0]
    out = []
    for line in head.split("\n"):
        if line[:1] in (" ", "\t") and out:
            out[-1] += " " + line.strip()
        elif line:
            out.append(line)
    return out


def header_values(headers, name):
    n = name.lower() + ":"
    return [h[len(n):].strip() for h in headers if h.lower().startswith(n)]


def message_id_of(path):
    v = header_values(read_headers(path), "Message-ID")
    return v[0] if v else None


# ---------------------------------------------------------------- smtp-sink

class SmtpSink:
    """Postfix smtp-sink on ip:port. With capture_dir, each transaction is
    written to capture_dir/msg.<hex> (smtp-sink closes the file before it
    answers the final dot, so a message it acknowledged is on disk even if
    it is SIGKILLed right after). With count=True (-c) it prints running
    counters, read back by received()."""

    def __init__(self, ip, port, capture_dir=None, count=True, args=(),
                 backlog=256, out_path=None):
        self.ip, self.port = ip, port
        self.capture_dir = capture_dir
        self.count = count
        self.args = list(args)
        self.backlog = backlog
        self.out_path = out_path or tempfile.mktemp(prefix="mxgt-sink-",
                                                    suffix=".out")
        self.proc = None
        self._out = None
        self.starts = 0

    def cmd(self):
        c = ["smtp-sink", "-u", "nobody"]
        if self.capture_dir:
            c += ["-d", os.path.join(self.capture_dir, "msg.")]
        if self.count:
            c += ["-c"]
        host = "[%s]" % self.ip if ":" in self.ip else self.ip  # IPv6
        c += self.args + ["%s:%d" % (host, self.port), str(self.backlog)]
        return c

    def start(self, timeout=20):
        if self.capture_dir:
            os.makedirs(self.capture_dir, exist_ok=True)
            os.chown(self.capture_dir, NOBODY_UID, NOBODY_GID)
            # smtp-sink writes as nobody: every parent must be searchable.
            d = os.path.dirname(os.path.abspath(self.capture_dir))
            while d != "/":
                if not os.stat(d).st_mode & 0o001:
                    raise RuntimeError("smtp-sink capture: %s is not "
                                       "searchable by nobody" % d)
                d = os.path.dirname(d)
        self.starts += 1
        self._out = open("%s.%d" % (self.out_path, self.starts), "wb")
        self.proc = subprocess.Popen(self.cmd(), stdout=self._out,
                                     stderr=subprocess.STDOUT)
        log("peer: smtp-sink pid %d: %s" % (self.proc.pid,
                                           " ".join(self.cmd())))
        wait_listen(self.ip, self.port, timeout, self.proc, "smtp-sink")
        return self

    def stop(self):
        _stop_proc(self.proc)
        if self._out:
            self._out.close()
            self._out = None

    def kill(self):
        """SIGKILL: the backend dies without a word, mid-transaction."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if self._out:
            self._out.close()
            self._out = None

    def restart(self, timeout=20):
        self.stop()
        return self.start(timeout)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def received(self):
        """Messages counted by -c: the last 'mesg=N' each run printed,
        summed over every start (each run counts from zero)."""
        total = 0
        for i in range(1, self.starts + 1):
            try:
                with open("%s.%d" % (self.out_path, i), "rb") as f:
                    data = f.read().decode("ascii", "replace")
            except OSError:
                continue
            m = re.findall(r"mesg=(\d+)", data)
            if m:
                total += int(m[-1])
        return total

    def captured(self):
        if not self.capture_dir or not os.path.isdir(self.capture_dir):
            return []
        return sorted(os.path.join(self.capture_dir, n)
                      for n in os.listdir(self.capture_dir)
                      if n.startswith("msg."))

    def message_ids(self):
        """Message-ID -> number of captured copies."""
        ids = {}
        for p in self.captured():
            try:
                mid = message_id_of(p)
            except OSError:
                continue
            if mid:
                ids[mid] = ids.get(mid, 0) + 1
        return ids

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ------------------------------------------------------------------ Postfix

_MASTER_CF = """\
# Generated by tests/integration/peers.py: one private Postfix instance.
{listen} inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
"""


class Postfix:
    """A private Postfix instance (`postfix -c DIR start`) whose smtpd
    listens on `listen` ("198.18.0.1:2525").

    deliver: "maildir"  every recipient of every domain goes to one Maildir
                        (self.maildir) through virtual(8);
             "discard"  accepted and discarded (logged);
             "proxy"    in-line front: smtpd_proxy_filter = proxy_filter,
                        nothing is queued (the benchmark's Postfix).
    reject:  {address: "550 5.1.1 text"} answered to RCPT by
             check_recipient_access (smtpd adds "<addr>: Recipient address
             rejected:" as Postfix always does).
    xclient_hosts: smtpd_authorized_xclient_hosts (the gateway).
    """

    def __init__(self, listen="198.18.0.1:2525", deliver="maildir",
                 reject=None, xclient_hosts="198.18.0.2",
                 proxy_filter=None, main_extra=None, base=None,
                 hostname="backend.mxgt.test"):
        self.listen = listen
        self.ip, port = listen.rsplit(":", 1)
        self.port = int(port)
        self.deliver = deliver
        self.reject = dict(reject or {})
        self.xclient_hosts = xclient_hosts
        self.proxy_filter = proxy_filter
        self.main_extra = dict(main_extra or {})
        self.hostname = hostname
        self.base = base or tempfile.mkdtemp(prefix="mxgt-postfix-")
        self.conf = os.path.join(self.base, "etc")
        self.queue = os.path.join(self.base, "queue")
        self.data = os.path.join(self.base, "data")
        self.mailbase = os.path.join(self.base, "mail")
        self.maildir = os.path.join(self.mailbase, "box")
        self.logfile = os.path.join(self.base, "maillog")
        self.started = False

    def _main_cf(self):
        b = self.base
        m = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": self.data,
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "command_directory": "/usr/sbin",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": self.hostname,
            "mydomain": "mxgt.test",
            "myorigin": "$myhostname",
            "mydestination": "",
            "inet_interfaces": "all",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8 198.18.0.0/15",
            "maillog_file": self.logfile,
            "maillog_file_prefixes": b,
            "smtpd_authorized_xclient_hosts": self.xclient_hosts or "",
            "smtpd_peername_lookup": "no",
            "smtpd_error_sleep_time": "0",
            "smtpd_soft_error_limit": "1000",
            "smtpd_hard_error_limit": "1000",
            "smtpd_client_connection_count_limit": "0",
            "smtpd_client_connection_rate_limit": "0",
            "smtpd_client_message_rate_limit": "0",
            "smtpd_client_recipient_rate_limit": "0",
            "smtpd_relay_restrictions":
                "permit_mynetworks, reject_unauth_destination",
            "smtpd_recipient_restrictions":
                "check_recipient_access texthash:%s/reject_rcpt, permit" %
                self.conf,
            "smtpd_banner": "$myhostname ESMTP Postfix",
            "biff": "no",
            "append_dot_mydomain": "no",
            "default_process_limit": "200",
            "disable_dns_lookups": "yes",
            "smtp_dns_support_level": "disabled",
            "smtputf8_enable": "no",
            "message_size_limit": "52428800",
            "virtual_mailbox_domains": "static:all",
            "virtual_mailbox_base": self.mailbase,
            "virtual_mailbox_maps": "static:box/",
            "virtual_uid_maps": "static:%d" % NOBODY_UID,
            "virtual_gid_maps": "static:%d" % NOBODY_GID,
            "virtual_minimum_uid": "100",
            "virtual_mailbox_limit": "0",
            "alias_maps": "",
            "alias_database": "",
            "local_recipient_maps": "",
            "queue_run_delay": "5s",
            "minimal_backoff_time": "5s",
            "maximal_backoff_time": "10s",
        }
        if self.deliver == "discard":
            m["transport_maps"] = "static:discard:silently"
        elif self.deliver == "proxy":
            m["smtpd_proxy_filter"] = self.proxy_filter
            m["smtpd_proxy_options"] = ""
            m["smtpd_proxy_timeout"] = "100s"
            m["transport_maps"] = "static:discard:silently"
        m.update(self.main_extra)
        return "".join("%s = %s\n" % kv for kv in m.items())

    def write_config(self):
        os.makedirs(self.base, exist_ok=True)
        os.chmod(self.base, 0o755)
        for d in (self.conf, self.queue):
            os.makedirs(d, exist_ok=True)
        os.makedirs(self.data, exist_ok=True)
        shutil.chown(self.data, "postfix", "postfix")
        os.makedirs(self.mailbase, exist_ok=True)
        os.chown(self.mailbase, NOBODY_UID, NOBODY_GID)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(self._main_cf())
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(_MASTER_CF.format(listen=self.listen))
        with open(os.path.join(self.conf, "reject_rcpt"), "w") as f:
            for addr, reply in self.reject.items():
                f.write("%s %s\n" % (addr, reply))

    def _postfix(self, *args, check=True, timeout=60):
        r = subprocess.run(["postfix", "-c", self.conf] + list(args),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("postfix -c %s %s: %s%s" %
                               (self.conf, " ".join(args), r.stdout,
                                r.stderr))
        return r

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                pid = int(f.read().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def start(self, timeout=30):
        self.write_config()
        self._postfix("start")
        self.started = True
        log("peer: postfix -c %s start (smtpd on %s, master pid %s)" %
            (self.conf, self.listen, self.master_pid()))
        wait_listen(self.ip, self.port, timeout, what="postfix smtpd")
        return self

    def stop(self, timeout=30):
        if not self.started:
            return
        pid = self.master_pid()
        self._postfix("stop", check=False)
        deadline = time.time() + timeout
        while pid and time.time() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                break
            time.sleep(0.1)
        else:
            if pid:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        self.started = False

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def maillog(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def delivered(self):
        """Files in the Maildir's new/ (delivered messages)."""
        d = os.path.join(self.maildir, "new")
        if not os.path.isdir(d):
            return []
        return sorted(os.path.join(d, n) for n in os.listdir(d)
                      if not n.startswith("."))

    def queue_count(self):
        n = 0
        for sub in ("incoming", "active", "deferred", "hold", "maildrop"):
            for _r, _d, files in os.walk(os.path.join(self.queue, sub)):
                n += len(files)
        return n

    def wait_delivered(self, n, timeout=120):
        """Wait until n messages sit in the Maildir; returns the list."""
        deadline = time.time() + timeout
        got = self.delivered()
        while len(got) < n and time.time() < deadline:
            time.sleep(0.2)
            got = self.delivered()
        return got

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# ------------------------------------------------------------ StallServer

class StallServer:
    """A fake SMTP backend (asyncio, own thread) that answers normally up
    to `stall_at` and then never answers again on that connection:

      greeting  accepts the connection, sends nothing
      ehlo      no reply to EHLO/HELO
      mail      no reply to MAIL
      rcpt      no reply to the first RCPT
      data      no reply to DATA (no 354)
      dot       reads the whole body, no reply to the final dot

    It stalls the first `stall_count` times the step is reached (None:
    always), then behaves. It records every command line, the stalls, how
    long each stalled connection stayed open, and the messages it
    completed (list of bodies)."""

    STEPS = ("greeting", "ehlo", "mail", "rcpt", "data", "dot")

    def __init__(self, ip, port, stall_at="dot", stall_count=None,
                 hostname="stall.mxgt.test", xclient=False):
        assert stall_at in self.STEPS, stall_at
        self.ip, self.port = ip, port
        self.stall_at = stall_at
        self.stall_count = stall_count
        self.hostname = hostname
        self.xclient = xclient
        self.stalls = 0
        self.stall_held = []     # seconds each stalled conn stayed open
        self.commands = []       # (conn#, line)
        self.messages = []       # completed bodies (bytes)
        self.conns = 0
        self.open_conns = 0
        self._loop = None
        self._server = None
        self._thread = None
        self._ready = threading.Event()
        self._err = None
        self._writers = set()

    def _should_stall(self, step):
        if step != self.stall_at:
            return False
        if self.stall_count is not None and self.stalls >= self.stall_count:
            return False
        self.stalls += 1
        return True

    async def _hold(self, reader, writer, cid):
        """Stop answering: read and drop until the peer closes."""
        t0 = time.time()
        log("peer: stall server conn %d stalls at %s" % (cid, self.stall_at))
        try:
            while await reader.read(65536):
                pass
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass
        self.stall_held.append(time.time() - t0)

    async def _handle(self, reader, writer):
        self.conns += 1
        self.open_conns += 1
        cid = self.conns
        self._writers.add(writer)

        def send(s):
            writer.write(s.encode() + b"\r\n")

        try:
            if self._should_stall("greeting"):
                return await self._hold(reader, writer, cid)
            send("220 %s ESMTP stall" % self.hostname)
            await writer.drain()
            rcpt_seen = False
            while True:
                line = await reader.readline()
                if not line:
                    return
                text = line.decode("latin-1").rstrip("\r\n")
                self.commands.append((cid, text))
                verb = text.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    if self._should_stall("ehlo"):
                        return await self._hold(reader, writer, cid)
                    if verb == "HELO":
                        send("250 %s" % self.hostname)
                    else:
                        ext = ["PIPELINING", "ENHANCEDSTATUSCODES",
                               "8BITMIME", "SIZE 52428800"]
                        if self.xclient:
                            ext.append("XCLIENT NAME ADDR PORT PROTO HELO "
                                       "LOGIN")
                        send("250-%s" % self.hostname)
                        for i, e in enumerate(ext):
                            send("250%s%s" % (" " if i == len(ext) - 1
                                              else "-", e))
                elif verb == "XCLIENT":
                    send("220 %s ESMTP stall" % self.hostname)
                elif verb == "MAIL":
                    if self._should_stall("mail"):
                        return await self._hold(reader, writer, cid)
                    rcpt_seen = False
                    send("250 2.1.0 Ok")
                elif verb == "RCPT":
                    if not rcpt_seen and self._should_stall("rcpt"):
                        return await self._hold(reader, writer, cid)
                    rcpt_seen = True
                    send("250 2.1.5 Ok")
                elif verb == "DATA":
                    if self._should_stall("data"):
                        return await self._hold(reader, writer, cid)
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
                    if self._should_stall("dot"):
                        return await self._hold(reader, writer, cid)
                    self.messages.append(bytes(body))
                    send("250 2.0.0 Ok: queued as S%d" % len(self.messages))
                elif verb == "RSET":
                    send("250 2.0.0 Ok")
                elif verb == "NOOP":
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

    def _run(self):
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)

        async def boot():
            self._server = await asyncio.start_server(
                self._handle, self.ip, self.port, reuse_address=True)

        try:
            self._loop.run_until_complete(boot())
        except Exception as e:  # noqa: BLE001
            self._err = e
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    async def _shutdown(self):
        """Close the listener and abort every connection still open, let
        the handlers see EOF and return, then stop the loop."""
        self._server.close()
        for w in list(self._writers):
            with contextlib.suppress(Exception):
                w.transport.abort()
        for _ in range(50):
            if not self._writers:
                break
            await asyncio.sleep(0.02)
        self._loop.stop()

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._err:
            raise self._err
        log("peer: stall server on %s:%d stalls at %s (%s times)" %
            (self.ip, self.port, self.stall_at,
             "always" if self.stall_count is None else self.stall_count))
        return self

    def stop(self):
        if self._loop and self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        if self._thread:
            self._thread.join(10)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
        return False


# --------------------------------------------------------------- clients

class SmtpError(Exception):
    pass


class SmtpClient:
    """A raw SMTP client. Every reply is returned as (code, text) where
    text is the whole reply verbatim (lines joined by '\\n', each with its
    code). Socket time-outs raise socket.timeout: a test treats that as a
    hang."""

    def __init__(self, ip, port, timeout=60.0, connect_retries=50):
        last = None
        for _ in range(connect_retries):
            try:
                self.sock = socket.create_connection((ip, port),
                                                     timeout=timeout)
                break
            except OSError as e:
                last = e
                time.sleep(0.1)
        else:
            raise last
        self.sock.settimeout(timeout)
        self.f = self.sock.makefile("rb")
        self.caps = []
        self.greeting = self.reply()

    def reply(self):
        lines = []
        while True:
            ln = self.f.readline(4096)
            if not ln:
                raise SmtpError("connection closed (after %r)" % lines)
            s = ln.decode("latin-1").rstrip("\r\n")
            lines.append(s)
            if len(s) < 4 or s[3] != "-":
                break
        try:
            code = int(lines[-1][:3])
        except ValueError:
            raise SmtpError("bad reply %r" % lines)
        return code, "\n".join(lines)

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def ehlo(self, name="client.mxgt.test"):
        code, text = self.cmd("EHLO " + name)
        self.caps = [ln[4:].split(" ")[0].upper()
                     for ln in text.split("\n")[1:]]
        return code, text

    def transaction(self, mail_from, rcpts, body, pipelining=None):
        """One mail transaction. With pipelining (default: when the server
        advertised PIPELINING) MAIL, every RCPT and DATA go in one write.
        Returns a dict: mail, rcpts (list), data, dot -> (code, text) or
        None when not reached, and 'outcome': the final code that decides
        the message (250 family only if the message was accepted)."""
        if pipelining is None:
            pipelining = "PIPELINING" in self.caps
        r = {"mail": None, "rcpts": [], "data": None, "dot": None}
        cmds = ["MAIL FROM:<%s>" % mail_from] + \
            ["RCPT TO:<%s>" % a for a in rcpts] + ["DATA"]
        if pipelining:
            self.send("".join(c + "\r\n" for c in cmds))
            r["mail"] = self.reply()
            for _ in rcpts:
                r["rcpts"].append(self.reply())
            r["data"] = self.reply()
        else:
            r["mail"] = self.cmd(cmds[0])
            if r["mail"][0] // 100 == 2:
                for c in cmds[1:-1]:
                    r["rcpts"].append(self.cmd(c))
                if any(x[0] // 100 == 2 for x in r["rcpts"]):
                    r["data"] = self.cmd("DATA")
        if r["data"] and r["data"][0] == 354:
            self.send(dot_stuff(body) + b".\r\n")
            r["dot"] = self.reply()
        r["outcome"] = outcome(r)
        return r

    def quit(self):
        with contextlib.suppress(Exception):
            self.cmd("QUIT")
        self.close()

    def close(self):
        with contextlib.suppress(Exception):
            self.f.close()
        with contextlib.suppress(Exception):
            self.sock.close()


def outcome(r):
    """The code that decides a transaction: the final-dot reply if DATA
    was accepted; else the first failing reply of MAIL, RCPTs (all failed),
    DATA."""
    if r.get("dot"):
        return r["dot"][0]
    if r["mail"] and r["mail"][0] // 100 != 2:
        return r["mail"][0]
    ok = [x for x in r["rcpts"] if x[0] // 100 == 2]
    if r["rcpts"] and not ok:
        return r["rcpts"][0][0]
    if r["data"]:
        return r["data"][0]
    return None


def dot_stuff(body):
    """CRLF line ends, leading dots doubled, ends with CRLF."""
    if isinstance(body, str):
        body = body.encode()
    lines = body.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    out = bytearray()
    for ln in lines:
        if ln.startswith(b"."):
            out += b"."
        out += ln + b"\r\n"
    return bytes(out)


def message(msgid, mail_from, rcpts, size=512, subject="mxgate test",
            seed=0):
    """A message with a unique Message-ID <msgid> and about `size` octets
    of body (printable lines of 76 characters, some starting with a dot to
    exercise dot-stuffing)."""
    hdr = ("From: <%s>\nTo: %s\nSubject: %s\nMessage-ID: <%s>\n"
           "Date: Thu, 01 Jan 2026 00:00:00 +0000\n\n" %
           (mail_from, ", ".join("<%s>" % a for a in rcpts), subject, msgid))
    lines = []
    n = 0
    i = 0
    while n < size:
        c = "abcdefghijklmnopqrstuvwxyz"[(seed + i) % 26]
        ln = ("." if i % 17 == 3 else "") + ("%s%06d " % (c, i)) + c * 68
        lines.append(ln)
        n += len(ln) + 1
        i += 1
    return (hdr + "\n".join(lines) + "\n").encode()


# ----------------------------------------------------- body integrity

# What a test sent and what a receiver stored are compared byte for byte
# (issue 20): a receiver (smtp-sink capture, mxgate's Maildir, Postfix's
# Maildir) undoes dot-stuffing, stores LF line ends and puts its own
# header lines (Received, Return-Path, X-Client-Addr, ...) in front. So
# the stored file must end with the sent header block verbatim and its
# body must equal the sent body, plus the receiver's fixed trailer
# (smtp-sink writes one "\n" more once it has seen the final dot: a file
# it did not finish lacks it).

SINK_TRAILER = b"\n"


def stored_form(msg):
    """The message as a receiver stores it: LF line ends, ending in one."""
    if isinstance(msg, str):
        msg = msg.encode()
    out = msg.replace(b"\r\n", b"\n")
    if not out.endswith(b"\n"):
        out += b"\n"
    return out


def split_message(data):
    """(header block with its final LF, body) of an LF message; None for
    the body when there is no empty line."""
    i = data.find(b"\n\n")
    if i < 0:
        return data, None
    return data[:i + 1], data[i + 2:]


def body_mismatch(stored, sent, trailer=b"", headers=True):
    """None when the stored file carries the sent message byte for byte
    (see above); else a short reason naming the first differing octet."""
    s_head, s_body = split_message(stored_form(sent))
    d_head, d_body = split_message(stored)
    if d_body is None:
        return "no end of header (%d octets stored)" % len(stored)
    if headers and not d_head.endswith(s_head):
        return "header block differs"
    want = (s_body or b"") + trailer
    if d_body == want:
        return None
    n = min(len(d_body), len(want))
    i = next((k for k in range(n) if d_body[k] != want[k]), n)
    return "body differs at octet %d (stored %d octets, sent %d): %r vs %r" \
        % (i, len(d_body), len(want), d_body[i:i + 12], want[i:i + 12])


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def _filler(seed, i, width):
    c = "abcdefghijklmnopqrstuvwxyz"[(seed + i) % 26]
    return (("%s%06d " % (c, i)) + c * width)[:width]


def sized_body(wire_size, seed=0):
    """A body of exactly wire_size octets on the wire between the 354 and
    the final ".\\r\\n" (after dot-stuffing, CRLF line ends): lines of 76
    octets, every seventh led by a dot (stuffed on the wire), the last
    one padded to the size."""
    assert wire_size >= 2
    out = bytearray()
    n = 0
    i = 0
    while wire_size - n > 2 + 80:
        ln = _filler(seed, i, 76).encode()
        if i % 7 == 3:
            ln = b"." + ln[1:]
        out += ln + b"\n"
        n += len(ln) + 2 + (1 if ln.startswith(b".") else 0)
        i += 1
    out += b"z" * (wire_size - n - 2) + b"\n"
    assert len(dot_stuff(bytes(out))) == wire_size
    return bytes(out)


def special_bodies():
    """(tag, body) pairs that catch a relay that mangles what it passes
    on: dot-led lines (a lone ".", "..", "...", ". " and dots inside),
    998-octet lines (RFC 5321's limit without CRLF; the one led by a dot
    is 997 octets: a dot-led 998-octet line is refused today by an
    off-by-one of issue 18), every 8-bit octet 0x80-0xff and UTF-8 text,
    and sizes on both sides of the boundaries of a TCP segment (MSS 1460),
    an mbuf (2048), and 4 KiB, 8 KiB, 16 KiB, 64 KiB and 256 KiB chunks."""
    out = [
        ("dots", b".\n..\n...\n. space\n.x\nmid.dle.\n..\n.\n"),
        ("line998", b"a" * 998 + b"\n" + b"." + b"b" * 996 + b"\n" +
         b"c" * 998 + b"\n"),
        ("8bit", bytes(range(0x80, 0x100)) + b"\n" +
         "caf\u00e9 \u00fcber \u65e5\u672c \U0001f600\n".encode() +
         bytes(range(0xff, 0x7f, -1)) + b"\n"),
    ]
    for size in (1459, 1460, 1461, 2047, 2048, 2049, 4095, 4096, 4097,
                 8191, 8192, 8193, 16383, 16384, 16385, 65535, 65536,
                 65537, 262147):
        out.append(("size%d" % size, sized_body(size, seed=size)))
    return out


def with_headers(msgid, mail_from, rcpts, body, subject="mxgate body"):
    """A message (LF line ends) with a unique Message-ID and the given
    body octets."""
    hdr = ("From: <%s>\nTo: %s\nSubject: %s\nMessage-ID: <%s>\n"
           "Date: Thu, 01 Jan 2026 00:00:00 +0000\n\n" %
           (mail_from, ", ".join("<%s>" % a for a in rcpts), subject, msgid))
    return hdr.encode() + body


def bdat_transaction(c, mail_from, rcpts, msg, chunk):
    """One transaction on SmtpClient c with the body sent by BDAT
    (RFC 3030) in chunks of `chunk` octets (the last one LAST): no
    dot-stuffing, CRLF line ends. Returns the transaction dict of
    SmtpClient.transaction (the last BDAT reply as 'dot')."""
    wire = stored_form(msg).replace(b"\n", b"\r\n")
    r = {"mail": c.cmd("MAIL FROM:<%s>" % mail_from), "rcpts": [],
         "data": None, "dot": None}
    for a in rcpts:
        r["rcpts"].append(c.cmd("RCPT TO:<%s>" % a))
    if r["mail"][0] == 250 and any(x[0] == 250 for x in r["rcpts"]):
        off = 0
        while True:
            part = wire[off:off + chunk]
            off += len(part)
            last = off >= len(wire)
            c.send(b"BDAT %d%s\r\n" % (len(part), b" LAST" if last else b"")
                   + part)
            rep = c.reply()
            if last or rep[0] != 250:
                r["dot"] = rep
                break
    r["outcome"] = outcome(r)
    return r
