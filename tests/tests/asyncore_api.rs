//! Port of `test_asyncore.BaseTestAPI`: every test on IPv4, IPv6 and Unix sockets and on
//! both backends (`<test>::<family>_<backend>`), the Unix exclusions as in Python.

mod util;

use asyncore_core::{
    Channel, Context, Dispatcher, HandlerResult, SockAddr, Socket, SocketMap, Type,
};
#[cfg(unix)]
use std::mem::MaybeUninit;
use util::base::{base_client, loop_waiting_for_flag, BaseServer, BaseTestHandler};
use util::{per_family, Backend, Family, Flag, TestDir};

/// Python: test_handle_connect: `handle_connect` runs when a connect completes.
fn handle_connect(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let (_, address) = BaseServer::start_default(&mut map, family, &dir);
    let flag = Flag::new();
    let f = flag.clone();
    let client = base_client(
        &mut map,
        family,
        &address,
        BaseTestHandler::new().on_connect(move |ctx| {
            // The connect event comes before `connected` is set, as in asyncore.
            assert!(ctx.connecting() && !ctx.connected());
            f.set();
            Ok(())
        }),
    );
    loop_waiting_for_flag(&mut map, backend, &flag);
    let chan = map.channel(client).unwrap();
    assert!(chan.connected() && !chan.connecting());
}
per_family!(handle_connect);

/// Python: test_handle_accept: a listening channel's read event is `handle_accept`.
fn handle_accept(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let flag = Flag::new();
    let (listener, address) = util::listening(family, &dir);
    map.insert(listener, BaseTestHandler::new().on_accept(flag.hook()))
        .unwrap();
    base_client(&mut map, family, &address, BaseTestHandler::client());
    loop_waiting_for_flag(&mut map, backend, &flag);
}
per_family!(handle_accept);

/// The listener of test_handle_accepted: asyncore's default `handle_accept` (accept, then
/// `handle_accepted`); `handle_accepted` closes the connection and sets the flag.
struct AcceptedListener {
    flag: Flag,
}

impl Dispatcher for AcceptedListener {
    fn handle_accepted(
        &mut self,
        _ctx: &mut Context<'_>,
        sock: Socket,
        addr: SockAddr,
    ) -> HandlerResult {
        // The new connection comes as a socket with its peer's address.
        assert_eq!(sock.peer_addr()?.as_socket(), addr.as_socket());
        drop(sock);
        self.flag.set();
        Ok(())
    }

    fn handle_error(
        &mut self,
        _ctx: &mut Context<'_>,
        err: asyncore_core::BoxError,
    ) -> HandlerResult {
        Err(asyncore_core::ExitNow::new(format!("unexpected error: {err}")).into())
    }
}

/// Python: test_handle_accepted: the default `handle_accept` hands the connection to
/// `handle_accepted`.
fn handle_accepted(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let flag = Flag::new();
    let (listener, address) = util::listening(family, &dir);
    map.insert(listener, AcceptedListener { flag: flag.clone() })
        .unwrap();
    base_client(&mut map, family, &address, BaseTestHandler::client());
    loop_waiting_for_flag(&mut map, backend, &flag);
}
per_family!(handle_accepted);

/// Python: test_handle_read: `handle_read` runs when data arrives.
fn handle_read(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let (_, address) = BaseServer::start(&mut map, family, &dir, |ctx, sock| {
        let mut chan = Channel::from_socket(sock)?;
        assert_eq!(chan.send(&[b'x'; 1024])?, 1024);
        ctx.insert(chan, BaseTestHandler::new())?;
        Ok(())
    });
    let flag = Flag::new();
    base_client(
        &mut map,
        family,
        &address,
        BaseTestHandler::client().on_read(flag.hook()),
    );
    loop_waiting_for_flag(&mut map, backend, &flag);
}
per_family!(handle_read);

/// Python: test_handle_write: `handle_write` runs on a writable connection.
fn handle_write(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let (_, address) = BaseServer::start_default(&mut map, family, &dir);
    let flag = Flag::new();
    base_client(
        &mut map,
        family,
        &address,
        BaseTestHandler::client().on_write(flag.hook()),
    );
    loop_waiting_for_flag(&mut map, backend, &flag);
}
per_family!(handle_write);

/// Python: test_handle_close: `handle_close` runs when the other end closes.
fn handle_close(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let (_, address) = BaseServer::start(&mut map, family, &dir, |_ctx, sock| {
        // The handler closes the connection at once.
        Channel::from_socket(sock)?.close()?;
        Ok(())
    });
    let flag = Flag::new();
    let f = flag.clone();
    let client = base_client(
        &mut map,
        family,
        &address,
        BaseTestHandler::client()
            .on_read(|ctx| {
                // At least one recv is needed to see the end of the stream.
                let _ = ctx.recv(&mut [0; 1024])?;
                Ok(())
            })
            .on_close(move |ctx| {
                f.set();
                ctx.close()?;
                Ok(())
            }),
    );
    loop_waiting_for_flag(&mut map, backend, &flag);
    assert!(!map.contains(client));
}
per_family!(handle_close);

