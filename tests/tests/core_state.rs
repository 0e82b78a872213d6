//! The core loop's state, tried as a hostile user would (issue 14): every call into user
//! code contained, no readiness lost when a pass is interrupted, the map's views in
//! agreement, re-entrancy refused, ids exact, `set_socket` and refused connects, saturated
//! durations, and the same handler calls on both backends.

mod util;

use asyncore_core::{
    Channel, ChannelId, Context, Dispatcher, ExitNow, Handle, HandlerResult, LookupError, Loop,
    LoopError, PanicError, Socket, SocketMap, TimerId,
};
#[cfg(unix)]
use asyncore_core::{Domain, SockAddr, Type};
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::rc::Rc;
use std::time::Duration;
use util::{per_backend, socketpair, Backend, DEADLINE};

/// What a [`Probe`] saw.
#[derive(Default)]
struct Seen {
    read: RefCell<Vec<u8>>,
    errors: RefCell<Vec<String>>,
    closes: Cell<usize>,
}

/// How a [`Probe`] misbehaves.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// `readable` panics, once.
    PanicInReadable,
    /// `writable` panics, once.
    PanicInWritable,
    /// `handle_read` returns `ExitNow`, once, before reading.
    ExitOnRead,
    /// `handle_timer` panics, once.
    PanicInTimer,
}

/// Reads everything it is given and records it; misbehaves as told.
struct Probe {
    seen: Rc<Seen>,
    fault: Cell<Fault>,
}

impl Probe {
    fn new(seen: &Rc<Seen>, fault: Fault) -> Probe {
        Probe {
            seen: seen.clone(),
            fault: Cell::new(fault),
        }
    }

    /// Takes the fault if it is `which` (so it strikes once).
    fn strikes(&self, which: Fault) -> bool {
        if self.fault.get() == which {
            self.fault.set(Fault::None);
            return true;
        }
        false
    }
}

impl Dispatcher for Probe {
    fn readable(&self, _chan: &Channel) -> bool {
        if self.strikes(Fault::PanicInReadable) {
            panic!("readable broke");
        }
        true
    }

    fn writable(&self, _chan: &Channel) -> bool {
        if self.strikes(Fault::PanicInWritable) {
            panic!("writable broke");
        }
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if self.strikes(Fault::ExitOnRead) {
            return Err(ExitNow::new("asked to").into());
        }
        let mut buf = [0u8; 4096];
        let n = ctx.recv(&mut buf)?;
        self.seen.read.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.seen.closes.set(self.seen.closes.get() + 1);
        ctx.close()?;
        Ok(())
    }

    fn handle_timer(&mut self, _ctx: &mut Context<'_>, _timer: TimerId) -> HandlerResult {
        if self.strikes(Fault::PanicInTimer) {
            panic!("timer broke");
        }
        Ok(())
    }

    fn handle_error(
        &mut self,
        ctx: &mut Context<'_>,
        err: asyncore_core::BoxError,
    ) -> HandlerResult {
        let panic = err
            .downcast_ref::<PanicError>()
            .map(|p| p.message().to_string());
        self.seen
            .errors
            .borrow_mut()
            .push(panic.unwrap_or_else(|| err.to_string()));
        let _ = ctx;
        Ok(())
    }
}

/// A channel of `map` over one end of a socket pair, with `handler`; the other end.
fn over_socketpair<H: Dispatcher>(map: &mut SocketMap, handler: H) -> (Handle<H>, Socket) {
    let (ours, theirs) = socketpair();
    let id = map
        .insert(Channel::from_socket(ours).unwrap(), handler)
        .unwrap();
    (id, theirs)
}

/// A channel of `map` with a `Probe`; the other end of its socket pair.
fn probe(map: &mut SocketMap, fault: Fault) -> (ChannelId, Rc<Seen>, Socket) {
    let seen = Rc::new(Seen::default());
    let (id, theirs) = over_socketpair(map, Probe::new(&seen, fault));
    (id.id(), seen, theirs)
}

/// Runs one pass at a time until `done`, or fails at the deadline; an `ExitNow` from a
/// handler only ends that run (some tests expect one).
fn run_until_ok(map: &mut SocketMap, backend: Backend, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + DEADLINE;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        match backend.looper().count(1).run(map) {
            Ok(()) | Err(LoopError::ExitNow(_)) => {}
            Err(e) => panic!("loop failed: {e}"),
        }
    }
}

