//! The loop: one pass asks the OS what is ready and calls the handlers.
//!
//! [`readwrite`] is asyncore's `readwrite`: it maps one channel's readiness to its
//! handlers, shared by both backends (`backend::mio` and `backend::poll`).

use crate::backend;
use crate::channel::ready;
use crate::context::Context;
use crate::dispatcher::{Dispatcher, LogType};
use crate::error::{BoxError, ExitNow, HandlerResult, LoopError, PanicError};
use crate::socket_map::{with_socket_map, ChannelId, SocketMap};
use crate::timer::{Target, TimerAction};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

/// asyncore's default wait per pass.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to run the loop. Python: the arguments of `asyncore.loop(timeout=30.0,
/// use_poll=False, map=None, count=None)`.
///
/// [`run`](Self::run) returns `Ok` when the map is empty, after `count` passes, or after
/// [`SocketMap::stop`]; `Err` when a handler asked to exit ([`ExitNow`]) or the OS wait
/// failed.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_core::{Loop, SocketMap};
/// use std::time::Duration;
/// let mut map = SocketMap::new();
/// // An empty map: the loop returns at once.
/// Loop::new().timeout(Duration::from_millis(10)).use_poll(true).count(3).run(&mut map)?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(alias = "loop")]
pub struct Loop {
    timeout: Duration,
    use_poll: bool,
    count: Option<u64>,
}

impl Default for Loop {
    fn default() -> Loop {
        Loop::new()
    }
}

impl Loop {
    /// asyncore's defaults: 30 s wait, the mio backend, no pass limit.
    pub fn new() -> Loop {
        Loop {
            timeout: DEFAULT_TIMEOUT,
            use_poll: false,
            count: None,
        }
    }

    /// The longest one pass waits for the OS when nothing is ready.
    pub fn timeout(mut self, timeout: Duration) -> Loop {
        self.timeout = timeout;
        self
    }

    /// `true` selects the `poll(2)` reference backend, which asks every channel's
    /// predicates on every pass exactly like Python's `asyncore.poll2`; `false` (default)
    /// the mio backend, whose pass costs in proportion to the channels with work.
    pub fn use_poll(mut self, use_poll: bool) -> Loop {
        self.use_poll = use_poll;
        self
    }

    /// Run at most `count` passes.
    pub fn count(mut self, count: u64) -> Loop {
        self.count = Some(count);
        self
    }

    /// Runs over `map`.
    ///
    /// # Errors
    /// [`LoopError::ExitNow`] from a handler, [`LoopError::Io`] when the OS wait fails.
    pub fn run(&self, map: &mut SocketMap) -> Result<(), LoopError> {
        map.stop = false;
        let mut passes = 0u64;
        let result = loop {
            map.purge_closed();
            if map.is_empty() || map.stop {
                break Ok(());
            }
            if self.count.is_some_and(|c| passes >= c) {
                break Ok(());
            }
            let pass = if self.use_poll {
                backend::poll::pass(map, self.timeout)
            } else {
                backend::mio::pass(map, self.timeout)
            };
            map.stats.passes += 1;
            passes += 1;
            if let Err(e) = pass {
                break Err(e);
            }
            if let Err(exit) = after_io(map) {
                break Err(LoopError::ExitNow(exit));
            }
        };
        map.stop = false;
        result
    }

    /// Runs over this thread's default map (see [`with_socket_map`]).
    ///
    /// # Errors
    /// As [`run`](Self::run).
    ///
    /// # Panics
    /// When a handler touches the default map through [`with_socket_map`] meanwhile.
    pub fn run_default(&self) -> Result<(), LoopError> {
        with_socket_map(|map| self.run(map))
    }
}

/// Python's `asyncore.loop(timeout, use_poll, map, count)` as a function: `None` means the
/// default (30 s; the thread's default map; no pass limit). [`Loop`] says the same with
/// names.
///
/// # Errors
/// As [`Loop::run`].
#[doc(alias = "loop")]
pub fn loop_(
    timeout: Option<Duration>,
    use_poll: bool,
    map: Option<&mut SocketMap>,
    count: Option<u64>,
) -> Result<(), LoopError> {
    let mut lp = Loop::new()
        .timeout(timeout.unwrap_or(DEFAULT_TIMEOUT))
        .use_poll(use_poll);
    lp.count = count;
    match map {
        Some(map) => lp.run(map),
        None => lp.run_default(),
    }
}

