//! Helpers shared by the `asyncore_*` test files: socket families and backends, unique
//! temporary paths, loop driving with a deadline, flags, and log capture.
//!
//! Each test file is its own binary and uses only part of this module.
#![allow(dead_code, unused_macros, unused_imports)]

pub mod base;
pub mod collect;
pub mod logs;

use asyncore_core::{Channel, Context, Domain, HandlerResult, Loop, SockAddr, SocketMap, Type};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a test waits for something before it fails.
pub const DEADLINE: Duration = Duration::from_secs(10);

/// The wait of one loop pass in tests.
pub const PASS_TIMEOUT: Duration = Duration::from_millis(10);

/// The address families Python's `BaseTestAPI` runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `AF_INET` on 127.0.0.1.
    Ipv4,
    /// `AF_INET6` on ::1.
    Ipv6,
    /// `AF_UNIX` on a path in a per-test temporary directory.
    Unix,
}

impl Family {
    /// The socket domain of this family.
    pub fn domain(self) -> Domain {
        match self {
            Family::Ipv4 => Domain::IPV4,
            Family::Ipv6 => Domain::IPV6,
            Family::Unix => Domain::UNIX,
        }
    }

    /// An address to bind a server to: port 0 on loopback, or a fresh path in `dir`.
    pub fn server_addr(self, dir: &TestDir) -> SockAddr {
        match self {
            Family::Ipv4 => "127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
            Family::Ipv6 => "[::1]:0".parse::<std::net::SocketAddr>().unwrap().into(),
            Family::Unix => SockAddr::unix(dir.fresh_path("sock")).unwrap(),
        }
    }
}

/// The two loop backends every network test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The default mio backend: `Loop::new().use_poll(false)`.
    Mio,
    /// The `poll(2)` reference backend: `Loop::new().use_poll(true)`.
    Poll,
}

impl Backend {
    /// A loop on this backend with the tests' short pass timeout.
    pub fn looper(self) -> Loop {
        Loop::new()
            .use_poll(self == Backend::Poll)
            .timeout(PASS_TIMEOUT)
    }

    /// Runs `passes` passes (fewer if the map empties), failing the test on a loop error.
    pub fn run(self, map: &mut SocketMap, passes: u64) {
        if let Err(e) = self.looper().count(passes).run(map) {
            panic!("loop on {self:?} failed: {e}");
        }
    }
}

/// Runs passes of `backend` over `map` until `done` holds; fails the test when the
/// deadline passes, when the loop returns an error (e.g. an unexpected error escalated to
/// `ExitNow` by a test handler), or when the map empties first. Python:
/// `BaseTestAPI.loop_waiting_for_flag`.
pub fn run_until(
    map: &mut SocketMap,
    backend: Backend,
    what: &str,
    mut done: impl FnMut(&mut SocketMap) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if done(map) {
            return;
        }
        assert!(!map.is_empty(), "the map emptied before {what}");
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        backend.run(map, 1);
    }
}

/// A shared boolean a handler sets and the test reads (Python's `self.flag`).
#[derive(Debug, Clone, Default)]
pub struct Flag(Rc<Cell<bool>>);

impl Flag {
    /// A flag that is not set.
    pub fn new() -> Flag {
        Flag::default()
    }

    /// Sets the flag.
    pub fn set(&self) {
        self.0.set(true);
    }

    /// Whether the flag is set.
    pub fn get(&self) -> bool {
        self.0.get()
    }

    /// An event hook that only sets this flag.
    pub fn hook(&self) -> impl FnMut(&mut Context<'_>) -> HandlerResult + 'static {
        let flag = self.clone();
        move |_| {
            flag.set();
            Ok(())
        }
    }
}

/// A shared counter a handler bumps and the test reads.
#[derive(Debug, Clone, Default)]
pub struct Counter(Rc<Cell<usize>>);

impl Counter {
    /// Adds one.
    pub fn bump(&self) {
        self.0.set(self.0.get() + 1);
    }

