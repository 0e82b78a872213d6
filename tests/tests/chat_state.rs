//! `async_chat` over the core's one state per channel (issue 14): input already read is
//! never stranded, a shutdown gives the protocol its close, and a producer's failure
//! loses nothing queued before it.

mod asynchat_util;

use asynchat_util::{pair, read_available, run_until, PeerStream};
use asyncore_chat::{AsyncChat, Bytes, ChatContext, ChatHandler, Producer, Terminator};
use asyncore_core::{BoxError, ExitNow, HandlerResult, Loop, LoopError, SocketMap};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::rc::Rc;
use std::time::Duration;

/// What the handlers of these tests saw.
#[derive(Default)]
struct Seen {
    frames: RefCell<Vec<Vec<u8>>>,
    errors: RefCell<Vec<String>>,
    closes: Cell<usize>,
}

/// How a [`Lines`] handler fails on the frame `one`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum OnOne {
    Error,
    Exit,
}

/// Answers every line with `ok LINE`, but fails on `one`; its `handle_error` survives.
struct Lines {
    seen: Rc<Seen>,
    on_one: OnOne,
}

impl ChatHandler for Lines {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = chat.take_data();
        self.seen.frames.borrow_mut().push(line.to_vec());
        if &line[..] == b"one" {
            return Err(match self.on_one {
                OnOne::Error => "refused one".into(),
                OnOne::Exit => ExitNow::new("asked to").into(),
            });
        }
        chat.push("ok ")?;
        chat.push(line)?;
        chat.push("\n")?;
        Ok(())
    }

    fn handle_error(&mut self, _chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        self.seen.errors.borrow_mut().push(err.to_string());
        Ok(())
    }

    fn handle_close(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        self.seen.closes.set(self.seen.closes.get() + 1);
        chat.close()?;
        Ok(())
    }
}

/// A map with one `AsyncChat` over `Lines` (cut at `\n`), its peer, and what it sees.
fn lines_channel(on_one: OnOne) -> (SocketMap, PeerStream, Rc<Seen>) {
    let (chan, peer) = pair();
    let seen = Rc::new(Seen::default());
    let mut map = SocketMap::new();
    let lines = Lines {
        seen: seen.clone(),
        on_one,
    };
    map.insert(chan, AsyncChat::with_terminator(lines, Terminator::LF))
        .unwrap();
    (map, peer, seen)
}