/// Calls `f`, turning a panic into an error.
fn guarded(f: impl FnOnce() -> HandlerResult) -> HandlerResult {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(payload) => Err(Box::new(PanicError::from_payload(&*payload))),
    }
}

/// What a handler's error means for the loop.
enum Failure {
    Exit(ExitNow),
    NotReady,
    Error(BoxError),
}

fn classify(err: BoxError) -> Failure {
    match err.downcast::<ExitNow>() {
        Ok(exit) => Failure::Exit(*exit),
        Err(err) => match err.downcast_ref::<io::Error>() {
            Some(e) if e.kind() == io::ErrorKind::WouldBlock => Failure::NotReady,
            _ => Failure::Error(err),
        },
    }
}

/// Runs the handlers of channel `id` for the readiness `events` (bits of `ready`), with
/// asyncore's semantics, and its error path. Python: `asyncore.readwrite`.
pub(crate) fn readwrite(map: &mut SocketMap, id: ChannelId, events: u8) -> Result<(), ExitNow> {
    if events & (ready::READ | ready::WRITE) != 0 {
        if let Some(idle) = map.entry_mut(id).and_then(|e| e.chan.idle.as_mut()) {
            idle.last_activity = Instant::now();
        }
    }
    run_handler(map, id, |handler, ctx| dispatch(handler, ctx, events))
}