/// Python: test_handle_close_after_conn_broken: a send to a peer that closed with unread
/// data (`ECONNRESET` / `EPIPE`) ends in `handle_close` (or `handle_expt`), not an error.
fn handle_close_after_conn_broken(family: Family, backend: Backend) {
    const DATA: [u8; 128] = [0; 128];
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let (_, address) = BaseServer::start(&mut map, family, &dir, |ctx, sock| {
        let handler = BaseTestHandler::new().writable(false).on_read(|ctx| {
            let _ = ctx.recv(&mut [0; DATA.len()])?;
            ctx.close()?;
            Ok(())
        });
        ctx.insert(Channel::from_socket(sock)?, handler)?;
        Ok(())
    });
    let flag = Flag::new();
    let (f1, f2) = (flag.clone(), flag.clone());
    base_client(
        &mut map,
        family,
        &address,
        BaseTestHandler::client()
            .on_write(|ctx| {
                ctx.send(&DATA)?;
                Ok(())
            })
            .on_close(move |ctx| {
                f1.set();
                ctx.close()?;
                Ok(())
            })
            .on_expt(move |ctx| {
                f2.set();
                ctx.close()?;
                Ok(())
            }),
    );
    loop_waiting_for_flag(&mut map, backend, &flag);
}
per_family!(handle_close_after_conn_broken);

/// Python: test_handle_expt: out-of-band data is `handle_expt` (TCP only). Not on Windows:
/// mio has no priority readiness there and `WSAPoll` refuses `POLLPRI`.
#[cfg(unix)]
fn handle_expt(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let (_, address) = BaseServer::start(&mut map, family, &dir, |ctx, sock| {
        let chan = Channel::from_socket(sock)?;
        assert_eq!(chan.socket().unwrap().send_out_of_band(&[244])?, 1);
        ctx.insert(chan, BaseTestHandler::new())?;
        Ok(())
    });
    let flag = Flag::new();
    let f = flag.clone();
    base_client(
        &mut map,
        family,
        &address,
        BaseTestHandler::client().on_expt(move |ctx| {
            let mut buf = [MaybeUninit::<u8>::uninit(); 1024];
            let n = ctx.socket().unwrap().recv_out_of_band(&mut buf)?;
            assert_eq!(n, 1);
            // SAFETY: recv_out_of_band initialised the first `n` bytes.
            assert_eq!(unsafe { buf[0].assume_init() }, 244);
            f.set();
            Ok(())
        }),
    );
    loop_waiting_for_flag(&mut map, backend, &flag);
}
#[cfg(unix)]
per_family!(handle_expt, not_unix);

/// Python: test_handle_error: a failure inside a handler (a division by zero, in Rust a
/// panic) reaches `handle_error` with that failure.
fn handle_error(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let (_, address) = BaseServer::start_default(&mut map, family, &dir);
    let flag = Flag::new();
    let f = flag.clone();
    base_client(
        &mut map,
        family,
        &address,
        BaseTestHandler::client()
            .on_write(|_| {
                let zero = std::hint::black_box(0u32);
                let _ = std::hint::black_box(1 / zero);
                Ok(())
            })
            .on_error(move |ctx, err| {
                let panic = err
                    .downcast_ref::<asyncore_core::PanicError>()
                    .expect("the handler's panic reaches handle_error");
                assert!(panic.message().contains("divide by zero"), "{panic}");
                f.set();
                ctx.close()?;
                Ok(())
            }),
    );
    loop_waiting_for_flag(&mut map, backend, &flag);
}
per_family!(handle_error);

/// Python: test_connection_attributes: `connected` and `accepting` through a connection's
/// life.
fn connection_attributes(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let (server, address) = BaseServer::start_default(&mut map, family, &dir);
    let client = base_client(&mut map, family, &address, BaseTestHandler::client());

    // We start disconnected.
    assert!(!map.channel(server).unwrap().connected());
    assert!(map.channel(server).unwrap().accepting());
    assert!(!map.channel(client).unwrap().accepting());

    // Run until the client connects.
    util::run_until(&mut map, backend, "the client to connect", |map| {
        map.channel(client).unwrap().connected()
    });
    assert!(!map.channel(server).unwrap().connected());
    assert!(map.channel(server).unwrap().accepting());
    assert!(!map.channel(client).unwrap().accepting());

    // Disconnect the client.
    map.channel_mut(client).unwrap().close().unwrap();
    assert!(!map.channel(server).unwrap().connected());
    assert!(map.channel(server).unwrap().accepting());
    assert!(!map.channel(client).unwrap().connected());
    assert!(!map.channel(client).unwrap().accepting());

    // Stop serving.
    map.channel_mut(server).unwrap().close().unwrap();
    assert!(!map.channel(server).unwrap().connected());
    assert!(!map.channel(server).unwrap().accepting());
}
per_family!(connection_attributes);

