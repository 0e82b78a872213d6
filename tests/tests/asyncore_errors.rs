//! Errors inside handlers (issue 2): a panic closes only its channel; `ExitNow` ends the
//! loop at once and reaches the caller, and a later run goes on with the rest of the work.

mod util;

use asyncore_core::{
    Channel, ChannelId, Context, Dispatcher, ExitNow, HandlerResult, LoopError, SocketMap,
};
use log::Level;
use std::io::Write;
use util::logs::capture_logs;
use util::{per_backend, socketpair, Backend, Counter};

/// Reads what comes; optionally panics, or asks to exit, on its first read.
struct Handler {
    reads: Counter,
    closes: Counter,
    panic: bool,
    exit_once: bool,
}

impl Handler {
    fn new() -> Handler {
        Handler {
            reads: Counter::default(),
            closes: Counter::default(),
            panic: false,
            exit_once: false,
        }
    }
}

impl Dispatcher for Handler {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if self.panic {
            panic!("spam in the handler");
        }
        if std::mem::take(&mut self.exit_once) {
            return Err(ExitNow::new("operator said stop").into());
        }
        let n = ctx.recv(&mut [0; 64])?;
        if n > 0 {
            self.reads.bump();
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.closes.bump();
        ctx.close()?;
        Ok(())
    }
}

/// Inserts one end of a fresh socketpair with `handler`; the other end is returned.
fn add(map: &mut SocketMap, handler: Handler) -> (ChannelId, util::PeerStream) {
    let (a, b) = socketpair();
    let id = map
        .insert(Channel::from_socket(a).unwrap(), handler)
        .unwrap();
    (id.id(), util::peer_stream(b))
}

/// A panic in `handle_read` is caught and goes to the default `handle_error`, which logs it
/// with the channel's description and calls `handle_close`; only that channel closes, the
/// loop and the other channel go on.
fn handler_panic(backend: Backend) {
    let logs = capture_logs();
    let mut map = SocketMap::new();
    let bad = Handler {
        panic: true,
        ..Handler::new()
    };
    let bad_closes = bad.closes.clone();
    let (bad, mut bad_peer) = add(&mut map, bad);
    let good = Handler::new();
    let (good_reads, good_closes) = (good.reads.clone(), good.closes.clone());
    let (good, mut good_peer) = add(&mut map, good);

    bad_peer.write_all(b"boom").unwrap();
    good_peer.write_all(b"one").unwrap();
    util::run_until(&mut map, backend, "the panicking channel to close", |map| {
        !map.contains(bad) && good_reads.get() == 1
    });
    assert_eq!(bad_closes.get(), 1);
    let errors = logs.messages(Level::Error);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("handler panicked: spam in the handler"),
        "{errors:?}"
    );
    assert!(
        errors[0].contains("Handler"),
        "names the channel: {errors:?}"
    );

    good_peer.write_all(b"two").unwrap();
    util::run_until(&mut map, backend, "the other channel to read again", |_| {
        good_reads.get() == 2
    });
    assert!(map.contains(good));
    assert_eq!(good_closes.get(), 0);
}
per_backend!(handler_panic);

/// `ExitNow` from the first channel of a pass ends the loop before the others run, and
/// reaches the caller as `LoopError::ExitNow`; the channels stay, and a later run serves
/// the rest of that pass's work (on mio, events already taken from the OS are kept).
fn exit_now(backend: Backend) {
    let mut map = SocketMap::new();
    let first = Handler {
        exit_once: true,
        ..Handler::new()
    };
    let first_reads = first.reads.clone();
    let (_, mut p1) = add(&mut map, first);
    let second = Handler::new();
    let second_reads = second.reads.clone();
    let (_, mut p2) = add(&mut map, second);
    let third = Handler::new();
    let third_reads = third.reads.clone();
    let (_, mut p3) = add(&mut map, third);
    for p in [&mut p1, &mut p2, &mut p3] {
        p.write_all(b"data").unwrap();
    }

    // Channels are served in the order they joined the map; the first one exits.
    match backend.looper().run(&mut map) {
        Err(LoopError::ExitNow(exit)) => assert_eq!(exit.reason(), "operator said stop"),
        other => panic!("expected ExitNow, got {other:?}"),
    }
    assert_eq!(
        second_reads.get() + third_reads.get(),
        0,
        "the loop stopped at once"
    );
    assert_eq!(map.len(), 3);

    util::run_until(&mut map, backend, "the rest of the work", |_| {
        first_reads.get() == 1 && second_reads.get() == 1 && third_reads.get() == 1
    });
}
per_backend!(exit_now);
