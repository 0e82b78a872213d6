//! Our line echo server on `async_chat`, for the line-echo benchmark (the `echo_server`
//! example is the `dispatcher_with_send` one).
//!
//! ```text
//! chat_echo [--listen HOST:PORT]      (default 127.0.0.1:0)
//! ```
//!
//! Each connection is an `AsyncChat` cutting its input at `\n`; every line is pushed back
//! with its terminator (two `Bytes` into the send queue, where short ones are packed
//! together).

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
    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = chat.take_data();
        chat.push(line)?;
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
