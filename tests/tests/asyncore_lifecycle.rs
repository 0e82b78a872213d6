//! Channel life cycle (issue 2, DESIGN.md "Event semantics"): channels added and closed
//! during a pass, stale ids, `handle_close` at most once, and a hang-up with unread data
//! delivering the data before the close.

mod util;

use asyncore_core::{
    Channel, ChannelId, Context, DefaultDispatcher, Dispatcher, HandlerResult, LookupError, Socket,
    SocketMap, Type,
};
use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;
use util::collect::{AcceptOne, Collected, Collector};
use util::{per_backend, per_family, socketpair, Backend, Counter, Family, TestDir};

/// Counts its events; reads 64 bytes per read event.
#[derive(Default)]
struct Counting {
    reads: Counter,
    closes: Counter,
}

impl Dispatcher for Counting {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.reads.bump();
        let _ = ctx.recv(&mut [0; 64])?;
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        self.closes.bump();
        ctx.close()?;
        Ok(())
    }
}

/// On its first read, runs `action` with the map.
struct Actor<F> {
    action: Option<F>,
}

impl<F: FnOnce(&mut Context<'_>) + 'static> Dispatcher for Actor<F> {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let _ = ctx.recv(&mut [0; 64])?;
        if let Some(action) = self.action.take() {
            action(ctx);
        }
        Ok(())
    }
}

/// A socketpair whose far end has already written `data`; the near end as a channel.
fn channel_with_input(data: &[u8]) -> (Channel, Socket) {
    let (a, b) = socketpair();
    (&b).write_all(data).unwrap();
    (Channel::from_socket(a).unwrap(), b)
}

/// A channel inserted by a handler is polled from the next pass on, not in the pass that
/// inserted it, even when its input is already waiting.
fn added_during_pass(backend: Backend) {
    let mut map = SocketMap::new();
    let added = Rc::new(RefCell::new(None::<(ChannelId, Counter, Socket)>));
    let slot = added.clone();
    let (actor, _actor_peer) = channel_with_input(b"go");
    map.insert(
        actor,
        Actor {
            action: Some(move |ctx: &mut Context<'_>| {
                let (chan, peer) = channel_with_input(b"waiting");
                let counting = Counting::default();
                let reads = counting.reads.clone();
                let id = ctx.insert(chan, counting).unwrap();
                *slot.borrow_mut() = Some((id.id(), reads, peer));
            }),
        },
    )
    .unwrap();
    util::run_until(&mut map, backend, "the insert", |_| {
        added.borrow().is_some()
    });
    let reads = added.borrow().as_ref().unwrap().1.clone();
    assert_eq!(reads.get(), 0, "not polled in the pass that added it");
    util::run_until(&mut map, backend, "the added channel's read", |_| {
        reads.get() == 1
    });
}
per_backend!(added_during_pass);

/// A handler closes another channel whose input is ready in the same pass and adds a new
/// one in its slot (often on its descriptor number): the closed channel gets no further
/// callback, and the new one never receives the old one's events.
fn closed_during_pass(backend: Backend) {
    let mut map = SocketMap::new();
    let victim_id = Rc::new(RefCell::new(None::<ChannelId>));
    let newcomer = Rc::new(RefCell::new(None::<(ChannelId, Counter, Socket)>));
    let (v, n) = (victim_id.clone(), newcomer.clone());
    let (actor, _actor_peer) = channel_with_input(b"go");
    map.insert(
        actor,
        Actor {
            action: Some(move |ctx: &mut Context<'_>| {
                let victim = v.borrow().unwrap();
                ctx.map().close(victim).unwrap();
                let (a, b) = socketpair();
                let counting = Counting::default();
                let reads = counting.reads.clone();
                let id = ctx
                    .insert(Channel::from_socket(a).unwrap(), counting)
                    .unwrap();
                *n.borrow_mut() = Some((id.id(), reads, b));
            }),
        },
    )
    .unwrap();
    // Inserted after the actor, so served after it in a pass.
    let (victim, _victim_peer) = channel_with_input(b"ready");
    let victim_handler = Counting::default();
    let (victim_reads, victim_closes) =
        (victim_handler.reads.clone(), victim_handler.closes.clone());
    let vid = map.insert(victim, victim_handler).unwrap();
    *victim_id.borrow_mut() = Some(vid.id());

    util::run_until(&mut map, backend, "the actor", |_| {
        newcomer.borrow().is_some()
    });
    let (new_id, new_reads) = {
        let n = newcomer.borrow();
        let (id, reads, _) = n.as_ref().unwrap();
        (*id, reads.clone())
    };
    backend.run(&mut map, 5);
    assert_eq!(
        victim_reads.get() + victim_closes.get(),
        0,
        "no callback after close"
    );
    assert_ne!(new_id, vid);
    assert!(map.contains(new_id) && !map.contains(vid));
    assert!(map.channel(vid).is_none(), "the stale id reaches nothing");
    assert_eq!(
        new_reads.get(),
        0,
        "the new channel got none of the old one's events"
    );
}
per_backend!(closed_during_pass);