/// The peer pipelines three lines in one write, and the handler fails on the first one
/// (an error its `handle_error` survives, or `ExitNow` and the program runs the loop
/// again): the two others are framed and answered on the next passes without the peer
/// sending anything more. (Before, they waited in the framer for more input, and a peer
/// that waited for its replies waited forever.)
fn pipelined_input_after_a_failure_is_not_stranded(use_poll: bool) {
    for on_one in [OnOne::Error, OnOne::Exit] {
        let (mut map, mut peer, seen) = lines_channel(on_one);
        peer.write_all(b"one\ntwo\nthree\n").unwrap();
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while got.len() < b"ok two\nok three\n".len() {
            assert!(
                std::time::Instant::now() < deadline,
                "stranded: frames {:?}",
                seen.frames.borrow()
            );
            let run = Loop::new()
                .timeout(Duration::from_millis(10))
                .use_poll(use_poll)
                .count(1)
                .run(&mut map);
            match run {
                Ok(()) | Err(LoopError::ExitNow(_)) => {}
                Err(e) => panic!("loop failed: {e}"),
            }
            read_available(&mut peer, &mut got);
        }
        assert_eq!(got, b"ok two\nok three\n");
        assert_eq!(
            *seen.frames.borrow(),
            [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
        );
    }
}
on_both_backends!(
    pipelined_input_after_a_failure_is_not_stranded,
    super::pipelined_input_after_a_failure_is_not_stranded
);

/// The same three lines, then the peer half-closes and reads: it gets the replies to the
/// two lines after the failed one, then the end of stream (the README's half-close
/// promise). (Before, the end of stream came first and the two were never answered.)
fn a_half_closing_peer_gets_the_replies_after_a_failure(use_poll: bool) {
    let (mut map, mut peer, seen) = lines_channel(OnOne::Error);
    peer.write_all(b"one\ntwo\nthree\n").unwrap();
    peer.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    let mut eof = false;
    run_until(&mut map, use_poll, |m| {
        eof |= read_available(&mut peer, &mut got);
        eof && m.is_empty()
    });
    assert_eq!(got, b"ok two\nok three\n");
    assert_eq!(seen.closes.get(), 1);
}
on_both_backends!(
    a_half_closing_peer_gets_the_replies_after_a_failure,
    super::a_half_closing_peer_gets_the_replies_after_a_failure
);

/// `SocketMap::shutdown` gives a protocol on `AsyncChat` its `handle_close`, once, after
/// its queued reply is delivered. (Before, the shutdown closed the channel without it.)
fn shutdown_gives_async_chat_its_handle_close_once(use_poll: bool) {
    let (mut map, mut peer, seen) = lines_channel(OnOne::Error);
    peer.write_all(b"hello\n").unwrap();
    let mut got = Vec::new();
    run_until(&mut map, use_poll, |_| {
        read_available(&mut peer, &mut got);
        !got.is_empty()
    });
    map.shutdown(Duration::from_secs(5));
    let mut eof = false;
    run_until(&mut map, use_poll, |m| {
        eof |= read_available(&mut peer, &mut got);
        eof && m.is_empty()
    });
    assert_eq!(got, b"ok hello\n");
    assert_eq!(seen.closes.get(), 1, "handle_close once");
}
on_both_backends!(
    shutdown_gives_async_chat_its_handle_close_once,
    super::shutdown_gives_async_chat_its_handle_close_once
);

/// A producer that fails (or panics) at once.
struct Broken {
    panics: bool,
}

impl Producer for Broken {
    fn more(&mut self) -> Result<Bytes, BoxError> {
        if self.panics {
            panic!("producer broke");
        }
        Err("producer failed".into())
    }
}

/// On `go`: pushes 1 MiB (more than the socket takes at once), then a broken producer.
struct Pusher {
    seen: Rc<Seen>,
    panics: bool,
}

impl ChatHandler for Pusher {
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let _ = chat.take_data();
        chat.push(vec![b'p'; 1 << 20])?;
        chat.push_with_producer(Broken {
            panics: self.panics,
        })?;
        Ok(())
    }

    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        self.seen.errors.borrow_mut().push(err.to_string());
        chat.request_close();
        Ok(())
    }
}

/// A producer that fails loses nothing queued before it: the peer gets the whole
/// megabyte, then the channel's `handle_error` gets the producer's error (or panic).
/// (Before, the error came at the first write event and the close dropped what was still
/// queued.)
fn a_failing_producer_loses_nothing_before_it(use_poll: bool) {
    for panics in [false, true] {
        let (chan, mut peer) = pair();
        let seen = Rc::new(Seen::default());
        let mut map = SocketMap::new();
        let pusher = Pusher {
            seen: seen.clone(),
            panics,
        };
        map.insert(chan, AsyncChat::with_terminator(pusher, Terminator::LF))
            .unwrap();
        peer.write_all(b"go\n").unwrap();
        let mut got = Vec::new();
        let mut eof = false;
        run_until(&mut map, use_poll, |m| {
            eof |= read_available(&mut peer, &mut got);
            eof && m.is_empty()
        });
        assert_eq!(got.len(), 1 << 20, "every byte before the producer");
        let errors = seen.errors.borrow().clone();
        assert_eq!(errors.len(), 1, "{errors:?}");
        let want = if panics {
            "producer broke"
        } else {
            "producer failed"
        };
        assert!(errors[0].contains(want), "{errors:?}");
    }
}
on_both_backends!(
    a_failing_producer_loses_nothing_before_it,
    super::a_failing_producer_loses_nothing_before_it
);
