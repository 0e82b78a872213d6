//! Port of `test_asyncore.HelperFunctionTests` (readwriteexc, readwrite, closeall,
//! closeall_default, compact_traceback) and `DispatcherTests` (basic, repr, log, log_info,
//! unhandled, strerror).

mod util;

use asyncore_core::poll_flags;
use asyncore_core::{
    close_all, readwrite, strerror, with_socket_map, BoxError, Channel, ChannelId, Context,
    DefaultDispatcher, Dispatcher, Domain, ExitNow, Handle, HandlerResult, LogType, SocketMap,
    Type,
};
use log::Level;
use std::io::Read;
use util::logs::capture_logs;
use util::socketpair;

/// Python's `testobj`: records which handler ran.
#[derive(Debug, Default)]
struct TestObj {
    read: bool,
    write: bool,
    expt: bool,
    closed: bool,
    error_handled: bool,
}

impl Dispatcher for TestObj {
    fn handle_read(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.read = true;
        Ok(())
    }
    fn handle_write(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.write = true;
        Ok(())
    }
    fn handle_expt(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.expt = true;
        Ok(())
    }
    fn handle_close(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.closed = true;
        Ok(())
    }
    fn handle_error(&mut self, _ctx: &mut Context<'_>, _err: BoxError) -> HandlerResult {
        self.error_handled = true;
        Ok(())
    }
}

/// Python's `exitingdummy`: every event handler asks the loop to exit.
#[derive(Debug)]
struct ExitingDummy;

impl Dispatcher for ExitingDummy {
    fn handle_read(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        Err(ExitNow::new("exiting dummy").into())
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.handle_read(ctx)
    }
    fn handle_expt(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.handle_read(ctx)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.handle_read(ctx)
    }
    fn handle_error(&mut self, _ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        panic!("ExitNow must not reach handle_error: {err}");
    }
}

/// Python's `crashingdummy`: every event handler fails; `handle_error` records it.
#[derive(Debug, Default)]
struct CrashingDummy {
    error_handled: bool,
}

impl Dispatcher for CrashingDummy {
    fn handle_read(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        Err("crashing dummy".into())
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.handle_read(ctx)
    }
    fn handle_expt(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.handle_read(ctx)
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.handle_read(ctx)
    }
    fn handle_error(&mut self, _ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        assert_eq!(err.to_string(), "crashing dummy");
        self.error_handled = true;
        Ok(())
    }
}

/// A map with one channel (one end of a connected socketpair) handled by `handler`; the
/// other end is returned so that it stays open.
fn one_channel<H: Dispatcher>(handler: H) -> (SocketMap, Handle<H>, asyncore_core::Socket) {
    let (a, b) = socketpair();
    let mut map = SocketMap::new();
    let id = map
        .insert(Channel::from_socket(a).unwrap(), handler)
        .unwrap();
    (map, id, b)
}

/// Python: test_readwriteexc: `ExitNow` from a read, write or priority handler escapes
/// (`asyncore.read`, `write`, `_exception` are `readwrite` with one flag); any other error
/// goes to `handle_error`.
#[test]
fn readwriteexc() {
    for flag in [poll_flags::POLLIN, poll_flags::POLLOUT, poll_flags::POLLPRI] {
        let (mut map, id, _peer) = one_channel(ExitingDummy);
        let exit = readwrite(&mut map, id, flag).unwrap_err();
        assert_eq!(exit.reason(), "exiting dummy");

        let (mut map, id, _peer) = one_channel(CrashingDummy::default());
        readwrite(&mut map, id, flag).unwrap();
        assert!(map.handler_mut::<CrashingDummy>(id).unwrap().error_handled);
    }
}

/// Python: test_readwrite: each poll flag calls the right handler and only it; `ExitNow`
/// escapes; other errors reach `handle_error`.
fn readwrite_flags() {
    let expected: [(i16, &str); 6] = [
        (poll_flags::POLLIN, "read"),
        (poll_flags::POLLPRI, "expt"),
        (poll_flags::POLLOUT, "write"),
        (poll_flags::POLLERR, "closed"),
        (poll_flags::POLLHUP, "closed"),
        (poll_flags::POLLNVAL, "closed"),
    ];
    for (flag, attr) in expected {
        let (mut map, id, _peer) = one_channel(TestObj::default());
        readwrite(&mut map, id, flag).unwrap();
        let t = map.handler_mut::<TestObj>(id).unwrap();
        let got = [
            ("read", t.read),
            ("expt", t.expt),
            ("write", t.write),
            ("closed", t.closed),
            ("error_handled", t.error_handled),
        ];
        for (name, value) in got {
            assert_eq!(value, name == attr, "flag {flag:#x}: {name} = {value}");
        }

        let (mut map, id, _peer) = one_channel(ExitingDummy);
        assert!(readwrite(&mut map, id, flag).is_err(), "flag {flag:#x}");

        let (mut map, id, _peer) = one_channel(CrashingDummy::default());
        readwrite(&mut map, id, flag).unwrap();
        assert!(map.handler_mut::<CrashingDummy>(id).unwrap().error_handled);
    }
}

