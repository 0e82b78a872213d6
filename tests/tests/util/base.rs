//! Python's `BaseTestHandler`, `BaseServer` and `BaseClient` of `test_asyncore.py`.
//!
//! A `BaseTestHandler` treats every event a test did not ask for as a failure: the
//! handler returns an error, and its `handle_error` turns any error into [`ExitNow`], which
//! ends the loop and fails the test in [`run_until`](super::run_until) (Python re-raises
//! from `handle_error`). A test overrides the events it expects with hooks.

use super::{Backend, Family, TestDir};
use asyncore_core::{
    BoxError, Channel, ChannelId, Context, DefaultDispatcher, Dispatcher, ExitNow, HandlerResult,
    SockAddr, Socket, SocketMap, Type,
};

/// A hook for one event.
pub type Hook = Box<dyn FnMut(&mut Context<'_>) -> HandlerResult>;
/// A hook for `handle_accepted`.
pub type AcceptedHook = Box<dyn FnMut(&mut Context<'_>, Socket, SockAddr) -> HandlerResult>;
/// A hook for `handle_error`.
pub type ErrorHook = Box<dyn FnMut(&mut Context<'_>, BoxError) -> HandlerResult>;

/// The error for an event no hook expects.
pub fn unexpected(event: &str) -> BoxError {
    format!("{event} not supposed to be called").into()
}

/// Python: `test_asyncore.BaseTestHandler`. Read and write events get asyncore's defaults
/// (a logged "unhandled ... event"); accept, accepted, connect, expt and close are errors
/// unless hooked; any error ends the loop with [`ExitNow`].
#[derive(Default)]
pub struct BaseTestHandler {
    read: Option<Hook>,
    write: Option<Hook>,
    connect: Option<Hook>,
    accept: Option<Hook>,
    accepted: Option<AcceptedHook>,
    expt: Option<Hook>,
    close: Option<Hook>,
    error: Option<ErrorHook>,
    writable: Option<bool>,
}

impl std::fmt::Debug for BaseTestHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BaseTestHandler")
    }
}

impl BaseTestHandler {
    /// A handler with no hooks.
    pub fn new() -> BaseTestHandler {
        BaseTestHandler::default()
    }

    /// Python's `BaseClient`: a handler whose `handle_connect` does nothing.
    pub fn client() -> BaseTestHandler {
        BaseTestHandler::new().on_connect(|_| Ok(()))
    }

    /// Hooks `handle_read`.
    pub fn on_read(mut self, f: impl FnMut(&mut Context<'_>) -> HandlerResult + 'static) -> Self {
        self.read = Some(Box::new(f));
        self
    }

    /// Hooks `handle_write`.
    pub fn on_write(mut self, f: impl FnMut(&mut Context<'_>) -> HandlerResult + 'static) -> Self {
        self.write = Some(Box::new(f));
        self
    }

    /// Hooks `handle_connect`.
    pub fn on_connect(
        mut self,
        f: impl FnMut(&mut Context<'_>) -> HandlerResult + 'static,
    ) -> Self {
        self.connect = Some(Box::new(f));
        self
    }

    /// Hooks `handle_accept`.
    pub fn on_accept(mut self, f: impl FnMut(&mut Context<'_>) -> HandlerResult + 'static) -> Self {
        self.accept = Some(Box::new(f));
        self
    }

    /// Hooks `handle_accepted`.
    pub fn on_accepted(
        mut self,
        f: impl FnMut(&mut Context<'_>, Socket, SockAddr) -> HandlerResult + 'static,
    ) -> Self {
        self.accepted = Some(Box::new(f));
        self
    }

    /// Hooks `handle_expt`.
    pub fn on_expt(mut self, f: impl FnMut(&mut Context<'_>) -> HandlerResult + 'static) -> Self {
        self.expt = Some(Box::new(f));
        self
    }

    /// Hooks `handle_close`.
    pub fn on_close(mut self, f: impl FnMut(&mut Context<'_>) -> HandlerResult + 'static) -> Self {
        self.close = Some(Box::new(f));
        self
    }

    /// Hooks `handle_error` (instead of ending the loop).
    pub fn on_error(
        mut self,
        f: impl FnMut(&mut Context<'_>, BoxError) -> HandlerResult + 'static,
    ) -> Self {
        self.error = Some(Box::new(f));
        self
    }

    /// Makes `writable()` answer `writable` (default `true`).
    pub fn writable(mut self, writable: bool) -> Self {
        self.writable = Some(writable);
        self
    }
}

fn run(hook: &mut Option<Hook>, ctx: &mut Context<'_>, event: &str) -> HandlerResult {
    match hook {
        Some(f) => f(ctx),
        None => Err(unexpected(event)),
    }
}

impl Dispatcher for BaseTestHandler {
    fn writable(&self, _chan: &Channel) -> bool {
        self.writable.unwrap_or(true)
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        match &mut self.read {
            Some(f) => f(ctx),
            None => DefaultDispatcher.handle_read(ctx),
        }
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        match &mut self.write {
            Some(f) => f(ctx),
            None => DefaultDispatcher.handle_write(ctx),
        }
    }

    fn handle_connect(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        run(&mut self.connect, ctx, "handle_connect")
    }

    fn handle_accept(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        run(&mut self.accept, ctx, "handle_accept")
    }

    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        addr: SockAddr,
    ) -> HandlerResult {
        match &mut self.accepted {
            Some(f) => f(ctx, sock, addr),
            None => Err(unexpected("handle_accepted")),
        }
    }

    fn handle_expt(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        run(&mut self.expt, ctx, "handle_expt")
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        run(&mut self.close, ctx, "handle_close")
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        match &mut self.error {
            Some(f) => f(ctx, err),
            None => {
                Err(ExitNow::new(format!("unexpected error on {:?}: {err}", ctx.channel())).into())
            }
        }
    }
}

/// Makes the handler of each accepted connection (Python's `handler` class argument).
pub type HandlerFactory = Box<dyn FnMut(&mut Context<'_>, Socket) -> HandlerResult>;

/// Python: `test_asyncore.BaseServer`: listens and gives each accepted connection to a
/// factory (by default: a plain [`BaseTestHandler`] on it). Any error ends the loop.
pub struct BaseServer {
    factory: HandlerFactory,
}

impl std::fmt::Debug for BaseServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BaseServer")
    }
}

impl BaseServer {
    /// Creates the listening channel (`set_reuse_addr`, bind, `listen(5)`) in `map` and
    /// returns its id and the address clients connect to.
    pub fn start(
        map: &mut SocketMap,
        family: Family,
        dir: &TestDir,
        factory: impl FnMut(&mut Context<'_>, Socket) -> HandlerResult + 'static,
    ) -> (ChannelId, SockAddr) {
        let mut chan = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
        chan.set_reuse_addr().unwrap();
        chan.bind(family.server_addr(dir)).unwrap();
        chan.listen(5).unwrap();
        let address = chan.local_addr().unwrap();
        let server = BaseServer {
            factory: Box::new(factory),
        };
        (map.insert(chan, server).unwrap().id(), address)
    }

    /// As [`start`](Self::start), with each connection handled by a plain
    /// [`BaseTestHandler`].
    pub fn start_default(
        map: &mut SocketMap,
        family: Family,
        dir: &TestDir,
    ) -> (ChannelId, SockAddr) {
        BaseServer::start(map, family, dir, |ctx, sock| {
            ctx.insert(Channel::from_socket(sock)?, BaseTestHandler::new())?;
            Ok(())
        })
    }
}

impl Dispatcher for BaseServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _addr: SockAddr,
    ) -> HandlerResult {
        (self.factory)(ctx, sock)
    }

    fn handle_error(&mut self, ctx: &mut Context<'_>, err: BoxError) -> HandlerResult {
        Err(ExitNow::new(format!("unexpected error on {:?}: {err}", ctx.channel())).into())
    }
}

/// Python: `test_asyncore.BaseClient`: a channel of `family` connecting to `address`, with
/// `handler` (usually built from [`BaseTestHandler::client`]).
pub fn base_client(
    map: &mut SocketMap,
    family: Family,
    address: &SockAddr,
    handler: impl Dispatcher,
) -> ChannelId {
    let mut chan = Channel::create_socket(family.domain(), Type::STREAM).unwrap();
    chan.connect(address.clone()).unwrap();
    map.insert(chan, handler).unwrap().id()
}

/// Runs `backend` until `flag` is set (Python's `loop_waiting_for_flag`).
pub fn loop_waiting_for_flag(map: &mut SocketMap, backend: Backend, flag: &super::Flag) {
    super::run_until(map, backend, "the flag", |_| flag.get());
}
