//! The port of CPython's `test_asynchat` (see shared/CONFORMANCE.md): each TestAsynchat case
//! on both backends (`line_terminator1::mio`, `line_terminator1::poll`, ...), the mocked
//! `blockingioerror`, `find_prefix_at_end` and `disallow_negative_terminator`.
//!
//! The echo server runs as channels in the same loop (asynchat_util), not as a thread.

mod asynchat_util;

use asynchat_util::{echo_client, run_until, start_echo_server, SERVER_QUIT};
use asyncore_chat::{simple_producer, AsyncChat, Bytes, ChatContext, ChatHandler, Terminator};
use asyncore_core::{Channel, Context, Dispatcher, HandlerResult, SocketMap};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// Python: `line_terminator_check(term, server_chunk)`.
fn line_terminator_check(term: &[u8], server_chunk: usize, use_poll: bool) {
    let mut map = SocketMap::new();
    let (addr, _server) = start_echo_server(&mut map, server_chunk);
    let terminator = Terminator::bytes(term.to_vec()).unwrap();
    let (mut chan, mut chat, client) = echo_client(terminator, &addr);
    chat.push(&mut chan, "hello ").unwrap();
    chat.push(&mut chan, cat(&[b"world", term])).unwrap();
    chat.push(&mut chan, cat(&[b"I'm not dead yet!", term]))
        .unwrap();
    chat.push(&mut chan, SERVER_QUIT).unwrap();
    map.insert(chan, chat).unwrap();
    run_until(&mut map, use_poll, |m| m.is_empty());
    let client = client.borrow();
    assert_eq!(
        client.contents,
        [b"hello world".to_vec(), b"I'm not dead yet!".to_vec()],
        "terminator {term:?}, server chunk {server_chunk}"
    );
    assert!(client.errors.is_empty(), "{:?}", client.errors);
}

// The server sends 1, 2 and 3 bytes at a time, to go through every branch of the framing.
on_both_backends!(line_terminator1, |use_poll| {
    for chunk in 1..=3 {
        super::line_terminator_check(b"\n", chunk, use_poll);
    }
});
on_both_backends!(line_terminator2, |use_poll| {
    for chunk in 1..=3 {
        super::line_terminator_check(b"\r\n", chunk, use_poll);
    }
});
on_both_backends!(line_terminator3, |use_poll| {
    for chunk in 1..=3 {
        super::line_terminator_check(b"qqq", chunk, use_poll);
    }
});

/// Sends `data` then `SERVER_QUIT` through a client cutting at `terminator`; returns what
/// the client collected.
fn echo_through(
    terminator: Terminator,
    use_poll: bool,
    push: impl FnOnce(&mut Channel, &mut AsyncChat<asynchat_util::EchoClient>),
) -> Rc<RefCell<asynchat_util::ClientState>> {
    let mut map = SocketMap::new();
    let (addr, _server) = start_echo_server(&mut map, 1);
    let (mut chan, mut chat, client) = echo_client(terminator, &addr);
    push(&mut chan, &mut chat);
    map.insert(chan, chat).unwrap();
    run_until(&mut map, use_poll, |m| m.is_empty());
    assert!(
        client.borrow().errors.is_empty(),
        "{:?}",
        client.borrow().errors
    );
    client
}

const DATA: &[u8] = b"hello world, I'm not dead yet!\n";

/// Python: `numeric_terminator_check(termlen)`.
fn numeric_terminator_check(termlen: usize, use_poll: bool) {
    let client = echo_through(Terminator::Count(termlen), use_poll, |chan, chat| {
        chat.push(chan, DATA).unwrap();
        chat.push(chan, SERVER_QUIT).unwrap();
    });
    assert_eq!(client.borrow().contents, [DATA[..termlen].to_vec()]);
}

on_both_backends!(numeric_terminator1, |use_poll| {
    super::numeric_terminator_check(1, use_poll)
});
on_both_backends!(numeric_terminator2, |use_poll| {
    super::numeric_terminator_check(6, use_poll)
});

