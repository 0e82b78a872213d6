//! Readiness and scale (DESIGN.md): with thousands of idle channels and one busy pair, a
//! pass of the mio backend costs in proportion to the busy channels, while the poll
//! backend asks every channel every pass. Counted with `SocketMap::stats`, never timed.

mod util;

use asyncore_core::tuning::LoopStats;
use asyncore_core::{Channel, Context, Dispatcher, HandlerResult, SocketMap};
use util::{per_backend, socketpair, Backend, Counter};

/// How many idle channels the map holds besides the busy pair.
const IDLE: usize = 3000;

/// Passes measured after the warm-up.
const PASSES: u64 = 200;

/// Waits for input that never comes.
struct Idle;

impl Dispatcher for Idle {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        Err("an idle channel must get no event".into())
    }
}

/// One end of the busy pair: sends a byte when it holds the ball, and takes the ball when
/// a byte arrives. The ball goes back and forth, so every pass has work.
struct Player {
    has_ball: bool,
    hits: Counter,
}

impl Dispatcher for Player {
    fn writable(&self, _chan: &Channel) -> bool {
        self.has_ball
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if ctx.send(b"o")? == 1 {
            self.has_ball = false;
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if ctx.recv(&mut [0; 1])? == 1 {
            self.has_ball = true;
            self.hits.bump();
        }
        Ok(())
    }
}

/// Raises the soft descriptor limit towards `needed` if it is lower (up to the hard limit).
/// Windows has no such limit on sockets.
#[cfg(not(unix))]
fn ensure_fd_limit(_needed: u64) {}

/// Raises the soft descriptor limit towards `needed` if it is lower (up to the hard limit).
#[cfg(unix)]
fn ensure_fd_limit(needed: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the `rlimit` struct we own.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < needed as libc::rlim_t {
            lim.rlim_cur = lim.rlim_max.min(needed as libc::rlim_t);
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn per_pass(before: LoopStats, after: LoopStats) -> (u64, u64, u64) {
    let passes = after.passes - before.passes;
    (
        passes,
        (after.predicate_calls - before.predicate_calls) / passes,
        (after.dispatches - before.dispatches) / passes,
    )
}

/// Python has no such test; issue 2 asks for it.
fn idle_channels(backend: Backend) {
    // Both backends' tests may run at once in this binary: 2 × (2 × IDLE + 2) + slack.
    ensure_fd_limit(4 * IDLE as u64 + 200);
    let mut map = SocketMap::new();
    let mut peers = Vec::with_capacity(IDLE);
    for _ in 0..IDLE {
        let (a, b) = socketpair();
        map.insert(Channel::from_socket(a).unwrap(), Idle).unwrap();
        peers.push(b);
    }
    let (a, b) = socketpair();
    let hits = Counter::default();
    let serve = Player {
        has_ball: true,
        hits: hits.clone(),
    };
    let receive = Player {
        has_ball: false,
        hits: hits.clone(),
    };
    map.insert(Channel::from_socket(a).unwrap(), serve).unwrap();
    map.insert(Channel::from_socket(b).unwrap(), receive)
        .unwrap();
    let n = map.len() as u64;

    // Warm-up: every new channel is asked once, and the first rallies are played.
    util::run_until(&mut map, backend, "the first rallies", |_| hits.get() >= 3);
    backend.run(&mut map, 3);

    let before = map.stats();
    let hits_before = hits.get();
    backend.run(&mut map, PASSES);
    let (passes, predicates, dispatches) = per_pass(before, map.stats());
    assert_eq!(passes, PASSES);
    assert!(hits.get() > hits_before, "the busy pair kept playing");
    assert_eq!(map.len() as u64, n, "no channel closed");
    match backend {
        Backend::Mio => {
            assert!(predicates < 10, "{predicates} predicate calls per pass");
            assert!(dispatches <= 2, "{dispatches} dispatches per pass");
        }
        Backend::Poll => {
            assert_eq!(predicates, 2 * n, "every channel asked, every pass");
            assert!(dispatches <= 2, "{dispatches} dispatches per pass");
        }
    }
    drop(peers);
}
per_backend!(idle_channels);
