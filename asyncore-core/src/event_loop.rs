//! The loop: passes until the map is empty. Each pass asks the OS what is ready
//! (`backend`) and calls the handlers (`dispatch`).

use crate::backend;
use crate::dispatch::after_io;
use crate::error::LoopError;
use crate::socket_map::{with_socket_map, SocketMap};
use std::time::Duration;

/// asyncore's default wait per pass.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How to run the loop. Python: the arguments of `asyncore.loop(timeout=30.0,
/// use_poll=False, map=None, count=None)`.
///
/// [`run`](Self::run) returns `Ok` when the map is empty, after `count` passes, or after
/// [`SocketMap::stop`]; `Err` when a handler asked to exit ([`ExitNow`](crate::ExitNow)) or the OS wait
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
    /// Returns when the map is empty (during a [`shutdown`](SocketMap::shutdown), once its
    /// lingering channels are done too), after `count` passes, or after
    /// [`SocketMap::stop`]. Nothing a handler, predicate, timer or posted job does unwinds
    /// out of it: panics go to the channel's `handle_error` (or the log).
    ///
    /// # Errors
    /// [`LoopError::ExitNow`] from a handler, [`LoopError::Io`] when the OS wait fails,
    /// [`LoopError::AlreadyRunning`] when a loop runs over `map` already (a handler
    /// called this on [`Context::map`](crate::Context::map)): nothing runs then, and the
    /// running loop is not affected.
    pub fn run(&self, map: &mut SocketMap) -> Result<(), LoopError> {
        if map.running {
            return Err(LoopError::AlreadyRunning);
        }
        map.running = true;
        map.stop = false;
        let mut passes = 0u64;
        let result = loop {
            if let Some(exit) = map.pending_exit.take() {
                break Err(LoopError::ExitNow(exit));
            }
            if map.is_empty() && (map.shutdown.is_none() || map.lingering.is_empty()) {
                break Ok(());
            }
            if map.stop || self.count.is_some_and(|c| passes >= c) {
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
        map.running = false;
        if map.is_empty() && map.lingering.is_empty() {
            // A shutdown is over once nothing is left (also when it found nothing to do).
            map.shutdown = None;
        }
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