on_both_backends!(none_terminator, |use_poll| {
    let client = super::echo_through(super::Terminator::None, use_poll, |chan, chat| {
        chat.push(chan, super::DATA).unwrap();
        chat.push(chan, super::SERVER_QUIT).unwrap();
    });
    let client = client.borrow();
    assert!(client.contents.is_empty());
    assert_eq!(client.buffer, super::DATA);
});

const LINES: &[u8] = b"hello world\nI'm not dead yet!\n";

fn two_lines() -> [Vec<u8>; 2] {
    [b"hello world".to_vec(), b"I'm not dead yet!".to_vec()]
}

on_both_backends!(simple_producer, |use_poll| {
    let client = super::echo_through(super::Terminator::LF, use_poll, |chan, chat| {
        let p = super::simple_producer(super::cat(&[super::LINES, super::SERVER_QUIT]), 8);
        chat.push_with_producer(chan, p).unwrap();
    });
    assert_eq!(client.borrow().contents, super::two_lines());
});

on_both_backends!(string_producer, |use_poll| {
    let client = super::echo_through(super::Terminator::LF, use_poll, |chan, chat| {
        // A byte buffer is a producer too.
        let data = super::Bytes::from(super::cat(&[super::LINES, super::SERVER_QUIT]));
        chat.push_with_producer(chan, data).unwrap();
    });
    assert_eq!(client.borrow().contents, super::two_lines());
});

on_both_backends!(empty_line, |use_poll| {
    let client = super::echo_through(super::Terminator::LF, use_poll, |chan, chat| {
        chat.push(chan, &b"hello world\n\nI'm not dead yet!\n"[..])
            .unwrap();
        chat.push(chan, super::SERVER_QUIT).unwrap();
    });
    assert_eq!(
        client.borrow().contents,
        [
            b"hello world".to_vec(),
            Vec::new(),
            b"I'm not dead yet!".to_vec()
        ]
    );
});

on_both_backends!(close_when_done, super::close_when_done_check);

fn close_when_done_check(use_poll: bool) {
    let mut map = SocketMap::new();
    let (addr, server) = start_echo_server(&mut map, 1);
    // The server echoes only after the client has closed (Python: start_resend_event).
    server.borrow_mut().resend = false;
    let (mut chan, mut chat, client) = echo_client(Terminator::LF, &addr);
    chat.push(&mut chan, LINES).unwrap();
    chat.push(&mut chan, SERVER_QUIT).unwrap();
    chat.close_when_done();
    map.insert(chan, chat).unwrap();
    run_until(&mut map, use_poll, |_| client.borrow().closed);
    // Everything pushed before close_when_done was delivered before the close.
    run_until(&mut map, use_poll, |_| server.borrow().received == LINES);
    let conn = server.borrow().conn.expect("accepted");
    server.borrow_mut().resend = true;
    map.touch(conn); // its `writable` depends on `resend`
    run_until(&mut map, use_poll, |m| m.is_empty());
    assert!(client.borrow().contents.is_empty());
    assert!(
        client.borrow().errors.is_empty(),
        "{:?}",
        client.borrow().errors
    );
}

// Python's TypeError cases (an int, a str) have no Rust counterpart: `push` takes byte types
// by its signature (`impl Into<Bytes>`; an integer does not compile, see the compile_fail
// doctest on `ChatContext::push`). Here: every byte type Python accepts, in order.
on_both_backends!(push, |use_poll| {
    let client = super::echo_through(super::Terminator::LF, use_poll, |chan, chat| {
        let data: &'static [u8] = b"bytes\n";
        chat.push(chan, data).unwrap(); // bytes
        chat.push(chan, data.to_vec()).unwrap(); // bytearray
        chat.push(chan, super::Bytes::copy_from_slice(data))
            .unwrap(); // memoryview
        chat.push(chan, super::SERVER_QUIT).unwrap();
    });
    assert_eq!(client.borrow().contents, vec![b"bytes".to_vec(); 3]);
});

/// Collects with no terminator, and counts errors.
struct Quiet {
    collected: Rc<RefCell<Vec<u8>>>,
    errors: Rc<Cell<usize>>,
}

