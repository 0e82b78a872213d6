//! What `async_chat` does beyond Python, through real sockets on both backends: the input
//! limit, output watermarks, replies to a peer that half-closed, `close_when_done` refusing
//! later pushes, `push_to` between channels, and producer errors.

mod asynchat_util;

use asynchat_util::{pair, read_available, run_passes, run_until, write_some};
use asyncore_chat::{
    push_to, AsyncChat, Bytes, ChatContext, ChatError, ChatHandle, ChatHandler, Producer,
    SimpleProducer, Terminator, Watermarks,
};
use asyncore_core::{BoxError, HandlerResult, SocketMap};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;

/// What a test handler saw.
#[derive(Default)]
struct Seen {
    frames: RefCell<Vec<Vec<u8>>>,
    errors: RefCell<Vec<String>>,
    closes: Cell<usize>,
    max_collected: Cell<usize>,
}

/// Echoes lines; on an error either replies "-ERR ..." (and stays open) or does the
/// default (log and close).
struct Lines {
    seen: Rc<Seen>,
    reply_on_error: bool,
}

impl ChatHandler for Lines {
    fn collect_incoming_data(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        data: &[u8],
    ) -> HandlerResult {
        chat.collect(data);
        let n = self.seen.max_collected.get().max(chat.data().len());
        self.seen.max_collected.set(n);
        Ok(())
    }

    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = chat.take_data();
        self.seen.frames.borrow_mut().push(line.to_vec());
        chat.push(line)?;
        chat.push("\r\n")?;
        Ok(())
    }

    fn handle_close(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        self.seen.closes.set(self.seen.closes.get() + 1);
        chat.close()?;
        Ok(())
    }

    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        self.seen.errors.borrow_mut().push(err.to_string());
        if self.reply_on_error {
            chat.push("-ERR line too long\r\n")?;
            return Ok(());
        }
        self.handle_close(chat)
    }
}

/// A line that never ends meets the input limit: the error reaches `handle_error` with the
/// message, no more than the limit is ever collected, and the channel closes.
fn input_limit_check(use_poll: bool, reply_on_error: bool) -> (Rc<Seen>, Vec<u8>) {
    let (chan, mut peer) = pair();
    let seen = Rc::new(Seen::default());
    let mut chat = AsyncChat::with_terminator(
        Lines {
            seen: seen.clone(),
            reply_on_error,
        },
        Terminator::CRLF,
    );
    chat.set_max_input(Some(4096));
    let mut map = SocketMap::new();
    map.insert(chan, chat).unwrap();
    let mut to_send = b"ok\r\n".to_vec();
    to_send.extend(std::iter::repeat_n(b'x', 1 << 20));
    let mut got = Vec::new();
    let mut eof = false;
    run_until(&mut map, use_poll, |m| {
        write_some(&mut peer, &mut to_send);
        eof |= read_available(&mut peer, &mut got);
        m.is_empty() && eof
    });
    assert!(!to_send.is_empty(), "the whole megabyte was taken in");
    assert!(
        seen.max_collected.get() <= 4096,
        "collected {}",
        seen.max_collected.get()
    );
    let errors = seen.errors.borrow().clone();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("input of ")
            && errors[0].contains(" bytes exceeds the limit of 4096 without a terminator")
            && errors[0].contains("set_max_input"),
        "{}",
        errors[0]
    );
    assert_eq!(seen.closes.get(), 1);
    (seen, got)
}

on_both_backends!(input_limit_closes_the_channel, |use_poll| {
    let (_, got) = super::input_limit_check(use_poll, false);
    assert_eq!(got, b"ok\r\n");
});

on_both_backends!(
    input_limit_error_reply_is_sent_before_the_close,
    |use_poll| {
        let (_, got) = super::input_limit_check(use_poll, true);
        assert_eq!(got, b"ok\r\n-ERR line too long\r\n");
    }
);

/// Answers each line with `size` bytes.
struct Big {
    size: usize,
    frames: Rc<Cell<usize>>,
}

impl ChatHandler for Big {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        chat.take_data();
        self.frames.set(self.frames.get() + 1);
        chat.push(Bytes::from(vec![b'r'; self.size]))?;
        Ok(())
    }
}

const REPLY: usize = 4096;
const REQUESTS: usize = 1000;

/// Queued output of the `Big` channel `id`.
fn queued(map: &mut SocketMap, id: ChatHandle<Big>) -> (usize, bool) {
    let (chat, chan) = map.get_mut(id).expect("channel");
    (chat.queued_output(chan), chat.framer().is_paused())
}

