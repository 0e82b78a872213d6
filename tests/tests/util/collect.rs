//! A reader that keeps what it receives, a few bytes per read event, and a server that
//! hands its one connection to such a reader.

use asyncore_core::{Channel, Context, Dispatcher, HandlerResult, SockAddr, Socket};
use std::cell::RefCell;
use std::rc::Rc;

/// What a [`Collector`] saw: the bytes, and how many had arrived when `handle_close` ran.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    /// Every byte received, in order.
    pub data: Rc<RefCell<Vec<u8>>>,
    /// `Some(bytes received so far)` once `handle_close` ran.
    pub closed_at: Rc<RefCell<Option<usize>>>,
}

/// Reads at most `chunk` bytes per read event (a slow reader); closes on `handle_close`.
#[derive(Debug)]
pub struct Collector {
    chunk: usize,
    out: Collected,
}

impl Collector {
    /// A reader taking `chunk` bytes per read event, reporting into `out`.
    pub fn new(chunk: usize, out: &Collected) -> Collector {
        Collector {
            chunk,
            out: out.clone(),
        }
    }
}

impl Dispatcher for Collector {
    fn writable(&self, _chan: &Channel) -> bool {
        false
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = vec![0; self.chunk];
        let n = ctx.recv(&mut buf)?;
        self.out.data.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        *self.out.closed_at.borrow_mut() = Some(self.out.data.borrow().len());
        ctx.close()?;
        Ok(())
    }
}

/// A listener that accepts one connection, gives it to its [`Collector`], and closes.
#[derive(Debug)]
pub struct AcceptOne(pub Option<Collector>);

impl Dispatcher for AcceptOne {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _addr: SockAddr,
    ) -> HandlerResult {
        if let Some(reader) = self.0.take() {
            ctx.insert(Channel::from_socket(sock)?, reader)?;
        }
        ctx.close()?;
        Ok(())
    }
}
