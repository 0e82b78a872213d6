//! Calling into user code: one channel's turn in a pass ([`serve`]), asyncore's
//! `readwrite`, the error path, and the one close path ([`close_event`]). Every call
//! into a handler, a predicate, a timer callback or a posted job is contained: a panic
//! becomes an error of the channel it belongs to (or is logged, for work that belongs to
//! no channel), and nothing unwinds out of the loop.

use crate::channel::Discard;
use crate::context::Context;
use crate::dispatcher::{Dispatcher, LogType};
use crate::error::{BoxError, ExitNow, HandlerResult, PanicError};
use crate::socket_map::{ChannelId, SocketMap};
use crate::state::{ready, CloseState};
use crate::timer::{after, Target, TimerAction};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// Calls `f`; a panic comes back as a [`PanicError`].
pub(crate) fn contain<R>(f: impl FnOnce() -> R) -> Result<R, BoxError> {
    catch_unwind(AssertUnwindSafe(f))
        .map_err(|p| Box::new(PanicError::from_payload(&*p)) as BoxError)
}

/// What a handler's error means for the loop.
enum Failure {
    Exit(ExitNow),
    NotReady,
    Error(BoxError),
}

/// An error the loop itself found for a channel (a failed connect): it goes to
/// `handle_error` as it is, never taken for "not ready" (a Unix socket's connect fails
/// with `EAGAIN` when its listener's backlog is full).
#[derive(Debug)]
struct Found(io::Error);

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Found {}

fn classify(err: BoxError) -> Failure {
    let err = match err.downcast::<Found>() {
        Ok(found) => return Failure::Error(Box::new(found.0)),
        Err(err) => err,
    };
    match err.downcast::<ExitNow>() {
        Ok(exit) => Failure::Exit(*exit),
        Err(err) => match err.downcast_ref::<io::Error>() {
            Some(e) if e.kind() == io::ErrorKind::WouldBlock => Failure::NotReady,
            _ => Failure::Error(err),
        },
    }
}

fn is_would_block(err: &BoxError) -> bool {
    err.downcast_ref::<io::Error>()
        .is_some_and(|e| e.kind() == io::ErrorKind::WouldBlock)
}

/// A stage of a dispatch: a `WouldBlock` passed up with `?` only ends that stage, so the
/// channel keeps the other events of its pass.
fn stage(result: HandlerResult) -> HandlerResult {
    match result {
        Err(e) if is_would_block(&e) => Ok(()),
        other => other,
    }
}

/// The readiness bits a channel waits for, from its predicates' answers.
pub(crate) fn interest_mask(readable: bool, writable: bool, accepting: bool) -> u8 {
    let mut mask = 0;
    if readable {
        mask |= ready::READ | ready::RDHUP | ready::PRI | ready::WAKE;
    }
    if writable && !accepting {
        mask |= ready::WRITE;
    }
    if readable || writable {
        mask |= ready::CLOSE;
    }
    mask
}

/// Asks channel `id`'s predicates (`readable` only while `reading`, and not while it
/// flushes after its peer's end of stream, which a read would only see again):
/// `(readable, writable)`, or `None` for a channel that is not open, whose handler is
/// running, or whose predicate panicked (then its `handle_error` has run).
///
/// # Errors
/// [`ExitNow`] from the `handle_error` of a panicked predicate.
pub(crate) fn interest_of(
    map: &mut SocketMap,
    id: ChannelId,
    reading: bool,
) -> Result<Option<(bool, bool)>, ExitNow> {
    let Some(entry) = map.entry_mut(id) else {
        return Ok(None);
    };
    if !entry.state.is_open() {
        return Ok(None);
    }
    let Some(handler) = entry.handler.as_deref() else {
        return Ok(None);
    };
    let chan = &entry.chan;
    let read = reading && !(entry.state.read_closed && entry.state.is_flushing());
    let asked = contain(|| {
        let r = read && handler.readable(chan);
        (r, handler.writable(chan))
    });
    #[cfg(feature = "tls")]
    let asked = asked.map(|(r, w)| {
        // What TLS needs (the handshake's reads, records waiting for the socket) adds to
        // the handler's wishes. During the handshake the handler's writes wait (its write
        // stage does not run), so only TLS's count: a socket ready for writing would
        // otherwise be a readiness nothing uses up, and the loop would spin.
        let (tr, tw) = chan.tls_wants();
        let w = if chan.tls_handshaking() { tw } else { w || tw };
        (r || (read && tr), w)
    });
    if let Ok(wants) = asked {
        entry.state.interest = Some(wants);
    }
    map.stats.predicate_calls += 2;
    match asked {
        Ok(wants) => Ok(Some(wants)),
        Err(panic) => {
            run_handler(map, id, |_, _| Err(panic))?;
            Ok(None)
        }
    }
}

