//! `PORTING.md` stays true.
//!
//! - **The tables name real items.** [`rust_names`] refers to every Rust item the tables of
//!   `PORTING.md` may name, so this file stops compiling when one is renamed or removed; it
//!   records each reference's text (`stringify!`, generic arguments dropped, so
//!   `AsyncChat::<Probe>::push` reads `AsyncChat::push`). The Rust names in the tables and
//!   this list must be equal as sets: a table naming something not in the list fails, and
//!   so does a list entry no table names (the list cannot drift into a second document).
//! - **Every Python name has its row.** [`PYTHON_NAMES`] is every public name of CPython
//!   3.11's `asyncore` and `asynchat` (module functions and globals, classes, methods,
//!   attributes, plus the private names ports use, such as `_get_data`); it must equal the
//!   Python column. A row without a Rust name must say "Not provided".
//! - **The Rust programs are the real files.** Every `rust` code block in `PORTING.md` and
//!   in the crates' READMEs is marked `<!-- quote: PATH -->` and must appear word for word
//!   in that file (lines starting `// ...` mark cuts: each piece must appear, in order). A
//!   quote of a doc comment matches its text as rustdoc shows it (hidden `# ` lines left
//!   out), so a README can quote a crate's doctest.

#![cfg(unix)]

use asyncore_chat::{
    find_prefix_at_end, push_to, simple_producer, AsyncChat, Bytes, ChatContext, ChatError,
    ChatHandler, FrameSink, FrameVec, Framer, Framing, Producer, SimpleProducer, Terminator,
    Watermarks, DEFAULT_BUFFER_SIZE, DEFAULT_MAX_INPUT, SIMPLE_PRODUCER_BUFFER_SIZE,
};
use asyncore_core::{
    close_all, loop_, readwrite, strerror, with_socket_map, BoxError, Channel, ChannelId, Context,
    DefaultDispatcher, Dispatcher, DispatcherWithSend, DisplayAddr, Domain, ExitNow, HandlerResult,
    LogType, Loop, LoopError, LoopGroup, LoopStats, PanicError, RawIo, SendQueue, SockAddr, Socket,
    SocketMap, TimerAction, TimerId, Type, Waker, DEFAULT_MAX_SEND, DEFAULT_TIMEOUT,
};
use asyncore_file::{file_dispatcher, file_dispatcher_from_raw_fd, FileWrapper};
use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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
const PYTHON_NAMES: &[&str] = &[
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
fn rust_names<'s, 'a: 's>() -> Vec<String> {
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
    ty!(SocketMap);
    val!(SocketMap::new);
    val!(SocketMap::insert::<DefaultDispatcher>);
    val!(SocketMap::close);
    val!(SocketMap::close_all);
    val!(SocketMap::push => fn(&mut SocketMap, ChannelId, Bytes) -> io::Result<usize>);
    val!(SocketMap::touch);
    val!(SocketMap::stop);
    val!(SocketMap::channel_mut);
    val!(SocketMap::handler_mut::<DefaultDispatcher>);
    val!(SocketMap::get_mut::<DefaultDispatcher>);
    val!(SocketMap::stats);
    ty!(LoopStats);
    ty!(ChannelId);
    val!(with_socket_map::<()> => fn(fn(&mut SocketMap)));
    val!(close_all);
    val!(readwrite);
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
    ty!(DispatcherWithSend<DefaultDispatcher>);
    val!(DispatcherWithSend::<DefaultDispatcher>::new);
    ty!(LogType);
    // asyncore-core: the context
    val!(Context::insert::<DefaultDispatcher>);
    val!(Context::send);
    val!(Context::close);
    val!(Context::map);
    val!(Context::id);
    val!(Context::log);
    val!(Context::log_info);
    val!(Context::log_error);
    val!(Context::set_timer);
    val!(Context::set_idle_timeout);
    val!(Context::defer_close);
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
    val!(SocketMap::set_timer);
    val!(SocketMap::set_idle_timeout);
    val!(SocketMap::waker);
    val!(SocketMap::shutdown);
    val!(SocketMap::shutting_down);
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
    val!(<Probe as ChatHandler>::handle_connect);
    val!(<Probe as ChatHandler>::handle_close);
    val!(<Probe as ChatHandler>::handle_error);
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
    val!(push_to::<Probe> => fn(&mut SocketMap, ChannelId, Bytes) -> Result<(), ChatError>);
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

/// A reference's text as the tables write it: `<T as Trait>::m` reads `Trait::m`, generic
/// arguments (`::<..>`, `<..>`) and spaces are dropped.
fn normalize(text: &str) -> String {
    let mut text = text.to_string();
    if let Some(rest) = text.strip_prefix('<') {
        let end = closing_angle(rest).expect("balanced <..> in a qualified path");
        let inner = &rest[..end];
        let trait_part = inner.rsplit_once(" as ").map_or(inner, |(_, t)| t);
        text = format!("{trait_part}{}", &rest[end + 1..]);
    }
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let text = text.replace("->", "");
    let mut out = String::new();
    let mut depth = 0;
    for c in text.chars() {
        match c {
            '<' => depth += 1,
            '>' => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out.replace("::::", "::").trim_end_matches("::").to_string()
}

/// The index of the `>` that closes a `<` just before `s` starts.
fn closing_angle(s: &str) -> Option<usize> {
    let mut depth = 1;
    for (i, c) in s.char_indices() {
        match c {
            '<' => depth += 1,
            '>' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}

fn read(path: &str) -> String {
    let full = workspace_root().join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("cannot read {}: {e}", full.display()))
}

/// The cells of a table row, split at `|` outside backticks (`\|` is a literal bar).
fn cells(row: &str) -> Vec<String> {
    let row = row.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut in_code = false;
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '`' => {
                in_code = !in_code;
                out.last_mut().expect("one cell at least").push(c);
            }
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().expect("one cell at least").push('|');
                chars.next();
            }
            '|' if !in_code => out.push(String::new()),
            _ => out.last_mut().expect("one cell at least").push(c),
        }
    }
    out.iter().map(|c| c.trim().to_string()).collect()
}

/// The `code spans` of a cell.
fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A table row of `PORTING.md`.
#[derive(Debug)]
struct Row {
    line: usize,
    python: Option<String>,
    rust: Vec<String>,
    note: String,
}

/// The rows of the tables whose second column is "Rust"; `python` is set in the tables
/// whose first column is "Python".
fn table_rows(markdown: &str) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut header: Option<Vec<String>> = None;
    let mut in_fence = false;
    for (i, line) in markdown.lines().enumerate() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        }
        if in_fence || !line.starts_with('|') {
            header = None;
            continue;
        }
        let c = cells(line);
        let Some(h) = &header else {
            header = Some(c);
            continue;
        };
        if c.iter().all(|x| x.chars().all(|ch| ch == '-' || ch == ':')) {
            continue; // the separator row
        }
        if h.get(1).map(String::as_str) != Some("Rust") {
            continue;
        }
        let python = (h[0] == "Python").then(|| {
            let spans = code_spans(&c[0]);
            assert_eq!(
                spans.len(),
                1,
                "PORTING.md:{}: the Python cell names one thing: {line}",
                i + 1
            );
            spans[0].clone()
        });
        rows.push(Row {
            line: i + 1,
            python,
            rust: code_spans(c.get(1).map_or("", String::as_str)),
            note: c.get(2).cloned().unwrap_or_default(),
        });
    }
    rows
}

