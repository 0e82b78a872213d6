"""Python's ssl module as a client of the TLS servers, for `cargo xtask interop`.

    python3 tls_clients.py CAFILE resp HOST:PORT     RESP over TLS, then hostile peers
    python3 tls_clients.py CAFILE chat HOST:PORT     the chat greeting over TLS
    python3 tls_clients.py CAFILE smtp HOST:PORT     smtplib's starttls(), and an injection

Each check prints one line; the exit status is 1 when one failed. The servers were started
by xtask with a certificate for localhost signed by nobody: CAFILE is that certificate.
"""

import asyncio
import smtplib
import socket
import ssl
import sys
import time

TIMEOUT = 10


def context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = True
    return ctx


def split(addr):
    host, port = addr.rsplit(":", 1)
    return host, int(port)


def tls_connect(ctx, addr):
    sock = socket.create_connection(split(addr), timeout=TIMEOUT)
    return ctx.wrap_socket(sock, server_hostname="localhost")


def read_until(sock, end):
    got = b""
    while not got.endswith(end):
        chunk = sock.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


def resp(ctx, addr):
    with tls_connect(ctx, addr) as s:
        s.sendall(b"*1\r\n$4\r\nPING\r\n*3\r\n$3\r\nSET\r\n$2\r\npy\r\n$3\r\nssl\r\n"
                  b"*2\r\n$3\r\nGET\r\n$2\r\npy\r\n")
        got = read_until(s, b"$3\r\nssl\r\n")
        assert got == b"+PONG\r\n+OK\r\n$3\r\nssl\r\n", got
        version = s.version()
    print(f"resp over {version}: PING, SET, GET answered as over plaintext")

    # Plaintext to the TLS port: an alert, a close; garbage likewise.
    for junk in (b"*1\r\n$4\r\nPING\r\n", bytes(range(256)) * 4):
        with socket.create_connection(split(addr), timeout=TIMEOUT) as raw:
            raw.sendall(junk)
            got = read_until(raw, b"\x00never")
            assert got[:1] == b"\x15", got  # content type 21: alert
    print("plaintext and garbage to the TLS port: an alert and a close each")

    # A handshake cut in the middle, left open: the others are served meanwhile.
    stalled = socket.create_connection(split(addr), timeout=TIMEOUT)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    half = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        half.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    stalled.sendall(hello[: len(hello) // 2])

    # 1,000 handshakes at once, each then a PING.
    async def one():
        r, w = await asyncio.open_connection(*split(addr), ssl=ctx,
                                             server_hostname="localhost")
        w.write(b"*1\r\n$4\r\nPING\r\n")
        line = await r.readline()
        w.close()
        return line

    async def many(n):
        return await asyncio.gather(*(one() for _ in range(n)))

    started = time.monotonic()
    lines = asyncio.run(asyncio.wait_for(many(1000), 120))
    assert all(line == b"+PONG\r\n" for line in lines), set(lines)
    took = time.monotonic() - started
    print(f"1000 handshakes at once: all answered in {took:.1f} s, "
          "with a half-done handshake left open beside them")
    stalled.close()


def chat(ctx, addr):
    with tls_connect(ctx, addr) as s:
        line = read_until(s, b"\n")
        assert line.startswith(b"* welcome guest"), line
        s.sendall(b"hello over TLS\n")
        s.unwrap()  # close_notify both ways
    print(f"chat greeting over TLS: {line.decode().strip()!r}; close_notify exchanged")


def smtp(ctx, addr):
    host, port = split(addr)
    with smtplib.SMTP(host, port, timeout=TIMEOUT) as c:
        code, ext = c.ehlo("client.test")
        assert code == 250 and c.has_extn("starttls"), (code, ext)
        code, _ = c.starttls(context=ctx)
        assert code == 220, code
        c.ehlo("client.test")
        assert not c.has_extn("starttls"), "STARTTLS offered again after the upgrade"
        refused = c.sendmail("alice@example.com", ["bob@example.com"],
                             "Subject: starttls\r\n\r\nover TLS\r\n")
        assert refused == {}, refused
        tls_version = c.sock.version()
    print(f"smtplib starttls(): upgraded ({tls_version}), EHLO again without STARTTLS, "
          "message accepted")

    # The injection of CVE-2011-0411: a command behind STARTTLS in the same packet.
    with socket.create_connection((host, port), timeout=TIMEOUT) as raw:
        read_until(raw, b"\r\n")
        raw.sendall(b"EHLO c\r\n")
        read_until(raw, b"250 HELP\r\n")
        raw.sendall(b"STARTTLS\r\nMAIL FROM:<injected@example.com>\r\n")
        reply = read_until(raw, b"\r\n")
        assert reply == b"220 Ready to start TLS\r\n", reply
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        s.sendall(b"EHLO c\r\n")
        read_until(s, b"250 HELP\r\n")
        s.sendall(b"RCPT TO:<bob@example.com>\r\n")
        reply = read_until(s, b"\r\n")
        assert reply == b"503 Error: need MAIL command\r\n", reply
    print("STARTTLS injection: the plaintext command behind STARTTLS was dropped")


def main():
    cafile, what, addr = sys.argv[1:4]
    ctx = context(cafile)
    try:
        {"resp": resp, "chat": chat, "smtp": smtp}[what](ctx, addr)
    except Exception as e:  # one line, for xtask's report
        print(f"FAILED: {type(e).__name__}: {e}")
        sys.exit(1)


main()
