//! The two lists the tables of `PORTING.md` are checked against: every public Python name
//! ([`PYTHON_NAMES`]) and every Rust item a table may name ([`rust_names`]).

use asyncore_chat::{
    find_prefix_at_end, push_to, simple_producer, AsyncChat, Bytes, ChatContext, ChatError,
    ChatHandle, ChatHandler, Decoded, FrameSink, FrameVec, Framer, Framing, Producer,
    SimpleProducer, Terminator, Watermarks, DEFAULT_BUFFER_SIZE, DEFAULT_MAX_INPUT,
    SIMPLE_PRODUCER_BUFFER_SIZE,
};
use asyncore_core::{
    close_all, loop_, readwrite, strerror, tuning, with_socket_map, BoxError, Channel, ChannelId,
    Context, DefaultDispatcher, Dispatcher, DispatcherWithSend, DisplayAddr, Domain, ExitNow,
    Handle, HandlerResult, InsertError, LogType, LookupError, Loop, LoopError, LoopGroup,
    PanicError, RawIo, SendQueue, SockAddr, Socket, SocketMap, TimerAction, TimerId, Type, Waker,
    DEFAULT_LINGER, DEFAULT_MAX_SEND, DEFAULT_TIMEOUT,
};
use asyncore_file::{file_dispatcher, file_dispatcher_from_raw_fd, FileWrapper};
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use super::normalize;

/// A protocol to name `ChatHandler`'s methods and `AsyncChat<H>`'s with.
struct Probe;

impl ChatHandler for Probe {
    fn found_terminator(&mut self, _chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        Ok(())
    }
}

/// A repeating timer's callback, as `SocketMap::schedule` takes it.
type RepeatingTimer = fn(&mut SocketMap) -> TimerAction;