#[test]
fn porting_table_names_resolve() {
    let rows = table_rows(&read("PORTING.md"));
    let known: BTreeSet<String> = rust_names().into_iter().collect();
    let mut problems = Vec::new();

    let mut used = BTreeSet::new();
    for row in &rows {
        for name in &row.rust {
            if !known.contains(name) {
                problems.push(format!(
                    "PORTING.md:{}: `{name}` is not in rust_names() (renamed? a typo?)",
                    row.line
                ));
            }
            used.insert(name.clone());
        }
        if row.rust.is_empty() && !row.note.starts_with("Not provided") {
            problems.push(format!(
                "PORTING.md:{}: a row without a Rust name must say \"Not provided\"",
                row.line
            ));
        }
    }
    for name in known.difference(&used) {
        problems.push(format!(
            "`{name}` is in rust_names() but in no table of PORTING.md"
        ));
    }

    let python: Vec<&str> = rows.iter().filter_map(|r| r.python.as_deref()).collect();
    let python_set: BTreeSet<&str> = python.iter().copied().collect();
    let expected: BTreeSet<&str> = PYTHON_NAMES.iter().copied().collect();
    for name in expected.difference(&python_set) {
        problems.push(format!("Python's `{name}` has no row in PORTING.md"));
    }
    for name in python_set.difference(&expected) {
        problems.push(format!(
            "PORTING.md has a row for `{name}`, not in PYTHON_NAMES"
        ));
    }
    if python.len() != python_set.len() {
        problems.push("PORTING.md has two rows for the same Python name".to_string());
    }
    assert_eq!(
        expected.len(),
        PYTHON_NAMES.len(),
        "PYTHON_NAMES repeats a name"
    );
    assert!(
        problems.is_empty(),
        "PORTING.md's tables are out of date:\n{}",
        problems.join("\n")
    );
}

