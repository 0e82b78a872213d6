//! Model-based property test of the core loop: random sequences of peer, handler and map
//! operations on one `SocketMap`, on both backends, with the loop's invariants checked
//! after every step.
//!
//! # The model
//!
//! Every channel is the accepted end of a TCP connection over 127.0.0.1 whose other end
//! (the *peer*) the test holds, non-blocking, with small socket buffers so that output
//! backs up while the peer does not read. Its handler is a [`Probe`]: it records what it
//! receives, its `handle_close`, `handle_error` and timer calls into the channel's
//! [`Track`], and runs the next scripted [`Action`] (if any) after each read. A step is one [`Op`] (on a
//! peer, a probe's script or the map), then a few passes of
//! `Loop::new().timeout(1 ms).count(1)`. Waits are bounded loops of such passes, never
//! sleeps; a scripted `ExitNow` ends a pass, and the test runs the loop again.
//!
//! # The invariants, checked after every step (most after every pass)
//!
//! 1. `handle_close` runs at most once per channel. A channel is in the map exactly when
//!    it neither got its `handle_close` nor was closed explicitly (`ctx.close()`,
//!    `map.close(id)`), which never calls `handle_close`. After a shutdown, every channel
//!    that was open got exactly one `handle_close`.
//! 2. The map's views agree: `len`, `ids`, `iter`, `is_empty`, `contains`, `channel`.
//! 3. Nothing is stranded: an open channel whose probe reads gets all its peer sent,
//!    within a deadline, also right after a pass that `ExitNow` or a panicking predicate
//!    interrupted (mio is edge-triggered: readiness the loop forgot never comes back).
//! 4. Nothing is delivered twice, out of order or lost: a probe's input is a prefix of
//!    what its peer sent, a peer's input a prefix of what was pushed to its channel, and
//!    all of it, within a deadline, for a reading peer whose channel is open or was closed
//!    gracefully (after its flush: the peer's end of stream, `close_when_done`, shutdown).
//!    Outside a shutdown's grace, only an abrupt close drops queued output.
//! 5. `Loop::run` never unwinds: it is called directly, without `catch_unwind`.
//! 6. A loop with nothing to do waits: a shutdown runs no more passes than milliseconds.
//!
//! Also: no callback reaches a closed channel, `handle_error` sees only the scripted
//! errors, every scripted `ExitNow` (and no other) reaches the caller, every timer of an
//! open channel fires once, a job posted after a panicking one still runs, and nothing but
//! that panic is logged as an error.
//!
//! The test asserts between passes, never inside a callback (the loop would contain the
//! panic): a probe notes what is wrong in `violations`. `PROPTEST_CASES=n` runs more
//! sequences; the `regression_*` tests are failures it found, kept as fixed sequences.

mod util;

use asyncore_core::{
    BoxError, Channel, ChannelId, Context, Dispatcher, Domain, ExitNow, HandlerResult, Loop,
    LoopError, Socket, SocketMap, TimerId, Type, Waker,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, Read};
use std::net::{Shutdown, TcpListener};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};
use util::logs::{capture_logs, LogCapture};
use util::Backend;

/// Random sequences per backend, of at most `MAX_STEPS` operations on at most
/// `MAX_CHANNELS` channels (initial plus inserted).
const CASES: u32 = 48;
const MAX_STEPS: usize = 25;
const MAX_CHANNELS: usize = 6;
/// The read sizes a probe may get (fixed per probe): small ones leave input behind.
const READ_SIZES: [usize; 4] = [3, 7, 64, 4096];
/// `SO_SNDBUF` of a channel and `SO_RCVBUF` of its peer, so that output backs up.
const SMALL_BUFFER: usize = 4096;
const PASSES_PER_STEP: usize = 3;
const PASS_WAIT: Duration = Duration::from_millis(1);
/// How long a bounded wait runs passes before the test fails.
const WAIT: Duration = Duration::from_secs(3);
const EXIT_REASON: &str = "scripted exit";
/// The only errors a probe's `handle_error` may see.
const SCRIPTED_ERRORS: [&str; 3] = [
    "scripted",
    "handler panicked: scripted panic",
    "handler panicked: scripted readable panic",
];

/// Output pushed to a channel: a few bytes, or `len` bytes of a position-dependent
/// pattern (more than the socket buffers hold, up to 48 KiB).
#[derive(Debug, Clone)]
enum Payload {
    Short(Vec<u8>),
    Bulk { len: usize, seed: u8 },
}

impl Payload {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Payload::Short(b) => b.clone(),
            Payload::Bulk { len, seed } => (0..*len).map(|i| seed ^ (i % 251) as u8).collect(),
        }
    }
}