/// An id kept after its channel closed never reaches the channel that reuses its slot.
#[test]
fn stale_id() {
    let mut map = SocketMap::new();
    let (a, _pa) = socketpair();
    let old = map
        .insert(Channel::from_socket(a).unwrap(), DefaultDispatcher)
        .unwrap();
    map.close(old).unwrap();
    let (b, _pb) = socketpair();
    let new = map
        .insert(Channel::from_socket(b).unwrap(), Counting::default())
        .unwrap();
    assert_ne!(old.id(), new.id());
    assert!(!map.contains(old));
    assert!(map.channel(old).is_none());
    assert!(map.channel_mut(old).is_none());
    assert_eq!(
        map.handler_mut(old).err(),
        Some(LookupError::Gone(old.id()))
    );
    assert_eq!(
        map.handle::<Counting>(old.id()),
        Err(LookupError::Gone(old.id()))
    );
    assert_eq!(
        map.push(old, "spam").unwrap_err().kind(),
        std::io::ErrorKind::NotFound
    );
    map.close(old).unwrap();
    assert!(
        map.contains(new),
        "closing a stale id leaves the new channel alone"
    );
    assert_eq!(map.len(), 1);
}

/// Its `handle_close` counts and does not close; its reads fail once the close ran, when
/// `fail_late` is set (the error goes to the default `handle_error`, which logs it and
/// calls `handle_close`).
struct LazyCloser {
    closes: Counter,
    fail_late: bool,
}

impl Dispatcher for LazyCloser {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if self.fail_late && self.closes.get() > 0 {
            return Err("a late error".into());
        }
        let _ = ctx.recv(&mut [0; 64])?;
        Ok(())
    }

    fn handle_close(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        self.closes.bump();
        Ok(())
    }
}

/// `handle_close` runs at most once per channel: not again when the peer is seen gone a
/// second time, nor when a later error goes through `handle_error`; the channel still
/// closes.
fn handle_close_once(backend: Backend) {
    for fail_late in [false, true] {
        let mut map = SocketMap::new();
        let (a, b) = socketpair();
        (&b).write_all(b"last words").unwrap();
        // A half close: the channel sees the end of input but no hang-up, so it stays
        // open after a handle_close that does not close it.
        b.shutdown(std::net::Shutdown::Write).unwrap();
        let closes = Counter::default();
        let handler = LazyCloser {
            closes: closes.clone(),
            fail_late,
        };
        let id = map
            .insert(Channel::from_socket(a).unwrap(), handler)
            .unwrap();
        util::run_until(&mut map, backend, "the channel to close", |_| {
            closes.get() > 0
        });
        backend.run(&mut map, 10);
        assert_eq!(closes.get(), 1, "fail_late = {fail_late}");
        assert!(
            !map.contains(id),
            "the channel closed (fail_late = {fail_late})"
        );
        drop(b);
    }
}
per_backend!(handle_close_once);

/// The peer writes, then closes before the reader ran: the reader, taking 7 bytes per
/// read event, still gets every byte, in order, and only then the close.
fn hangup_with_unread_data(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let data: Vec<u8> = (0..20_000usize).map(|i| (i % 253) as u8).collect();
    let mut map = SocketMap::new();
    let seen = Collected::default();
    let (server, address) = util::listening(family, &dir);
    map.insert(server, AcceptOne(Some(Collector::new(7, &seen))))
        .unwrap();

    let peer = Socket::new(family.domain(), Type::STREAM, None).unwrap();
    peer.connect(&address).unwrap();
    (&peer).write_all(&data).unwrap();
    drop(peer);

    util::run_until(&mut map, backend, "the close", |_| {
        seen.closed_at.borrow().is_some()
    });
    assert_eq!(
        *seen.closed_at.borrow(),
        Some(data.len()),
        "the close came after all data"
    );
    assert!(*seen.data.borrow() == data, "every byte, in order");
}
per_family!(hangup_with_unread_data);
