"""Opens N TLS connections to a RESP server, one by one, each with a PING answered, and
holds them idle: for the TLS scenario of `cargo xtask bench` (resident memory per idle
TLS connection). Prints `ready SECONDS` once all are open, then waits for its standard
input to end.

    python3 tls_idle.py HOST PORT CAFILE N
"""

import socket
import ssl
import sys
import time

host, port, cafile, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
ctx = ssl.create_default_context(cafile=cafile)
held = []
started = time.monotonic()
for _ in range(n):
    s = ctx.wrap_socket(socket.create_connection((host, port), timeout=30),
                        server_hostname="localhost")
    s.sendall(b"PING\r\n")
    if s.recv(64) != b"+PONG\r\n":
        sys.exit("no +PONG")
    held.append(s)
print(f"ready {time.monotonic() - started:.3f}", flush=True)
sys.stdin.read()
