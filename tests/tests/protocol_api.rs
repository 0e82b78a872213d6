//! What a protocol writer reaches for, on both backends: big frames through a handler
//! that keeps them itself, an over-long line answered and the connection kept, frames
//! after `close_when_done`, a listener that survives one failed connection, and a greeting
//! pushed as the channel joins the map.

mod asynchat_util;
mod util;

use asynchat_util::{pair, read_available, run_until, write_some};
use asyncore_chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use asyncore_core::{
    Channel, Context, Dispatcher, Domain, HandlerResult, SockAddr, Socket, SocketMap, Type,
};
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;

/// What the handlers of these tests saw.
#[derive(Default)]
struct Seen {
    frames: RefCell<Vec<Vec<u8>>>,
    streamed: Cell<usize>,
    errors: RefCell<Vec<String>>,
    closes: Cell<usize>,
}

/// SMTP's DATA: the whole message is one frame ending at `\r\n.\r\n`, which the handler
/// counts as it comes instead of keeping it (as CPython's smtpd bounds it by its own
/// `data_size_limit`).
struct Streamer {
    seen: Rc<Seen>,
}

impl ChatHandler for Streamer {
    fn collect_incoming_data(
        &mut self,
        _chat: &mut ChatContext<'_, '_>,
        data: &[u8],
    ) -> HandlerResult {
        self.seen
            .streamed
            .set(self.seen.streamed.get() + data.len());
        Ok(())
    }

    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let n = self.seen.streamed.replace(0);
        self.seen
            .frames
            .borrow_mut()
            .push(n.to_string().into_bytes());
        chat.push(format!("250 {n} bytes\r\n"))?;
        Ok(())
    }

    fn handle_error(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        err: asyncore_core::BoxError,
    ) -> HandlerResult {
        self.seen.errors.borrow_mut().push(err.to_string());
        chat.request_close();
        Ok(())
    }
}

/// A frame far over the default input limit (64 KiB) goes through a
/// `collect_incoming_data` that keeps nothing: the limit bounds what the library holds,
/// not what the handler took. (Before, the 2 MiB message closed the connection with an
/// input-limit error.)
fn big_frame_through_an_overriding_collector(use_poll: bool) {
    let (chan, mut peer) = pair();
    let seen = Rc::new(Seen::default());
    let mut map = SocketMap::new();
    let chat = AsyncChat::with_terminator(
        Streamer { seen: seen.clone() },
        Terminator::literal(b"\r\n.\r\n"),
    );
    map.insert(chan, chat).unwrap();
    let mut to_send = vec![b'm'; 2 << 20];
    to_send.extend_from_slice(b"\r\n.\r\n");
    let mut got = Vec::new();
    run_until(&mut map, use_poll, |_| {
        write_some(&mut peer, &mut to_send);
        read_available(&mut peer, &mut got);
        !got.is_empty()
    });
    assert_eq!(seen.errors.borrow().clone(), Vec::<String>::new());
    assert_eq!(
        String::from_utf8_lossy(&got),
        format!("250 {} bytes\r\n", 2 << 20)
    );
}
on_both_backends!(
    big_frame_through_an_overriding_collector,
    super::big_frame_through_an_overriding_collector
);

/// Keeps lines with the default collector, answers an over-long one and goes on.
struct Answering {
    seen: Rc<Seen>,
}

impl ChatHandler for Answering {
    fn input_limit_exceeded(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        len: usize,
    ) -> HandlerResult {
        self.seen
            .errors
            .borrow_mut()
            .push(format!("too long: {len}"));
        chat.push("500 line too long\r\n")?;
        Ok(())
    }

    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = chat.take_data();
        self.seen.frames.borrow_mut().push(line.to_vec());
        chat.push("250 ")?;
        chat.push(line)?;
        chat.push("\r\n")?;
        Ok(())
    }
}

/// An over-long line is answered in its place, the rest of it up to its terminator is
/// discarded, and the lines after it are served on the same connection. (Before, the
/// channel read no more after the limit and closed.)
fn an_over_long_line_is_answered_and_the_connection_kept(use_poll: bool) {
    let (chan, mut peer) = pair();
    let seen = Rc::new(Seen::default());
    let mut map = SocketMap::new();
    let mut chat = AsyncChat::with_terminator(Answering { seen: seen.clone() }, Terminator::CRLF);
    chat.set_max_input(Some(100));
    map.insert(chan, chat).unwrap();
    let mut to_send = b"first\r\n".to_vec();
    to_send.extend(std::iter::repeat_n(b'x', 10_000));
    to_send.extend_from_slice(b"\r\nlast\r\n");
    let mut got = Vec::new();
    let want = "250 first\r\n500 line too long\r\n250 last\r\n";
    run_until(&mut map, use_poll, |_| {
        write_some(&mut peer, &mut to_send);
        read_available(&mut peer, &mut got);
        got.len() >= want.len()
    });
    assert_eq!(String::from_utf8_lossy(&got), want);
    assert_eq!(*seen.frames.borrow(), [b"first".to_vec(), b"last".to_vec()]);
    assert_eq!(
        seen.errors.borrow().len(),
        1,
        "told once: {:?}",
        seen.errors.borrow()
    );
    assert_eq!(map.len(), 1, "the connection stays open");
}
on_both_backends!(
    an_over_long_line_is_answered_and_the_connection_kept,
    super::an_over_long_line_is_answered_and_the_connection_kept
);

