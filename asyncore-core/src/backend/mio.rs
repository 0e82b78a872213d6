//! The default backend: mio (epoll, kqueue) with readiness remembered per channel.
//!
//! mio reports each readiness change once (edge-triggered). The channel keeps what it was
//! told until an operation returns `WouldBlock`, so a handler that did not drain its socket
//! is still ready on the next pass. A pass visits only the channels in the map's active
//! list: new ones, ones the OS reported, ones touched through the map, and ones that ran a
//! handler on the previous pass. Idle channels cost nothing.

use crate::channel::ready;
use crate::error::LoopError;
use crate::event_loop::{readwrite, wait_time};
use crate::socket_map::{ChannelId, SocketMap};
use crate::waker::WAKER_TOKEN;
use std::io;
use std::time::Duration;

fn has_pending_work(map: &SocketMap) -> bool {
    map.active.iter().any(|&id| {
        map.entry(id).is_some_and(|e| {
            let c = &e.chan;
            c.ready != 0 || c.pending_error.is_some() || c.close_requested || c.closed()
        })
    })
}

fn event_bits(ev: &mio::event::Event) -> u8 {
    let mut bits = 0;
    if ev.is_readable() || ev.is_read_closed() {
        bits |= ready::READ;
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

/// One pass: wait (not at all when some channel has work already), record readiness, then
/// dispatch the active channels.
pub(crate) fn pass(map: &mut SocketMap, timeout: Duration) -> Result<(), LoopError> {
    let wait = if has_pending_work(map) {
        Duration::ZERO
    } else {
        wait_time(map, timeout)
    };
    // The poller is taken out of the map while its events are recorded, so that they can
    // be read in place while the map's channels are updated (no copy of the events).
    if let Some(mut poller) = map.poller.take() {
        let waited = match poller.poll.poll(&mut poller.events, Some(wait)) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                poller.events.clear();
                Ok(())
            }
            Err(e) => Err(LoopError::Io(e)),
        };
        // `after_io` drains the waker; its token names no channel.
        for ev in poller.events.iter().filter(|ev| ev.token() != WAKER_TOKEN) {
            let id = ChannelId::from_token(ev.token());
            // A stale token (its channel closed) finds no entry and is dropped here.
            if let Some(entry) = map.entry_mut(id) {
                entry.chan.set_ready(event_bits(ev));
                map.mark_active(id);
            }
        }
        map.poller = Some(poller);
        waited?;
    } else {
        std::thread::sleep(wait);
    }

    let list = std::mem::take(&mut map.active);
    for &id in &list {
        if let Some(entry) = map.entry_mut(id) {
            entry.active = false;
        }
    }
    let reading = map.shutdown.is_none();
    for (i, &id) in list.iter().enumerate() {
        let Some(entry) = map.entry_mut(id) else {
            continue;
        };
        if entry.chan.closed() {
            if entry.handler.is_some() {
                map.remove(id);
            }
            continue;
        }
        let chan = &entry.chan;
        let pending = chan.pending_error.is_some() || chan.close_requested;
        if chan.ready == 0 && !pending {
            continue;
        }
        let Some(handler) = entry.handler.as_deref() else {
            continue;
        };
        // A shutting-down map reads nothing more; output still drains.
        let r = reading && handler.readable(chan);
        let w = handler.writable(chan);
        let mut events = 0;
        if r {
            events |= chan.ready & (ready::READ | ready::PRI);
        }
        if w && !chan.accepting() {
            events |= chan.ready & ready::WRITE;
        }
        if r || w {
            events |= chan.ready & ready::CLOSE;
        }
        // Priority data is reported once per arrival.
        entry.chan.clear_ready(ready::PRI);
        map.stats.predicate_calls += 2;
        if events == 0 && !pending {
            continue;
        }
        if let Err(exit) = readwrite(map, id, events) {
            // Keep the rest of this pass's work for the next run of the loop.
            for &rest in &list[i..] {
                map.mark_active(rest);
            }
            return Err(LoopError::ExitNow(exit));
        }
        map.mark_active(id);
    }
    Ok(())
}
