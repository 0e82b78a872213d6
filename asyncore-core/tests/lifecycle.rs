//! Timers, idle timeouts, the cross-thread waker, graceful shutdown and loop groups.

use asyncore_core::*;
use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;
use std::time::{Duration, Instant};

const DEADLINE: Duration = Duration::from_secs(10);

/// A listening channel that never gets a connection: keeps a map non-empty.
fn keepalive(map: &mut SocketMap) -> ChannelId {
    let mut chan = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
    chan.bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    chan.listen(1).unwrap();
    map.insert(chan, DefaultDispatcher).unwrap().id()
}

/// A connected pair of stream sockets: a Unix socket pair, or on Windows (which has no
/// `socketpair`) a TCP connection over the loopback interface.
fn stream_pair() -> (Socket, Socket) {
    #[cfg(unix)]
    return Socket::pair(Domain::UNIX, Type::STREAM, None).unwrap();
    #[cfg(not(unix))]
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let a = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (b, _) = listener.accept().unwrap();
        (Socket::from(a), Socket::from(b))
    }
}

fn run_until(map: &mut SocketMap, use_poll: bool, done: impl Fn(&SocketMap) -> bool) {
    let start = Instant::now();
    while !done(map) {
        assert!(start.elapsed() < DEADLINE, "condition not reached in time");
        Loop::new()
            .timeout(Duration::from_millis(20))
            .use_poll(use_poll)
            .count(1)
            .run(map)
            .unwrap();
    }
}

fn for_both(test: impl Fn(bool)) {
    test(false);
    test(true);
}

#[test]
fn timers_fire_in_deadline_order_and_never_early() {
    for_both(|use_poll| {
        let mut map = SocketMap::new();
        keepalive(&mut map);
        let fired: Rc<RefCell<Vec<(u64, Instant)>>> = Rc::default();
        let start = Instant::now();
        for ms in [30u64, 10, 20] {
            let fired = fired.clone();
            map.call_later(Duration::from_millis(ms), move |_| {
                fired.borrow_mut().push((ms, Instant::now()));
            });
        }
        let f = fired.clone();
        run_until(&mut map, use_poll, move |_| f.borrow().len() == 3);
        let fired = fired.borrow();
        assert_eq!(
            fired.iter().map(|f| f.0).collect::<Vec<_>>(),
            vec![10, 20, 30]
        );
        for (ms, at) in fired.iter() {
            assert!(
                *at >= start + Duration::from_millis(*ms),
                "timer {ms} ms fired early"
            );
        }
    });
}

#[test]
fn cancelled_timers_never_fire() {
    for_both(|use_poll| {
        let mut map = SocketMap::new();
        keepalive(&mut map);
        let log: Rc<RefCell<Vec<&str>>> = Rc::default();
        let l = log.clone();
        let t = map.call_later(Duration::from_millis(1), move |_| {
            l.borrow_mut().push("cancelled")
        });
        assert!(map.cancel_timer(t));
        assert!(!map.cancel_timer(t), "a second cancel finds nothing");
        let l = log.clone();
        map.call_later(Duration::from_millis(20), move |_| {
            l.borrow_mut().push("sentinel")
        });
        let l = log.clone();
        run_until(&mut map, use_poll, move |_| !l.borrow().is_empty());
        assert_eq!(*log.borrow(), vec!["sentinel"]);
        assert_eq!(map.pending_timers(), 0);
    });
}

#[test]
fn a_timer_set_inside_a_timer_fires_on_a_later_pass() {
    for_both(|use_poll| {
        let mut map = SocketMap::new();
        keepalive(&mut map);
        let passes: Rc<RefCell<Vec<u64>>> = Rc::default();
        let p = passes.clone();
        map.call_later(Duration::ZERO, move |map| {
            p.borrow_mut().push(map.stats().passes);
            let p = p.clone();
            map.call_later(Duration::ZERO, move |map| {
                p.borrow_mut().push(map.stats().passes)
            });
        });
        let p = passes.clone();
        run_until(&mut map, use_poll, move |_| p.borrow().len() == 2);
        let passes = passes.borrow();
        assert!(
            passes[1] > passes[0],
            "inner timer ran in the same pass: {passes:?}"
        );
    });
}