/// What a probe does after its next read. A `usize` names a channel (maybe the probe's
/// own) modulo the channels made so far, when the action runs.
#[derive(Debug, Clone)]
enum Action {
    /// Returns `Err("scripted")`.
    Fail,
    /// Returns `ExitNow`.
    Exit,
    Panic,
    /// Makes its own `readable` panic, once.
    PanicInReadable,
    /// `ctx.close()`.
    CloseSelf,
    /// `ctx.map().close(id)`.
    CloseOther(usize),
    CloseWhenDone,
    /// Makes a new channel (a new TCP pair) with this read size index.
    Insert(usize),
    /// `ctx.map().push(id, data)`.
    PushTo(usize, Payload),
    /// `ctx.map().touch(id)`.
    Touch(usize),
    /// `ctx.set_timer` of this many milliseconds.
    Timer(u64),
    RequestClose,
}

/// One operation; a `usize` names a channel modulo the channels made so far.
#[derive(Debug, Clone)]
enum Op {
    /// Peers send, one after the other, before the loop runs (pipelined).
    Send(Vec<(usize, Vec<u8>)>),
    /// The peer shuts its write side down.
    HalfClose(usize),
    /// The peer resets the connection (`SO_LINGER` 0, then close).
    Reset(usize),
    /// The peer never reads again.
    PeerMute(usize),
    /// The peer reads what arrived, waiting for all of it when it is due.
    PeerRead(usize),
    /// The probe's `readable` answers `false` from now on (and the map is told).
    ProbeMute(usize),
    /// Queues an action for the probe's next read, then its peer sends these bytes.
    Script(usize, Action, Vec<u8>),
    /// `map.push` from the test, between passes.
    Push(usize, Payload),
    /// A new channel, made by the test, with this read size index.
    Open(usize),
    /// Two jobs posted through the map's waker: one panics, the next must still run.
    Wake,
}

/// A sequence: the initial channels' read size indices, the operations, and maybe a final
/// `SocketMap::shutdown` with its grace period in milliseconds.
#[derive(Debug, Clone)]
struct Case {
    initial: Vec<usize>,
    ops: Vec<Op>,
    shutdown: Option<u64>,
}

/// What the probe of a channel recorded.
#[derive(Default)]
struct Rec {
    received: Vec<u8>,
    closes: usize,
    closed_at: Option<Instant>,
    queued_at_close: usize,
    errors: Vec<String>,
    actions: VecDeque<Action>,
    stop_reading: bool,
    panic_readable: bool,
    timers_set: usize,
    timers_fired: usize,
    /// Closed by `ctx.close()` or `map.close(id)`: no `handle_close` is due.
    explicit: bool,
    /// Closed, or to be, without a flush: an error, a panic, `request_close`.
    abrupt: bool,
    violations: Vec<String>,
}

/// Everything known about one channel: its peer, what crossed the connection, and what
/// its probe recorded.
struct Track {
    id: ChannelId,
    /// `None` once reset.
    peer: Option<Socket>,
    sent: Vec<u8>,
    half_closed: bool,
    peer_muted: bool,
    /// The end of stream or the error the peer read: it reads no more.
    peer_finished: Option<String>,
    /// What was pushed to the channel, and how much of it the peer got (checked as it
    /// arrives).
    pushed: Vec<u8>,
    peer_got: usize,
    rec: Rec,
}

impl Track {
    /// Closed through `handle_close` with all its output handed to the kernel and nothing
    /// abrupt on the way: its peer must get all of it.
    fn graceful(&self) -> bool {
        let r = &self.rec;
        r.closes == 1 && !r.explicit && !r.abrupt && r.queued_at_close == 0
    }

    /// Whether its peer reads (is neither reset nor muted).
    fn peer_reads(&self) -> bool {
        self.peer.is_some() && !self.peer_muted
    }
}

/// What the test and the probes share.
struct Model {
    listener: TcpListener,
    tracks: RefCell<Vec<Track>>,
    exits_requested: Cell<usize>,
}

impl Model {
    /// The index and id of channel `j` modulo the channels made so far.
    fn resolve(&self, j: usize) -> (usize, ChannelId) {
        let tracks = self.tracks.borrow();
        let k = j % tracks.len();
        (k, tracks[k].id)
    }

    fn note(&self, k: usize, violation: String) {
        self.tracks.borrow_mut()[k].rec.violations.push(violation);
    }
}

/// A connected TCP pair through `listener`: (the channel's end, the peer's end).
fn tcp_pair(listener: &TcpListener) -> io::Result<(Socket, Socket)> {
    let peer = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    peer.set_recv_buffer_size(SMALL_BUFFER)?;
    peer.set_nodelay(true)?;
    peer.connect(&listener.local_addr()?.into())?;
    peer.set_nonblocking(true)?;
    let chan = Socket::from(listener.accept()?.0);
    chan.set_send_buffer_size(SMALL_BUFFER)?;
    chan.set_nodelay(true)?;
    Ok((chan, peer))
}

