//! Smoke tests of the core loop: connect, accept, echo, refused connect, on both backends.

use asyncore_core::*;
use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Log(Rc<RefCell<Vec<String>>>);

struct Echo;
impl Dispatcher for Echo {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 1024];
        let n = ctx.recv(&mut buf)?;
        ctx.send(&buf[..n])?;
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.close()?;
        Ok(())
    }
}

struct Server;
impl Dispatcher for Server {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _addr: SockAddr,
    ) -> HandlerResult {
        ctx.insert(Channel::from_socket(sock)?, DispatcherWithSend::new(Echo))?;
        Ok(())
    }
}

struct Client {
    log: Log,
    got: Vec<u8>,
    sent: bool,
}
impl Dispatcher for Client {
    fn writable(&self, chan: &Channel) -> bool {
        !chan.connected() || !self.sent
    }
    fn handle_connect(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.log.0.borrow_mut().push("connect".into());
        Ok(())
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if !self.sent {
            ctx.send(b"hello")?;
            self.sent = true;
        }
        Ok(())
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 64];
        let n = ctx.recv(&mut buf)?;
        self.got.extend_from_slice(&buf[..n]);
        if self.got == b"hello" {
            self.log.0.borrow_mut().push("echoed".into());
            ctx.map().stop();
        }
        Ok(())
    }
    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        self.log.0.borrow_mut().push(format!("error: {err}"));
        ctx.close()?;
        Ok(())
    }
}

fn run_until(map: &mut SocketMap, use_poll: bool, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        Loop::new()
            .timeout(Duration::from_millis(50))
            .use_poll(use_poll)
            .count(1)
            .run(map)
            .unwrap();
    }
}

fn echo(use_poll: bool) {
    let mut map = SocketMap::new();
    let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    server.set_reuse_addr().unwrap();
    server
        .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    server.listen(5).unwrap();
    let addr = server.local_addr().unwrap();
    map.insert(server, Server).unwrap();
    let log = Log::default();
    let mut client = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    client.connect(addr).unwrap();
    map.insert(
        client,
        Client {
            log: Log(log.0.clone()),
            got: vec![],
            sent: false,
        },
    )
    .unwrap();
    let l = log.0.clone();
    run_until(&mut map, use_poll, || {
        l.borrow().iter().any(|s| s == "echoed")
    });
    assert_eq!(
        *log.0.borrow(),
        vec!["connect".to_string(), "echoed".to_string()]
    );
}

#[test]
fn echo_mio() {
    echo(false);
}

#[test]
fn echo_poll() {
    echo(true);
}

fn refused(use_poll: bool) {
    // Bind a port, then close it so nothing listens there.
    let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let mut map = SocketMap::new();
    let log = Log::default();
    let mut client = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    client.connect(addr).unwrap();
    map.insert(
        client,
        Client {
            log: Log(log.0.clone()),
            got: vec![],
            sent: false,
        },
    )
    .unwrap();
    let l = log.0.clone();
    run_until(&mut map, use_poll, || !l.borrow().is_empty());
    Loop::new()
        .timeout(Duration::from_millis(10))
        .use_poll(use_poll)
        .count(3)
        .run(&mut map)
        .unwrap();
    let log = log.0.borrow();
    assert_eq!(log.len(), 1, "{log:?}");
    assert!(log[0].contains("refused"), "{log:?}");
    assert!(map.is_empty());
}

#[test]
fn refused_mio() {
    refused(false);
}

#[test]
fn refused_poll() {
    refused(true);
}

fn unix_missing(use_poll: bool) {
    let mut map = SocketMap::new();
    let log = Log::default();
    let mut client = Channel::create_socket(Domain::UNIX, Type::STREAM).unwrap();
    client
        .connect(SockAddr::unix("/nonexistent/asyncore-test.sock").unwrap())
        .unwrap();
    map.insert(
        client,
        Client {
            log: Log(log.0.clone()),
            got: vec![],
            sent: false,
        },
    )
    .unwrap();
    let l = log.0.clone();
    run_until(&mut map, use_poll, || !l.borrow().is_empty());
    let log = log.0.borrow();
    assert!(log[0].contains("No such file"), "{log:?}");
}

#[test]
fn unix_missing_mio() {
    unix_missing(false);
}

#[test]
fn unix_missing_poll() {
    unix_missing(true);
}