/// The Python test is named `test_readwrite`; a module keeps the name visible next to the
/// function `readwrite` this file imports.
mod readwrite {
    #[test]
    fn each_flag_calls_its_handler() {
        super::readwrite_flags();
    }
}

/// Fills a map with 10 channels, closes them all with `close`, and checks that the map is
/// empty and every descriptor closed (each peer sees the end of the stream).
fn closeall_check(
    insert: impl Fn(Channel) -> ChannelId,
    close: impl FnOnce(),
    len: impl Fn() -> usize,
) {
    let mut peers = Vec::new();
    for _ in 0..10 {
        let (a, b) = socketpair();
        insert(Channel::from_socket(a).unwrap());
        peers.push(b);
    }
    assert_eq!(len(), 10);
    close();
    assert_eq!(len(), 0);
    for peer in peers {
        let mut buf = [0u8; 1];
        assert_eq!((&peer).read(&mut buf).unwrap(), 0, "descriptor closed");
    }
}

/// Python: test_closeall: `close_all(map)` closes everything in a given map.
#[test]
fn closeall() {
    let map = std::cell::RefCell::new(SocketMap::new());
    closeall_check(
        |chan| {
            map.borrow_mut()
                .insert(chan, DefaultDispatcher)
                .unwrap()
                .id()
        },
        || close_all(Some(&mut map.borrow_mut()), false).unwrap(),
        || map.borrow().len(),
    );
}

/// Python: test_closeall_default: `close_all()` with no map closes the default map's
/// channels (each test thread has its own default map).
#[test]
fn closeall_default() {
    closeall_check(
        |chan| {
            with_socket_map(|m| m.insert(chan, DefaultDispatcher))
                .unwrap()
                .id()
        },
        || close_all(None, false).unwrap(),
        || with_socket_map(|m| m.len()),
    );
}

#[derive(Debug)]
struct Wrapped(std::io::Error);

impl std::fmt::Display for Wrapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("I don't like spam!")
    }
}

impl std::error::Error for Wrapped {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[derive(Debug, Default)]
struct Chained {
    source_seen: Option<std::io::ErrorKind>,
}

impl Dispatcher for Chained {
    fn handle_read(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        Err(Wrapped(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "bad spam",
        ))
        .into())
    }
    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        let io = std::error::Error::source(&*err)
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .expect("the source chain reaches handle_error");
        self.source_seen = Some(io.kind());
        DefaultDispatcher.handle_error(ctx, err)
    }
}

/// Python: test_compact_traceback. Rust has no traceback to compact; the nearest real
/// property: a handler's error reaches `handle_error` with its source chain, and the
/// default `handle_error` logs the whole chain with the channel's description.
#[test]
fn compact_traceback() {
    let logs = capture_logs();
    let (mut map, id, _peer) = one_channel(Chained::default());
    readwrite(&mut map, id, poll_flags::POLLIN).unwrap();
    // The default handle_error closed the channel after logging.
    assert!(!map.contains(id));
    let errors = logs.messages(Level::Error);
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("I don't like spam!: bad spam"),
        "{errors:?}"
    );
    assert!(errors[0].contains("Chained"), "{errors:?}");
}

/// Python: test_basic: a plain dispatcher is readable and writable.
#[test]
fn basic() {
    let chan = Channel::new();
    assert!(DefaultDispatcher.readable(&chan));
    assert!(DefaultDispatcher.writable(&chan));
}