/// A peer sends many requests and reads nothing: above the high mark the channel stops
/// framing and reading, so its queue stays near the mark; once the peer reads, everything
/// comes through.
fn watermarks_check(use_poll: bool) {
    let (chan, mut peer) = pair();
    let frames = Rc::new(Cell::new(0));
    let mut chat = AsyncChat::with_terminator(
        Big {
            size: REPLY,
            frames: frames.clone(),
        },
        Terminator::LF,
    );
    let (low, high) = (16 * 1024, 64 * 1024);
    chat.set_watermarks(Some(Watermarks::new(low, high).unwrap()));
    let mut map = SocketMap::new();
    let id = map.insert(chan, chat).unwrap();
    peer.write_all(&b"x\n".repeat(REQUESTS)).unwrap();

    run_until(&mut map, use_poll, |m| queued(m, id).1);
    run_passes(&mut map, use_poll, 50);
    let (bytes, paused) = queued(&mut map, id);
    assert!(paused);
    assert!(
        bytes <= high + REPLY,
        "{bytes} bytes queued, high mark {high}"
    );
    assert!(
        frames.get() < REQUESTS,
        "all requests were answered into the queue"
    );

    let mut got = Vec::new();
    run_until(&mut map, use_poll, |_| {
        read_available(&mut peer, &mut got);
        got.len() == REQUESTS * REPLY
    });
    assert_eq!(frames.get(), REQUESTS);
    assert_eq!(queued(&mut map, id), (0, false));
}

on_both_backends!(watermarks_pause_reading, super::watermarks_check);

on_both_backends!(without_watermarks_the_queue_grows, |use_poll| {
    // The counterpart of the test above: the same peer, no watermarks.
    let (chan, mut peer) = super::pair();
    let frames = super::Rc::new(super::Cell::new(0));
    let big = super::Big {
        size: super::REPLY,
        frames: frames.clone(),
    };
    let mut chat = super::AsyncChat::with_terminator(big, super::Terminator::LF);
    chat.set_watermarks(None);
    let mut map = super::SocketMap::new();
    let id = map.insert(chan, chat).unwrap();
    super::Write::write_all(&mut peer, &b"x\n".repeat(super::REQUESTS)).unwrap();
    super::run_until(&mut map, use_poll, |_| frames.get() == super::REQUESTS);
    let (bytes, _) = super::queued(&mut map, id);
    assert!(bytes > 1 << 20, "only {bytes} bytes queued");
});

/// Replies to each line with a large produced body and a trailer.
struct Produce {
    body: usize,
    seen: Rc<Seen>,
}

impl ChatHandler for Produce {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = chat.take_data();
        self.seen.frames.borrow_mut().push(line.to_vec());
        let body = Bytes::from(vec![line[0]; self.body]);
        chat.push_with_producer(SimpleProducer::with_buffer_size(body, 4096))?;
        chat.push("done\n")?;
        Ok(())
    }

    fn handle_close(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        self.seen.closes.set(self.seen.closes.get() + 1);
        chat.close()?;
        Ok(())
    }
}

const BODY: usize = 512 * 1024;

fn produce_server(map: &mut SocketMap) -> (Rc<Seen>, asynchat_util::PeerStream) {
    let (chan, peer) = pair();
    let seen = Rc::new(Seen::default());
    let handler = Produce {
        body: BODY,
        seen: seen.clone(),
    };
    map.insert(chan, AsyncChat::with_terminator(handler, Terminator::LF))
        .unwrap();
    (seen, peer)
}

/// A peer that sends its requests and half-closes still gets every reply (Python's
/// `async_chat` would close at the end of the stream and drop them), then the close.
fn half_close_check(use_poll: bool) {
    let mut map = SocketMap::new();
    let (seen, mut peer) = produce_server(&mut map);
    peer.write_all(b"a\nb\n").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    // Let the channel see the end of the stream while its replies are still queued.
    run_passes(&mut map, use_poll, 10);
    let mut got = Vec::new();
    let mut eof = false;
    run_until(&mut map, use_poll, |m| {
        eof |= read_available(&mut peer, &mut got);
        eof && m.is_empty()
    });
    let mut expected = vec![b'a'; BODY];
    expected.extend_from_slice(b"done\n");
    expected.extend(std::iter::repeat_n(b'b', BODY));
    expected.extend_from_slice(b"done\n");
    assert!(
        got == expected,
        "got {} bytes, expected {}",
        got.len(),
        expected.len()
    );
    assert_eq!(seen.closes.get(), 1);
}

on_both_backends!(half_closed_peer_gets_its_replies, super::half_close_check);

/// The peer half-closes, then goes away while its replies are being sent: the channel
/// closes, and its `handle_close` still runs, once.
fn peer_gone_check(use_poll: bool) {
    let mut map = SocketMap::new();
    let (seen, peer) = produce_server(&mut map);
    (&peer).write_all(b"a\n").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    run_passes(&mut map, use_poll, 10);
    assert!(!map.is_empty(), "closed before the replies were out");
    drop(peer);
    run_until(&mut map, use_poll, |m| m.is_empty());
    assert_eq!(seen.frames.borrow().len(), 1);
    assert_eq!(seen.closes.get(), 1);
}