#[cfg(unix)]
fn fd_flags(sock: &Socket) -> (libc::c_int, libc::c_int) {
    use std::os::fd::AsRawFd;
    let fd = sock.as_raw_fd();
    // SAFETY: fcntl with F_GETFL / F_GETFD only reads flags of a descriptor we hold open.
    unsafe {
        (
            libc::fcntl(fd, libc::F_GETFL),
            libc::fcntl(fd, libc::F_GETFD),
        )
    }
}

/// Python: test_create_socket: a stream socket of the family, non-blocking, not
/// inherited by child processes. (No loop is involved; it runs per backend as in Python.)
fn create_socket(family: Family, _backend: Backend) {
    let chan = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    let sock = chan.socket().unwrap();
    assert_eq!(sock.r#type().unwrap(), Type::STREAM);
    #[cfg(unix)]
    {
        assert_eq!(sock.domain().unwrap(), family.domain());
        let (fl, fd) = fd_flags(sock);
        assert_ne!(fl & libc::O_NONBLOCK, 0, "non-blocking");
        assert_ne!(fd & libc::FD_CLOEXEC, 0, "not inheritable");
    }
    // Windows can query neither flag (sockets are made not inheritable by socket2): the
    // non-blocking mode shows in an accept that returns at once.
    #[cfg(not(unix))]
    {
        sock.bind(&family.server_addr(&TestDir::new())).unwrap();
        sock.listen(1).unwrap();
        let err = sock.accept().unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::WouldBlock, "{err}");
    }
}
per_family!(create_socket);

/// Python: test_bind: binding a port in use fails with `EADDRINUSE`. (No loop is
/// involved; it runs per backend as in Python.)
fn bind(family: Family, _backend: Backend) {
    let dir = TestDir::new();
    let mut s1 = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    s1.bind(family.server_addr(&dir)).unwrap();
    s1.listen(5).unwrap();
    let taken = s1.local_addr().unwrap();
    let mut s2 = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    let err = s2.bind(taken).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(util::errno::EADDRINUSE), "{err}");
}
per_family!(bind, not_unix);

/// Python: test_set_reuse_addr: an adopted plain socket has no `SO_REUSEADDR`;
/// `set_reuse_addr` on a created one sets it. (No loop is involved.)
fn set_reuse_addr(family: Family, _backend: Backend) {
    let plain = Socket::new(family.domain(), Type::STREAM, None).unwrap();
    let mut chan = Channel::from_socket(plain).unwrap();
    assert!(!chan.socket().unwrap().reuse_address().unwrap());
    chan.close().unwrap();
    let mut chan = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    chan.set_reuse_addr().unwrap();
    assert!(chan.socket().unwrap().reuse_address().unwrap());
}
per_family!(set_reuse_addr, not_unix);

/// Python: test_quick_connect (bpo-10340): a client that connects and resets at once
/// (`SO_LINGER` 0) does not break the server's loop; the server still accepts afterwards.
fn quick_connect(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    let accepted = util::Counter::default();
    let a = accepted.clone();
    let (server, address) = BaseServer::start(&mut map, family, &dir, move |ctx, sock| {
        a.bump();
        // The reset connection may be gone already or close at once: both are fine.
        let handler = BaseTestHandler::new()
            .writable(false)
            .on_read(|ctx| {
                let _ = ctx.recv(&mut [0; 64])?;
                Ok(())
            })
            .on_close(|ctx| {
                ctx.close()?;
                Ok(())
            })
            .on_error(|ctx, _| {
                ctx.close()?;
                Ok(())
            });
        ctx.insert(Channel::from_socket(sock)?, handler)?;
        Ok(())
    });
    {
        let quick = Socket::new(family.domain(), Type::STREAM, None).unwrap();
        quick.set_linger(Some(std::time::Duration::ZERO)).unwrap();
        quick.connect(&address).unwrap();
        // Dropped here: an RST instead of an orderly close.
    }
    // The server may or may not see the reset connection; run a few passes either way.
    backend.run(&mut map, 5);
    assert!(map.contains(server), "the server survives a quick connect");
    let before = accepted.get();
    let normal = std::net::TcpStream::connect(address.as_socket().unwrap()).unwrap();
    util::run_until(
        &mut map,
        backend,
        "a later connection to be accepted",
        |_| accepted.get() > before,
    );
    drop(normal);
}
per_family!(quick_connect, not_unix);
