//! The two ways a pass waits for the OS, behind one trait, and the registration of
//! descriptors.
//!
//! - [`mio`]: edge-triggered readiness kept per channel; a pass visits only channels with
//!   work (the default).
//! - [`poll`]: `poll(2)` over every channel, every pass, exactly like Python's
//!   `asyncore.poll2`; the reference the conformance tests compare against.
//!
//! Every channel of a map is registered with the map's mio poller whichever backend runs
//! it (a map may be run by one backend and then the other); the `poll(2)` backend builds
//! its descriptor set from the channels each pass and ignores the registrations. Both
//! backends hand the same [`serve`](crate::dispatch::serve) the readiness they saw, so a
//! scenario makes the same handler calls on either.

pub(crate) mod mio;
pub(crate) mod poll;

use crate::slab::Key;
use crate::socket_map::ChannelId;
use crate::sys::{self, RawSock};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// What a backend does each pass: build its interest (where it needs to), wait, and
/// report readiness as [`ready`](crate::state::ready) bits per token.
pub(crate) trait Wait {
    /// Adds `fd` with the readiness bits in `interest` to this pass's wait set. A backend
    /// that keeps registrations (mio) ignores it.
    fn want(&mut self, fd: RawSock, token: ::mio::Token, interest: u8);

    /// Waits up to `timeout` for readiness, or for the waker.
    ///
    /// # Errors
    /// The OS wait failed (`EINTR` is not an error: it is an empty wait).
    fn wait(&mut self, timeout: Duration) -> io::Result<()>;

    /// Calls `f` with each token that the wait reported and its readiness bits.
    fn events(&self, f: &mut dyn FnMut(::mio::Token, u8));
}

/// The token of the waker's socket; channel tokens never reach it.
pub(crate) const WAKER_TOKEN: ::mio::Token = ::mio::Token(usize::MAX);

/// The mio token of a channel. On 64-bit targets it holds the slot and its generation;
/// on 32-bit ones the slot only. Both are exact: a pass applies the events of its wait
/// before any handler runs, and a channel leaves the poller before its descriptor is
/// closed and its slot reused, so a token always names the channel that was registered
/// under it when the OS reported the event; the generation is a second check.
pub(crate) fn token(key: Key) -> ::mio::Token {
    #[cfg(target_pointer_width = "64")]
    {
        ::mio::Token(((key.generation as usize) << 32) | key.index as usize)
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        ::mio::Token(key.index as usize)
    }
}

/// The slot of a token, and its generation where the token carries one.
pub(crate) fn slot_of(token: ::mio::Token) -> (u32, Option<u32>) {
    #[cfg(target_pointer_width = "64")]
    {
        ((token.0 & 0xffff_ffff) as u32, Some((token.0 >> 32) as u32))
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        (token.0 as u32, None)
    }
}

/// The interest every channel is registered with: both directions, edge-triggered, and
/// priority data where the OS reports it.
fn interest() -> ::mio::Interest {
    let interest = ::mio::Interest::READABLE | ::mio::Interest::WRITABLE;
    #[cfg(any(target_os = "linux", target_os = "android"))]
    let interest = interest | ::mio::Interest::PRIORITY;
    interest
}

/// A channel's place in the map's mio poller: kept by the channel, so that replacing its
/// socket (`set_socket`) or closing it updates the poller before the old descriptor goes.
pub(crate) struct Registration {
    registry: Arc<::mio::Registry>,
    token: ::mio::Token,
    source: sys::Source,
}

impl Registration {
    /// Registers `fd` under the token of channel `id`.
    ///
    /// # Errors
    /// The OS refuses the descriptor (`EPERM` for a regular file, `EBADF`...).
    pub(crate) fn new(
        registry: Arc<::mio::Registry>,
        id: ChannelId,
        fd: RawSock,
    ) -> io::Result<Registration> {
        let token = token(id.key());
        let mut source = sys::Source::of(fd);
        source.with(|s| registry.register(s, token, interest()))?;
        Ok(Registration {
            registry,
            token,
            source,
        })
    }

    /// Registers `fd`, a channel's new descriptor, under the same token, then removes the
    /// old one. On error the old registration stays.
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub(crate) fn replace(&mut self, fd: RawSock) -> io::Result<()> {
        let mut source = sys::Source::of(fd);
        let (registry, token) = (&self.registry, self.token);
        source.with(|s| registry.register(s, token, interest()))?;
        let mut old = std::mem::replace(&mut self.source, source);
        let _ = old.with(|s| self.registry.deregister(s));
        Ok(())
    }

    /// Arms the registration again after an operation saw `WouldBlock`, where the OS
    /// needs that to report the next readiness (Windows; see `sys::REARM`).
    pub(crate) fn rearm(&mut self) {
        if sys::REARM {
            let (registry, token) = (&self.registry, self.token);
            if let Err(e) = self
                .source
                .with(|s| registry.reregister(s, token, interest()))
            {
                log::warn!(target: "asyncore", "cannot re-arm a registration: {e}");
            }
        }
    }

    /// Removes the descriptor from the poller. One the poller no longer has is not an error.
    pub(crate) fn remove(mut self) {
        let registry = &self.registry;
        let _ = self.source.with(|s| registry.deregister(s));
    }
}

/// `timeout` in whole milliseconds for `poll(2)`, rounded up so that a short wait is not
/// turned into a busy poll.
pub(crate) fn millis(timeout: Duration) -> i32 {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_slot_and_never_the_waker() {
        for (index, generation) in [(0, 1), (7, 3), (u32::MAX - 1, u32::MAX)] {
            let t = token(Key { index, generation });
            assert_ne!(t, WAKER_TOKEN);
            let (i, g) = slot_of(t);
            assert_eq!(i, index);
            if let Some(g) = g {
                assert_eq!(g, generation);
            }
        }
    }
}