impl ChatHandler for Quiet {
    fn collect_incoming_data(
        &mut self,
        _chat: &mut ChatContext<'_, '_>,
        data: &[u8],
    ) -> HandlerResult {
        self.collected.borrow_mut().extend_from_slice(data);
        Ok(())
    }
    fn found_terminator(&mut self, _chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        Ok(())
    }
    fn handle_error(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        _err: asyncore_core::BoxError,
    ) -> HandlerResult {
        self.errors.set(self.errors.get() + 1);
        chat.close()?;
        Ok(())
    }
}

/// Counts the read events of the dispatcher it wraps.
struct CountReads<D> {
    inner: D,
    reads: Rc<Cell<usize>>,
}

impl<D: Dispatcher> Dispatcher for CountReads<D> {
    fn readable(&self, chan: &Channel) -> bool {
        self.inner.readable(chan)
    }
    fn writable(&self, chan: &Channel) -> bool {
        self.inner.writable(chan)
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.reads.set(self.reads.get() + 1);
        self.inner.handle_read(ctx)
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.inner.handle_write(ctx)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.inner.handle_close(ctx)
    }
    fn handle_error(
        &mut self,
        ctx: &mut Context<'_>,
        err: asyncore_core::BoxError,
    ) -> HandlerResult {
        self.inner.handle_error(ctx, err)
    }
}

/// Reads whatever its descriptor has (a duplicate of the chat channel's socket).
struct Thief(Rc<RefCell<Vec<u8>>>);

impl Dispatcher for Thief {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        self.0.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }
}

/// Python (TestAsynchatMocked): a `BlockingIOError` from `recv` in `handle_read` is not an
/// error. Here the chat channel gets a read event whose `recv` finds nothing: another
/// channel on a duplicate of its socket, polled first, took the data.
fn blockingioerror_check(use_poll: bool) {
    let (chan, mut peer) = asynchat_util::pair();
    let dup = chan.socket().unwrap().try_clone().unwrap();
    let stolen = Rc::new(RefCell::new(Vec::new()));
    let collected = Rc::new(RefCell::new(Vec::new()));
    let errors = Rc::new(Cell::new(0));
    let reads = Rc::new(Cell::new(0));
    let mut map = SocketMap::new();
    map.insert(Channel::from_socket(dup).unwrap(), Thief(stolen.clone()))
        .unwrap();
    let quiet = Quiet {
        collected: collected.clone(),
        errors: errors.clone(),
    };
    let id = map
        .insert(
            chan,
            CountReads {
                inner: AsyncChat::new(quiet),
                reads: reads.clone(),
            },
        )
        .unwrap();
    std::io::Write::write_all(&mut peer, b"x").unwrap();
    run_until(&mut map, use_poll, |_| reads.get() > 0);
    assert_eq!(
        *stolen.borrow(),
        b"x",
        "the other channel was to read first"
    );
    assert!(collected.borrow().is_empty());
    assert_eq!(errors.get(), 0, "WouldBlock reached handle_error");
    assert!(map.contains(id), "WouldBlock closed the channel");
}

on_both_backends!(blockingioerror, super::blockingioerror_check);

#[test]
fn find_prefix_at_end() {
    use asyncore_chat::find_prefix_at_end;
    assert_eq!(find_prefix_at_end(b"qwerty\r", b"\r\n"), 1);
    assert_eq!(find_prefix_at_end(b"qwertydkjf", b"\r\n"), 0);
    // Beyond Python's two cases: the longest prefix wins; a short haystack; no needle.
    assert_eq!(find_prefix_at_end(b"abab", b"ababc"), 4);
    assert_eq!(find_prefix_at_end(b"xqq", b"qqq"), 2);
    assert_eq!(find_prefix_at_end(b"q", b"qqq"), 1);
    assert_eq!(find_prefix_at_end(b"", b"\r\n"), 0);
    assert_eq!(find_prefix_at_end(b"abc", b""), 0);
}

#[test]
fn disallow_negative_terminator() {
    // Python: set_terminator(-1) raises ValueError. A count is a usize here, so a negative
    // one comes only from a signed number, and is refused with a clear error; an empty
    // byte string (which Python would never find) cannot be made either.
    let err = Terminator::try_from(-1i64).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid terminator -1: the number of received bytes must be positive"
    );
    assert_eq!(Terminator::try_from(3i64).unwrap(), Terminator::Count(3));
    assert!(Terminator::bytes("").is_err());
}
