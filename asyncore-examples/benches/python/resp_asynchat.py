"""The CPython anchor of the Redis-protocol benchmark: a RESP2 server on asynchat, with the
command set of resp_server.

    python3 resp_asynchat.py [--listen HOST:PORT]      (default 127.0.0.1:0)

Header lines end in b"\\r\\n"; a bulk string is read with a count terminator (its length
plus the two bytes after it), as resp_server does. Commands: PING, ECHO, SET [EX|PX], GET,
DEL, EXISTS, INCR, DECR, INCRBY, MGET, MSET, DBSIZE, FLUSHDB, FLUSHALL, SELECT 0,
CONFIG GET (save, appendonly), COMMAND, CLIENT, QUIT.
"""

import time

from common import asynchat, serve

STORE = {}  # key -> (value, expiry as time.monotonic() or None)
MAX_BULK = 64 * 1024 * 1024

ARITY = {
    b"ping": lambda n: n <= 2,
    b"echo": lambda n: n == 2,
    b"get": lambda n: n == 2,
    b"incr": lambda n: n == 2,
    b"decr": lambda n: n == 2,
    b"select": lambda n: n == 2,
    b"set": lambda n: n >= 3,
    b"del": lambda n: n >= 2,
    b"exists": lambda n: n >= 2,
    b"mget": lambda n: n >= 2,
    b"incrby": lambda n: n == 3,
    b"mset": lambda n: n >= 3 and n % 2 == 1,
    b"dbsize": lambda n: n == 1,
    b"quit": lambda n: n == 1,
    b"flushdb": lambda n: True,
    b"flushall": lambda n: True,
    b"command": lambda n: True,
    b"config": lambda n: n >= 2,
    b"client": lambda n: n >= 2,
}


def bulk(v):
    return b"$%d\r\n%s\r\n" % (len(v), v)


def lookup(key):
    entry = STORE.get(key)
    if entry is None:
        return None
    value, expiry = entry
    if expiry is not None and expiry <= time.monotonic():
        del STORE[key]
        return None
    return value


def incr_by(key, by):
    current = lookup(key)
    try:
        n = (0 if current is None else int(current)) + by
    except ValueError:
        return b"-ERR value is not an integer or out of range\r\n"
    if not -(2**63) <= n < 2**63:
        return b"-ERR value is not an integer or out of range\r\n"
    STORE[key] = (b"%d" % n, STORE.get(key, (None, None))[1])
    return b":%d\r\n" % n


def execute(args):
    """Returns (reply, close)."""
    name = args[0].lower()
    n = len(args)
    arity = ARITY.get(name)
    if arity is None:
        shown = "".join("'%s' " % a.decode("utf-8", "replace") for a in args[1:])
        text = "-ERR unknown command '%s', with args beginning with: %s\r\n" % (
            args[0].decode("utf-8", "replace"),
            shown,
        )
        return text.encode(), False
    if not arity(n):
        return b"-ERR wrong number of arguments for '%s' command\r\n" % name, False
    if name == b"ping":
        return (bulk(args[1]) if n == 2 else b"+PONG\r\n"), False
    if name == b"echo":
        return bulk(args[1]), False
    if name == b"get":
        v = lookup(args[1])
        return (b"$-1\r\n" if v is None else bulk(v)), False
    if name == b"set":
        expiry = None
        i = 3
        while i < n:
            unit = {b"ex": 1.0, b"px": 0.001}.get(args[i].lower())
            try:
                amount = int(args[i + 1])
            except (IndexError, ValueError):
                unit = None
            if unit is None:
                return b"-ERR syntax error\r\n", False
            if amount <= 0:
                return b"-ERR invalid expire time in 'set' command\r\n", False
            expiry = time.monotonic() + amount * unit
            i += 2
        STORE[args[1]] = (args[2], expiry)
        return b"+OK\r\n", False
    if name == b"del":
        gone = 0
        for k in args[1:]:
            if lookup(k) is not None:
                del STORE[k]
                gone += 1
        return b":%d\r\n" % gone, False
    if name == b"exists":
        return b":%d\r\n" % sum(lookup(k) is not None for k in args[1:]), False
    if name == b"incr":
        return incr_by(args[1], 1), False
    if name == b"decr":
        return incr_by(args[1], -1), False
    if name == b"incrby":
        try:
            by = int(args[2])
        except ValueError:
            return b"-ERR value is not an integer or out of range\r\n", False
        return incr_by(args[1], by), False
    if name == b"mget":
        parts = [b"*%d\r\n" % (n - 1)]
        for k in args[1:]:
            v = lookup(k)
            parts.append(b"$-1\r\n" if v is None else bulk(v))
        return b"".join(parts), False
    if name == b"mset":
        for i in range(1, n, 2):
            STORE[args[i]] = (args[i + 1], None)
        return b"+OK\r\n", False
    if name == b"dbsize":
        return b":%d\r\n" % len(STORE), False
    if name in (b"flushdb", b"flushall"):
        STORE.clear()
        return b"+OK\r\n", False
    if name == b"select":
        if args[1] == b"0":
            return b"+OK\r\n", False
        return b"-ERR DB index is out of range\r\n", False
    if name == b"config":
        # What redis-benchmark asks before it starts.
        known = {b"save": b"", b"appendonly": b"no"}
        pairs = [(p.lower(), known[p.lower()]) for p in args[2:] if p.lower() in known]
        return b"*%d\r\n" % (2 * len(pairs)) + b"".join(bulk(k) + bulk(v) for k, v in pairs), False
    if name == b"command":
        return b"*0\r\n", False
    if name == b"client":
        return b"+OK\r\n", False
    return b"+OK\r\n", True  # quit


class RespHandler(asynchat.async_chat):
    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.set_terminator(b"\r\n")
        self.buffer = []
        self.args = []
        self.remaining = 0  # bulk strings still to read of the current multibulk
        self.in_bulk = False

    def collect_incoming_data(self, data):
        self.buffer.append(data)

    def protocol_error(self, what):
        self.push(b"-ERR Protocol error: %s\r\n" % what)
        self.close_when_done()
        self.set_terminator(None)
        self.collect_incoming_data = lambda data: None

    def found_terminator(self):
        data = b"".join(self.buffer)
        self.buffer = []
        if self.in_bulk:
            self.in_bulk = False
            self.args.append(data[:-2])
            self.set_terminator(b"\r\n")
            self.remaining -= 1
            if self.remaining == 0:
                self.run(self.args)
            return
        if self.remaining:
            if not data.startswith(b"$"):
                return self.protocol_error(b"expected '$', got '%s'" % data[:1])
            try:
                length = int(data[1:])
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BULK:
                return self.protocol_error(b"invalid bulk length")
            self.in_bulk = True
            self.set_terminator(length + 2)
            return
        if data.startswith(b"*"):
            try:
                count = int(data[1:])
            except ValueError:
                return self.protocol_error(b"invalid multibulk length")
            if count > 1024 * 1024:
                return self.protocol_error(b"invalid multibulk length")
            if count > 0:
                self.remaining = count
                self.args = []
            return
        args = data.split()
        if args:
            self.run(args)

    def run(self, args):
        reply, close = execute(args)
        self.push(reply)
        if close:
            self.close_when_done()


if __name__ == "__main__":
    serve("resp_asynchat.py", RespHandler)