#[test]
fn repeating_timers_run_until_done() {
    let mut map = SocketMap::new();
    keepalive(&mut map);
    let count = Rc::new(RefCell::new(0));
    let c = count.clone();
    map.schedule(Instant::now(), move |_| {
        *c.borrow_mut() += 1;
        if *c.borrow() < 5 {
            TimerAction::Again(Duration::from_millis(1))
        } else {
            TimerAction::Done
        }
    });
    let c = count.clone();
    run_until(&mut map, false, move |m| {
        *c.borrow() == 5 && m.pending_timers() == 0
    });
}

struct TimerHandler(Rc<RefCell<Vec<TimerId>>>);

impl Dispatcher for TimerHandler {
    fn writable(&self, _: &Channel) -> bool {
        false
    }
    fn handle_timer(&mut self, _ctx: &mut Context<'_>, timer: TimerId) -> HandlerResult {
        self.0.borrow_mut().push(timer);
        Ok(())
    }
}

#[test]
fn channel_timers_reach_their_channel_and_never_a_closed_one() {
    let mut map = SocketMap::new();
    let fired: Rc<RefCell<Vec<TimerId>>> = Rc::default();
    let (a, _a_peer) = stream_pair();
    let (b, _b_peer) = stream_pair();
    let live = map
        .insert(
            Channel::from_socket(a).unwrap(),
            TimerHandler(fired.clone()),
        )
        .unwrap();
    let doomed = map
        .insert(
            Channel::from_socket(b).unwrap(),
            TimerHandler(fired.clone()),
        )
        .unwrap();
    let t_live = map.set_timer(live, Duration::from_millis(5)).unwrap();
    map.set_timer(doomed, Duration::from_millis(1)).unwrap();
    map.close(doomed).unwrap();
    // A new channel may reuse the closed one's slot: the timer must not reach it.
    let (c, _c_peer) = stream_pair();
    map.insert(
        Channel::from_socket(c).unwrap(),
        TimerHandler(fired.clone()),
    )
    .unwrap();
    let f = fired.clone();
    run_until(&mut map, false, move |m| {
        !f.borrow().is_empty() && m.pending_timers() == 0
    });
    assert_eq!(*fired.borrow(), vec![t_live]);
}

/// Reads and discards; counts bytes.
struct Reader;

impl Dispatcher for Reader {
    fn writable(&self, _: &Channel) -> bool {
        false
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 256];
        ctx.recv(&mut buf)?;
        Ok(())
    }
}

#[test]
fn idle_timeout_closes_the_idle_channel_and_not_the_busy_one() {
    for_both(|use_poll| {
        let mut map = SocketMap::new();
        let (idle, _idle_peer) = stream_pair();
        let (busy, busy_peer) = stream_pair();
        let idle = map
            .insert(Channel::from_socket(idle).unwrap(), Reader)
            .unwrap();
        let busy = map
            .insert(Channel::from_socket(busy).unwrap(), Reader)
            .unwrap();
        let period = Some(Duration::from_millis(300));
        map.set_idle_timeout(idle, period).unwrap();
        map.set_idle_timeout(busy, period).unwrap();
        let start = Instant::now();
        while map.contains(idle) {
            assert!(start.elapsed() < DEADLINE, "idle channel never timed out");
            busy_peer.send(b"x").unwrap(); // traffic on every pass
            Loop::new()
                .timeout(Duration::from_millis(10))
                .use_poll(use_poll)
                .count(1)
                .run(&mut map)
                .unwrap();
        }
        assert!(
            start.elapsed() >= Duration::from_millis(300),
            "timed out early"
        );
        assert!(map.contains(busy), "the busy channel was closed");
    });
}

