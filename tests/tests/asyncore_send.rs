//! Port of `test_asyncore.DispatcherWithSendTests.test_send`: output queued on a
//! `dispatcher_with_send` reaches a slow reader whole and in order, on every family and
//! backend (`send::<family>_<backend>`).

mod util;

use asyncore_core::{
    Channel, Context, Dispatcher, DispatcherWithSend, HandlerResult, SocketMap, Type,
};
use std::rc::Rc;
use util::collect::{AcceptOne, Collected, Collector};
use util::{per_family, Backend, Family, TestDir};

/// Two copies of this, then a newline, as in Python (but megabytes, not 36 bytes).
fn payload() -> Vec<u8> {
    (0..3 * 1024 * 1024 + 7)
        .map(|i: usize| (i % 251) as u8)
        .filter(|&b| b != b'\n')
        .collect()
}

/// Python's `dispatcherwithsend_noread`: reads nothing; on connect it sends the payload
/// twice and a newline through the buffered layer.
struct NoRead {
    data: Rc<Vec<u8>>,
}

impl Dispatcher for NoRead {
    fn readable(&self, _chan: &asyncore_core::Channel) -> bool {
        false
    }

    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        // Inside a DispatcherWithSend, `send` queues all of it and reports it all sent.
        assert_eq!(ctx.send(&self.data)?, self.data.len());
        assert_eq!(ctx.send(&self.data)?, self.data.len());
        assert_eq!(ctx.send(b"\n")?, 1);
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.close()?;
        Ok(())
    }
}

/// Python: DispatcherWithSendTests.test_send.
fn send(family: Family, backend: Backend) {
    let dir = TestDir::new();
    let mut map = SocketMap::new();
    // Python's `capture_server`: it reads 10 bytes at a time; we read 1000 per event.
    let seen = Collected::default();
    let (server, address) = util::listening(family, &dir);
    map.insert(server, AcceptOne(Some(Collector::new(1000, &seen))))
        .unwrap();

    let data = Rc::new(payload());
    let mut client = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    client.connect(address).unwrap();
    let sender = map
        .insert(
            client,
            DispatcherWithSend::new(NoRead { data: data.clone() }),
        )
        .unwrap();

    util::run_until(&mut map, backend, "the newline", |_| {
        seen.data.borrow().ends_with(b"\n")
    });
    let got = seen.data.borrow();
    let mut want = Vec::with_capacity(2 * data.len() + 1);
    want.extend_from_slice(&data);
    want.extend_from_slice(&data);
    want.push(b'\n');
    assert_eq!(got.len(), want.len());
    assert!(*got == want, "the data arrived reordered or changed");
    assert!(map.channel(sender).unwrap().out_queue().is_empty());
}
per_family!(send);
