//! One loop per core: N threads, each with its own map and loop.

use crate::error::LoopError;
use crate::event_loop::Loop;
use crate::socket_map::SocketMap;
use crate::waker::Waker;
use std::io;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

/// N loops on N threads. Each thread builds its own map with `setup` (typically a
/// listening channel with [`Channel::set_reuse_port`](crate::Channel::set_reuse_port) on
/// a shared port, so the kernel spreads connections over the loops), then runs its loop.
/// Handlers stay on their thread; state shared between loops must be `Send + Sync`.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use asyncore_core::{Channel, DefaultDispatcher, Domain, Loop, LoopGroup, Type};
/// use std::time::Duration;
///
/// let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
/// let group = LoopGroup::spawn(2, Loop::new(), move |_index, map| {
///     let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
///     server.set_reuse_port()?;
///     server.bind(std::net::SocketAddr::from(([127, 0, 0, 1], port)))?;
///     server.listen(128)?;
///     map.insert(server, DefaultDispatcher)?;
///     Ok(())
/// })?;
/// group.shutdown(Duration::from_secs(1));
/// group.join()?;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct LoopGroup {
    threads: Vec<JoinHandle<Result<(), LoopError>>>,
    wakers: Vec<Waker>,
}

impl LoopGroup {
    /// Starts `n` threads (at least 1), each running `lp` over a map that `setup(index,
    /// map)` filled. Returns once every setup has finished.
    ///
    /// # Errors
    /// The first setup error (or thread spawn error); the loops already started are shut
    /// down and joined first.
    pub fn spawn<F>(n: usize, lp: Loop, setup: F) -> io::Result<LoopGroup>
    where
        F: Fn(usize, &mut SocketMap) -> io::Result<()> + Send + Sync + 'static,
    {
        let setup = Arc::new(setup);
        let (tx, rx) = mpsc::channel::<io::Result<Waker>>();
        let mut group = LoopGroup {
            threads: Vec::new(),
            wakers: Vec::new(),
        };
        let mut first_err = None;
        for index in 0..n.max(1) {
            let setup = setup.clone();
            let tx = tx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("asyncore-loop-{index}"))
                .spawn(move || {
                    let mut map = SocketMap::new();
                    let ready = map.waker().and_then(|w| setup(index, &mut map).map(|()| w));
                    let ok = ready.is_ok();
                    let _ = tx.send(ready);
                    if ok {
                        lp.run(&mut map)
                    } else {
                        Ok(())
                    }
                });
            match spawned {
                Ok(handle) => group.threads.push(handle),
                Err(e) => {
                    first_err = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        for _ in 0..group.threads.len() {
            match rx.recv() {
                Ok(Ok(waker)) => group.wakers.push(waker),
                Ok(Err(e)) => {
                    first_err.get_or_insert(e);
                }
                Err(_) => {
                    first_err
                        .get_or_insert_with(|| io::Error::other("a loop thread died during setup"));
                }
            }
        }
        match first_err {
            None => Ok(group),
            Some(e) => {
                group.shutdown(Duration::ZERO);
                let _ = group.join();
                Err(e)
            }
        }
    }

    /// One [`Waker`] per loop, to post work into it.
    pub fn wakers(&self) -> &[Waker] {
        &self.wakers
    }

    /// Asks every loop to shut down gracefully (see [`SocketMap::shutdown`]).
    pub fn shutdown(&self, grace: Duration) {
        for waker in &self.wakers {
            waker.shutdown(grace);
        }
    }

    /// Waits for every loop to return.
    ///
    /// # Errors
    /// The first loop error; a loop thread that panicked is reported as an I/O error.
    pub fn join(self) -> Result<(), LoopError> {
        let mut result = Ok(());
        for t in self.threads {
            let r = t
                .join()
                .unwrap_or_else(|_| Err(LoopError::Io(io::Error::other("a loop thread panicked"))));
            if result.is_ok() {
                result = r;
            }
        }
        result
    }
}