/// A panic in `readable` or `writable` goes to that channel's `handle_error` as a
/// `PanicError`; nothing unwinds out of `Loop::run`, and the other channel is served.
/// (Before, the panic unwound out of `Loop::run`.)
fn a_panicking_predicate_goes_to_handle_error(backend: Backend) {
    for fault in [Fault::PanicInReadable, Fault::PanicInWritable] {
        let mut map = SocketMap::new();
        let (_bad, bad_seen, _bad_peer) = probe(&mut map, fault);
        let (_good, good_seen, good_peer) = probe(&mut map, Fault::None);
        (&good_peer).write_all(b"served").unwrap();
        run_until_ok(&mut map, backend, "the good channel's input", || {
            good_seen.read.borrow().len() == 6
        });
        let errors = bad_seen.errors.borrow().clone();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].ends_with("broke"), "{errors:?}");
        assert_eq!(map.len(), 2, "handle_error kept both channels");
    }
}
per_backend!(a_panicking_predicate_goes_to_handle_error);

/// A pass interrupted by a panicking predicate or by `ExitNow` loses no other channel's
/// readiness: on the edge-triggered mio backend, a channel that was ready in that pass
/// is served on the next run without any new input. (Before, a predicate's panic took the
/// pass's active list with it, and the ready channel was never served again.)
fn an_interrupted_pass_strands_no_readiness(backend: Backend) {
    for fault in [Fault::PanicInReadable, Fault::ExitOnRead] {
        let mut map = SocketMap::new();
        let (_first, first_seen, first_peer) = probe(&mut map, fault);
        let (_second, second_seen, second_peer) = probe(&mut map, Fault::None);
        // Both are ready in the same pass; the first one interrupts it.
        (&first_peer).write_all(b"a").unwrap();
        (&second_peer).write_all(b"b").unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            backend.looper().count(1).run(&mut map)
        }));
        assert!(result.is_ok(), "Loop::run unwound");
        run_until_ok(&mut map, backend, "both channels' input", || {
            first_seen.read.borrow().len() == 1 && second_seen.read.borrow().len() == 1
        });
        assert_eq!(*second_seen.read.borrow(), b"b");
    }
}
per_backend!(an_interrupted_pass_strands_no_readiness);

/// A job posted through the waker that panics is logged, and the jobs after it in the same
/// batch still run; the loop goes on. (Before, the panic unwound out of `Loop::run`.)
fn a_panicking_job_is_logged_and_its_batch_goes_on(backend: Backend) {
    let mut map = SocketMap::new();
    let (_id, _seen, _peer) = probe(&mut map, Fault::None);
    let waker = map.waker().unwrap();
    waker.post(|_| panic!("job broke"));
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f = flag.clone();
    waker.post(move |_| f.store(true, std::sync::atomic::Ordering::Relaxed));
    let logs = util::logs::capture_logs();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backend.looper().count(2).run(&mut map)
    }));
    assert!(result.is_ok(), "Loop::run unwound");
    assert!(
        flag.load(std::sync::atomic::Ordering::Relaxed),
        "the next job ran"
    );
    assert!(
        logs.messages(log::Level::Error)
            .iter()
            .any(|m| m.contains("job broke")),
        "the panic is logged"
    );
}
per_backend!(a_panicking_job_is_logged_and_its_batch_goes_on);

/// A channel's `handle_timer` that panics goes to that channel's `handle_error`, and a
/// timer callback of the map that panics is logged; the timers after them still fire and
/// the loop goes on.
fn a_panicking_timer_is_contained(backend: Backend) {
    let mut map = SocketMap::new();
    let (id, seen, _peer) = probe(&mut map, Fault::PanicInTimer);
    map.set_timer(id, Duration::ZERO).unwrap();
    map.call_later(Duration::ZERO, |_| panic!("callback broke"));
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    map.call_later(Duration::ZERO, move |_| f.set(true));
    let logs = util::logs::capture_logs();
    run_until_ok(&mut map, backend, "the timers", || fired.get());
    assert_eq!(*seen.errors.borrow(), ["timer broke"]);
    assert!(map.contains(id), "its handle_error kept the channel");
    assert!(
        logs.messages(log::Level::Error)
            .iter()
            .any(|m| m.contains("callback broke")),
        "the callback's panic is logged"
    );
}
per_backend!(a_panicking_timer_is_contained);

/// What the map's views said right after a channel closed itself.
#[derive(Debug, PartialEq)]
struct Views {
    len: usize,
    is_empty: bool,
    contains: bool,
    in_ids: bool,
    in_iter: usize,
}

/// Closes itself in `handle_read` and looks at the map right after.
struct SelfCloser {
    views: Rc<RefCell<Option<Views>>>,
}