on_both_backends!(
    peer_gone_while_draining_still_calls_handle_close,
    super::peer_gone_check
);

/// On "quit": says bye, closes when done, and tries to push once more.
struct Quitter {
    seen: Rc<Seen>,
}

impl ChatHandler for Quitter {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = chat.take_data();
        self.seen.frames.borrow_mut().push(line.to_vec());
        if &line[..] == b"quit" {
            chat.push("bye\n")?;
            chat.close_when_done();
            match chat.push("too late\n") {
                Err(ChatError::Closing) => self.seen.errors.borrow_mut().push("Closing".into()),
                other => panic!("push after close_when_done gave {other:?}"),
            }
            match chat.push_copy(b"too late\n") {
                Err(ChatError::Closing) => self.seen.errors.borrow_mut().push("Closing".into()),
                other => panic!("push_copy after close_when_done gave {other:?}"),
            }
        }
        Ok(())
    }
}

on_both_backends!(push_after_close_when_done_is_an_error, |use_poll| {
    let (chan, mut peer) = super::pair();
    let seen = super::Rc::new(super::Seen::default());
    let handler = super::Quitter { seen: seen.clone() };
    let mut map = super::SocketMap::new();
    map.insert(
        chan,
        super::AsyncChat::with_terminator(handler, super::Terminator::LF),
    )
    .unwrap();
    // The line after "quit" is still framed, as in Python; its reply is refused.
    super::Write::write_all(&mut peer, b"hi\nquit\nafter\n").unwrap();
    let mut got = Vec::new();
    let mut eof = false;
    super::run_until(&mut map, use_poll, |m| {
        eof |= super::read_available(&mut peer, &mut got);
        eof && m.is_empty()
    });
    assert_eq!(got, b"bye\n");
    assert_eq!(
        *seen.frames.borrow(),
        [b"hi".to_vec(), b"quit".to_vec(), b"after".to_vec()]
    );
    assert_eq!(*seen.errors.borrow(), ["Closing", "Closing"]);
});

/// A chat room: each line goes to every other member.
struct Member {
    room: Rc<RefCell<Vec<ChatHandle<Member>>>>,
    errors: Rc<RefCell<Vec<String>>>,
}

impl ChatHandler for Member {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let mut line = chat.take_data().to_vec();
        line.push(b'\n');
        let line = Bytes::from(line);
        let me = chat.handle::<Member>()?;
        let others: Vec<ChatHandle<Member>> = self
            .room
            .borrow()
            .iter()
            .copied()
            .filter(|&id| id != me)
            .collect();
        for id in others {
            push_to(chat.map(), id, line.clone())?;
        }
        // Pushing to yourself through the map is refused (your handler is running).
        if let Err(e) = push_to(chat.map(), me, line) {
            self.errors.borrow_mut().push(e.to_string());
        }
        Ok(())
    }
}

on_both_backends!(push_to_broadcasts_to_other_channels, |use_poll| {
    let room = super::Rc::new(super::RefCell::new(Vec::new()));
    let errors = super::Rc::new(super::RefCell::new(Vec::new()));
    let mut map = super::SocketMap::new();
    let mut peers = Vec::new();
    for _ in 0..3 {
        let (chan, peer) = super::pair();
        let member = super::Member {
            room: room.clone(),
            errors: errors.clone(),
        };
        let id = map
            .insert(
                chan,
                super::AsyncChat::with_terminator(member, super::Terminator::LF),
            )
            .unwrap();
        room.borrow_mut().push(id);
        peers.push(peer);
    }
    super::Write::write_all(&mut peers[0], b"hello room\n").unwrap();
    let mut got = vec![Vec::new(), Vec::new(), Vec::new()];
    super::run_until(&mut map, use_poll, |_| {
        for (peer, got) in peers.iter_mut().zip(got.iter_mut()) {
            super::read_available(peer, got);
        }
        got[1].len() == 11 && got[2].len() == 11
    });
    super::run_passes(&mut map, use_poll, 5);
    super::read_available(&mut peers[0], &mut got[0]);
    assert_eq!(
        got,
        [
            b"".to_vec(),
            b"hello room\n".to_vec(),
            b"hello room\n".to_vec()
        ]
    );
    let me = room.borrow()[0];
    assert_eq!(
        *errors.borrow(),
        [format!(
            "cannot push: channel {me}'s handler is running: reach it through its own context"
        )]
    );
    // push_to returns what is now queued for the target, for a caller that bounds it.
    let one = room.borrow()[1];
    assert_eq!(super::push_to(&mut map, one, "x").unwrap(), 1);
    assert_eq!(super::push_to(&mut map, one, "yz").unwrap(), 3);
    // A stale id is refused too.
    map.close(room.borrow()[2]).unwrap();
    let stale = super::push_to(&mut map, room.borrow()[2], "x");
    assert!(matches!(
        stale,
        Err(super::ChatError::Unavailable(
            asyncore_core::LookupError::Gone(_)
        ))
    ));
});

