"""What the CPython anchor servers share: `--listen HOST:PORT`, the listening dispatcher,
and the `listening on HOST:PORT` line (flushed), as the Rust example programs have them."""

import argparse
import socket
import sys
import warnings

with warnings.catch_warnings():
    # asyncore and asynchat are deprecated since 3.6 and gone in 3.12; 3.11 still has them.
    warnings.simplefilter("ignore", DeprecationWarning)
    import asynchat  # noqa: F401  (re-exported for the servers)
    import asyncore


def listen_arg(prog):
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--listen", default="127.0.0.1:0", metavar="HOST:PORT")
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"bad --listen address {args.listen!r} (want HOST:PORT)")
    return host.strip("[]"), int(port)


class Server(asyncore.dispatcher):
    """Listens on (host, port) and hands every accepted socket to `handler(sock, map)`."""

    def __init__(self, host, port, handler, map):
        super().__init__(map=map)
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.create_socket(family, socket.SOCK_STREAM)
        self.set_reuse_addr()
        self.bind((host, port))
        self.listen(1024)
        self.handler = handler

    def handle_accepted(self, sock, addr):
        # As redis-server does, so that no anchor waits on Nagle's algorithm.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.handler(sock, self._map)


def serve(prog, handler):
    host, port = listen_arg(prog)
    map = {}
    server = Server(host, port, handler, map)
    bound = server.socket.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    print(f"listening on {shown}:{bound[1]}", flush=True)
    try:
        # poll(2) rather than select(2): no FD_SETSIZE cap, and cheaper for 50 sockets.
        asyncore.loop(timeout=30.0, use_poll=True, map=map)
    except KeyboardInterrupt:
        sys.exit(0)