impl Dispatcher for SelfCloser {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let me = ctx.id();
        ctx.close()?;
        let map = ctx.map();
        *self.views.borrow_mut() = Some(Views {
            len: map.len(),
            is_empty: map.is_empty(),
            contains: map.contains(me),
            in_ids: map.ids().contains(&me),
            in_iter: map.iter().filter(|(id, _)| *id == me).count(),
        });
        Ok(())
    }
}

/// After `ctx.close()` inside a handler, `len`, `is_empty`, `contains`, `ids` and
/// iteration all say the channel is gone. (Before, `len` still counted it.)
fn the_map_agrees_with_itself_after_a_close_in_a_handler(backend: Backend) {
    let mut map = SocketMap::new();
    let (_keep, _keep_seen, _keep_peer) = probe(&mut map, Fault::None);
    let views = Rc::new(RefCell::new(None));
    let closer = SelfCloser {
        views: views.clone(),
    };
    let (_, theirs) = over_socketpair(&mut map, closer);
    (&theirs).write_all(b"x").unwrap();
    run_until_ok(&mut map, backend, "the close", || views.borrow().is_some());
    let expected = Views {
        len: 1, // the probe
        is_empty: false,
        contains: false,
        in_ids: false,
        in_iter: 0,
    };
    assert_eq!(*views.borrow(), Some(expected));
}
per_backend!(the_map_agrees_with_itself_after_a_close_in_a_handler);

/// Runs the loop again from inside a handler, after asking the loop to stop.
struct Nester {
    nested: Rc<RefCell<Option<String>>>,
}

impl Dispatcher for Nester {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let _ = ctx.recv(&mut [0u8; 16])?;
        ctx.map().stop();
        let result = Loop::new().timeout(Duration::from_millis(1)).run(ctx.map());
        *self.nested.borrow_mut() = Some(match result {
            Err(LoopError::AlreadyRunning) => "refused".into(),
            other => format!("{other:?}"),
        });
        Ok(())
    }
}

/// `Loop::run` on a map whose loop is running is refused at once, and the outer loop's
/// `stop` still holds. (Before, a nested loop ran, reset `stop`, and did not return.)
fn a_nested_loop_is_refused(backend: Backend) {
    let mut map = SocketMap::new();
    let nested = Rc::new(RefCell::new(None));
    let nester = Nester {
        nested: nested.clone(),
    };
    let (_, theirs) = over_socketpair(&mut map, nester);
    (&theirs).write_all(b"x").unwrap();
    // Runs until stopped: the handler's stop must end this run.
    backend.looper().timeout(DEADLINE).run(&mut map).unwrap();
    assert_eq!(nested.borrow().as_deref(), Some("refused"));
}
per_backend!(a_nested_loop_is_refused);

/// A shutdown of a map with nothing in it is over when its loop returns: it does not
/// stay pending to flush and close the channels a later run serves. (Before,
/// `shutting_down` stayed true and the next run's channels were shut down at once.)
fn a_shutdown_of_an_empty_map_ends_with_its_loop(backend: Backend) {
    let mut map = SocketMap::new();
    map.shutdown(Duration::from_secs(60));
    assert!(map.shutting_down());
    backend.looper().timeout(DEADLINE).run(&mut map).unwrap();
    assert!(!map.shutting_down(), "the shutdown is over with its loop");
    let (id, seen, theirs) = probe(&mut map, Fault::None);
    (&theirs).write_all(b"late").unwrap();
    run_until_ok(&mut map, backend, "the input", || {
        seen.read.borrow().len() == 4
    });
    assert!(map.contains(id), "a later run serves its channels as usual");
    assert_eq!(seen.closes.get(), 0);
}
per_backend!(a_shutdown_of_an_empty_map_ends_with_its_loop);

/// Two maps give their first channels the same slot and generation; neither map's
/// operations accept the other's id. (Before, `map_b` took `map_a`'s id for its own
/// channel.)
#[test]
fn a_channel_id_of_another_map_is_refused() {
    let mut map_a = SocketMap::new();
    let mut map_b = SocketMap::new();
    let (id_a, _seen_a, _peer_a) = probe(&mut map_a, Fault::None);
    let (id_b, _seen_b, _peer_b) = probe(&mut map_b, Fault::None);
    assert_ne!(id_a, id_b);
    assert!(!map_b.contains(id_a));
    assert!(map_b.channel(id_a).is_none());
    assert!(map_b.channel_mut(id_a).is_none());
    assert_eq!(
        map_b.handle::<Probe>(id_a),
        Err(LookupError::OtherMap(id_a))
    );
    assert!(map_b.push(id_a, &b"x"[..]).is_err());
    assert!(map_b.set_timer(id_a, Duration::from_secs(1)).is_err());
    assert!(map_b
        .set_idle_timeout(id_a, Some(Duration::from_secs(1)))
        .is_err());
    let err = map_b.close(id_a).unwrap_err();
    assert!(err.to_string().contains("another map"), "{err}");
    assert!(map_b.contains(id_b), "map_b's own channel is untouched");
    assert!(map_a.contains(id_a));
}