/// Relays each line to the channel `to`, through the map.
struct Relay {
    to: Option<ChatHandle<Relay>>,
}

impl ChatHandler for Relay {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let mut line = chat.take_data().to_vec();
        line.push(b'\n');
        if let Some(to) = self.to {
            push_to(chat.map(), to, line)?;
        }
        Ok(())
    }
}

on_both_backends!(
    push_to_sends_on_the_next_pass_what_a_pass_pushed,
    |use_poll| {
        let mut map = super::SocketMap::new();
        let (b_chan, mut b_peer) = super::pair();
        let (a_chan, mut a_peer) = super::pair();
        let lf = super::Terminator::LF;
        let b = map
            .insert(
                b_chan,
                super::AsyncChat::with_terminator(super::Relay { to: None }, lf.clone()),
            )
            .unwrap();
        map.insert(
            a_chan,
            super::AsyncChat::with_terminator(super::Relay { to: Some(b) }, lf),
        )
        .unwrap();
        super::run_passes(&mut map, use_poll, 3); // both settle, idle
        super::Write::write_all(&mut a_peer, b"one\ntwo\nthree\n").unwrap();
        let queued = |map: &mut super::SocketMap| {
            let (chat, chan) = map.get_mut::<super::AsyncChat<super::Relay>>(b).unwrap();
            chat.queued_output(chan)
        };
        let mut got = Vec::new();
        // The pass that reads A's lines (it waits for them) queues all three on B, and sends
        // none yet ...
        asyncore_core::Loop::new()
            .timeout(std::time::Duration::from_secs(10))
            .use_poll(use_poll)
            .count(1)
            .run(&mut map)
            .unwrap();
        assert_eq!(queued(&mut map), 14);
        super::read_available(&mut b_peer, &mut got);
        assert!(got.is_empty(), "sent before the pass ended: {got:?}");
        // ... the next pass sends them together.
        super::run_passes(&mut map, use_poll, 1);
        super::read_available(&mut b_peer, &mut got);
        assert_eq!(got, b"one\ntwo\nthree\n");
        assert_eq!(queued(&mut map), 0);
    }
);

/// Answers each line with a producer's header, then a copy of the line: the copy waits
/// behind the producer.
struct Headed;

impl ChatHandler for Headed {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = chat.take_data();
        chat.push_with_producer(SimpleProducer::with_buffer_size(Bytes::from("<"), 1))?;
        chat.push_copy(&line)?;
        chat.push_copy(b">\n")?;
        Ok(())
    }
}

on_both_backends!(push_copy_keeps_its_place_behind_a_producer, |use_poll| {
    let mut map = super::SocketMap::new();
    let (chan, mut peer) = super::pair();
    map.insert(
        chan,
        super::AsyncChat::with_terminator(super::Headed, super::Terminator::LF),
    )
    .unwrap();
    let long = "x".repeat(3000); // larger than what the send queue packs
    super::Write::write_all(&mut peer, format!("a\n{long}\nb\n").as_bytes()).unwrap();
    let want = format!("<a>\n<{long}>\n<b>\n");
    let mut got = Vec::new();
    super::run_until(&mut map, use_poll, |_| {
        super::read_available(&mut peer, &mut got);
        got.len() >= want.len()
    });
    assert_eq!(String::from_utf8_lossy(&got), want);
});

/// A producer that fails on its first pull.
struct Broken;

impl Producer for Broken {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        Err("disk on fire".into())
    }
}

/// Pushes the broken producer for each line.
struct UsesBroken {
    seen: Rc<Seen>,
}

impl ChatHandler for UsesBroken {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        chat.take_data();
        chat.push_with_producer(Broken)?;
        Ok(())
    }

    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        self.seen.errors.borrow_mut().push(err.to_string());
        chat.close()?;
        Ok(())
    }
}

on_both_backends!(producer_error_reaches_handle_error, |use_poll| {
    let (chan, mut peer) = super::pair();
    let seen = super::Rc::new(super::Seen::default());
    let mut map = super::SocketMap::new();
    let handler = super::UsesBroken { seen: seen.clone() };
    map.insert(
        chan,
        super::AsyncChat::with_terminator(handler, super::Terminator::LF),
    )
    .unwrap();
    super::Write::write_all(&mut peer, b"go\n").unwrap();
    super::run_until(&mut map, use_poll, |m| m.is_empty());
    assert_eq!(*seen.errors.borrow(), ["disk on fire"]);
});