/// Makes and tracks a channel whose probe reads `READ_SIZES[size]` bytes at a time;
/// nothing once `MAX_CHANNELS` were made.
fn open(model: &Rc<Model>, map: &mut SocketMap, size: usize) -> io::Result<()> {
    let k = model.tracks.borrow().len();
    if k >= MAX_CHANNELS {
        return Ok(());
    }
    let (chan, peer) = tcp_pair(&model.listener)?;
    let read_size = READ_SIZES[size % READ_SIZES.len()];
    let probe = Probe {
        model: model.clone(),
        k,
        read_size,
    };
    let id = map.insert(Channel::from_socket(chan)?, probe)?;
    model.tracks.borrow_mut().push(Track {
        id: id.id(),
        peer: Some(peer),
        sent: Vec::new(),
        half_closed: false,
        peer_muted: false,
        peer_finished: None,
        pushed: Vec::new(),
        peer_got: 0,
        rec: Rec::default(),
    });
    Ok(())
}

/// Pushes `payload` to channel `k` if it is in the map (recorded first: the push may
/// send at once).
fn push(model: &Model, map: &mut SocketMap, k: usize, payload: &Payload) -> Result<(), String> {
    let id = model.tracks.borrow()[k].id;
    if !map.contains(id) {
        return Ok(());
    }
    let bytes = payload.bytes();
    model.tracks.borrow_mut()[k]
        .pushed
        .extend_from_slice(&bytes);
    map.push(id, bytes)
        .map(drop)
        .map_err(|e| format!("push to {id} failed: {e}"))
}

/// The handler of every channel: records into its [`Track`] and runs its script.
struct Probe {
    model: Rc<Model>,
    /// Its channel's index in the model.
    k: usize,
    read_size: usize,
}

impl Probe {
    fn rec<R>(&self, f: impl FnOnce(&mut Rec) -> R) -> R {
        f(&mut self.model.tracks.borrow_mut()[self.k].rec)
    }

    /// Notes a callback that reached a closed channel.
    fn alive(&self, callback: &str) {
        self.rec(|r| {
            if r.closes > 0 || r.explicit {
                r.violations
                    .push(format!("{callback} after the channel closed"));
            }
        });
    }

    fn perform(&mut self, ctx: &mut Context<'_>, action: Action) -> HandlerResult {
        let (me, model) = (self.k, &self.model);
        match action {
            Action::Fail => return Err("scripted".into()),
            Action::Exit => {
                model.exits_requested.set(model.exits_requested.get() + 1);
                return Err(ExitNow::new(EXIT_REASON).into());
            }
            Action::Panic => panic!("scripted panic"),
            Action::PanicInReadable => self.rec(|r| r.panic_readable = true),
            Action::CloseSelf => {
                self.rec(|r| r.explicit = true);
                if let Err(e) = ctx.close() {
                    model.note(me, format!("ctx.close() failed: {e}"));
                }
            }
            Action::CloseOther(j) => {
                let (k, id) = model.resolve(j);
                if ctx.map().contains(id) {
                    model.tracks.borrow_mut()[k].rec.explicit = true;
                    if let Err(e) = ctx.map().close(id) {
                        model.note(me, format!("map.close({id}) failed: {e}"));
                    }
                }
            }
            Action::CloseWhenDone => ctx.close_when_done(),
            Action::Insert(size) => {
                if let Err(e) = open(model, ctx.map(), size) {
                    model.note(me, format!("inserting a channel failed: {e}"));
                }
            }
            Action::PushTo(j, payload) => {
                if let Err(e) = push(model, ctx.map(), model.resolve(j).0, &payload) {
                    model.note(me, e);
                }
            }
            Action::Touch(j) => ctx.map().touch(model.resolve(j).1),
            Action::Timer(ms) => {
                self.rec(|r| r.timers_set += 1);
                ctx.set_timer(Duration::from_millis(ms));
            }
            Action::RequestClose => {
                self.rec(|r| r.abrupt = true);
                ctx.request_close();
            }
        }
        Ok(())
    }
}

impl Dispatcher for Probe {
    fn readable(&self, _chan: &Channel) -> bool {
        self.alive("readable");
        let (panics, reads) =
            self.rec(|r| (std::mem::take(&mut r.panic_readable), !r.stop_reading));
        if panics {
            panic!("scripted readable panic");
        }
        reads
    }