/// Lends channel `id`'s handler to `f` with a [`Context`], then runs the error path for
/// what `f` returned and the `handle_close` a socket operation asked for.
pub(crate) fn run_handler(
    map: &mut SocketMap,
    id: ChannelId,
    f: impl FnOnce(&mut dyn Dispatcher, &mut Context<'_>) -> HandlerResult,
) -> Result<(), ExitNow> {
    let Some(entry) = map.entry_mut(id) else {
        return Ok(());
    };
    let Some(mut handler) = entry.handler.take() else {
        return Ok(());
    };
    entry.chan.got_data = false;
    map.stats.dispatches += 1;
    let mut ctx = Context::new(map, id);
    let result = guarded(|| f(&mut *handler, &mut ctx));
    let mut outcome = match result {
        Ok(()) => Ok(()),
        Err(err) => fail(&mut *handler, &mut ctx, err),
    };
    if outcome.is_ok() && ctx.close_requested && !ctx.closed() {
        // A send or recv in the handler or in handle_error found the peer gone.
        let r = guarded(|| close_event(&mut *handler, &mut ctx));
        if let Err(err) = r {
            outcome = fail(&mut *handler, &mut ctx, err);
        }
    }
    restore(map, id, handler);
    outcome
}

/// How long a pass may wait for the OS: the loop's timeout, cut short by the next timer,
/// a posted job, or the end of a shutdown's grace period.
pub(crate) fn wait_time(map: &mut SocketMap, timeout: Duration) -> Duration {
    if map.wake.as_ref().is_some_and(|w| w.pending()) {
        return Duration::ZERO;
    }
    let deadline = match (map.timers.next_deadline(), map.shutdown) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    match deadline {
        Some(d) => timeout.min(d.saturating_duration_since(Instant::now())),
        None => timeout,
    }
}

/// What every pass does after its I/O: jobs posted by other threads, expired timers,
/// and the progress of a shutdown.
pub(crate) fn after_io(map: &mut SocketMap) -> Result<(), ExitNow> {
    if let Some(shared) = map.wake.clone() {
        if shared.pending() {
            for job in shared.drain() {
                job(map);
            }
        }
    }
    run_timers(map)?;
    if let Some(deadline) = map.shutdown {
        if Instant::now() >= deadline || all_drained(map) {
            let _ = map.close_all(true);
            map.shutdown = None;
        }
    }
    Ok(())
}

/// Whether no channel has output left to send (the end of a graceful shutdown).
fn all_drained(map: &SocketMap) -> bool {
    map.live().all(|(_, e)| {
        let chan = &e.chan;
        chan.closed()
            || !chan.connected()
            || (chan.out_queue().is_empty()
                && !e.handler.as_deref().is_some_and(|h| h.writable(chan)))
    })
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
                let action = catch_unwind(AssertUnwindSafe(|| f(map))).unwrap_or_else(|p| {
                    log::error!(target: "asyncore", "timer callback panicked: {}", PanicError::from_payload(&*p));
                    TimerAction::Done
                });
                match action {
                    TimerAction::Done => map.timers.release(timer),
                    TimerAction::Again(d) => {
                        map.timers
                            .reinsert(timer, Instant::now() + d, Target::Call(f))
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
            Target::Idle(id) => {
                let Some(idle) = map.entry(id).and_then(|e| e.chan.idle) else {
                    map.timers.release(timer);
                    continue;
                };
                if idle.timer != Some(timer) || !map.contains(id) {
                    map.timers.release(timer);
                    continue;
                }
                let due = idle.last_activity + idle.period;
                if due > now {
                    map.timers.reinsert(timer, due, Target::Idle(id));
                    continue;
                }
                // Fired: the timeout is spent until the handler sets a new one.
                map.timers.release(timer);
                if let Some(e) = map.entry_mut(id) {
                    e.chan.idle = None;
                }
                map.mark_active(id);
                run_handler(map, id, |h, ctx| h.handle_timeout(ctx))?;
            }
        }
    }
    Ok(())
}

/// Puts the handler back in its slot, or drops the channel if it closed meanwhile.
fn restore(map: &mut SocketMap, id: ChannelId, handler: Box<dyn Dispatcher>) {
    match map.entry_mut(id) {
        Some(entry) if !entry.chan.closed() => entry.handler = Some(handler),
        Some(_) => {
            map.remove(id);
        }
        None => {}
    }
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
    match guarded(|| handler.handle_error(ctx, err)) {
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

/// `handle_close`, at most once per channel; a second request just closes.
fn close_event(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>) -> HandlerResult {
    ctx.close_requested = false;
    if ctx.closed() {
        return Ok(());
    }
    if ctx.close_called {
        ctx.close()?;
        return Ok(());
    }
    ctx.close_called = true;
    handler.handle_close(ctx)
}

fn close_if_requested(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>) -> HandlerResult {
    if ctx.close_requested {
        close_event(handler, ctx)?;
    }
    Ok(())
}

/// Python: `handle_connect_event`: check `SO_ERROR`, then `handle_connect`, then
/// `connected`.
fn connect_event(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>) -> HandlerResult {
    let err = match ctx.pending_error.take() {
        Some(e) => Some(e),
        None => ctx.take_error()?,
    };
    if let Some(err) = err {
        ctx.set_connect_state(false, false);
        return Err(err.into());
    }
    handler.handle_connect(ctx)?;
    if !ctx.closed() {
        ctx.set_connect_state(true, false);
    }
    Ok(())
}

/// The body of `readwrite`: each kind of readiness to its handler, in asyncore's order
/// (read, write, priority, close), skipping whatever comes after the channel closed.
fn dispatch(handler: &mut dyn Dispatcher, ctx: &mut Context<'_>, events: u8) -> HandlerResult {
    if ctx.connecting() && ctx.pending_error.is_some() {
        connect_event(handler, ctx)?;
    }
    close_if_requested(handler, ctx)?;
    if events & ready::READ != 0 && !ctx.closed() {
        if ctx.accepting() {
            handler.handle_accept(ctx)?;
        } else {
            if !ctx.connected() && ctx.connecting() {
                connect_event(handler, ctx)?;
            }
            if !ctx.closed() {
                handler.handle_read(ctx)?;
            }
        }
        close_if_requested(handler, ctx)?;
    }
    if events & ready::WRITE != 0 && !ctx.closed() && !ctx.accepting() {
        if !ctx.connected() && ctx.connecting() {
            connect_event(handler, ctx)?;
        }
        if !ctx.closed() {
            handler.handle_write(ctx)?;
        }
        close_if_requested(handler, ctx)?;
    }
    if events & ready::PRI != 0 && !ctx.closed() {
        if ctx.take_error()?.is_some() {
            close_event(handler, ctx)?;
        } else {
            handler.handle_expt(ctx)?;
            close_if_requested(handler, ctx)?;
        }
    }
    if events & ready::CLOSE != 0 && !ctx.closed() {
        // A hang-up with unread data: deliver the data first; the close follows when
        // `recv` reaches the end (or on a later pass once nothing more comes).
        let reading = events & ready::READ != 0 && ctx.got_data;
        if !reading {
            close_event(handler, ctx)?;
        }
    }
    Ok(())
}
