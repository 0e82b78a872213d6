//! Bad input (issue 2): a refused connect, an address in use, a descriptor that cannot be
//! adopted. Each ends in a clear error where it belongs and leaves the map sound.

mod util;

use asyncore_core::{
    BoxError, Channel, Context, DefaultDispatcher, Dispatcher, HandlerResult, SockAddr, Socket,
    SocketMap, Type,
};
use std::cell::RefCell;
use std::io::{ErrorKind, Write};
use std::rc::Rc;
use util::{per_family, socketpair, Backend, Family, TestDir};

/// Records the errors that reach `handle_error`, then lets the default close the channel.
struct Connector {
    errors: Rc<RefCell<Vec<Option<i32>>>>,
}

impl Dispatcher for Connector {
    fn handle_connect(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        Err("the connect must not succeed".into())
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        let code = err
            .downcast_ref::<std::io::Error>()
            .and_then(|e| e.raw_os_error());
        self.errors.borrow_mut().push(code);
        DefaultDispatcher.handle_error(ctx, err)
    }
}

/// Counts the bytes it reads.
struct Reader {
    got: Rc<RefCell<usize>>,
}

impl Dispatcher for Reader {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        *self.got.borrow_mut() += ctx.recv(&mut [0; 64])?;
        Ok(())
    }
}

/// An address where a socket is bound but nothing listens: a connect is refused there.
/// The returned socket holds the address for the test's duration.
fn refusing_addr(family: Family, dir: &TestDir) -> (Socket, SockAddr) {
    let holder = Socket::new(family.domain(), Type::STREAM, None).unwrap();
    holder.bind(&family.server_addr(dir)).unwrap();
    let addr = holder.local_addr().unwrap();
    (holder, addr)
}

/// A connect to where nothing listens: `handle_error` gets the OS error
/// (`ECONNREFUSED`) once, the channel closes, and another channel of the map is still
/// served, before and after.
fn connect_refused(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let (_holder, addr) = refusing_addr(family, &dir);
    let mut map = SocketMap::new();

    let (a, mut peer) = socketpair();
    let got = Rc::new(RefCell::new(0));
    let reader = map
        .insert(
            Channel::from_socket(a).unwrap(),
            Reader { got: got.clone() },
        )
        .unwrap();
    peer.write_all(b"before").unwrap();

    let errors = Rc::new(RefCell::new(Vec::new()));
    let mut client = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    client.connect(addr).unwrap();
    let client = map
        .insert(
            client,
            Connector {
                errors: errors.clone(),
            },
        )
        .unwrap();

    util::run_until(&mut map, backend, "the refused connect to close", |map| {
        !map.contains(client)
    });
    assert_eq!(*errors.borrow(), vec![Some(util::errno::ECONNREFUSED)]);
    util::run_until(&mut map, backend, "the first bytes", |_| *got.borrow() == 6);
    peer.write_all(b"after").unwrap();
    util::run_until(&mut map, backend, "the later bytes", |_| {
        *got.borrow() == 11
    });
    assert!(map.contains(reader));
    assert_eq!(map.len(), 1);
    assert_eq!(errors.borrow().len(), 1, "handle_error ran once");
}
per_family!(connect_refused);

/// Binding an address in use: the caller of `bind` gets `EADDRINUSE`, and the map holds
/// only what it held before. (No loop is involved; per family only.)
fn bind_in_use(family: Family) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let mut first = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    first.bind(family.server_addr(&dir)).unwrap();
    first.listen(5).unwrap();
    let taken = first.local_addr().unwrap();
    let first = map.insert(first, DefaultDispatcher).unwrap();

    let mut second = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    let err = second.bind(taken).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(util::errno::EADDRINUSE), "{err}");
    assert!(
        second.addr().is_none(),
        "a failed bind remembers no address"
    );
    assert_eq!(map.len(), 1);
    assert_eq!(map.ids(), vec![first]);
}

mod bind_in_use {
    use super::Family;

    #[test]
    fn ipv4() {
        super::bind_in_use(Family::Ipv4);
    }

    #[test]
    fn ipv6() {
        super::bind_in_use(Family::Ipv6);
    }

    #[test]
    #[cfg(unix)] // Unix domain sockets: not on Windows.
    fn unix() {
        super::bind_in_use(Family::Unix);
    }
}

/// A channel with no descriptor, or one already closed, cannot join a map.
#[test]
fn a_closed_channel_cannot_join_a_map() {
    let mut map = SocketMap::new();
    let err = map.insert(Channel::new(), DefaultDispatcher).unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput, "{err}");
    let (a, _b) = socketpair();
    let mut chan = Channel::from_socket(a).unwrap();
    chan.close().unwrap();
    let err = map.insert(chan, DefaultDispatcher).unwrap_err();
    assert_eq!(err.error().kind(), ErrorKind::InvalidInput, "{err}");
    assert!(map.is_empty());
    assert!(map.ids().is_empty());
}

/// Adopting descriptors that are not open sockets: a clear error, nothing registered.
#[cfg(unix)] // Raw descriptor numbers and pipes: Unix only (`from_raw_fd` is).
mod adopt {
    use super::*;
    use std::os::fd::{IntoRawFd, OwnedFd};

    /// `-1` and a number far above the descriptor limit: `EBADF`, naming the number.
    #[test]
    fn invalid_descriptor() {
        for fd in [-1, 1 << 30] {
            // SAFETY: `fd` is not an open descriptor, so nothing is owned or closed.
            let err = unsafe { Channel::from_raw_fd(fd) }.unwrap_err();
            assert!(err.to_string().contains(&fd.to_string()), "{err}");
            assert!(err.to_string().contains("Bad file descriptor"), "{err}");
        }
    }

    /// One end of a pipe: `ENOTSOCK`, and the descriptor is closed, not leaked (a write
    /// to the other end then fails with `EPIPE`).
    #[test]
    fn non_socket() {
        let (read_end, write_end) = pipe();
        let err = Channel::from_socket(Socket::from(read_end)).unwrap_err();
        assert!(err.to_string().contains("non-socket"), "{err}");
        let mut w = std::fs::File::from(write_end);
        let e = w.write_all(b"x").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::BrokenPipe);

        let (read_end, write_end) = pipe();
        // SAFETY: the read end is ours and handed over; nothing else closes it.
        let err = unsafe { Channel::from_raw_fd(read_end.into_raw_fd()) }.unwrap_err();
        assert!(err.to_string().contains("non-socket"), "{err}");
        let mut w = std::fs::File::from(write_end);
        assert_eq!(w.write_all(b"x").unwrap_err().kind(), ErrorKind::BrokenPipe);
    }

    fn pipe() -> (OwnedFd, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe(2) writes.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both descriptors were just created by pipe(2) and are owned here only.
        unsafe {
            use std::os::fd::FromRawFd;
            (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
        }
    }
}