/// Takes a new socket in its first read, then records what it reads from it.
struct Swapper {
    next: Option<Socket>,
    seen: Rc<Seen>,
}

impl Dispatcher for Swapper {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(sock) = self.next.take() {
            ctx.set_socket(sock)?;
            return Ok(());
        }
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        self.seen.read.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }
}

/// `set_socket` on a channel already in the map: both backends deliver the events of the
/// new descriptor. (Before, the new descriptor was never registered with mio, and the
/// channel never heard of its input.)
fn set_socket_in_the_map_delivers_the_new_sockets_events(backend: Backend) {
    let mut map = SocketMap::new();
    let (old, old_peer) = socketpair();
    let (new, new_peer) = socketpair();
    let seen = Rc::new(Seen::default());
    let swapper = Swapper {
        next: Some(new),
        seen: seen.clone(),
    };
    map.insert(Channel::from_socket(old).unwrap(), swapper)
        .unwrap();
    (&old_peer).write_all(b"swap").unwrap();
    run_until_ok(&mut map, backend, "the swap", || map_swapped(&old_peer));
    (&new_peer).write_all(b"on the new socket").unwrap();
    run_until_ok(&mut map, backend, "input on the new socket", || {
        seen.read.borrow().len() == 17
    });
    assert_eq!(*seen.read.borrow(), b"on the new socket");
}
per_backend!(set_socket_in_the_map_delivers_the_new_sockets_events);

/// Whether the channel let go of `old_peer`'s socket (it reads the end of stream).
fn map_swapped(old_peer: &Socket) -> bool {
    old_peer.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    matches!((&*old_peer).read(&mut b), Ok(0))
}

/// A Unix listener's full backlog: Unix domain sockets only.
#[cfg(unix)]
mod refused_at_once {
    use super::*;

    /// Connects; records its connect and its errors.
    struct Connector {
        connects: util::Counter,
        errors: Rc<RefCell<Vec<Option<i32>>>>,
    }

    impl Dispatcher for Connector {
        fn handle_connect(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
            self.connects.bump();
            Ok(())
        }

        fn handle_error(
            &mut self,
            ctx: &mut Context<'_>,
            err: asyncore_core::BoxError,
        ) -> HandlerResult {
            let code = err
                .downcast_ref::<std::io::Error>()
                .and_then(|e| e.raw_os_error());
            self.errors.borrow_mut().push(code);
            ctx.close()?;
            Ok(())
        }
    }

    /// A connect that fails at once with `EAGAIN` (a Unix listener whose backlog is full) is
    /// an error for that channel, carrying the OS error, and `handle_connect` never runs.
    /// (Before, it counted as a connect in progress and `handle_connect` ran for a socket
    /// that never connected.)
    fn a_connect_refused_at_once_is_an_error_not_a_connect(backend: Backend) {
        let dir = util::TestDir::new();
        let path = dir.fresh_path("sock");
        let listener = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        listener.bind(&SockAddr::unix(&path).unwrap()).unwrap();
        listener.listen(0).unwrap();
        // Fill the backlog: with backlog 0, Linux queues one connection.
        let filler = Socket::new(Domain::UNIX, Type::STREAM, None).unwrap();
        filler.set_nonblocking(true).unwrap();
        let _ = filler.connect(&SockAddr::unix(&path).unwrap());
        let mut map = SocketMap::new();
        let mut chan = Channel::create_socket(Domain::UNIX, Type::STREAM).unwrap();
        chan.connect(SockAddr::unix(&path).unwrap()).unwrap();
        let errors = Rc::new(RefCell::new(Vec::new()));
        let connects = util::Counter::default();
        map.insert(
            chan,
            Connector {
                connects: connects.clone(),
                errors: errors.clone(),
            },
        )
        .unwrap();
        run_until_ok(&mut map, backend, "the refusal", || {
            !errors.borrow().is_empty()
        });
        assert_eq!(*errors.borrow(), [Some(util::errno::EAGAIN)]);
        assert_eq!(connects.get(), 0, "handle_connect never ran");
    }
    per_backend!(a_connect_refused_at_once_is_an_error_not_a_connect);
}

