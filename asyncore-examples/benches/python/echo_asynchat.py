"""The CPython anchor of the line-echo benchmark: an asynchat line echo server.

    python3 echo_asynchat.py [--listen HOST:PORT]      (default 127.0.0.1:0)

Every line (terminator b"\\n") is pushed back as it was received.
"""

from common import asynchat, serve


class EchoHandler(asynchat.async_chat):
    def __init__(self, sock, map):
        super().__init__(sock, map=map)
        self.set_terminator(b"\n")
        self.buffer = []

    def collect_incoming_data(self, data):
        self.buffer.append(data)

    def found_terminator(self):
        self.buffer.append(b"\n")
        self.push(b"".join(self.buffer))
        self.buffer = []


if __name__ == "__main__":
    serve("echo_asynchat.py", EchoHandler)
