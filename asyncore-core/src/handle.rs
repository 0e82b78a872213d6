//! Typed handles to channels ([`Handle`]), and the errors of reaching a channel
//! ([`LookupError`]) or of adding one ([`InsertError`]).

use crate::channel::Channel;
use crate::dispatcher::Dispatcher;
use crate::socket_map::{ChannelId, SocketMap};
use std::any::{Any, TypeId};
use std::error::Error;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io;
use std::marker::PhantomData;

/// The id of a channel that knows its handler's type: what
/// [`SocketMap::insert`](crate::SocketMap::insert) returns. With it,
/// [`SocketMap::get_mut`](crate::SocketMap::get_mut) hands out the handler as an `H`, and
/// the compiler, not a run-time check, makes sure that it is one. It is `Copy`, and it
/// converts into the plain [`ChannelId`] that every other map operation takes.
///
/// ```
/// use asyncore_core::{Channel, Context, Dispatcher, Handle, HandlerResult, SocketMap};
///
/// #[derive(Default)]
/// struct Counter {
///     reads: usize,
/// }
///
/// impl Dispatcher for Counter {
///     fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
///         self.reads += 1;
///         ctx.recv(&mut [0u8; 64])?;
///         Ok(())
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (ours, _theirs) = std::os::unix::net::UnixStream::pair()?;
/// let mut map = SocketMap::new();
/// let counter: Handle<Counter> = map.insert(Channel::from_socket(ours.into())?, Counter::default())?;
/// let (handler, _chan) = map.get_mut(counter)?; // a `&mut Counter`, no downcast to get wrong
/// assert_eq!(handler.reads, 0);
/// map.close(counter)?;
/// assert!(map.get_mut(counter).is_err()); // LookupError::Gone
/// # Ok(())
/// # }
/// ```
///
/// A handle of one handler type cannot be used as another's:
///
/// ```compile_fail
/// use asyncore_core::{Channel, DefaultDispatcher, DispatcherWithSend, Handle, SocketMap};
///
/// fn wrong(map: &mut SocketMap, plain: Handle<DefaultDispatcher>) {
///     let (_buffered, _chan): (&mut DispatcherWithSend<DefaultDispatcher>, _) =
///         map.get_mut(plain).unwrap(); // error: expected `DispatcherWithSend<..>`
/// }
/// ```
pub struct Handle<H> {
    id: ChannelId,
    // `fn() -> H`: a handle is `Copy`, `Send` and `Sync` whatever `H` is.
    handler: PhantomData<fn() -> H>,
}

impl<H> Handle<H> {
    pub(crate) fn new(id: ChannelId) -> Handle<H> {
        Handle {
            id,
            handler: PhantomData,
        }
    }

    /// The plain id of the channel.
    pub fn id(self) -> ChannelId {
        self.id
    }
}

impl<H> Clone for Handle<H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<H> Copy for Handle<H> {}

impl<H> PartialEq for Handle<H> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<H> Eq for Handle<H> {}

impl<H> PartialOrd for Handle<H> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<H> Ord for Handle<H> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl<H> Hash for Handle<H> {
    fn hash<S: Hasher>(&self, state: &mut S) {
        self.id.hash(state);
    }
}

impl<H> PartialEq<ChannelId> for Handle<H> {
    fn eq(&self, other: &ChannelId) -> bool {
        self.id == *other
    }
}

impl<H> PartialEq<Handle<H>> for ChannelId {
    fn eq(&self, other: &Handle<H>) -> bool {
        *self == other.id
    }
}

/// A map or set keyed by handles can be searched with a plain id (a handle compares,
/// orders and hashes as its id).
impl<H> std::borrow::Borrow<ChannelId> for Handle<H> {
    fn borrow(&self) -> &ChannelId {
        &self.id
    }
}

impl<H> From<Handle<H>> for ChannelId {
    fn from(handle: Handle<H>) -> ChannelId {
        handle.id
    }
}

impl<H> fmt::Debug for Handle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle<{}>({})", std::any::type_name::<H>(), self.id)
    }
}

impl<H> fmt::Display for Handle<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.id, f)
    }
}

/// Why a channel could not be reached through its id or handle
/// ([`SocketMap::get_mut`](crate::SocketMap::get_mut),
/// [`SocketMap::handle`](crate::SocketMap::handle)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LookupError {
    /// The id belongs to another map (a [`LoopGroup`](crate::LoopGroup) passes ids
    /// between threads: each loop's map knows its own only).
    OtherMap(ChannelId),
    /// The channel closed (or never was in this map): the id is stale.
    Gone(ChannelId),
    /// The channel's handler is running now, lent to the loop: the calling handler itself,
    /// or the channel whose callback is on the stack. Reach it through the callback's
    /// own context instead.
    Running(ChannelId),
    /// The channel's handler is of another type than the one asked for (only
    /// [`SocketMap::handle`](crate::SocketMap::handle) can find this: a [`Handle`] has the
    /// right type by construction).
    WrongType {
        /// The channel.
        id: ChannelId,
        /// The type asked for.
        expected: &'static str,
        /// The handler's type.
        actual: &'static str,
    },
}

impl LookupError {
    /// The channel the lookup was for.
    pub fn id(&self) -> ChannelId {
        match *self {
            LookupError::OtherMap(id) | LookupError::Gone(id) | LookupError::Running(id) => id,
            LookupError::WrongType { id, .. } => id,
        }
    }
}