/// The lines a quote may match in `source`: the file as it is, or the text of its doc
/// comments as rustdoc shows it (`//!` / `///` and one space removed, hidden `# ` lines
/// left out).
fn quotable_texts(source: &str) -> [Vec<String>; 2] {
    let raw = source.lines().map(|l| l.trim_end().to_string()).collect();
    let doc = source
        .lines()
        .filter_map(|l| {
            let t = l.trim_start();
            let rest = t.strip_prefix("//!").or_else(|| t.strip_prefix("///"))?;
            let rest = rest.strip_prefix(' ').unwrap_or(rest).trim_end();
            (rest != "#" && !rest.starts_with("# ")).then(|| rest.to_string())
        })
        .collect();
    [raw, doc]
}

/// Whether `pieces` appear in `lines`, each as consecutive lines, in order.
fn quoted_in(pieces: &[Vec<String>], lines: &[String]) -> bool {
    let mut from = 0;
    for piece in pieces {
        let found = (from..lines.len().saturating_sub(piece.len() - 1))
            .find(|&i| lines[i..i + piece.len()] == piece[..]);
        match found {
            Some(i) => from = i + piece.len(),
            None => return false,
        }
    }
    true
}

/// A `rust` code block and the file it says it quotes.
struct Quote {
    line: usize,
    source: Option<String>,
    pieces: Vec<Vec<String>>,
}

fn quotes(markdown: &str) -> Vec<Quote> {
    let lines: Vec<&str> = markdown.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if !line.starts_with("```") {
            i += 1;
            continue;
        }
        let lang = line.trim_start_matches('`').trim();
        let start = i;
        i += 1;
        let mut body = Vec::new();
        while i < lines.len() && !lines[i].starts_with("```") {
            body.push(lines[i].trim_end().to_string());
            i += 1;
        }
        i += 1;
        if !lang.starts_with("rust") {
            continue;
        }
        let marker = lines[..start].iter().rev().find(|l| !l.trim().is_empty());
        let source = marker.and_then(|m| {
            m.trim()
                .strip_prefix("<!-- quote:")
                .and_then(|r| r.strip_suffix("-->"))
                .map(|p| p.trim().to_string())
        });
        let mut pieces = vec![Vec::new()];
        for l in body {
            if l.trim() == "// ..." {
                pieces.push(Vec::new());
            } else {
                pieces.last_mut().expect("one piece at least").push(l);
            }
        }
        out.push(Quote {
            line: start + 1,
            source,
            pieces,
        });
    }
    out
}