/// Says bye to QUIT and closes when done; answers every other line.
struct Quits {
    seen: Rc<Seen>,
}

impl ChatHandler for Quits {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = chat.take_data();
        self.seen.frames.borrow_mut().push(line.to_vec());
        if &line[..] == b"QUIT" {
            chat.push("221 Bye\r\n")?;
            chat.close_when_done();
            return Ok(());
        }
        // Refused after close_when_done; the default handle_error lets that pass.
        chat.push("250 OK\r\n")?;
        Ok(())
    }

    fn handle_close(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        self.seen.closes.set(self.seen.closes.get() + 1);
        chat.close()?;
        Ok(())
    }
}

/// Frames still arrive after `close_when_done` (a request sent after QUIT in the same
/// write reaches `found_terminator`, as in Python); its reply is refused, and that does
/// not cost the reply queued before it.
fn frames_after_close_when_done_still_arrive(use_poll: bool) {
    let (chan, mut peer) = pair();
    let seen = Rc::new(Seen::default());
    let mut map = SocketMap::new();
    map.insert(
        chan,
        AsyncChat::with_terminator(Quits { seen: seen.clone() }, Terminator::CRLF),
    )
    .unwrap();
    peer.write_all(b"NOOP\r\nQUIT\r\nNOOP\r\n").unwrap();
    let mut got = Vec::new();
    let mut eof = false;
    run_until(&mut map, use_poll, |m| {
        eof |= read_available(&mut peer, &mut got);
        eof && m.is_empty()
    });
    assert_eq!(String::from_utf8_lossy(&got), "250 OK\r\n221 Bye\r\n");
    assert_eq!(
        *seen.frames.borrow(),
        [b"NOOP".to_vec(), b"QUIT".to_vec(), b"NOOP".to_vec()]
    );
    assert_eq!(seen.closes.get(), 1);
}
on_both_backends!(
    frames_after_close_when_done_still_arrive,
    super::frames_after_close_when_done_still_arrive
);

/// A listener whose `handle_accepted` fails on every other connection (the `?` on
/// adopting it, say), with the default `handle_error`.
struct Picky {
    accepted: Rc<Cell<usize>>,
}

impl Dispatcher for Picky {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _addr: SockAddr,
    ) -> HandlerResult {
        let n = self.accepted.get() + 1;
        self.accepted.set(n);
        if n % 2 == 1 {
            return Err("cannot adopt this one".into());
        }
        ctx.insert(
            Channel::from_socket(sock)?,
            asyncore_core::DefaultDispatcher,
        )?;
        Ok(())
    }
}

/// One failed adoption drops that connection only: the listener keeps listening and the
/// next connection is accepted. (Before, the default `handle_error` closed the listener
/// and the server stopped accepting for good.)
fn a_listener_survives_a_failed_adoption(use_poll: bool) {
    let mut map = SocketMap::new();
    let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    server
        .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    server.listen(8).unwrap();
    let addr = server.local_addr().unwrap().as_socket().unwrap();
    let accepted = Rc::new(Cell::new(0));
    let listener = map
        .insert(
            server,
            Picky {
                accepted: accepted.clone(),
            },
        )
        .unwrap();
    let logs = util::logs::capture_logs();
    let mut first = std::net::TcpStream::connect(addr).unwrap();
    run_until(&mut map, use_poll, |_| accepted.get() == 1);
    assert!(map.contains(listener), "still listening after the failure");
    // The failed connection was dropped: its peer sees the end of stream.
    first.set_read_timeout(Some(util::DEADLINE)).unwrap();
    assert_eq!(first.read(&mut [0u8; 1]).unwrap(), 0);
    let _second = std::net::TcpStream::connect(addr).unwrap();
    run_until(&mut map, use_poll, |m| m.len() == 2);
    assert_eq!(accepted.get(), 2);
    assert!(
        logs.messages(log::Level::Error)
            .iter()
            .any(|m| m.contains("cannot adopt this one")),
        "the failure is logged"
    );
}
on_both_backends!(
    a_listener_survives_a_failed_adoption,
    super::a_listener_survives_a_failed_adoption
);