#[test]
fn a_waker_ends_a_30_second_wait_from_another_thread() {
    for_both(|use_poll| {
        let mut map = SocketMap::new();
        keepalive(&mut map);
        let waker = map.waker().unwrap();
        let start = Instant::now();
        let poster = std::thread::spawn(move || {
            // Give the loop time to block in its wait; correctness does not depend on it.
            std::thread::sleep(Duration::from_millis(50));
            assert!(waker.post(|map| map.stop()));
        });
        Loop::new()
            .timeout(Duration::from_secs(30))
            .use_poll(use_poll)
            .run(&mut map)
            .unwrap();
        poster.join().unwrap();
        assert!(start.elapsed() < DEADLINE, "the wait was not cut short");
    });
}

#[test]
fn shutdown_drains_queued_output_then_closes_everything() {
    for_both(|use_poll| {
        let mut map = SocketMap::new();
        let listener = keepalive(&mut map);
        let (ours, theirs) = stream_pair();
        let payload: Vec<u8> = (0..8_000_000u32).map(|i| (i % 253) as u8).collect();
        let expected = payload.clone();
        let id = map
            .insert(
                Channel::from_socket(ours).unwrap(),
                DispatcherWithSend::new(Reader),
            )
            .unwrap();
        // Far more than the socket buffer takes: most of it stays queued.
        map.push(id, payload).unwrap();
        assert!(!map.channel(id).unwrap().out_queue().is_empty());
        let reader = std::thread::spawn(move || {
            let mut got = Vec::new();
            let mut theirs = std::net::TcpStream::from(theirs);
            theirs.set_read_timeout(Some(DEADLINE)).unwrap();
            theirs.read_to_end(&mut got).unwrap();
            got
        });
        map.shutdown(Duration::from_secs(30));
        assert!(!map.contains(listener), "listeners close at once");
        Loop::new().use_poll(use_poll).run(&mut map).unwrap();
        assert!(map.is_empty());
        let got = reader.join().unwrap();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
    });
}

/// Windows has no SO_REUSEPORT: its loops cannot share one listening port.
#[cfg(unix)]
mod one_port {
    use super::*;
    use std::io::Write;

    struct Echo;

    impl Dispatcher for Echo {
        fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
            let mut buf = [0u8; 1024];
            let n = ctx.recv(&mut buf)?;
            ctx.send(&buf[..n])?;
            Ok(())
        }
    }

    struct EchoServer;

    impl Dispatcher for EchoServer {
        fn handle_accepted(
            &mut self,
            ctx: &mut Context<'_>,
            sock: Socket,
            _: SockAddr,
        ) -> HandlerResult {
            ctx.insert(Channel::from_socket(sock)?, DispatcherWithSend::new(Echo))?;
            Ok(())
        }
    }

    #[test]
    fn a_loop_group_serves_one_port_from_several_threads() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let group = LoopGroup::spawn(2, Loop::new(), move |_, map| {
            let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
            server.set_reuse_port()?;
            server.bind(addr)?;
            server.listen(128)?;
            map.insert(server, EchoServer)?;
            Ok(())
        })
        .unwrap();
        assert_eq!(group.wakers().len(), 2);
        for i in 0..20u8 {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.set_read_timeout(Some(DEADLINE)).unwrap();
            c.write_all(&[i; 10]).unwrap();
            let mut got = [0u8; 10];
            c.read_exact(&mut got).unwrap();
            assert_eq!(got, [i; 10]);
        }
        group.shutdown(Duration::from_secs(1));
        group.join().unwrap();
    }
}

#[test]
fn a_loop_group_reports_a_setup_error() {
    let err = LoopGroup::spawn(2, Loop::new(), |i, _| {
        if i == 1 {
            Err(std::io::Error::other("setup failed"))
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "setup failed");
}