    fn writable(&self, chan: &Channel) -> bool {
        !chan.out_queue().is_empty()
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.alive("handle_read");
        let mut buf = vec![0u8; self.read_size];
        // `WouldBlock` goes up with `?`: the loop takes it for "not ready".
        let n = ctx.recv(&mut buf)?;
        let action = {
            let t = &mut self.model.tracks.borrow_mut()[self.k];
            let at = t.rec.received.len();
            if t.sent.get(at..at + n) != Some(&buf[..n]) {
                let v = format!("read {:?} at {at}, which its peer did not send", &buf[..n]);
                t.rec.violations.push(v);
            }
            t.rec.received.extend_from_slice(&buf[..n]);
            t.rec.actions.pop_front()
        };
        match action {
            Some(action) => self.perform(ctx, action),
            None => Ok(()),
        }
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.alive("handle_write");
        ctx.initiate_send()?;
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.alive("handle_close");
        let queued = ctx.out_queue().len();
        self.rec(|r| {
            r.closes += 1;
            r.closed_at = Some(Instant::now());
            r.queued_at_close = queued;
        });
        ctx.close()?;
        Ok(())
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        self.alive("handle_error");
        self.rec(|r| {
            r.errors.push(err.to_string());
            r.abrupt = true;
        });
        ctx.request_close();
        Ok(())
    }

    fn handle_timer(&mut self, _ctx: &mut Context<'_>, _timer: TimerId) -> HandlerResult {
        self.alive("handle_timer");
        self.rec(|r| r.timers_fired += 1);
        Ok(())
    }
}

/// Runs one sequence over one map and checks the invariants.
struct Runner {
    model: Rc<Model>,
    map: SocketMap,
    backend: Backend,
    exits_seen: usize,
    waker: Option<Waker>,
    jobs_posted: usize,
    jobs_ran: Arc<AtomicUsize>,
    /// A shutdown began: its grace may close channels with output still queued.
    in_shutdown: bool,
    logs: LogCapture,
}

impl Runner {
    fn new(backend: Backend, initial: &[usize]) -> Runner {
        let model = Rc::new(Model {
            listener: TcpListener::bind("127.0.0.1:0").expect("a listener on port 0"),
            tracks: RefCell::new(Vec::new()),
            exits_requested: Cell::new(0),
        });
        let mut map = SocketMap::new();
        for &size in initial {
            open(&model, &mut map, size).expect("an initial channel");
        }
        Runner {
            model,
            map,
            backend,
            exits_seen: 0,
            waker: None,
            jobs_posted: 0,
            jobs_ran: Arc::new(AtomicUsize::new(0)),
            in_shutdown: false,
            logs: capture_logs(),
        }
    }

    fn looper(&self) -> Loop {
        Loop::new()
            .use_poll(self.backend == Backend::Poll)
            .timeout(PASS_WAIT)
    }

    fn channels(&self) -> usize {
        self.model.tracks.borrow().len()
    }

    /// One pass, then the invariants that hold after every pass.
    fn pass(&mut self, what: &str) {
        // Invariant 5: `run` is called directly, without `catch_unwind`. Nothing a
        // handler, predicate, timer or job does may unwind out of it; a panic that did
        // would fail this test here.
        match self.looper().count(1).run(&mut self.map) {
            Ok(()) => {}
            Err(LoopError::ExitNow(e)) if e.reason() == EXIT_REASON => self.exits_seen += 1,
            Err(e) => panic!("{what}: the loop returned {e}"),
        }
        let asked = self.model.exits_requested.get();
        let seen = self.exits_seen;
        assert_eq!(
            seen, asked,
            "{what}: {asked} ExitNow returned, {seen} reached the caller"
        );
        self.check_views(what);
        self.check_probes(what);
    }

    /// Invariant 2: the map's views agree with each other and with the model.
    fn check_views(&self, what: &str) {
        let (ids, len) = (self.map.ids(), self.map.len());
        assert_eq!(ids.len(), len, "{what}: ids() disagrees with len()");
        assert_eq!(
            self.map.iter().count(),
            len,
            "{what}: iter() disagrees with len()"
        );
        assert_eq!(
            self.map.is_empty(),
            len == 0,
            "{what}: is_empty() disagrees with len()"
        );
        let tracks = self.model.tracks.borrow();
        for id in &ids {
            assert!(
                tracks.iter().any(|t| t.id == *id),
                "{what}: ids() lists unknown {id}"
            );
        }
        for (k, t) in tracks.iter().enumerate() {
            let (id, listed) = (t.id, ids.contains(&t.id));
            assert_eq!(
                self.map.contains(id),
                listed,
                "{what}: channel {k} ({id}): contains()"
            );
            let found = self.map.channel(id).is_some();
            assert_eq!(found, listed, "{what}: channel {k} ({id}): channel()");
        }
    }