/// Checks every `rust` block of `doc` (a workspace path); returns the files quoted.
fn check_quotes(doc: &str, problems: &mut Vec<String>) -> BTreeSet<String> {
    let mut sources = BTreeSet::new();
    for q in quotes(&read(doc)) {
        let Some(source) = q.source else {
            problems.push(format!(
                "{doc}:{}: a rust block without `<!-- quote: PATH -->` before it",
                q.line
            ));
            continue;
        };
        if q.pieces.iter().any(|p| p.iter().all(|l| l.is_empty())) {
            problems.push(format!("{doc}:{}: an empty piece between cuts", q.line));
            continue;
        }
        let texts = quotable_texts(&read(&source));
        if !texts.iter().any(|t| quoted_in(&q.pieces, t)) {
            problems.push(format!(
                "{doc}:{}: this block is no longer word for word in {source}",
                q.line
            ));
        }
        sources.insert(source);
    }
    sources
}

#[test]
fn porting_and_readme_code_is_quoted_from_real_files() {
    let mut problems = Vec::new();
    let porting = check_quotes("PORTING.md", &mut problems);
    // The classic programs keep their real files.
    for required in [
        "asyncore-core/examples/echo_server.rs",
        "asyncore-examples/src/bin/echo_server.rs",
        "asyncore-examples/src/http.rs",
        "asyncore-examples/src/bin/http_client.rs",
        "asyncore-examples/src/bin/echo_pair.rs",
        "asyncore-examples/src/bin/loop_count.rs",
        "asyncore-examples/src/bin/file_reader.rs",
        "asyncore-chat/src/lib.rs",
        "asyncore-examples/src/chat.rs",
    ] {
        if !porting.contains(required) {
            problems.push(format!("PORTING.md no longer quotes {required}"));
        }
    }
    for readme in [
        "asyncore-core/README.md",
        "asyncore-chat/README.md",
        "asyncore-file/README.md",
    ] {
        if check_quotes(readme, &mut problems).is_empty() {
            problems.push(format!(
                "{readme} has no example quoted from a compiled file"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn normalize_reads_references_as_the_tables_write_them() {
    assert_eq!(
        normalize("<DefaultDispatcher as Dispatcher>::handle_read"),
        "Dispatcher::handle_read"
    );
    assert_eq!(normalize("AsyncChat::<Probe>::push"), "AsyncChat::push");
    assert_eq!(
        normalize("ChatContext::<'s, 'a>::push"),
        "ChatContext::push"
    );
    assert_eq!(
        normalize("SocketMap::insert::<DefaultDispatcher>"),
        "SocketMap::insert"
    );
    assert_eq!(
        normalize("DispatcherWithSend<DefaultDispatcher>"),
        "DispatcherWithSend"
    );
    assert_eq!(
        normalize("LoopGroup::spawn::<fn(usize, &mut SocketMap) -> io::Result<()>>"),
        "LoopGroup::spawn"
    );
}

#[test]
fn quotes_match_pieces_in_order_only() {
    let lines: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
    let piece = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert!(quoted_in(&[piece(&["b", "c"])], &lines));
    assert!(quoted_in(&[piece(&["a"]), piece(&["c", "d"])], &lines));
    assert!(!quoted_in(&[piece(&["c"]), piece(&["a"])], &lines));
    assert!(!quoted_in(&[piece(&["a", "c"])], &lines));
    let [raw, doc] = quotable_texts("//! ```\n//! # hidden\n//! shown\n//! ```\nfn f() {}");
    assert_eq!(doc, ["```", "shown", "```"]);
    assert_eq!(raw.len(), 5);
}
