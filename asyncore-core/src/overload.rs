//! Accepting when the process is out of descriptors (`EMFILE` / `ENFILE`), without
//! spinning.
//!
//! A listener whose `accept(2)` fails with `EMFILE` stays readable: a level-triggered loop
//! would call it again at once, forever, and an edge-triggered one would never hear of the
//! waiting connections again. We do what libuv and libev do: keep one descriptor in
//! reserve (`/dev/null`, `NUL` on Windows), and when accepting fails for lack of descriptors, free the
//! reserve, accept each waiting connection and close it at once (the peer sees a clean
//! close instead of hanging), then take the reserve again. Warnings are logged once per
//! burst, not once per connection.

use crate::sys::DEV_NULL;
use socket2::Socket;
use std::fs::File;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The spare descriptor, shared by every listener of the process.
static RESERVE: Mutex<Option<File>> = Mutex::new(None);

/// Connections refused in the current burst (0: no burst under way).
static REFUSED: AtomicU64 = AtomicU64::new(0);

/// At most this many waiting connections are refused per call, so that one handler call
/// stays short; the rest are refused on the next read event.
const MAX_SHED: usize = 1024;

fn reserve() -> std::sync::MutexGuard<'static, Option<File>> {
    // A panic while holding this lock cannot leave the Option inconsistent.
    RESERVE.lock().unwrap_or_else(|p| p.into_inner())
}

/// Takes the spare descriptor if it is not held yet; called when a channel starts
/// listening. Failing to take it is not an error (there is just no reserve to free).
pub(crate) fn ensure_reserve() {
    let mut spare = reserve();
    if spare.is_none() {
        *spare = File::open(DEV_NULL).ok();
    }
}

/// Refuses the connections waiting on `listener`: frees the reserve, accepts and closes
/// them, takes the reserve back. Returns how many were refused.
pub(crate) fn shed(listener: &Socket) -> usize {
    let mut spare = reserve();
    spare.take(); // Frees one descriptor for accept(2).
    let mut refused = 0;
    while refused < MAX_SHED {
        match listener.accept() {
            Ok((conn, _)) => {
                drop(conn);
                refused += 1;
            }
            Err(_) => break, // WouldBlock: none left; anything else: try next time.
        }
    }
    *spare = File::open(DEV_NULL).ok();
    drop(spare);
    if refused > 0 && REFUSED.fetch_add(refused as u64, Ordering::Relaxed) == 0 {
        log::warn!(
            target: "asyncore",
            "out of file descriptors (EMFILE): refusing new connections until some are free"
        );
    }
    refused
}

/// Notes a successful accept: ends a burst of refusals, logging its size once.
pub(crate) fn accepted() {
    if REFUSED.load(Ordering::Relaxed) != 0 {
        let n = REFUSED.swap(0, Ordering::Relaxed);
        if n > 0 {
            log::warn!(
                target: "asyncore",
                "accepting again; refused {n} connection(s) while out of file descriptors"
            );
        }
    }
}