    /// The count so far.
    pub fn get(&self) -> usize {
        self.0.get()
    }
}

/// A temporary directory unique to one test, removed with its contents on drop.
#[derive(Debug)]
pub struct TestDir {
    path: PathBuf,
    next: Cell<usize>,
}

impl TestDir {
    /// Creates a fresh directory under the system's temporary directory.
    pub fn new() -> TestDir {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("asyncore-tests-{}-{n}", std::process::id()));
        // A leftover of a crashed run with the same pid would hold stale sockets.
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create a temporary test directory");
        TestDir {
            path,
            next: Cell::new(0),
        }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A path in the directory that no earlier call returned.
    pub fn fresh_path(&self, ext: &str) -> PathBuf {
        let n = self.next.get();
        self.next.set(n + 1);
        self.path.join(format!("{n}.{ext}"))
    }
}

impl Default for TestDir {
    fn default() -> TestDir {
        TestDir::new()
    }
}

impl Drop for TestDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A channel of `family` listening (backlog 5) on a fresh address, and that address.
pub fn listening(family: Family, dir: &TestDir) -> (Channel, SockAddr) {
    let mut chan = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    chan.bind(family.server_addr(dir)).unwrap();
    chan.listen(5).unwrap();
    let address = chan.local_addr().unwrap();
    (chan, address)
}

/// `(a, b)`: a connected pair of stream sockets: Unix sockets, or on Windows (which has
/// no `socketpair`) a TCP connection over the loopback interface.
pub fn socketpair() -> (asyncore_core::Socket, asyncore_core::Socket) {
    #[cfg(unix)]
    return asyncore_core::Socket::pair(Domain::UNIX, asyncore_core::Type::STREAM, None)
        .expect("socketpair");
    #[cfg(not(unix))]
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
        let a =
            std::net::TcpStream::connect(listener.local_addr().expect("address")).expect("connect");
        let (b, _) = listener.accept().expect("accept");
        for end in [&a, &b] {
            // Buffers of a Unix socket pair's size, so that tests that fill them behave
            // alike; loopback TCP buffers grow to megabytes.
            let sock = socket2::SockRef::from(end);
            sock.set_send_buffer_size(64 * 1024).expect("SO_SNDBUF");
            sock.set_recv_buffer_size(64 * 1024).expect("SO_RCVBUF");
        }
        (a.into(), b.into())
    }
}

/// The OS error numbers tests expect: errno on Unix, the Winsock codes on Windows.
pub mod errno {
    #[cfg(unix)]
    pub use libc::{EADDRINUSE, EAGAIN, ECONNREFUSED};
    #[cfg(windows)]
    pub const EADDRINUSE: i32 = 10048; // WSAEADDRINUSE
    #[cfg(windows)]
    pub const EAGAIN: i32 = 10035; // WSAEWOULDBLOCK
    #[cfg(windows)]
    pub const ECONNREFUSED: i32 = 10061; // WSAECONNREFUSED
}

/// Flags for a test peer's `send` that keep a write to a closed socket from raising
/// `SIGPIPE` (Windows raises none).
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
pub const SEND_NOSIGNAL: i32 = libc::MSG_NOSIGNAL;
/// Flags for a test peer's `send` that keep a write to a closed socket from raising
/// `SIGPIPE` (Windows raises none).
#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
pub const SEND_NOSIGNAL: i32 = 0;

/// The test's end of a [`socketpair`] as a std stream.
#[cfg(unix)]
pub type PeerStream = std::os::unix::net::UnixStream;
/// The test's end of a [`socketpair`] as a std stream.
#[cfg(not(unix))]
pub type PeerStream = std::net::TcpStream;

/// `sock`, one end of a [`socketpair`], as a std stream.
pub fn peer_stream(sock: asyncore_core::Socket) -> PeerStream {
    #[cfg(unix)]
    return PeerStream::from(std::os::fd::OwnedFd::from(sock));
    #[cfg(not(unix))]
    PeerStream::from(sock)
}

/// Generates one test per family and backend calling `fn $test(Family, Backend)` of the
/// enclosing file, in a module named after the Python test: `$test::ipv4_mio`, ...,
/// `$test::unix_poll`. With `not_unix`, only IPv4 and IPv6 (Python's "not applicable to
/// AF_UNIX sockets"). The Unix cases exist on Unix only (no `AF_UNIX` in mio on Windows),
/// as Python skips them where `socket.AF_UNIX` is missing.
macro_rules! per_family {
    ($test:ident) => {
        $crate::util::per_family!(@gen $test:
            ipv4_mio Ipv4 Mio, ipv4_poll Ipv4 Poll,
            ipv6_mio Ipv6 Mio, ipv6_poll Ipv6 Poll,
            #[cfg(unix)] unix_mio Unix Mio, #[cfg(unix)] unix_poll Unix Poll);
    };
    ($test:ident, not_unix) => {
        $crate::util::per_family!(@gen $test:
            ipv4_mio Ipv4 Mio, ipv4_poll Ipv4 Poll,
            ipv6_mio Ipv6 Mio, ipv6_poll Ipv6 Poll);
    };
    (@gen $test:ident: $($(#[$only:meta])* $name:ident $fam:ident $be:ident),*) => {
        mod $test {
            $(
                #[test]
                $(#[$only])*
                fn $name() {
                    super::$test($crate::util::Family::$fam, $crate::util::Backend::$be);
                }
            )*
        }
    };
}
pub(crate) use per_family;

/// Generates `$test::mio` and `$test::poll` calling `fn $test(Backend)`.
macro_rules! per_backend {
    ($test:ident) => {
        mod $test {
            #[test]
            fn mio() {
                super::$test($crate::util::Backend::Mio);
            }
            #[test]
            fn poll() {
                super::$test($crate::util::Backend::Poll);
            }
        }
    };
}
pub(crate) use per_backend;
