//! The default backend: mio (epoll, kqueue) with readiness remembered per channel.
//!
//! mio reports each readiness change once (edge-triggered). The loop keeps what it was
//! told in the channel's state until an operation shows it used up (`WouldBlock`, or a
//! short read on epoll), so a handler that did not drain its socket is still ready on the
//! next pass. A pass visits only the channels on the map's active list: new ones, ones
//! the OS reported, ones touched through the map, and ones that ran a handler on the
//! previous pass. Idle channels cost nothing.

use super::{Wait, WAKER_TOKEN};
use crate::dispatch::{serve, wait_time};
use crate::error::LoopError;
use crate::socket_map::SocketMap;
use crate::state::ready;
use crate::sys::RawSock;
use std::io;
use std::time::Duration;

/// mio's poller and its event buffer, made with the map's first channel.
pub(crate) struct MioWait {
    pub(crate) poll: ::mio::Poll,
    events: ::mio::Events,
}

impl MioWait {
    pub(crate) fn new() -> io::Result<MioWait> {
        Ok(MioWait {
            poll: ::mio::Poll::new()?,
            events: ::mio::Events::with_capacity(1024),
        })
    }
}

fn event_bits(ev: &::mio::event::Event) -> u8 {
    let mut bits = 0;
    if ev.is_readable() {
        bits |= ready::READ;
    }
    if ev.is_read_closed() {
        bits |= ready::RDHUP;
    }
    if ev.is_writable() || ev.is_write_closed() {
        bits |= ready::WRITE;
    }
    if ev.is_priority() {
        bits |= ready::PRI;
    }
    if ev.is_read_closed() && ev.is_write_closed() {
        bits |= ready::HUP;
    }
    if ev.is_error() {
        bits |= ready::ERR;
    }
    bits
}

impl Wait for MioWait {
    fn want(&mut self, _fd: RawSock, _token: ::mio::Token, _interest: u8) {}

    fn wait(&mut self, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                self.events.clear();
                Ok(())
            }
            other => other,
        }
    }

    fn events(&self, f: &mut dyn FnMut(::mio::Token, u8)) {
        for ev in self.events.iter() {
            f(ev.token(), event_bits(ev));
        }
    }
}

/// One pass: wait (not at all when some channel has work already), record readiness, then
/// serve the active channels.
pub(crate) fn pass(map: &mut SocketMap, timeout: Duration) -> Result<(), LoopError> {
    let wait = if map.has_pending_work() {
        Duration::ZERO
    } else {
        wait_time(map, timeout)
    };
    // The poller is taken out of the map while its events are recorded, so that they can
    // be read in place while the map's entries are updated.
    if let Some(mut poller) = map.poller.take() {
        let waited = poller.wait(wait);
        if waited.is_ok() {
            poller.events(&mut |token, bits| {
                // The waker's socket names no channel; `after_io` drains it.
                if token != WAKER_TOKEN {
                    map.record(token, bits);
                }
            });
        }
        map.poller = Some(poller);
        waited.map_err(LoopError::Io)?;
    } else {
        // No poller yet: no channel ever joined. Nothing can become ready but timers.
        std::thread::sleep(wait);
    }

    let list = map.take_active();
    let reading = !map.shutting_down();
    for i in 0..list.len() {
        let id = list[i];
        match serve(map, id, reading, None) {
            Ok(true) => map.mark_active(id),
            Ok(false) => {}
            Err(exit) => {
                // Keep the rest of this pass's work for the next run of the loop.
                for &rest in &list[i + 1..] {
                    map.mark_active(rest);
                }
                map.mark_active(id);
                map.give_back_active(list);
                return Err(LoopError::ExitNow(exit));
            }
        }
    }
    map.give_back_active(list);
    Ok(())
}