/// Every public name of Python 3.11's `asyncore` and `asynchat`, and the private ones that
/// ports use (from `vars()` of the modules, their classes and fresh instances; the
/// modules' imports and error-number constants left out).
pub const PYTHON_NAMES: &[&str] = &[
    // asyncore: module functions and globals
    "asyncore.loop",
    "asyncore.socket_map",
    "asyncore.ExitNow",
    "asyncore.poll",
    "asyncore.poll2",
    "asyncore.poll3",
    "asyncore.readwrite",
    "asyncore.read",
    "asyncore.write",
    "asyncore._exception",
    "asyncore.close_all",
    "asyncore.compact_traceback",
    "asyncore._strerror",
    "asyncore._DISCONNECTED",
    "asyncore._reraised_exceptions",
    "asyncore.dispatcher",
    "asyncore.dispatcher_with_send",
    "asyncore.file_wrapper",
    "asyncore.file_dispatcher",
    // asyncore.dispatcher
    "asyncore.dispatcher.__init__",
    "asyncore.dispatcher.__repr__",
    "asyncore.dispatcher.add_channel",
    "asyncore.dispatcher.del_channel",
    "asyncore.dispatcher.create_socket",
    "asyncore.dispatcher.set_socket",
    "asyncore.dispatcher.set_reuse_addr",
    "asyncore.dispatcher.readable",
    "asyncore.dispatcher.writable",
    "asyncore.dispatcher.listen",
    "asyncore.dispatcher.bind",
    "asyncore.dispatcher.connect",
    "asyncore.dispatcher.accept",
    "asyncore.dispatcher.send",
    "asyncore.dispatcher.recv",
    "asyncore.dispatcher.close",
    "asyncore.dispatcher.log",
    "asyncore.dispatcher.log_info",
    "asyncore.dispatcher.handle_read_event",
    "asyncore.dispatcher.handle_write_event",
    "asyncore.dispatcher.handle_connect_event",
    "asyncore.dispatcher.handle_expt_event",
    "asyncore.dispatcher.handle_error",
    "asyncore.dispatcher.handle_expt",
    "asyncore.dispatcher.handle_read",
    "asyncore.dispatcher.handle_write",
    "asyncore.dispatcher.handle_connect",
    "asyncore.dispatcher.handle_accept",
    "asyncore.dispatcher.handle_accepted",
    "asyncore.dispatcher.handle_close",
    "asyncore.dispatcher.connected",
    "asyncore.dispatcher.accepting",
    "asyncore.dispatcher.connecting",
    "asyncore.dispatcher.closing",
    "asyncore.dispatcher.addr",
    "asyncore.dispatcher.debug",
    "asyncore.dispatcher.ignore_log_types",
    "asyncore.dispatcher.socket",
    "asyncore.dispatcher._fileno",
    "asyncore.dispatcher._map",
    "asyncore.dispatcher.family_and_type",
    // asyncore.dispatcher_with_send
    "asyncore.dispatcher_with_send.send",
    "asyncore.dispatcher_with_send.initiate_send",
    "asyncore.dispatcher_with_send.handle_write",
    "asyncore.dispatcher_with_send.writable",
    "asyncore.dispatcher_with_send.out_buffer",
    // asyncore.file_wrapper, asyncore.file_dispatcher
    "asyncore.file_wrapper.fd",
    "asyncore.file_wrapper.recv",
    "asyncore.file_wrapper.read",
    "asyncore.file_wrapper.send",
    "asyncore.file_wrapper.write",
    "asyncore.file_wrapper.getsockopt",
    "asyncore.file_wrapper.close",
    "asyncore.file_wrapper.fileno",
    "asyncore.file_wrapper.__del__",
    "asyncore.file_dispatcher.set_file",
    // asynchat
    "asynchat.async_chat",
    "asynchat.async_chat.__init__",
    "asynchat.async_chat.ac_in_buffer_size",
    "asynchat.async_chat.ac_out_buffer_size",
    "asynchat.async_chat.use_encoding",
    "asynchat.async_chat.encoding",
    "asynchat.async_chat.collect_incoming_data",
    "asynchat.async_chat._collect_incoming_data",
    "asynchat.async_chat._get_data",
    "asynchat.async_chat.found_terminator",
    "asynchat.async_chat.set_terminator",
    "asynchat.async_chat.get_terminator",
    "asynchat.async_chat.terminator",
    "asynchat.async_chat.handle_read",
    "asynchat.async_chat.handle_write",
    "asynchat.async_chat.handle_close",
    "asynchat.async_chat.handle_connect",
    "asynchat.async_chat.handle_error",
    "asynchat.async_chat.push",
    "asynchat.async_chat.push_with_producer",
    "asynchat.async_chat.readable",
    "asynchat.async_chat.writable",
    "asynchat.async_chat.close_when_done",
    "asynchat.async_chat.initiate_send",
    "asynchat.async_chat.discard_buffers",
    "asynchat.async_chat.ac_in_buffer",
    "asynchat.async_chat.incoming",
    "asynchat.async_chat.producer_fifo",
    "asynchat.simple_producer",
    "asynchat.simple_producer.more",
    "asynchat.find_prefix_at_end",
];