/// Greets in `handle_added`, answers `QUIT`.
struct Greeter {
    seen: Rc<Seen>,
}

impl ChatHandler for Greeter {
    fn handle_added(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        chat.push(b"220 ready\r\n")?;
        Ok(())
    }

    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let frame = chat.take_data();
        self.seen.frames.borrow_mut().push(frame.to_vec());
        chat.push(b"221 Bye\r\n")?;
        chat.close_when_done();
        Ok(())
    }
}

/// The greeting pushed in `ChatHandler::handle_added` goes out as the channel joins the
/// map, before any input, once; the conversation then goes on as usual.
fn a_greeting_goes_out_as_the_channel_joins(use_poll: bool) {
    let (chan, mut peer) = pair();
    let seen = Rc::new(Seen::default());
    let mut map = SocketMap::new();
    let chat = AsyncChat::with_terminator(Greeter { seen: seen.clone() }, Terminator::CRLF);
    map.insert(chan, chat).unwrap();
    let mut got = Vec::new();
    run_until(&mut map, use_poll, |_| {
        read_available(&mut peer, &mut got);
        got.len() >= 11
    });
    assert_eq!(got, b"220 ready\r\n", "greeted before any input");
    peer.write_all(b"QUIT\r\n").unwrap();
    let mut eof = false;
    run_until(&mut map, use_poll, |m| {
        eof |= read_available(&mut peer, &mut got);
        eof && m.is_empty()
    });
    assert_eq!(String::from_utf8_lossy(&got), "220 ready\r\n221 Bye\r\n");
    assert_eq!(*seen.frames.borrow(), [b"QUIT".to_vec()]);
}
on_both_backends!(
    a_greeting_goes_out_as_the_channel_joins,
    super::a_greeting_goes_out_as_the_channel_joins
);

/// A `close_when_done` asked before `insert` (Python: in `__init__`, after a push) applies
/// after the greeting: the peer gets what was pushed before, the greeting, then the end.
fn close_when_done_before_insert_follows_the_greeting(use_poll: bool) {
    let (mut chan, mut peer) = pair();
    let seen = Rc::new(Seen::default());
    let mut map = SocketMap::new();
    let mut chat = AsyncChat::with_terminator(Greeter { seen: seen.clone() }, Terminator::CRLF);
    chat.push(&mut chan, b"421 busy, come back later\r\n")
        .unwrap();
    chat.close_when_done();
    map.insert(chan, chat).unwrap();
    let mut got = Vec::new();
    let mut eof = false;
    run_until(&mut map, use_poll, |m| {
        eof |= read_available(&mut peer, &mut got);
        eof && m.is_empty()
    });
    assert_eq!(
        String::from_utf8_lossy(&got),
        "421 busy, come back later\r\n220 ready\r\n"
    );
}
on_both_backends!(
    close_when_done_before_insert_follows_the_greeting,
    super::close_when_done_before_insert_follows_the_greeting
);

/// Looks itself up through the map from inside its own callback.
struct SelfSeeker {
    seen: Rc<RefCell<Option<asyncore_core::LookupError>>>,
}

impl Dispatcher for SelfSeeker {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.recv(&mut [0u8; 8])?;
        let me = ctx.handle::<SelfSeeker>()?;
        *self.seen.borrow_mut() = ctx.map().get_mut(me).err();
        Ok(())
    }
}

/// A typed handle reaches its handler as its own type, and when it cannot, the error says
/// why: the channel closed, it is the one running, or the handle is another map's; an
/// untyped id asked for the wrong type says that. (Before, all of these were the same
/// `None` / `NotFound`.)
#[test]
fn a_handle_reaches_its_handler_or_says_why_not() {
    use asyncore_core::LookupError;
    let mut map = SocketMap::new();
    let (chan, mut peer) = pair();
    let seen = Rc::new(RefCell::new(None));
    let me = map.insert(chan, SelfSeeker { seen: seen.clone() }).unwrap();
    assert!(map.get_mut(me).is_ok(), "reached between passes");
    peer.write_all(b"x").unwrap();
    run_until(&mut map, false, |_| seen.borrow().is_some());
    assert_eq!(*seen.borrow(), Some(LookupError::Running(me.id())));

    assert!(matches!(
        map.handle::<asyncore_core::DefaultDispatcher>(me.id()),
        Err(LookupError::WrongType { .. })
    ));
    assert_eq!(map.handle::<SelfSeeker>(me.id()), Ok(me));

    let other = SocketMap::new();
    assert_eq!(
        other.handle::<SelfSeeker>(me.id()),
        Err(LookupError::OtherMap(me.id()))
    );

    map.close(me).unwrap();
    assert_eq!(map.get_mut(me).err(), Some(LookupError::Gone(me.id())));
}