    /// Invariants 1 and 4 (the prefix half, and no queued output dropped) for every
    /// probe, and what the probes noted.
    fn check_probes(&self, what: &str) {
        for (k, t) in self.model.tracks.borrow().iter().enumerate() {
            let (r, open) = (&t.rec, self.map.contains(t.id));
            let name = format!("{what}: channel {k} ({})", t.id);
            assert!(r.violations.is_empty(), "{name}: {:?}", r.violations);
            assert!(r.closes <= 1, "{name}: handle_close ran {} times", r.closes);
            let ok = t.sent.starts_with(&r.received);
            assert!(ok, "{name}: received {:?} of {:?}", r.received, t.sent);
            for e in &r.errors {
                assert!(SCRIPTED_ERRORS.contains(&e.as_str()), "{name}: error {e:?}");
            }
            assert!(r.errors.len() <= 1, "{name}: errors {:?}", r.errors);
            let closed = r.errors.is_empty() || r.closes == 1;
            assert!(
                closed,
                "{name}: handle_error asked to close, no handle_close ran"
            );
            assert!(
                r.timers_fired <= r.timers_set,
                "{name}: a timer fired twice"
            );
            if !self.in_shutdown && r.closes == 1 && !r.abrupt && t.peer.is_some() {
                let q = r.queued_at_close;
                assert_eq!(
                    q, 0,
                    "{name}: handle_close came with {q} bytes queued, no flush"
                );
            }
            if r.explicit {
                assert_eq!(
                    r.closes, 0,
                    "{name}: closed explicitly, yet handle_close ran"
                );
                assert!(!open, "{name}: closed explicitly, yet still in the map");
            } else if open {
                assert_eq!(
                    r.closes, 0,
                    "{name}: handle_close closed it, yet it is in the map"
                );
            } else {
                assert_eq!(
                    r.closes, 1,
                    "{name}: gone from the map without handle_close"
                );
            }
        }
    }

    /// Only the waker's scripted job panic may be logged as an error.
    fn check_logs(&self, what: &str) {
        for message in self.logs.messages(log::Level::Error) {
            assert!(
                message.contains("scripted job panic"),
                "{what}: logged {message:?}"
            );
        }
        self.logs.clear();
    }

    /// Runs passes until `pending` finds nothing; fails with its answer at the deadline.
    fn wait(&mut self, what: &str, mut pending: impl FnMut(&mut Runner) -> Option<String>) {
        let deadline = Instant::now() + WAIT;
        while let Some(missing) = pending(self) {
            assert!(
                Instant::now() < deadline,
                "{what}: {missing} after {WAIT:?} of passes"
            );
            self.pass(what);
        }
    }

    /// Invariant 3: every open channel whose probe reads gets all its peer sent.
    fn settle_reads(&mut self, what: &str) {
        self.wait(what, |r| {
            let tracks = r.model.tracks.borrow();
            tracks.iter().enumerate().find_map(|(k, t)| {
                let (got, sent) = (t.rec.received.len(), t.sent.len());
                let starved = r.map.contains(t.id) && !t.rec.stop_reading && got < sent;
                let id = t.id;
                starved
                    .then(|| format!("open, reading channel {k} ({id}) got {got} of {sent} bytes"))
            })
        });
    }

    /// Every timer of an open channel fires.
    fn settle_timers(&mut self, what: &str) {
        self.wait(what, |r| {
            let tracks = r.model.tracks.borrow();
            let k = tracks
                .iter()
                .position(|t| r.map.contains(t.id) && t.rec.timers_fired < t.rec.timers_set);
            k.map(|k| format!("channel {k}'s timer has not fired"))
        });
    }