/// Every Rust name the tables may use, each compiled as a reference to its item.
///
/// Forms: `val!(path)` for functions, methods, constants and tuple or unit variants
/// (`val!(path => fn(..))` when a parameter is `impl Trait`, which no turbofish can name);
/// `ty!(Type)`; `tr!(Trait)`; `variant!(Enum::StructVariant)`. Trait methods are named
/// through an implementor: `<DefaultDispatcher as Dispatcher>::handle_read` reads
/// `Dispatcher::handle_read`.
pub fn rust_names<'s, 'a: 's>() -> Vec<String> {
    let mut names: Vec<&'static str> = Vec::new();
    macro_rules! val {
        ($e:expr) => {{
            let _ = $e;
            names.push(stringify!($e));
        }};
        ($e:expr => $t:ty) => {{
            let _: $t = $e;
            names.push(stringify!($e));
        }};
    }
    macro_rules! ty {
        ($t:ty) => {{
            let _ = std::marker::PhantomData::<$t>;
            names.push(stringify!($t));
        }};
    }
    macro_rules! tr {
        ($p:path) => {{
            #[allow(dead_code)]
            fn implements<T: ?Sized + $p>() {}
            names.push(stringify!($p));
        }};
    }
    macro_rules! variant {
        ($e:ty, $p:path) => {{
            let _ = |e: &$e| matches!(e, $p { .. });
            names.push(stringify!($p));
        }};
    }

    // asyncore-core: the loop and the map
    ty!(Loop);
    val!(Loop::new);
    val!(Loop::run);
    val!(Loop::run_default);
    val!(Loop::timeout);
    val!(Loop::use_poll);
    val!(Loop::count);
    val!(loop_);
    val!(DEFAULT_TIMEOUT);
    ty!(LoopError);
    val!(LoopError::ExitNow);
    val!(LoopError::AlreadyRunning);
    ty!(SocketMap);
    val!(SocketMap::new);
    val!(SocketMap::insert::<DefaultDispatcher>);
    val!(SocketMap::close => fn(&mut SocketMap, ChannelId) -> io::Result<()>);
    val!(SocketMap::close_all);
    val!(SocketMap::push => fn(&mut SocketMap, ChannelId, Bytes) -> io::Result<usize>);
    val!(SocketMap::touch => fn(&mut SocketMap, ChannelId));
    val!(SocketMap::stop);
    val!(SocketMap::channel_mut => fn(&mut SocketMap, ChannelId) -> Option<&mut Channel>);
    val!(SocketMap::handler_mut::<DefaultDispatcher>);
    val!(SocketMap::get_mut::<DefaultDispatcher>);
    val!(SocketMap::stats);
    val!(SocketMap::handle::<DefaultDispatcher>);
    val!(SocketMap::insert_data::<u32>);
    val!(SocketMap::data::<u32>);
    val!(SocketMap::data_mut::<u32>);
    val!(SocketMap::data_or_default::<u32>);
    val!(SocketMap::remove_data::<u32>);
    type Lend = fn(&mut u32, &mut SocketMap);
    val!(SocketMap::with_data::<u32, ()> => fn(&mut SocketMap, Lend) -> Option<()>);
    ty!(Handle<DefaultDispatcher>);
    ty!(LookupError);
    ty!(InsertError<DefaultDispatcher>);
    ty!(tuning::LoopStats);
    ty!(ChannelId);
    val!(with_socket_map::<()> => fn(fn(&mut SocketMap)));
    val!(close_all);
    val!(readwrite => fn(&mut SocketMap, ChannelId, i16) -> Result<(), ExitNow>);
    val!(strerror);
    ty!(ExitNow);
    val!(ExitNow::new => fn(String) -> ExitNow);
    ty!(PanicError);
    ty!(BoxError);
    // asyncore-core: handlers
    tr!(Dispatcher);
    ty!(DefaultDispatcher);
    val!(<DefaultDispatcher as Dispatcher>::readable);
    val!(<DefaultDispatcher as Dispatcher>::writable);
    val!(<DefaultDispatcher as Dispatcher>::handle_read);
    val!(<DefaultDispatcher as Dispatcher>::handle_write);
    val!(<DefaultDispatcher as Dispatcher>::handle_expt);
    val!(<DefaultDispatcher as Dispatcher>::handle_connect);
    val!(<DefaultDispatcher as Dispatcher>::handle_accept);
    val!(<DefaultDispatcher as Dispatcher>::handle_accepted);
    val!(<DefaultDispatcher as Dispatcher>::handle_close);
    val!(<DefaultDispatcher as Dispatcher>::handle_error);
    val!(<DefaultDispatcher as Dispatcher>::handle_timer);
    val!(<DefaultDispatcher as Dispatcher>::handle_timeout);
    val!(<DefaultDispatcher as Dispatcher>::has_pending_output);
    val!(<DefaultDispatcher as Dispatcher>::handle_added);
    ty!(DispatcherWithSend<DefaultDispatcher>);
    val!(DispatcherWithSend::<DefaultDispatcher>::new);
    ty!(LogType);
    // asyncore-core: the context
    val!(Context::insert::<DefaultDispatcher>);
    val!(Context::send);
    val!(Context::close);
    val!(Context::map);
    val!(Context::id);
    val!(Context::handle::<DefaultDispatcher>);
    val!(Context::log);
    val!(Context::log_info);
    val!(Context::log_error);
    val!(Context::set_timer);
    val!(Context::set_idle_timeout);
    val!(Context::request_close);
    val!(Context::close_when_done);
    val!(Context::is_closing);
    val!(Context::wake_read);
    // asyncore-core: the channel
    ty!(Channel);
    val!(Channel::new);
    val!(Channel::create_socket);
    val!(Channel::from_socket);
    val!(Channel::set_socket);
    val!(Channel::from_raw_io);
    val!(Channel::set_reuse_addr);
    val!(Channel::set_reuse_port);
    val!(Channel::set_nodelay);
    val!(Channel::listen);
    val!(Channel::bind => fn(&mut Channel, SocketAddr) -> io::Result<()>);
    val!(Channel::connect => fn(&mut Channel, SocketAddr) -> io::Result<()>);
    val!(Channel::accept);
    val!(Channel::send);
    val!(Channel::recv);
    val!(Channel::close);
    val!(Channel::shutdown);
    val!(Channel::connected);
    val!(Channel::set_connected);
    val!(Channel::accepting);
    val!(Channel::connecting);
    val!(Channel::closed);
    val!(Channel::addr);
    val!(Channel::socket);
    val!(Channel::fileno);
    val!(Channel::set_tag => fn(&mut Channel, String));
    val!(Channel::push => fn(&mut Channel, Bytes) -> io::Result<usize>);
    val!(Channel::initiate_send);
    val!(Channel::out_queue);
    val!(DEFAULT_MAX_SEND);
    ty!(SendQueue);
    ty!(DisplayAddr<'static>);
    ty!(Domain);
    ty!(Type);
    ty!(Socket);
    ty!(SockAddr);
    tr!(RawIo);
    // asyncore-core: beyond asyncore
    val!(SocketMap::call_later => fn(&mut SocketMap, Duration, fn(&mut SocketMap)) -> TimerId);
    val!(SocketMap::call_at => fn(&mut SocketMap, Instant, fn(&mut SocketMap)) -> TimerId);
    val!(SocketMap::schedule
        => fn(&mut SocketMap, Instant, RepeatingTimer) -> TimerId);
    val!(SocketMap::cancel_timer);
    val!(SocketMap::set_timer => fn(&mut SocketMap, ChannelId, Duration) -> io::Result<TimerId>);
    val!(SocketMap::set_idle_timeout => fn(&mut SocketMap, ChannelId, Option<Duration>) -> io::Result<()>);
    val!(SocketMap::waker);
    val!(SocketMap::shutdown);
    val!(SocketMap::shutting_down);
    val!(SocketMap::is_closing => fn(&SocketMap, ChannelId) -> bool);
    val!(SocketMap::set_linger);
    val!(DEFAULT_LINGER);
    val!(SocketMap::iter);
    val!(SocketMap::ids);
    val!(SocketMap::contains => fn(&SocketMap, ChannelId) -> bool);
    ty!(TimerAction);
    ty!(TimerId);
    ty!(Waker);
    val!(Waker::post => fn(&Waker, fn(&mut SocketMap)) -> bool);
    val!(Waker::wake);
    val!(Waker::shutdown);
    ty!(LoopGroup);
    val!(LoopGroup::spawn::<fn(usize, &mut SocketMap) -> io::Result<()>>);
    val!(LoopGroup::wakers);
    val!(LoopGroup::shutdown);
    val!(LoopGroup::join);
    // asyncore-file
    ty!(FileWrapper);
    val!(FileWrapper::new => fn(File) -> io::Result<FileWrapper>);
    val!(FileWrapper::from_raw_fd);
    val!(FileWrapper::recv);
    val!(FileWrapper::read);
    val!(FileWrapper::send);
    val!(FileWrapper::write);
    val!(FileWrapper::getsockopt);
    val!(FileWrapper::close);
    val!(FileWrapper::is_closed);
    val!(FileWrapper::fileno);
    val!(file_dispatcher => fn(File) -> io::Result<Channel>);
    val!(file_dispatcher_from_raw_fd);
    // asyncore-chat
    ty!(AsyncChat<Probe>);
    val!(AsyncChat::<Probe>::new);
    val!(AsyncChat::<Probe>::with_terminator);
    val!(AsyncChat::<Probe>::in_buffer_size);
    val!(AsyncChat::<Probe>::set_in_buffer_size);
    val!(AsyncChat::<Probe>::out_buffer_size);
    val!(AsyncChat::<Probe>::set_out_buffer_size);
    val!(AsyncChat::<Probe>::set_terminator);
    val!(AsyncChat::<Probe>::get_terminator);
    val!(AsyncChat::<Probe>::set_max_input);
    val!(AsyncChat::<Probe>::set_watermarks);
    val!(AsyncChat::<Probe>::push
        => fn(&mut AsyncChat<Probe>, &mut Channel, Bytes) -> Result<(), ChatError>);
    val!(AsyncChat::<Probe>::push_with_producer
        => fn(&mut AsyncChat<Probe>, &Channel, SimpleProducer) -> Result<(), ChatError>);
    val!(AsyncChat::<Probe>::close_when_done);
    val!(AsyncChat::<Probe>::discard_buffers);
    val!(AsyncChat::<Probe>::framer);
    tr!(ChatHandler);
    val!(<Probe as ChatHandler>::collect_incoming_data);
    val!(<Probe as ChatHandler>::found_terminator);
    val!(<Probe as ChatHandler>::handle_added);
    val!(<Probe as ChatHandler>::handle_connect);
    val!(<Probe as ChatHandler>::handle_close);
    val!(<Probe as ChatHandler>::handle_error);
    val!(<Probe as ChatHandler>::decode);
    val!(Terminator::Decode);
    ty!(Decoded);
    val!(Decoded::Consumed);
    val!(ChatContext::<'s, 'a>::push
        => fn(&mut ChatContext<'s, 'a>, Bytes) -> Result<(), ChatError>);
    val!(ChatContext::<'s, 'a>::push_with_producer
        => fn(&mut ChatContext<'s, 'a>, SimpleProducer) -> Result<(), ChatError>);
    val!(ChatContext::push_copy);
    val!(ChatContext::close_when_done);
    val!(ChatContext::initiate_send);
    val!(ChatContext::discard_buffers);
    val!(ChatContext::queued_output);
    val!(ChatContext::set_terminator);
    val!(ChatContext::get_terminator);
    val!(ChatContext::collect);
    val!(ChatContext::take_data);
    val!(ChatContext::data);
    val!(ChatContext::set_max_input);
    val!(ChatContext::set_in_buffer_size);
    val!(ChatContext::set_out_buffer_size);
    val!(ChatContext::set_watermarks);
    val!(push_to::<Probe> => fn(&mut SocketMap, ChatHandle<Probe>, Bytes) -> Result<usize, ChatError>);
    ty!(Terminator);
    val!(Terminator::bytes => fn(Bytes) -> Result<Terminator, ChatError>);
    val!(Terminator::LF);
    val!(Terminator::CRLF);
    val!(Terminator::Count);
    val!(Terminator::None);
    ty!(ChatError);
    variant!(ChatError, ChatError::InputLimit);
    val!(DEFAULT_BUFFER_SIZE);
    val!(DEFAULT_MAX_INPUT);
    ty!(Framer);
    val!(Framer::feed::<FrameVec>);
    val!(Framer::pending);
    val!(Framing::set_max_input);
    tr!(FrameSink);
    ty!(Watermarks);
    val!(Watermarks::new);
    tr!(Producer);
    val!(<SimpleProducer as Producer>::more);
    ty!(SimpleProducer);
    val!(SimpleProducer::new => fn(Bytes) -> SimpleProducer);
    val!(SimpleProducer::with_buffer_size => fn(Bytes, usize) -> SimpleProducer);
    val!(simple_producer => fn(Bytes, usize) -> SimpleProducer);
    val!(SIMPLE_PRODUCER_BUFFER_SIZE);
    val!(find_prefix_at_end);
    ty!(Bytes);

    names.iter().map(|n| normalize(n)).collect()
}
