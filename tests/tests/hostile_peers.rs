//! Peers that misbehave: reset mid-write, vanish, half-close. Nothing crashes, nothing is
//! logged as a crash, the close reaches `handle_close`.

mod util;

use asyncore_core::{Channel, Context, Dispatcher, DispatcherWithSend, HandlerResult, SocketMap};
use log::Level;
use std::cell::Cell;
use std::rc::Rc;
use util::logs::capture_logs;
use util::{run_until, Backend};

/// Restores SIGPIPE's default action (death), which Rust's runtime turns off: a library
/// must not rely on that, since a C program or another runtime embedding it may not.
/// (Windows has no SIGPIPE.)
fn sigpipe_kills() {
    #[cfg(unix)]
    sigpipe_default();
}

#[cfg(unix)]
fn sigpipe_default() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    // SAFETY: setting a signal disposition to its default has no preconditions.
    ONCE.call_once(|| unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    });
}

/// Writes forever (through the buffered layer) to a peer; records `handle_close`.
struct Firehose {
    closed: Rc<Cell<u32>>,
}

impl Dispatcher for Firehose {
    fn readable(&self, _: &Channel) -> bool {
        false
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.closed.set(self.closed.get() + 1);
        ctx.close()?;
        Ok(())
    }
}

/// A peer that resets the connection while the server is writing to it: the write fails
/// with ECONNRESET or EPIPE (no SIGPIPE: the process would die), `handle_close` runs once,
/// and nothing is logged at error level.
mod reset_mid_write {
    use super::*;

    fn run(backend: Backend) {
        sigpipe_kills();
        let logs = capture_logs();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (ours, _) = listener.accept().unwrap();
        let closed = Rc::new(Cell::new(0));
        let mut map = SocketMap::new();
        let chan = Channel::from_socket(asyncore_core::Socket::from(ours)).unwrap();
        let id = map
            .insert(
                chan,
                DispatcherWithSend::new(Firehose {
                    closed: closed.clone(),
                }),
            )
            .unwrap();
        // 8 MiB queued: far more than the socket buffers hold.
        map.push(id, vec![7u8; 8 << 20]).unwrap();
        // Reset: SO_LINGER with a zero timeout turns close into RST.
        let peer = asyncore_core::Socket::from(peer);
        peer.set_linger(Some(std::time::Duration::ZERO)).unwrap();
        drop(peer);
        let c = closed.clone();
        run_until(
            &mut map,
            backend,
            "handle_close after the reset",
            move |_| c.get() > 0,
        );
        backend.run(&mut map, 3);
        assert_eq!(closed.get(), 1, "handle_close runs once");
        assert!(map.is_empty());
        assert_eq!(logs.messages(Level::Error), Vec::<String>::new());
    }

    #[test]
    fn mio() {
        run(Backend::Mio);
    }

    #[test]
    fn poll() {
        run(Backend::Poll);
    }
}

/// A peer that just closes while the server still has output queued for it.
mod peer_closes_mid_write {
    use super::*;

    fn run(backend: Backend) {
        sigpipe_kills();
        let logs = capture_logs();
        let (ours, theirs) = util::socketpair();
        let closed = Rc::new(Cell::new(0));
        let mut map = SocketMap::new();
        let id = map
            .insert(
                Channel::from_socket(ours).unwrap(),
                DispatcherWithSend::new(Firehose {
                    closed: closed.clone(),
                }),
            )
            .unwrap();
        map.push(id, vec![1u8; 4 << 20]).unwrap();
        drop(theirs);
        let c = closed.clone();
        run_until(
            &mut map,
            backend,
            "handle_close after the peer left",
            move |_| c.get() > 0,
        );
        assert_eq!(closed.get(), 1);
        assert_eq!(logs.messages(Level::Error), Vec::<String>::new());
    }

    #[test]
    fn mio() {
        run(Backend::Mio);
    }

    #[test]
    fn poll() {
        run(Backend::Poll);
    }
}