/// Timers, idle timeouts and shutdown take `Duration::MAX` as "never", without a panic,
/// and such timers do not fire. (Before, `Instant + Duration::MAX` overflowed.)
fn durations_saturate(backend: Backend) {
    let mut map = SocketMap::new();
    let (id, _seen, _peer) = probe(&mut map, Fault::None);
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    map.call_later(Duration::MAX, move |_| f.set(true));
    map.set_timer(id, Duration::MAX).unwrap();
    map.set_idle_timeout(id, Some(Duration::MAX)).unwrap();
    backend.run(&mut map, 3);
    assert!(!fired.get());
    assert!(map.contains(id));
    map.shutdown(Duration::MAX);
    backend.looper().timeout(DEADLINE).run(&mut map).unwrap();
    assert!(map.is_empty(), "the shutdown finished: nothing was queued");
}
per_backend!(durations_saturate);

/// Where a short read shows the socket drained (epoll); kqueue and Windows need the read
/// that meets `WouldBlock`, so there mio's calls differ by that read.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod same_calls {
    use super::*;

    /// A request/response handler written the documented way: `recv(..)?` (a `WouldBlock`
    /// passed up), then a reply sent from `handle_write`. It logs its calls by pass.
    struct Exchanger {
        calls: Rc<RefCell<Vec<String>>>,
        pass: Rc<Cell<usize>>,
        reply: Option<&'static [u8]>,
    }

    impl Dispatcher for Exchanger {
        fn writable(&self, _chan: &Channel) -> bool {
            self.reply.is_some()
        }

        fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
            let mut buf = [0u8; 64];
            let n = match ctx.recv(&mut buf) {
                Ok(n) => n,
                Err(e) => {
                    let what = format!("{} read: {:?}", self.pass.get(), e.kind());
                    self.calls.borrow_mut().push(what);
                    return Err(e.into());
                }
            };
            self.calls.borrow_mut().push(format!(
                "{} read {}",
                self.pass.get(),
                String::from_utf8_lossy(&buf[..n])
            ));
            if n > 0 {
                self.reply = Some(b"pong");
            }
            Ok(())
        }

        fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
            if let Some(reply) = self.reply.take() {
                ctx.send(reply)?;
                self.calls
                    .borrow_mut()
                    .push(format!("{} write", self.pass.get()));
            }
            Ok(())
        }
    }

    /// Three ping/pong exchanges make the same handler calls, pass by pass, on both
    /// backends, and no `handle_read` meets `WouldBlock`. (Before, mio called the handler
    /// again after it had read all there was; its `recv` got `WouldBlock`, and the `?` cost
    /// the channel the write it wanted in that pass.)
    #[test]
    fn an_exchange_makes_the_same_calls_on_both_backends() {
        let log = |backend: Backend| {
            let mut map = SocketMap::new();
            let calls = Rc::new(RefCell::new(Vec::new()));
            let pass = Rc::new(Cell::new(0));
            let exchanger = Exchanger {
                calls: calls.clone(),
                pass: pass.clone(),
                reply: None,
            };
            let (_, theirs) = over_socketpair(&mut map, exchanger);
            theirs.set_nonblocking(true).unwrap();
            // Let the channel settle in (the first write readiness) before the exchanges.
            backend.run(&mut map, 2);
            for _ in 0..3 {
                (&theirs).write_all(b"ping").unwrap();
                let mut got = Vec::new();
                let mut passes = 0;
                while got.len() < 4 {
                    assert!(passes < 20, "no reply: {:?}", calls.borrow());
                    pass.set(pass.get() + 1);
                    backend
                        .looper()
                        .timeout(DEADLINE)
                        .count(1)
                        .run(&mut map)
                        .unwrap();
                    passes += 1;
                    let mut buf = [0u8; 16];
                    if let Ok(n) = (&theirs).read(&mut buf) {
                        got.extend_from_slice(&buf[..n]);
                    }
                }
                assert_eq!(got, b"pong");
            }
            let calls = calls.borrow().clone();
            calls
        };
        let mio = log(Backend::Mio);
        let poll = log(Backend::Poll);
        assert!(
            mio.iter().chain(&poll).all(|c| !c.contains("WouldBlock")),
            "mio: {mio:?}\npoll: {poll:?}"
        );
        assert_eq!(mio, poll);
    }
}