/// One channel's turn in a pass: fold in what its operations saw, read and discard for a
/// lingering one, ask its predicates (unless the backend asked them already: `asked`),
/// and dispatch the readiness they want plus whatever is due without the OS (a failed
/// connect, a close, a flush to check). `Ok(true)` when it was dispatched.
///
/// # Errors
/// [`ExitNow`] from a handler.
pub(crate) fn serve(
    map: &mut SocketMap,
    id: ChannelId,
    reading: bool,
    asked: Option<Option<(bool, bool)>>,
) -> Result<bool, ExitNow> {
    let Some(entry) = map.entry_mut(id) else {
        return Ok(false);
    };
    entry.absorb();
    #[cfg(feature = "tls")]
    if entry.chan.take_tls_unarmed() {
        map.arm_tls_handshake(id);
    }
    let Some(entry) = map.entry_mut(id) else {
        return Ok(false);
    };
    if entry.state.linger_until.is_some() {
        if entry.state.ready & (ready::READ | ready::RDHUP | ready::CLOSE) != 0 {
            entry.state.ready = 0;
            match entry.chan.discard_input() {
                Discard::Over => {
                    log::debug!(target: "asyncore", "channel {id} lingered until its peer's end of stream");
                    map.end_linger(id);
                }
                // Nothing more now: the next readiness brings the rest.
                Discard::Drained => {}
                // It read its share: the rest on the next pass.
                Discard::More => {
                    entry.state.ready |= ready::READ;
                    return Ok(true);
                }
            }
        }
        return Ok(false);
    }
    if !entry.state.is_open() || entry.handler.is_none() {
        return Ok(false);
    }
    let s = &entry.state;
    let due = s.close_due || s.eof_due || s.flush_check || entry.chan.pending_error.is_some();
    let wants = match (asked, s.interest) {
        (Some(wants), _) => wants,
        (None, Some(known)) => Some(known),
        (None, None) => interest_of(map, id, reading)?,
    };
    let Some(entry) = map.entry_mut(id) else {
        return Ok(false);
    };
    if wants.is_none() && entry.state.is_open() && entry.handler.is_some() {
        // A predicate panicked (its `handle_error` kept the channel): keep its readiness
        // and ask again on the next pass, or the edge-triggered backend would forget it.
        return Ok(true);
    }
    let mut events = 0;
    if let Some((r, w)) = wants {
        let ready = entry.state.ready;
        if r && ready & (ready::READ | ready::RDHUP | ready::WAKE) != 0 {
            events |= ready::READ;
        }
        if r {
            events |= ready & ready::PRI;
        }
        if w && !entry.chan.accepting() {
            events |= ready & ready::WRITE;
        }
        if r || w {
            events |= ready & ready::CLOSE;
        }
    }
    // Priority data is reported once per arrival.
    entry.state.ready &= !ready::PRI;
    if events == 0 && !due {
        return Ok(false);
    }
    readwrite(map, id, events)?;
    if asked.is_none() {
        // Asked now, the answers tell the next wait whether this channel has work: no
        // pass that only finds it has none.
        interest_of(map, id, reading)?;
    }
    Ok(true)
}

/// Runs the handlers of channel `id` for the readiness `events` (bits of `ready`), with
/// asyncore's semantics, and its error path. Python: `asyncore.readwrite`.
pub(crate) fn readwrite(map: &mut SocketMap, id: ChannelId, events: u8) -> Result<(), ExitNow> {
    let activity = events & (ready::READ | ready::WRITE) != 0;
    lend(map, id, activity, |handler, ctx| {
        dispatch(handler, ctx, events)
    })
}