/// Python: test_repr: the description names the handler type, the state and the address.
#[test]
fn repr() {
    assert_eq!(
        format!("{:?}", Channel::new()),
        "<asyncore_core::Channel closed>"
    );

    let mut map = SocketMap::new();
    let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    server
        .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    server.listen(5).unwrap();
    let fd = server.fileno().unwrap();
    let id = map.insert(server, DefaultDispatcher).unwrap();
    assert_eq!(
        format!("{:?}", map.channel(id).unwrap()),
        format!("<asyncore_core::dispatcher::DefaultDispatcher listening 127.0.0.1:0 fd={fd}>")
    );

    let (a, _b) = socketpair();
    let mut chan = Channel::from_socket(a).unwrap();
    chan.set_tag("spam");
    let id = map.insert(chan, DefaultDispatcher).unwrap();
    let text = format!("{:?}", map.channel(id).unwrap());
    assert!(
        text.starts_with("<asyncore_core::dispatcher::DefaultDispatcher connected "),
        "{text}"
    );
    assert!(text.contains("[spam]"), "{text}");
}

/// Runs `f` as the write handler of a channel, once.
struct RunOnWrite<F>(Option<F>);

impl<F: FnOnce(&mut Context<'_>) + 'static> Dispatcher for RunOnWrite<F> {
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(f) = self.0.take() {
            f(ctx);
        }
        Ok(())
    }
}

fn in_handler(f: impl FnOnce(&mut Context<'_>) + 'static) {
    let (mut map, id, _peer) = one_channel(RunOnWrite(Some(f)));
    readwrite(&mut map, id, poll_flags::POLLOUT).unwrap();
}

/// Python: test_log: `log` writes "log: MESSAGE" (at debug level here).
#[test]
fn log() {
    let logs = capture_logs();
    let l1 = "Lovely spam! Wonderful spam!";
    let l2 = "I don't like spam!";
    in_handler(move |ctx| {
        ctx.log(l1);
        ctx.log(l2);
    });
    let lines = logs.messages(Level::Debug);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&format!("log: {l1}")), "{lines:?}");
    assert!(lines[1].starts_with(&format!("log: {l2}")), "{lines:?}");
}

/// Python: test_log_info: `log_info` logs the message at the level its type names.
#[test]
fn log_info() {
    let logs = capture_logs();
    let l1 = "Have you got anything without spam?";
    let l2 = "Why can't she have egg bacon spam and sausage?";
    let l3 = "THAT'S got spam in it!";
    in_handler(move |ctx| {
        ctx.log_info(l1, LogType::Warning);
        ctx.log_info(l2, LogType::Info);
        ctx.log_info(l3, LogType::Error);
    });
    let got: Vec<(Level, String)> = logs
        .records()
        .into_iter()
        .filter(|r| r.target == "asyncore")
        .map(|r| (r.level, r.message))
        .collect();
    assert_eq!(got.len(), 3, "{got:?}");
    for ((level, message), (want_level, want)) in
        got.iter()
            .zip([(Level::Warn, l1), (Level::Info, l2), (Level::Error, l3)])
    {
        assert_eq!(*level, want_level);
        assert!(message.ends_with(&format!(": {want}")), "{message}");
    }
}

/// Python: test_unhandled: the default handlers log "unhandled ... event" warnings.
#[test]
fn unhandled() {
    let logs = capture_logs();
    in_handler(|ctx| {
        let mut d = DefaultDispatcher;
        d.handle_expt(ctx).unwrap();
        d.handle_read(ctx).unwrap();
        d.handle_write(ctx).unwrap();
        d.handle_connect(ctx).unwrap();
    });
    let lines = logs.messages(Level::Warn);
    let expected = [
        "unhandled incoming priority event",
        "unhandled read event",
        "unhandled write event",
        "unhandled connect event",
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for (line, want) in lines.iter().zip(expected) {
        assert!(line.ends_with(&format!(": {want}")), "{line}");
    }
}

/// Python: test_strerror (bpo-8573): the OS text for a known number, some text for an
/// unknown one.
fn strerror_() {
    let code = util::errno::ECONNREFUSED;
    let os_text = std::io::Error::from_raw_os_error(code).to_string();
    assert!(os_text.starts_with(&strerror(code)), "{os_text}");
    assert!(!strerror(code).contains("os error"), "{}", strerror(code));
    #[cfg(unix)]
    assert_eq!(strerror(libc::EPERM), "Operation not permitted");
    assert!(!strerror(-1).is_empty());
}

/// The Python test is named `test_strerror`; a module keeps the name visible next to the
/// function `strerror` this file imports.
mod strerror {
    #[test]
    fn known_and_unknown_numbers() {
        super::strerror_();
    }
}