/// A channel the map refuses comes back with its handler, so that the program can still
/// use them (here: the handler's state). (Before, both were dropped.)
#[test]
fn a_refused_insert_hands_the_channel_and_handler_back() {
    let mut map = SocketMap::new();
    let seen = Rc::new(Seen::default());
    seen.closes.set(7);
    let err = map
        .insert(
            Channel::new(), // no descriptor
            AsyncChat::new(Streamer { seen: seen.clone() }),
        )
        .unwrap_err();
    assert_eq!(err.error().kind(), std::io::ErrorKind::InvalidInput);
    let (error, channel, handler) = err.into_parts();
    assert!(error.to_string().contains("no descriptor"), "{error}");
    assert!(channel.fileno().is_none());
    assert_eq!(
        handler.get_ref().seen.closes.get(),
        7,
        "the very handler comes back"
    );
    assert!(map.is_empty());
}

/// The program's shared state, as the map's data.
#[derive(Default)]
struct Hits {
    by: Vec<&'static str>,
}

/// Records its reads in the map's `Hits`.
struct Hitter;

impl Dispatcher for Hitter {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.recv(&mut [0u8; 8])?;
        ctx.map()
            .data_mut::<Hits>()
            .ok_or("no Hits")?
            .by
            .push("handler");
        Ok(())
    }
}

/// A handler, a timer and a job posted from another thread all reach the map's data,
/// mutably, with no `Rc<RefCell<..>>`.
fn every_callback_reaches_the_maps_data(use_poll: bool) {
    let mut map = SocketMap::new();
    map.insert_data(Hits::default());
    let (chan, mut peer) = pair();
    map.insert(chan, Hitter).unwrap();
    map.call_later(std::time::Duration::ZERO, |map| {
        if let Some(hits) = map.data_mut::<Hits>() {
            hits.by.push("timer");
        }
    });
    let waker = map.waker().unwrap();
    std::thread::spawn(move || {
        waker.post(|map| {
            if let Some(hits) = map.data_mut::<Hits>() {
                hits.by.push("job");
            }
        });
    })
    .join()
    .unwrap();
    peer.write_all(b"x").unwrap();
    run_until(&mut map, use_poll, |m| {
        m.data::<Hits>().is_some_and(|h| h.by.len() == 3)
    });
    let mut by = map.data::<Hits>().unwrap().by.clone();
    by.sort_unstable();
    assert_eq!(by, ["handler", "job", "timer"]);
}
on_both_backends!(
    every_callback_reaches_the_maps_data,
    super::every_callback_reaches_the_maps_data
);

/// Frames prefixed by their length in one byte, each answered with its payload and `\n`.
struct LengthPrefixed;

impl ChatHandler for LengthPrefixed {
    fn decode(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        input: &[u8],
    ) -> Result<asyncore_chat::Decoded, asyncore_core::BoxError> {
        use asyncore_chat::Decoded;
        let Some(&len) = input.first() else {
            return Ok(Decoded::Incomplete(None));
        };
        let whole = 1 + usize::from(len);
        if input.len() < whole {
            return Ok(Decoded::Incomplete(Some(whole - input.len())));
        }
        chat.push_copy(&input[1..whole])?;
        chat.push(b"\n")?;
        Ok(Decoded::Consumed(whole))
    }

    fn found_terminator(&mut self, _chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        Ok(())
    }
}

/// A protocol that cuts its own frames (`Terminator::Decode`) gets pipelined frames one
/// after the other, and a frame cut by the end of a read waits in the framer, in place,
/// for the rest: no buffer of its own, no input given back. (Before, such a protocol
/// switched framing off and kept its own buffer, giving input back with `unread`.)
fn a_decoder_frames_pipelined_and_cut_input(use_poll: bool) {
    let (chan, mut peer) = pair();
    let mut map = SocketMap::new();
    map.insert(
        chan,
        AsyncChat::with_terminator(LengthPrefixed, Terminator::Decode),
    )
    .unwrap();
    peer.write_all(b"\x02ab\x01c\x05de").unwrap();
    let mut got = Vec::new();
    run_until(&mut map, use_poll, |_| {
        read_available(&mut peer, &mut got);
        got.len() >= 5
    });
    assert_eq!(got, b"ab\nc\n");
    peer.write_all(b"fgh").unwrap();
    run_until(&mut map, use_poll, |_| {
        read_available(&mut peer, &mut got);
        got.len() >= 11
    });
    assert_eq!(got, b"ab\nc\ndefgh\n");
}
on_both_backends!(
    a_decoder_frames_pipelined_and_cut_input,
    super::a_decoder_frames_pipelined_and_cut_input
);