/// Runs a channel's [`handle_added`](Dispatcher::handle_added) as it joins the map. An
/// exit request from it ends the loop at the end of the pass.
pub(crate) fn added(map: &mut SocketMap, id: ChannelId) {
    if let Err(exit) = run_handler(map, id, |h, ctx| h.handle_added(ctx)) {
        map.pending_exit.get_or_insert(exit);
    }
}

/// Lends channel `id`'s handler to `f` with a [`Context`], then runs the error path for
/// what `f` returned, and settles what its operations asked for (a close, a flush).
pub(crate) fn run_handler(
    map: &mut SocketMap,
    id: ChannelId,
    f: impl FnOnce(&mut dyn Dispatcher, &mut Context<'_>) -> HandlerResult,
) -> Result<(), ExitNow> {
    lend(map, id, false, f)
}

/// [`run_handler`]; `activity` (a read or write event) also resets the idle timeout.
fn lend(
    map: &mut SocketMap,
    id: ChannelId,
    activity: bool,
    f: impl FnOnce(&mut dyn Dispatcher, &mut Context<'_>) -> HandlerResult,
) -> Result<(), ExitNow> {
    let Some(entry) = map.entry_mut(id) else {
        return Ok(());
    };
    if !entry.state.is_open() {
        return Ok(());
    }
    let Some(mut handler) = entry.handler.take() else {
        return Ok(()); // Its handler is running: the caller's own channel.
    };
    entry.state.got_data = false;
    if activity {
        if let Some(idle) = entry.state.idle.as_mut() {
            idle.last_activity = Instant::now();
        }
    }
    map.stats.dispatches += 1;
    let mut ctx = Context::new(map, id);
    let outcome = match contain(|| f(&mut *handler, &mut ctx)).and_then(|r| r) {
        Ok(()) => Ok(()),
        Err(err) => fail(&mut *handler, &mut ctx, err),
    };
    let outcome = match outcome {
        Ok(()) => settle(&mut *handler, &mut ctx),
        Err(exit) => {
            ctx.absorb();
            Err(exit)
        }
    };
    map.restore(id, handler);
    outcome
}

/// The error path: `handle_error`, and if that fails too, log and close.
fn fail(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>, err: BoxError) -> Result<(), ExitNow> {
    let err = match classify(err) {
        Failure::Exit(exit) => return Err(exit),
        Failure::NotReady => return Ok(()),
        Failure::Error(err) => err,
    };
    if ctx.closed() {
        // An error after the handler closed its own channel: nobody is left to tell.
        log::debug!(target: "asyncore", "error after close on {:?}: {err}", ctx.channel());
        return Ok(());
    }
    match contain(|| handler.handle_error(ctx, err)).and_then(|r| r) {
        Ok(()) => Ok(()),
        Err(second) => match classify(second) {
            Failure::Exit(exit) => Err(exit),
            Failure::NotReady => Ok(()),
            Failure::Error(second) => {
                ctx.log_info(
                    &format!(
                        "handle_error failed ({second}); closing {:?}",
                        ctx.channel()
                    ),
                    LogType::Error,
                );
                let _ = ctx.close();
                Ok(())
            }
        },
    }
}

/// Whether the handler still has output to send before its close, asked contained.
fn pending_output(handler: &dyn Dispatcher, ctx: &Context<'_>) -> Result<bool, BoxError> {
    let chan = ctx.channel();
    #[cfg(feature = "tls")]
    if chan.tls_output_waiting() {
        return Ok(true);
    }
    contain(|| handler.has_pending_output(chan))
}

/// What [`settle`] does next.
enum Step {
    HandleClose,
    Close,
    FlushDone,
}

/// After a callback: acts on what it (or the operations in it) asked for, in the one
/// order: a close due runs `handle_close` (once per channel; later requests just close);
/// the peer's end of stream starts a flush if output is still queued, else is a close; a
/// flush whose output is all sent shuts the write side down and runs `handle_close`.
fn settle(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>) -> Result<(), ExitNow> {
    // Each round consumes a request or moves the state toward closed, so a few suffice;
    // the bound only keeps a handler that keeps asking from looping here.
    for _ in 0..8 {
        let st = ctx.absorbed_state();
        if !st.is_open() {
            return Ok(());
        }
        let step = if st.close_due {
            st.close_due = false;
            st.eof_due = false;
            Step::HandleClose
        } else if st.eof_due {
            st.eof_due = false;
            match st.close {
                CloseState::Open => match pending_output(handler, ctx) {
                    Ok(true) => {
                        // The peer finished sending but may still read: deliver first.
                        ctx.state_mut().start_flush();
                        continue;
                    }
                    Ok(false) => Step::HandleClose,
                    Err(e) => {
                        fail(handler, ctx, e)?;
                        continue;
                    }
                },
                CloseState::Closing => Step::Close,
                _ => continue,
            }
        } else if st.is_flushing() {
            st.flush_check = false;
            match pending_output(handler, ctx) {
                Ok(true) => return Ok(()),
                // TLS ends with close_notify: the flush waits until it is sent too.
                #[cfg(feature = "tls")]
                Ok(false) if ctx.channel_mut().tls_finish() => return Ok(()),
                Ok(false) => Step::FlushDone,
                Err(e) => {
                    fail(handler, ctx, e)?;
                    continue;
                }
            }
        } else {
            st.flush_check = false;
            return Ok(());
        };
        let result = match step {
            Step::HandleClose => contain(|| close_event(handler, ctx)).and_then(|r| r),
            Step::Close => ctx.close().map_err(BoxError::from),
            Step::FlushDone => {
                shut_write(ctx);
                contain(|| close_event(handler, ctx)).and_then(|r| r)
            }
        };
        if let Err(e) = result {
            fail(handler, ctx, e)?;
        }
    }
    Ok(())
}

/// After a flush: the peer sees the end of our output even if it holds the socket open.
fn shut_write(ctx: &mut Context<'_>) {
    log::debug!(target: "asyncore", "output flushed: closing {:?}", ctx.channel());
    if ctx.channel().connected() && !ctx.state_mut().write_shut {
        ctx.state_mut().write_shut = true;
        if let Err(e) = ctx.channel_mut().shutdown(std::net::Shutdown::Write) {
            log::debug!(target: "asyncore", "shutdown before close: {e}");
        }
    }
}

/// The one place `handle_close` is called: at most once per channel; once it has run, a
/// close request closes.
pub(crate) fn close_event(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>) -> HandlerResult {
    let st = ctx.state_mut();
    st.close_due = false;
    match st.close {
        CloseState::Closed => Ok(()),
        CloseState::Closing
        | CloseState::Flushing {
            handle_close: false,
        } => {
            ctx.close()?;
            Ok(())
        }
        CloseState::Open | CloseState::Flushing { handle_close: true } => {
            st.close = CloseState::Closing;
            handler.handle_close(ctx)
        }
    }
}

/// Python: `handle_connect_event`: check `SO_ERROR`, then `handle_connect`, then
/// `connected`.
fn connect_event(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>) -> HandlerResult {
    let err = match ctx.channel_mut().pending_error.take() {
        Some(e) => Some(e),
        None => ctx.channel().take_error()?,
    };
    if let Some(err) = err {
        ctx.channel_mut().set_connect_state(false, false);
        return Err(Box::new(Found(err)));
    }
    stage(handler.handle_connect(ctx))?;
    if !ctx.closed() {
        ctx.channel_mut().set_connect_state(true, false);
    }
    Ok(())
}

/// Whether a close is due now: the stages after it are skipped (the close runs after the
/// dispatch). The peer's end of stream on a channel with output still to deliver is not:
/// its write stage runs.
fn close_pending(handler: &dyn Dispatcher, ctx: &mut Context<'_>) -> Result<bool, BoxError> {
    let st = ctx.absorbed_state();
    if !st.is_open() || st.close_due {
        return Ok(true);
    }
    if st.eof_due {
        return Ok(!pending_output(handler, ctx)?);
    }
    Ok(false)
}

/// On a read event of a TLS channel: the loop drives the handshake itself, and the
/// handler reads once there is plaintext to read (or the end of it), if it wants to.
/// `true` for a channel without TLS.
#[cfg(feature = "tls")]
fn tls_lets_read(handler: &dyn Dispatcher, ctx: &mut Context<'_>) -> Result<bool, BoxError> {
    let chan = ctx.channel_mut();
    if !chan.is_tls() {
        return Ok(true);
    }
    if chan.tls_handshaking() {
        chan.tls_pump_read()?;
        let chan = ctx.channel();
        if chan.tls_handshaking() && !chan.tls_input_waiting() {
            return Ok(false);
        }
    }
    Ok(handler.readable(ctx.channel()))
}

#[cfg(not(feature = "tls"))]
fn tls_lets_read(_: &dyn Dispatcher, _: &mut Context<'_>) -> Result<bool, BoxError> {
    Ok(true)
}

/// On a write event of a TLS channel: the records TLS holds go first; the handler writes
/// once the handshake is done, if it wants to. `true` for a channel without TLS.
#[cfg(feature = "tls")]
fn tls_lets_write(handler: &dyn Dispatcher, ctx: &mut Context<'_>) -> Result<bool, BoxError> {
    let chan = ctx.channel_mut();
    if !chan.is_tls() {
        return Ok(true);
    }
    chan.tls_flush()?;
    let chan = ctx.channel();
    Ok(!chan.tls_handshaking() && handler.writable(chan))
}

#[cfg(not(feature = "tls"))]
fn tls_lets_write(_: &dyn Dispatcher, _: &mut Context<'_>) -> Result<bool, BoxError> {
    Ok(true)
}

/// The body of `readwrite`: each kind of readiness to its handler, in asyncore's order
/// (read, write, priority, close), skipping whatever comes after the channel closed or a
/// close became due.
fn dispatch(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>, events: u8) -> HandlerResult {
    if ctx.channel().connecting() && ctx.channel().pending_error.is_some() {
        return connect_event(handler, ctx);
    }
    // A failed connect reported as a hang-up alone, without write readiness (`WSAPoll`
    // on Windows): the connect event runs first, so that `handle_error` gets `SO_ERROR`.
    if events & ready::CLOSE != 0
        && events & (ready::READ | ready::WRITE) == 0
        && ctx.channel().connecting()
        && !ctx.channel().connected()
    {
        connect_event(handler, ctx)?;
    }
    if events & ready::READ != 0 {
        ctx.state_mut().ready &= !ready::WAKE;
        if ctx.channel().accepting() {
            stage(handler.handle_accept(ctx))?;
        } else {
            if !ctx.channel().connected() && ctx.channel().connecting() {
                connect_event(handler, ctx)?;
            }
            if !ctx.closed() && tls_lets_read(handler, ctx)? {
                stage(handler.handle_read(ctx))?;
            }
        }
        if events & !ready::READ != 0 && close_pending(handler, ctx)? {
            return Ok(());
        }
    }
    if events & ready::WRITE != 0 && !ctx.channel().accepting() {
        if !ctx.channel().connected() && ctx.channel().connecting() {
            connect_event(handler, ctx)?;
        }
        if !ctx.closed() && tls_lets_write(handler, ctx)? {
            stage(handler.handle_write(ctx))?;
        }
        if events & (ready::PRI | ready::CLOSE) != 0 && close_pending(handler, ctx)? {
            return Ok(());
        }
    }
    if events & ready::PRI != 0 && !ctx.closed() {
        if ctx.channel().take_error()?.is_some() {
            ctx.state_mut().request_close();
            return Ok(());
        }
        stage(handler.handle_expt(ctx))?;
        if events & ready::CLOSE != 0 && close_pending(handler, ctx)? {
            return Ok(());
        }
    }
    if events & ready::CLOSE != 0 && !ctx.closed() {
        // A hang-up with unread data: deliver the data first; the close follows when
        // `recv` reaches the end (or on a later pass once nothing more comes).
        let st = ctx.absorbed_state();
        if events & ready::READ == 0 || !st.got_data {
            st.request_close();
        }
    }
    Ok(())
}

/// How long a pass may wait for the OS: the loop's timeout, cut short by the next timer,
/// a posted job, the end of a shutdown's grace period or of a linger.
pub(crate) fn wait_time(map: &mut SocketMap, timeout: Duration) -> Duration {
    if map.wake.as_ref().is_some_and(|w| w.pending()) || map.pending_exit.is_some() {
        return Duration::ZERO;
    }
    let mut deadline = map.timers.next_deadline();
    for d in [map.shutdown, map.next_linger_end()].into_iter().flatten() {
        deadline = Some(deadline.map_or(d, |e| e.min(d)));
    }
    match deadline {
        Some(d) => timeout.min(d.saturating_duration_since(Instant::now())),
        None => timeout,
    }
}

/// What every pass does after its I/O: jobs posted by other threads, expired timers, the
/// progress of a shutdown, lingering channels whose time is up.
pub(crate) fn after_io(map: &mut SocketMap) -> Result<(), ExitNow> {
    if let Some(shared) = map.wake.clone() {
        if shared.pending() {
            for job in shared.drain() {
                if let Err(panic) = contain(|| job(map)) {
                    log::error!(target: "asyncore", "a job posted through the waker failed: {panic}");
                }
            }
        }
    }
    run_timers(map)?;
    if !map.lingering.is_empty() {
        let now = Instant::now();
        map.end_lingers_due(now);
    }
    if let Some(deadline) = map.shutdown {
        if Instant::now() >= deadline {
            // The grace is over: every channel gets its `handle_close` (once), then closes.
            for id in map.ids() {
                run_handler(map, id, |h, ctx| {
                    let r = close_event(h, ctx);
                    let _ = ctx.close();
                    r
                })?;
            }
            let _ = map.close_all(true);
        }
        if map.is_empty() && map.lingering.is_empty() {
            map.shutdown = None;
        }
    }
    Ok(())
}

/// Fires the timers that are due, in deadline order; timers set meanwhile wait for a later
/// pass.
fn run_timers(map: &mut SocketMap) -> Result<(), ExitNow> {
    if map.timers.len() == 0 {
        return Ok(()); // No clock read on the passes of a map without timers.
    }
    let now = Instant::now();
    let before = map.timers.next_seq();
    while let Some((timer, target)) = map.timers.pop_expired(now, before) {
        match target {
            Target::Call(mut f) => {
                let action = contain(|| f(map)).unwrap_or_else(|panic| {
                    log::error!(target: "asyncore", "a timer callback failed: {panic}");
                    TimerAction::Done
                });
                match action {
                    TimerAction::Done => map.timers.release(timer),
                    TimerAction::Again(d) => {
                        map.timers
                            .reinsert(timer, after(Instant::now(), d), Target::Call(f))
                    }
                    TimerAction::At(at) => map.timers.reinsert(timer, at, Target::Call(f)),
                }
            }
            Target::Channel(id) => {
                map.timers.release(timer);
                if map.contains(id) {
                    map.mark_active(id);
                    run_handler(map, id, |h, ctx| h.handle_timer(ctx, timer))?;
                }
            }
            #[cfg(feature = "tls")]
            Target::Handshake(id) => {
                map.timers.release(timer);
                let late = map.open_entry(id).is_some_and(|e| e.chan.tls_handshaking());
                if late {
                    let limit = map.tls_handshake_timeout;
                    map.mark_active(id);
                    run_handler(map, id, |_, _| {
                        Err(Box::new(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("TLS handshake not done within {limit:?}"),
                        )))
                    })?;
                }
            }
            Target::Idle(id) => {
                let idle = map
                    .entry(id)
                    .filter(|e| e.state.is_open())
                    .and_then(|e| e.state.idle);
                let Some(idle) = idle.filter(|i| i.timer == Some(timer)) else {
                    map.timers.release(timer);
                    continue;
                };
                let due = after(idle.last_activity, idle.period);
                if due > now {
                    map.timers.reinsert(timer, due, Target::Idle(id));
                    continue;
                }
                // Fired: the timeout is spent until the handler sets a new one.
                map.timers.release(timer);
                if let Some(e) = map.entry_mut(id) {
                    e.state.idle = None;
                }
                map.mark_active(id);
                run_handler(map, id, |h, ctx| h.handle_timeout(ctx))?;
            }
        }
    }
    Ok(())
}
