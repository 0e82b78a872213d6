//! Graceful shutdown on the platform's stop signals: SIGINT and SIGTERM on Unix, the
//! console control events (Ctrl-C, Ctrl-Break, the console closing) on Windows.

#[cfg(unix)]
pub use unix::shutdown_on_signals;
#[cfg(windows)]
pub use windows::shutdown_on_signals;

#[cfg(unix)]
mod unix {
    use crate::cli::SHUTDOWN_GRACE;
    use asyncore_core::{Channel, Context, Dispatcher, HandlerResult, SocketMap};
    use std::io;

    /// The self-pipe pattern, with no thread: the handler of `signal-hook` (the
    /// ecosystem's signal crate) writes a byte to one end of a socket pair, and the other
    /// end is a channel of `map`, whose read event starts the shutdown.
    pub fn shutdown_on_signals(map: &mut SocketMap) -> io::Result<()> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let (ours, theirs) = std::os::unix::net::UnixStream::pair()?;
        for signal in [SIGINT, SIGTERM] {
            signal_hook::low_level::pipe::register(signal, theirs.try_clone()?)?;
        }
        let sock = asyncore_core::Socket::from(ours);
        map.insert(Channel::from_socket(sock)?, SignalWatch)?;
        Ok(())
    }

    /// The map's end of the signal socket pair: a byte on it means SIGINT or SIGTERM came.
    #[derive(Debug)]
    struct SignalWatch;

    impl Dispatcher for SignalWatch {
        fn writable(&self, _chan: &Channel) -> bool {
            false
        }

        fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
            let mut bytes = [0u8; 64];
            match ctx.recv(&mut bytes) {
                Ok(0) => return Ok(()), // the loop closes the channel
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e.into()),
            }
            log::info!("SIGINT or SIGTERM: shutting down");
            ctx.map().shutdown(SHUTDOWN_GRACE);
            Ok(())
        }

        /// The shutdown gives every channel its close, this one too: nothing to tell anyone.
        fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
            ctx.close()?;
            Ok(())
        }
    }
}

#[cfg(windows)]
mod windows {
    use crate::cli::SHUTDOWN_GRACE;
    use asyncore_core::{SocketMap, Waker};
    use std::io;
    use std::sync::Mutex;
    use windows_sys::Win32::Foundation::{FALSE, TRUE};
    use windows_sys::Win32::System::Console::{
        SetConsoleCtrlHandler, CTRL_BREAK_EVENT, CTRL_CLOSE_EVENT, CTRL_C_EVENT,
    };

    /// The wakers of the loops to shut down, one per map that asked.
    static WAKERS: Mutex<Vec<Waker>> = Mutex::new(Vec::new());

    /// Windows calls a console control handler on a thread of its own: it posts the
    /// shutdown into each loop through the loop's [`Waker`].
    pub(super) unsafe extern "system" fn on_control(event: u32) -> i32 {
        if !matches!(event, CTRL_C_EVENT | CTRL_BREAK_EVENT | CTRL_CLOSE_EVENT) {
            return FALSE;
        }
        let wakers = WAKERS.lock().unwrap_or_else(|p| p.into_inner());
        for waker in wakers.iter() {
            waker.post(|map| {
                log::info!("console control event: shutting down");
                map.shutdown(SHUTDOWN_GRACE);
            });
        }
        TRUE
    }

    /// Registers `map`'s waker and, once per process, the console control handler.
    pub fn shutdown_on_signals(map: &mut SocketMap) -> io::Result<()> {
        let waker = map.waker()?;
        let mut wakers = WAKERS.lock().unwrap_or_else(|p| p.into_inner());
        if wakers.is_empty() {
            // SAFETY: `on_control` is a valid handler for the life of the process.
            if unsafe { SetConsoleCtrlHandler(Some(on_control), TRUE) } == 0 {
                return Err(io::Error::last_os_error());
            }
        }
        wakers.push(waker);
        Ok(())
    }
}

/// The console control handler, called as Windows would call it (Wine delivers no
/// console event to a program run without a console, so the OS's side is not tested).
#[cfg(all(test, windows))]
mod tests {
    use super::windows::on_control;
    use asyncore_core::{Channel, DefaultDispatcher, Domain, Loop, SocketMap, Type};
    use std::time::{Duration, Instant};
    use windows_sys::Win32::System::Console::{CTRL_C_EVENT, CTRL_LOGOFF_EVENT};

    #[test]
    fn ctrl_c_shuts_the_loop_down_and_other_events_are_passed_on() {
        let mut map = SocketMap::new();
        let mut listener = Channel::create_socket(Domain::IPV4, Type::STREAM).unwrap();
        listener
            .bind("127.0.0.1:0".parse::<std::net::SocketAddr>().unwrap())
            .unwrap();
        listener.listen(1).unwrap();
        map.insert(listener, DefaultDispatcher).unwrap();
        super::shutdown_on_signals(&mut map).unwrap();
        // SAFETY: called as the system calls it, with an event number.
        assert_eq!(unsafe { on_control(CTRL_LOGOFF_EVENT) }, 0, "not ours");
        let start = Instant::now();
        // SAFETY: as above.
        let handled = std::thread::spawn(|| unsafe { on_control(CTRL_C_EVENT) });
        // Returns once the posted shutdown has closed the listener, not after 30 s.
        Loop::new()
            .timeout(Duration::from_secs(30))
            .run(&mut map)
            .unwrap();
        assert_eq!(handled.join().unwrap(), 1);
        assert!(map.is_empty());
        assert!(start.elapsed() < Duration::from_secs(20));
    }
}