    /// Reads what arrived at channel `k`'s peer, each byte checked against what was
    /// pushed to the channel (invariant 4, the prefix half).
    fn drain_peer(&mut self, k: usize, what: &str) {
        let t = &mut self.model.tracks.borrow_mut()[k];
        let Some(peer) = t
            .peer
            .as_ref()
            .filter(|_| !t.peer_muted && t.peer_finished.is_none())
        else {
            return;
        };
        let mut buf = vec![0u8; 65536];
        loop {
            match (&*peer).read(&mut buf) {
                Ok(0) => t.peer_finished = Some("the end of stream".into()),
                Ok(n) => {
                    let at = t.peer_got;
                    let ok = t.pushed.get(at..at + n) == Some(&buf[..n]);
                    assert!(
                        ok,
                        "{what}: channel {k}'s peer read {n} bytes at {at} not pushed"
                    );
                    t.peer_got += n;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => t.peer_finished = Some(format!("error {e}")),
            }
            return;
        }
    }

    /// Invariant 4, the completeness half: channel `k`'s reading peer gets all that was
    /// pushed to the channel while it is open or once it closed gracefully.
    fn peer_read(&mut self, k: usize, what: &str) {
        self.wait(what, |r| {
            r.drain_peer(k, what);
            let t = &r.model.tracks.borrow()[k];
            let due = t.peer_reads() && (r.map.contains(t.id) || t.graceful());
            let (got, pushed) = (t.peer_got, t.pushed.len());
            if !due || got == pushed {
                return None;
            }
            let peer = format!("channel {k}'s peer got {got} of {pushed} bytes pushed");
            if let Some(end) = &t.peer_finished {
                panic!("{what}: {peer}, then {end}");
            }
            Some(peer)
        });
    }

    /// Channel `k`'s peer sends what its socket takes of `bytes` (nothing once it
    /// half-closed or reset).
    fn peer_send(&self, k: usize, bytes: &[u8]) {
        let t = &mut self.model.tracks.borrow_mut()[k];
        if let Some(peer) = t
            .peer
            .as_ref()
            .filter(|_| !t.half_closed && !bytes.is_empty())
        {
            if let Ok(m) = peer.send_with_flags(bytes, util::SEND_NOSIGNAL) {
                t.sent.extend_from_slice(&bytes[..m]);
            }
        }
    }

    fn apply(&mut self, op: &Op, what: &str) {
        let n = self.channels();
        let mut tracks = self.model.tracks.borrow_mut();
        match op {
            Op::Send(sends) => {
                drop(tracks);
                sends
                    .iter()
                    .for_each(|(k, bytes)| self.peer_send(k % n, bytes));
            }
            Op::HalfClose(k) => {
                let t = &mut tracks[k % n];
                if let Some(peer) = t.peer.as_ref().filter(|_| !t.half_closed) {
                    let _ = peer.shutdown(Shutdown::Write);
                    t.half_closed = true;
                }
            }
            Op::Reset(k) => {
                if let Some(peer) = tracks[k % n].peer.take() {
                    peer.set_linger(Some(Duration::ZERO)).expect("SO_LINGER 0");
                }
            }
            Op::PeerMute(k) => tracks[k % n].peer_muted = true,
            Op::PeerRead(k) => {
                drop(tracks);
                self.peer_read(k % n, what);
            }
            Op::ProbeMute(k) => {
                tracks[k % n].rec.stop_reading = true;
                // `readable` depends on outside state: the documented way to say so.
                self.map.touch(tracks[k % n].id);
            }
            Op::Script(k, action, trigger) => {
                tracks[k % n].rec.actions.push_back(action.clone());
                drop(tracks);
                self.peer_send(k % n, trigger);
            }
            Op::Push(k, payload) => {
                drop(tracks);
                let pushed = push(&self.model, &mut self.map, k % n, payload);
                pushed.unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            Op::Open(size) => {
                drop(tracks);
                open(&self.model, &mut self.map, *size).expect("a new channel");
            }
            Op::Wake => {
                drop(tracks);
                self.wake(what);
            }
        }
    }

    /// Posts a panicking job and, in the same batch, a counting one; waits for the count.
    fn wake(&mut self, what: &str) {
        if self.map.is_empty() {
            return; // A loop over an empty map runs no pass, hence no job.
        }
        let map = &mut self.map;
        let waker = self
            .waker
            .get_or_insert_with(|| map.waker().expect("the map's waker"));
        let ran = self.jobs_ran.clone();
        waker.post(|_| panic!("scripted job panic"));
        waker.post(move |_| {
            ran.fetch_add(1, SeqCst);
        });
        self.jobs_posted += 1;
        self.wait(what, |r| {
            let ran = r.jobs_ran.load(SeqCst);
            assert!(ran <= r.jobs_posted, "{what}: a job ran twice");
            let missing = ran < r.jobs_posted && !r.map.is_empty();
            missing.then(|| "the job posted after a panicking one has not run".to_string())
        });
    }

    /// Step `i`: the operation, a few passes, then the invariants.
    fn step(&mut self, i: usize, op: &Op) {
        let what = &format!("step {i} {op:?}");
        self.apply(op, what);
        for _ in 0..PASSES_PER_STEP {
            self.pass(what);
        }
        self.settle_reads(what);
        self.check_probes(what);
        self.check_logs(what);
    }

    /// The end of a sequence: every peer reads what is due, every timer fires; then the
    /// shutdown, if any.
    fn finish(&mut self, shutdown: Option<Duration>) {
        let what = "end of the sequence";
        (0..self.channels()).for_each(|k| self.peer_read(k, what));
        self.settle_timers(what);
        self.settle_reads(what);
        self.check_logs(what);
        if let Some(grace) = shutdown {
            self.shutdown(grace);
        }
    }

    /// `SocketMap::shutdown(grace)`, then passes (the peers reading between them) until
    /// the loop returns at once over the empty map; then invariants 1, 4 and 6.
    fn shutdown(&mut self, grace: Duration) {
        let what = &format!("shutdown({grace:?})");
        let tracks = self.model.tracks.borrow();
        let was_open: Vec<usize> = (0..tracks.len())
            .filter(|&k| self.map.contains(tracks[k].id))
            .collect();
        drop(tracks);
        let (start, first_pass) = (Instant::now(), self.map.stats().passes);
        self.in_shutdown = true;
        self.map.shutdown(grace);
        self.check_views(what);
        loop {
            let passes = self.map.stats().passes;
            self.pass(what);
            (0..self.channels()).for_each(|k| self.drain_peer(k, what));
            if self.map.is_empty() && self.map.stats().passes == passes {
                break; // The loop ran no pass: it is done.
            }
            assert!(
                start.elapsed() < grace + WAIT,
                "{what}: not done after {WAIT:?}"
            );
        }
        // Invariant 6: a pass with nothing to do waits (1 ms): beside a few passes with
        // work, no more passes than milliseconds.
        let (passes, elapsed) = (self.map.stats().passes - first_pass, start.elapsed());
        let budget = 200 + 4 * elapsed.as_millis() as u64;
        assert!(
            passes <= budget,
            "{what}: {passes} passes in {elapsed:?}: the loop spins"
        );
        for k in was_open {
            let t = &self.model.tracks.borrow()[k];
            let name = format!("{what}: channel {k} ({}), open before", t.id);
            assert_eq!(
                t.rec.closes, 1,
                "{name}: handle_close must run exactly once"
            );
            // Queued output is dropped at the end of the grace, never before it.
            let early = t.rec.closed_at.is_some_and(|at| at < start + grace);
            let dropped = t.peer_reads() && t.rec.queued_at_close > 0;
            assert!(
                !(dropped && early),
                "{name}: closed with output queued, within its grace"
            );
        }
        (0..self.channels()).for_each(|k| self.peer_read(k, what));
        self.check_logs(what);
    }
}

/// Runs `case` on `backend`; panics with a message naming the step and the channel when
/// an invariant breaks.
fn run_case(backend: Backend, case: &Case) {
    let mut r = Runner::new(backend, &case.initial);
    r.check_views("start");
    for (i, op) in case.ops.iter().enumerate() {
        r.step(i, op);
    }
    r.finish(case.shutdown.map(Duration::from_millis));
}

fn payload() -> impl Strategy<Value = Payload> {
    let bulk = (1usize..48, any::<u8>()).prop_map(|(kb, seed)| Payload::Bulk {
        len: kb << 10,
        seed,
    });
    prop_oneof![4 => vec(any::<u8>(), 1..12).prop_map(Payload::Short), 1 => bulk]
}

fn action() -> impl Strategy<Value = Action> {
    let j = || 0..8usize;
    prop_oneof![
        Just(Action::Fail),
        Just(Action::Exit),
        Just(Action::Panic),
        Just(Action::PanicInReadable),
        Just(Action::CloseSelf),
        j().prop_map(Action::CloseOther),
        Just(Action::CloseWhenDone),
        (0..4usize).prop_map(Action::Insert),
        (j(), payload()).prop_map(|(j, p)| Action::PushTo(j, p)),
        (j(), payload()).prop_map(|(j, p)| Action::PushTo(j, p)),
        j().prop_map(Action::Touch),
        (0..4u64).prop_map(Action::Timer),
        Just(Action::RequestClose),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let k = || 0..8usize;
    prop_oneof![
        6 => vec((k(), vec(any::<u8>(), 1..16)), 1..4).prop_map(Op::Send),
        1 => k().prop_map(Op::HalfClose),
        1 => k().prop_map(Op::Reset),
        1 => k().prop_map(Op::PeerMute),
        2 => k().prop_map(Op::PeerRead),
        1 => k().prop_map(Op::ProbeMute),
        6 => (k(), action(), vec(any::<u8>(), 0..8)).prop_map(|(k, a, b)| Op::Script(k, a, b)),
        2 => (k(), payload()).prop_map(|(k, p)| Op::Push(k, p)),
        1 => (0..4usize).prop_map(Op::Open),
        1 => Just(Op::Wake),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let grace = prop_oneof![Just(10u64), Just(50), Just(200)];
    let shutdown = proptest::option::weighted(0.4, grace);
    (vec(0..4usize, 1..=4), vec(op(), 1..=MAX_STEPS), shutdown).prop_map(
        |(initial, ops, shutdown)| Case {
            initial,
            ops,
            shutdown,
        },
    )
}

/// Runs random sequences on `backend`; proptest shrinks a failure to a minimal sequence.
fn property(backend: Backend) {
    let config = Config {
        cases: std::env::var_os("PROPTEST_CASES").map_or(CASES, |_| Config::default().cases),
        // No regression file in the source tree: minimal failures become named tests.
        failure_persistence: None,
        // A failing case may sit out a few deadlines per shrinking step.
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let result = TestRunner::new(config).run(&case(), |case| {
        run_case(backend, &case);
        Ok(())
    });
    if let Err(e) = result {
        panic!("{backend:?}: {e}");
    }
}

#[test]
fn random_sequences_mio() {
    property(Backend::Mio);
}

#[test]
fn random_sequences_poll() {
    property(Backend::Poll);
}

fn bulk(kb: usize) -> Payload {
    Payload::Bulk {
        len: kb << 10,
        seed: 1,
    }
}

/// Sequences the generator seldom reaches (both pass): a close after a flush with the
/// peer's input unread lingers, so no reset destroys the output still in the kernel; a
/// shutdown delivers bulk output to a peer that reads only meanwhile, after a pass that
/// `ExitNow` interrupted.
#[test]
fn seeded_sequences() {
    let cases = [
        Case {
            initial: vec![0],
            ops: vec![
                Op::Push(0, bulk(6)),
                Op::Script(0, Action::CloseWhenDone, b"0123456789".to_vec()),
            ],
            shutdown: None,
        },
        Case {
            initial: vec![1, 3],
            ops: vec![
                Op::Push(0, bulk(30)),
                Op::Script(1, Action::Exit, b"abc".to_vec()),
                Op::Send(vec![(0, b"hello".to_vec()), (1, b"world".to_vec())]),
            ],
            shutdown: Some(200),
        },
    ];
    for case in &cases {
        run_case(Backend::Poll, case);
        run_case(Backend::Mio, case);
    }
}

/// Found by `random_sequences_poll` (fails on mio too), shrunk to its core: output that
/// `close_when_done` flushed is lost when the peer sends anything after the close. The
/// 6 KiB all go to the kernel, but only 4 KiB fit in the peer's window; the flush is
/// done, the write side shut, and as no input is pending the channel closes at once
/// instead of lingering. The peer's next byte reaches a closed socket: the kernel answers
/// with a reset and drops the 2 KiB still in its send queue. The peer reads 4096 of the
/// 6144 bytes, then `ECONNRESET`. (The same holds after a shutdown.)
#[test]
fn regression_input_after_a_flushed_close_resets_the_output() {
    let case = Case {
        initial: vec![0],
        ops: vec![
            Op::Push(0, bulk(6)),
            Op::Script(0, Action::CloseWhenDone, b"x".to_vec()),
            Op::Send(vec![(0, b"y".to_vec())]),
        ],
        shutdown: None,
    };
    run_case(Backend::Poll, &case);
    run_case(Backend::Mio, &case);
}

/// Found by `random_sequences_mio` (the shrunk sequence): during a shutdown, a channel
/// that lingers (its probe left its peer's input unread) makes the mio loop spin until the
/// grace ends: about 160,000 passes in 200 ms. In `serve`, a lingering channel whose
/// `discard_input` found nothing more (`WouldBlock`) gets its read readiness back as if
/// its share of reads had run out, so it is always pending work and the loop never waits.
/// `poll(2)` passes.
#[test]
fn regression_lingering_channel_spins_the_mio_loop_in_a_shutdown() {
    let case = Case {
        initial: vec![0],
        ops: vec![Op::ProbeMute(0), Op::Send(vec![(0, b"x".to_vec())])],
        shutdown: Some(200),
    };
    run_case(Backend::Poll, &case);
    run_case(Backend::Mio, &case);
}

/// The same spin without a shutdown: a channel closed after `close_when_done` with 7
/// bytes of its peer's input unread lingers (2 s by default) while another channel keeps
/// the map open, and every mio pass returns at once instead of waiting its 10 ms.
#[test]
fn regression_lingering_channel_spins_the_mio_loop() {
    for backend in [Backend::Poll, Backend::Mio] {
        let mut r = Runner::new(backend, &[0, 0]);
        r.step(
            0,
            &Op::Script(0, Action::CloseWhenDone, b"0123456789".to_vec()),
        );
        let (start, before) = (Instant::now(), r.map.stats().passes);
        while start.elapsed() < Duration::from_millis(100) {
            let looper = r.looper().timeout(Duration::from_millis(10)).count(1);
            looper.run(&mut r.map).expect("a loop with nothing to do");
        }
        let passes = r.map.stats().passes - before;
        assert!(
            passes <= 50,
            "{backend:?}: {passes} passes in 100 ms: the loop spins"
        );
    }
}
