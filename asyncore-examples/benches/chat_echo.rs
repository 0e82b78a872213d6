//! Our line echo server on `async_chat`, for the line-echo benchmark (the `echo_server`
//! example is the `dispatcher_with_send` one).
//!
//! ```text
//! chat_echo [--listen HOST:PORT]      (default 127.0.0.1:0)
//! ```
//!
//! Each connection is an `AsyncChat` cutting its input at `\n`; each line is pushed back
//! as it comes (`collect_incoming_data` queues a copy of it, which the send queue packs
//! with the others: no buffer of its own), then its terminator.

#[path = "support/listen.rs"]
mod listen;

use asyncore_chat::{AsyncChat, ChatContext, ChatHandler, Terminator};
use asyncore_core::{
    Channel, Context, Dispatcher, HandlerResult, Loop, SockAddr, Socket, SocketMap,
};
use asyncore_examples::cli::listener;

const USAGE: &str = "usage: chat_echo [--listen HOST:PORT]";

/// Python: `class EchoHandler(asynchat.async_chat)` with `set_terminator(b"\n")`.
struct Echo;

impl ChatHandler for Echo {
    /// Python: `self.push(data)` in `collect_incoming_data`, rather than collecting it.
    fn collect_incoming_data(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        data: &[u8],
    ) -> HandlerResult {
        chat.push_copy(data)?;
        Ok(())
    }

    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        chat.push("\n")?;
        Ok(())
    }
}

/// Python: `class EchoServer(asyncore.dispatcher)`.
struct Server;

impl Dispatcher for Server {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        _addr: SockAddr,
    ) -> HandlerResult {
        sock.set_nodelay(true)?;
        ctx.insert(
            Channel::from_socket(sock)?,
            AsyncChat::with_terminator(Echo, Terminator::LF),
        )?;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = listen::listen_arg(USAGE);
    let (server, bound) = listener(addr)?;
    let mut map = SocketMap::new();
    map.insert(server, Server)?;
    listen::announce(bound.as_socket().ok_or("not an IP address")?)?;
    Loop::new().run(&mut map)?;
    Ok(())
}