impl fmt::Display for LookupError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LookupError::OtherMap(id) => write!(f, "channel {id} belongs to another map"),
            LookupError::Gone(id) => write!(f, "no channel {id} in the map (it closed)"),
            LookupError::Running(id) => write!(
                f,
                "channel {id}'s handler is running: reach it through its own context"
            ),
            LookupError::WrongType {
                id,
                expected,
                actual,
            } => write!(f, "channel {id}'s handler is a {actual}, not a {expected}"),
        }
    }
}

impl Error for LookupError {}

impl From<LookupError> for io::Error {
    fn from(err: LookupError) -> io::Error {
        let kind = match err {
            LookupError::Gone(_) => io::ErrorKind::NotFound,
            LookupError::Running(_) => io::ErrorKind::WouldBlock,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, err)
    }
}

/// A channel the map could not take, handed back with its handler
/// ([`SocketMap::insert`](crate::SocketMap::insert)): to answer on the socket (a "busy"
/// reply), retry, or drop them. It converts into the [`io::Error`] for `?`.
///
/// ```
/// use asyncore_core::{Channel, DefaultDispatcher, SocketMap};
///
/// let mut map = SocketMap::new();
/// let err = map.insert(Channel::new(), DefaultDispatcher).unwrap_err(); // no descriptor
/// assert_eq!(err.error().kind(), std::io::ErrorKind::InvalidInput);
/// let (_error, _channel, _handler) = err.into_parts();
/// ```
pub struct InsertError<H> {
    // Boxed: a channel is a few hundred bytes, and `insert`'s `Ok` is one id.
    parts: Box<Parts<H>>,
}

struct Parts<H> {
    error: io::Error,
    channel: Channel,
    handler: H,
}

impl<H> InsertError<H> {
    pub(crate) fn new(error: io::Error, channel: Channel, handler: H) -> InsertError<H> {
        InsertError {
            parts: Box::new(Parts {
                error,
                channel,
                handler,
            }),
        }
    }

    /// Why the map refused the channel.
    pub fn error(&self) -> &io::Error {
        &self.parts.error
    }

    /// The error, the channel and the handler.
    pub fn into_parts(self) -> (io::Error, Channel, H) {
        let Parts {
            error,
            channel,
            handler,
        } = *self.parts;
        (error, channel, handler)
    }

    /// The error alone; the channel (its descriptor closed) and the handler are dropped.
    pub fn into_error(self) -> io::Error {
        self.parts.error
    }
}

impl<H> fmt::Debug for InsertError<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InsertError")
            .field("error", &self.parts.error)
            .field("channel", &self.parts.channel)
            .field("handler", &std::any::type_name::<H>())
            .finish()
    }
}

impl<H> fmt::Display for InsertError<H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot add the channel to the map: {}", self.parts.error)
    }
}

impl<H: 'static> Error for InsertError<H> {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        Some(&self.parts.error)
    }
}

impl<H> From<InsertError<H>> for io::Error {
    fn from(err: InsertError<H>) -> io::Error {
        err.into_error()
    }
}

/// Reaching a channel's handler through its handle.
impl SocketMap {
    /// The handler of a channel, as its own type. Its predicates are asked again on the
    /// next pass.
    ///
    /// # Errors
    /// [`LookupError::Gone`] once the channel closed, [`LookupError::Running`] for the
    /// channel whose handler is running now (the caller itself: use its context),
    /// [`LookupError::OtherMap`] for another map's handle.
    pub fn handler_mut<H: Dispatcher>(&mut self, handle: Handle<H>) -> Result<&mut H, LookupError> {
        self.get_mut(handle).map(|(h, _)| h)
    }

    /// Handler (as its own type) and core of a channel together; see
    /// [`handler_mut`](Self::handler_mut).
    ///
    /// # Errors
    /// As [`handler_mut`](Self::handler_mut).
    pub fn get_mut<H: Dispatcher>(
        &mut self,
        handle: Handle<H>,
    ) -> Result<(&mut H, &mut Channel), LookupError> {
        let id = handle.id();
        if id.map != self.id {
            return Err(LookupError::OtherMap(id));
        }
        self.mark_touched(id);
        let entry = self.open_entry_mut(id).ok_or(LookupError::Gone(id))?;
        let handler: &mut dyn Any = entry
            .handler
            .as_deref_mut()
            .ok_or(LookupError::Running(id))?;
        match handler.downcast_mut::<H>() {
            Some(h) => Ok((h, &mut entry.chan)),
            // A handle has its handler's type by construction; kept for a clear error.
            None => Err(LookupError::WrongType {
                id,
                expected: std::any::type_name::<H>(),
                actual: entry.chan.name,
            }),
        }
    }

    /// The typed handle of channel `id`, once its handler is known to be an `H`: for an id
    /// taken from a [`Context`](crate::Context) (`ctx.id()`) or kept untyped.
    ///
    /// # Errors
    /// [`LookupError::WrongType`] when the handler is not an `H`; otherwise as
    /// [`handler_mut`](Self::handler_mut) (but a running handler's handle is given).
    pub fn handle<H: Dispatcher>(&self, id: ChannelId) -> Result<Handle<H>, LookupError> {
        self.lookup(id, TypeId::of::<H>(), std::any::type_name::<H>())?;
        Ok(Handle::new(id))
    }

    /// Checks that `id` names an open channel whose handler has type `ty`.
    fn lookup(&self, id: ChannelId, ty: TypeId, expected: &'static str) -> Result<(), LookupError> {
        if id.map != self.id {
            return Err(LookupError::OtherMap(id));
        }
        let Some(entry) = self.open_entry(id) else {
            return Err(LookupError::Gone(id));
        };
        if entry.handler_type != ty {
            return Err(LookupError::WrongType {
                id,
                expected,
                actual: entry.chan.name,
            });
        }
        Ok(())
    }
}
