//! The tokio anchor of the Redis-protocol benchmark: a `current_thread` runtime, one task
//! per connection on a `LocalSet` sharing one store, and `resp_server`'s own request
//! parser, command execution and reply encoding (`asyncore_examples::resp`), so that the
//! benchmark compares the two loops, not two implementations of the commands.
//!
//! ```text
//! tokio_resp [--listen HOST:PORT]      (default 127.0.0.1:0)
//! ```
//!
//! Written as a tokio user would write it for speed: each read's whole requests are
//! answered into one batch of buffers, written with vectored writes before the next read,
//! so a pipelined batch costs one read and one write. `TCP_NODELAY` is set, as
//! redis-server does.

#[path = "../support/listen.rs"]
mod listen;

use asyncore_examples::resp::{
    execute, with_args, Action, Encoder, Exec, Limits, Parsed, RequestParser, Session, Store,
};
use bytes::{Buf, Bytes, BytesMut};
use std::cell::RefCell;
use std::io::IoSlice;
use std::rc::Rc;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const USAGE: &str = "usage: tokio_resp [--listen HOST:PORT]";

/// The least room made for the next read.
const READ_ROOM: usize = 16 * 1024;

async fn serve(mut sock: TcpStream, store: Rc<RefCell<Store>>) -> std::io::Result<()> {
    sock.set_nodelay(true)?;
    let mut input = BytesMut::with_capacity(READ_ROOM);
    let mut parser = RequestParser::new(Limits::default());
    let mut session = Session::default();
    let mut enc = Encoder::default();
    loop {
        input.reserve(READ_ROOM);
        if sock.read_buf(&mut input).await? == 0 {
            return Ok(());
        }
        let (used, close) = answer(&input, &mut parser, &mut session, &store, &mut enc);
        input.advance(used);
        write_all(&mut sock, enc.finish()).await?;
        if close {
            return Ok(());
        }
    }
}

/// Runs the whole requests at the front of `input` and encodes their replies: how much of
/// `input` they took, and whether the connection is to close (QUIT, a protocol error).
fn answer(
    input: &[u8],
    parser: &mut RequestParser,
    session: &mut Session,
    store: &RefCell<Store>,
    enc: &mut Encoder,
) -> (usize, bool) {
    let mut store = store.borrow_mut();
    let now = Instant::now();
    let mut pos = 0;
    while pos < input.len() {
        let rest = &input[pos..];
        let len = match parser.parse(rest) {
            Parsed::Command { len } => len,
            Parsed::Empty { len } => {
                pos += len;
                continue;
            }
            Parsed::Incomplete { .. } => break,
            Parsed::Error(err) => {
                if let Some(reply) = err.reply() {
                    reply.encode(enc);
                }
                return (input.len(), true);
            }
        };
        let mut x = Exec {
            store: &mut store,
            session,
            limits: parser.limits(),
            now,
        };
        let action = with_args(parser.args(rest), |args| execute(&mut x, args));
        pos += len;
        match action {
            Action::Reply(reply) => reply.encode(enc),
            Action::ReplyAndClose(reply) => {
                reply.encode(enc);
                return (input.len(), true);
            }
        }
    }
    (pos, false)
}

/// Writes `parts` in order, as few vectored writes as the socket takes.
async fn write_all(sock: &mut TcpStream, mut parts: Vec<Bytes>) -> std::io::Result<()> {
    let mut first = 0;
    while first < parts.len() {
        let slices: Vec<IoSlice<'_>> = parts[first..].iter().map(|p| IoSlice::new(p)).collect();
        let mut n = sock.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while first < parts.len() && n >= parts[first].len() {
            n -= parts[first].len();
            first += 1;
        }
        if n > 0 {
            parts[first].advance(n);
        }
    }
    Ok(())
}

fn main() -> std::io::Result<()> {
    let addr = listen::listen_arg(USAGE);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let listener = TcpListener::bind(addr).await?;
        listen::announce(listener.local_addr()?)?;
        let store = Rc::new(RefCell::new(Store::default()));
        loop {
            let (sock, _) = listener.accept().await?;
            let store = store.clone();
            tokio::task::spawn_local(async move {
                if let Err(e) = serve(sock, store).await {
                    eprintln!("tokio_resp: {e}");
                }
            });
        }
    })
}
