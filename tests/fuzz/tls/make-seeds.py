#!/usr/bin/env python3
"""Writes the TLS fuzzer's seed corpus: real ClientHellos (TLS 1.3,
TLS 1.2 only, with and without SNI) from Python's ssl module over memory
BIOs, each framed as the harness reads its input (mode octet, then
chunks of 1-byte length + bytes). Run: make-seeds.py corpus/"""
import os, ssl, subprocess, sys, tempfile

def hello(maxv, sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = maxv
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = ctx.wrap_bio(i, o, server_hostname=sni)
    try:
        s.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return o.read()

def server_flight(maxv):
    """A server's answer to a ClientHello (TLS 1.2: the certificate in
    clear), for the client-side mode (8) of the harness."""
    with tempfile.TemporaryDirectory() as t:
        k, c = os.path.join(t, "k"), os.path.join(t, "c")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                        "-subj", "/CN=mx.test", "-days", "1",
                        "-keyout", k, "-out", c], check=True,
                       capture_output=True)
        sctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        sctx.maximum_version = maxv
        sctx.load_cert_chain(c, k)
        i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
        srv = sctx.wrap_bio(i, o, server_side=True)
        i.write(hello(maxv, "mx.test"))
        try:
            srv.do_handshake()
        except ssl.SSLWantReadError:
            pass
        return o.read()

def frame(mode, data, step=255):
    out = bytes([mode])
    for k in range(0, len(data), step):
        c = data[k:k + step]
        out += bytes([len(c)]) + c
    return out

d = sys.argv[1]
os.makedirs(d, exist_ok=True)
seeds = {
    "hello-tls13-sni": frame(0, hello(ssl.TLSVersion.TLSv1_3, "mx.test")),
    "hello-tls12-sni": frame(0, hello(ssl.TLSVersion.TLSv1_2, "mx.test")),
    "hello-tls13-nosni": frame(0, hello(ssl.TLSVersion.TLSv1_3, None)),
    "hello-tls13-1byte": frame(0, hello(ssl.TLSVersion.TLSv1_3, "other.test"), 1)[:600],
    "open-then-records": frame(1, bytes.fromhex("170303001a") + b"\0" * 26 +
                               bytes.fromhex("1503030002") + b"\x01\x00"),
    "open-then-hello": frame(1, hello(ssl.TLSVersion.TLSv1_2, "mx.test")),
    "garbage-ehlo": frame(0, b"EHLO example.com\r\n"),
    "backend-tls12-flight-ca": frame(8, server_flight(ssl.TLSVersion.TLSv1_2)),
    "backend-tls12-flight-pin": frame(8 | 16, server_flight(ssl.TLSVersion.TLSv1_2)),
    "backend-tls13-flight-opp": frame(8 | 32, server_flight(ssl.TLSVersion.TLSv1_3)),
}
for name, data in seeds.items():
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)
