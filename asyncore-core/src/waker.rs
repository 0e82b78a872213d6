//! Cross-thread wakeups: other threads post work into a loop and end its wait at once.
//!
//! A non-blocking socket pair whose reading end sits in the loop's wait set (under a
//! reserved mio token, and in every `poll(2)` set): one byte wakes the loop, whichever
//! backend runs it. (mio's own `Waker` cannot serve: the `poll(2)` backend needs a
//! descriptor to wait on.) On Windows the pair is a loopback TCP connection.

use crate::socket_map::SocketMap;
use crate::sys::{self, RawSock, WakeReader, WakeWriter};
use std::fmt;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Work posted to a loop from another thread.
pub(crate) type Job = Box<dyn FnOnce(&mut SocketMap) + Send>;

pub(crate) struct Shared {
    jobs: Mutex<Vec<Job>>,
    /// A byte is in the socket (or about to be) and not drained yet.
    signalled: AtomicBool,
    write: WakeWriter,
    read: WakeReader,
}

impl Shared {
    /// A new pair, its reading end registered with `registry` under `token`.
    pub(crate) fn new(registry: &::mio::Registry, token: ::mio::Token) -> io::Result<Arc<Shared>> {
        let (write, mut read) = sys::wake_pair()?;
        registry.register(&mut read, token, ::mio::Interest::READABLE)?;
        Ok(Arc::new(Shared {
            jobs: Mutex::new(Vec::new()),
            signalled: AtomicBool::new(false),
            write,
            read,
        }))
    }

    /// The descriptor the loop waits on.
    pub(crate) fn fd(&self) -> RawSock {
        sys::wake_fd(&self.read)
    }

    fn wake(&self) -> io::Result<()> {
        if self.signalled.swap(true, Ordering::AcqRel) {
            return Ok(()); // A byte is already on its way.
        }
        match (&self.write).write(&[1]) {
            Ok(_) => Ok(()),
            // A full socket already wakes the loop.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            Err(e) => {
                self.signalled.store(false, Ordering::Release);
                Err(e)
            }
        }
    }

    /// Empties the socket and takes the posted jobs.
    pub(crate) fn drain(&self) -> Vec<Job> {
        let mut buf = [0u8; 64];
        while matches!((&self.read).read(&mut buf), Ok(n) if n > 0) {}
        self.signalled.store(false, Ordering::Release);
        match self.jobs.lock() {
            Ok(mut jobs) => std::mem::take(&mut *jobs),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }

    /// Whether work was posted since the last drain.
    pub(crate) fn pending(&self) -> bool {
        self.signalled.load(Ordering::Acquire)
    }
}

/// A handle other threads use to post work into a loop and wake it. `Send + Clone`.
///
/// Posted closures run on the loop's thread, on its next pass, with the map: they may add
/// channels, push output, set timers or [`shutdown`](SocketMap::shutdown). Waking a loop
/// blocked in its wait ends the wait at once, on both backends. A job that panics is
/// logged; the other jobs of its batch still run.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_core::{Channel, DefaultDispatcher, Domain, Loop, SocketMap, Type};
/// use std::time::Duration;
///
/// let mut map = SocketMap::new();
/// let mut idle = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
/// idle.bind("127.0.0.1:0".parse::<std::net::SocketAddr>()?)?;
/// idle.listen(1)?;
/// map.insert(idle, DefaultDispatcher)?;
/// let waker = map.waker()?;
/// std::thread::spawn(move || waker.post(|map| map.stop()));
/// // Returns as soon as the posted closure has run, not after 30 s.
/// Loop::new().timeout(Duration::from_secs(30)).run(&mut map)?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Waker {
    shared: Arc<Shared>,
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("fd", &self.shared.fd())
            .finish()
    }
}

impl Waker {
    pub(crate) fn new(shared: Arc<Shared>) -> Waker {
        Waker { shared }
    }

    /// Runs `job` on the loop's thread with its map, on the loop's next pass.
    ///
    /// Returns `false` only when the loop's wakeup pipe failed (the job is queued anyway
    /// and runs at the loop's next pass).
    pub fn post(&self, job: impl FnOnce(&mut SocketMap) + Send + 'static) -> bool {
        match self.shared.jobs.lock() {
            Ok(mut jobs) => jobs.push(Box::new(job)),
            Err(poisoned) => poisoned.into_inner().push(Box::new(job)),
        }
        self.wake().is_ok()
    }

    /// Ends the loop's current wait without posting anything.
    ///
    /// # Errors
    /// The pipe's write failed (other than being full).
    pub fn wake(&self) -> io::Result<()> {
        self.shared.wake()
    }

    /// Asks the loop to shut down gracefully (see [`SocketMap::shutdown`]).
    pub fn shutdown(&self, grace: Duration) -> bool {
        self.post(move |map| map.shutdown(grace))
    }
}
