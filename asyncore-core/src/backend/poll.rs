//! The reference backend: `poll(2)` over every channel on every pass, as Python's
//! `asyncore.poll2` does. Level-triggered; it asks every channel's predicates every pass.

use crate::backend::millis;
use crate::error::LoopError;
use crate::event_loop::{readwrite, wait_time};
use crate::poll_flags::ready_bits;
use crate::socket_map::{ChannelId, SocketMap};
use crate::sys;
use std::time::Duration;

/// One pass: deliver what socket operations left pending (a failed connect, a close), ask
/// every channel what it waits for, `poll(2)`, dispatch.
pub(crate) fn pass(map: &mut SocketMap, timeout: Duration) -> Result<(), LoopError> {
    let mut did_work = false;
    let list = std::mem::take(&mut map.active);
    for (i, &id) in list.iter().enumerate() {
        let Some(entry) = map.entry_mut(id) else {
            continue;
        };
        entry.active = false;
        if entry.chan.closed() {
            if entry.handler.is_some() {
                map.remove(id);
            }
            continue;
        }
        if entry.chan.pending_error.is_some() || entry.chan.close_requested {
            did_work = true;
            if let Err(exit) = readwrite(map, id, 0) {
                for &rest in &list[i + 1..] {
                    map.mark_active(rest);
                }
                return Err(LoopError::ExitNow(exit));
            }
        }
    }

    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(map.len());
    let mut ids: Vec<ChannelId> = Vec::with_capacity(map.len());
    let mut calls = 0;
    let reading = map.shutdown.is_none();
    for (id, entry) in map.live() {
        let (Some(handler), Some(fd)) = (entry.handler.as_deref(), entry.chan.fileno()) else {
            continue;
        };
        let chan = &entry.chan;
        let mut flags = 0;
        // A shutting-down map reads nothing more; output still drains.
        if reading && handler.readable(chan) {
            flags |= libc::POLLIN | libc::POLLPRI;
        }
        if handler.writable(chan) && !chan.accepting() {
            flags |= libc::POLLOUT;
        }
        calls += 2;
        if flags != 0 {
            fds.push(libc::pollfd {
                fd,
                events: flags | libc::POLLERR | libc::POLLHUP | libc::POLLNVAL,
                revents: 0,
            });
            ids.push(id);
        }
    }
    map.stats.predicate_calls += calls;

    // The waker's pipe ends the wait when another thread posts work.
    if let Some(shared) = &map.wake {
        fds.push(libc::pollfd {
            fd: std::os::fd::AsRawFd::as_raw_fd(&shared.read),
            events: libc::POLLIN,
            revents: 0,
        });
    }
    let wait = if did_work {
        0
    } else {
        millis(wait_time(map, timeout))
    };
    sys::poll(&mut fds, wait).map_err(LoopError::Io)?;
    for (pfd, &id) in fds.iter().zip(&ids) {
        if pfd.revents == 0 {
            continue;
        }
        let bits = ready_bits(pfd.revents);
        // `readwrite` skips ids whose channel closed earlier in this pass.
        readwrite(map, id, bits).map_err(LoopError::ExitNow)?;
    }
    Ok(())
}
