//! Cross-thread wakeups: other threads post work into a loop and end its wait at once.
//!
//! A non-blocking pipe whose read end sits in the loop's wait set (under a reserved mio
//! token, and in every `poll(2)` set): one byte wakes the loop, whichever backend runs it.

use crate::socket_map::SocketMap;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Work posted to a loop from another thread.
pub(crate) type Job = Box<dyn FnOnce(&mut SocketMap) + Send>;

/// The mio token of the waker's pipe; channel tokens never reach it (their generation
/// is at most `u32::MAX` and their index below it).
pub(crate) const WAKER_TOKEN: mio::Token = mio::Token(usize::MAX);

pub(crate) struct Shared {
    jobs: Mutex<Vec<Job>>,
    /// A byte is in the pipe (or about to be) and not drained yet.
    signalled: AtomicBool,
    write: OwnedFd,
    pub(crate) read: OwnedFd,
}

impl Shared {
    pub(crate) fn new() -> io::Result<Arc<Shared>> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: `fds` is a valid array of two ints for pipe to fill.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: pipe(2) just returned these two descriptors, owned by nobody else.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        for fd in [&read, &write] {
            crate::sys::set_nonblocking(fd.as_raw_fd(), true)?;
            crate::sys::set_cloexec(fd.as_raw_fd())?;
        }
        Ok(Arc::new(Shared {
            jobs: Mutex::new(Vec::new()),
            signalled: AtomicBool::new(false),
            write,
            read,
        }))
    }

    fn wake(&self) -> io::Result<()> {
        if self.signalled.swap(true, Ordering::AcqRel) {
            return Ok(()); // A byte is already on its way.
        }
        let byte = 1u8;
        // SAFETY: writes one byte from a valid local to a descriptor we own.
        let r = unsafe { libc::write(self.write.as_raw_fd(), (&byte as *const u8).cast(), 1) };
        if r == -1 {
            let err = io::Error::last_os_error();
            // A full pipe already wakes the loop.
            if err.kind() != io::ErrorKind::WouldBlock {
                self.signalled.store(false, Ordering::Release);
                return Err(err);
            }
        }
        Ok(())
    }

    /// Empties the pipe and takes the posted jobs.
    pub(crate) fn drain(&self) -> Vec<Job> {
        let mut buf = [0u8; 64];
        loop {
            // SAFETY: reads into a valid local buffer from a descriptor we own.
            let r =
                unsafe { libc::read(self.read.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
            if r <= 0 {
                break;
            }
        }
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
/// blocked in its wait ends the wait at once, on both backends.
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
            .field("fd", &self.shared.read.as_raw_fd())
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
