//! PyMOTW's asyncore echo server and client in one process and one map.
//!
//! ```text
//! echo_pair [--file PATH]     (default: a lorem-ipsum text built into the program)
//! ```
//! The server accepts one client, then stops listening; its handler echoes in 256-byte
//! chunks and closes once the client has finished sending and everything is echoed. The
//! client sends the file in 512-byte chunks and, when the server has closed, prints
//! `RECEIVED COPY OF MESSAGE` (exit 0) or `ERROR IN TRANSMISSION` (exit 1). The loop ends
//! when the map is empty.

use asyncore_core::{
    Channel, Context, Dispatcher, DisplayAddr, Domain, HandlerResult, Loop, SockAddr, Socket,
    SocketMap, Type,
};
use asyncore_examples::cli::Args;
use std::collections::VecDeque;
use std::net::Shutdown;

const USAGE: &str = "usage: echo_pair [--file PATH]";
const DEFAULT_MESSAGE: &[u8] = include_bytes!("../../data/lorem.txt");

/// Accepts one connection, hands it to an [`EchoHandler`], and closes.
struct EchoServer;

impl Dispatcher for EchoServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        addr: SockAddr,
    ) -> HandlerResult {
        log::debug!(target: "EchoServer", "handle_accept() -> {}", DisplayAddr(&addr));
        ctx.insert(Channel::from_socket(sock)?, EchoHandler::default())?;
        // Only one client at a time: stop listening as soon as the handler is set up.
        self.handle_close(ctx)
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        log::debug!(target: "EchoServer", "handle_close()");
        ctx.close()?;
        Ok(())
    }
}

/// Echoes what it reads, 256 bytes at a time.
#[derive(Default)]
struct EchoHandler {
    data_to_write: VecDeque<Vec<u8>>,
    peer_done: bool,
}

const HANDLER_CHUNK: usize = 256;

impl Dispatcher for EchoHandler {
    fn readable(&self, _chan: &Channel) -> bool {
        !self.peer_done
    }

    fn writable(&self, _chan: &Channel) -> bool {
        !self.data_to_write.is_empty()
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; HANDLER_CHUNK];
        let n = ctx.recv(&mut buf)?;
        log::debug!(target: "EchoHandler", "handle_read() -> ({n}) {:?}", String::from_utf8_lossy(&buf[..n]));
        if n > 0 {
            self.data_to_write.push_back(buf[..n].to_vec());
        }
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(front) = self.data_to_write.front_mut() {
            let take = front.len().min(HANDLER_CHUNK);
            let sent = ctx.send(&front[..take])?;
            log::debug!(target: "EchoHandler", "handle_write() -> ({sent}) {:?}", String::from_utf8_lossy(&front[..sent]));
            front.drain(..sent);
            if front.is_empty() {
                self.data_to_write.pop_front();
            }
        }
        if self.peer_done && self.data_to_write.is_empty() {
            ctx.close()?;
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        // The client finished sending (end of stream): echo what is left, then close.
        log::debug!(target: "EchoHandler", "handle_close()");
        self.peer_done = true;
        if self.data_to_write.is_empty() {
            ctx.close()?;
        }
        Ok(())
    }
}

/// Sends the message 512 bytes at a time and collects the echo in the map's [`Received`].
struct EchoClient {
    to_send: Vec<u8>,
    sent_all: bool,
}

/// The echo as it came back: the map's data, read by the program after the loop (the
/// client's handler is gone by then).
#[derive(Default)]
struct Received(Vec<u8>);

const CLIENT_CHUNK: usize = 512;

impl Dispatcher for EchoClient {
    fn writable(&self, chan: &Channel) -> bool {
        !chan.connected() || !self.sent_all
    }

    fn handle_connect(&mut self, _ctx: &mut Context<'_>) -> HandlerResult {
        log::debug!(target: "EchoClient", "handle_connect()");
        Ok(())
    }

    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let take = self.to_send.len().min(CLIENT_CHUNK);
        let sent = ctx.send(&self.to_send[..take])?;
        log::debug!(target: "EchoClient", "handle_write() -> ({sent})");
        self.to_send.drain(..sent);
        if self.to_send.is_empty() {
            self.sent_all = true;
            ctx.shutdown(Shutdown::Write)?;
        }
        Ok(())
    }

    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; CLIENT_CHUNK];
        let n = ctx.recv(&mut buf)?;
        log::debug!(target: "EchoClient", "handle_read() -> ({n})");
        if let Some(received) = ctx.map().data_mut::<Received>() {
            received.0.extend_from_slice(&buf[..n]);
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        log::debug!(target: "EchoClient", "handle_close()");
        ctx.close()?;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut args = Args::from_env(USAGE);
    let file = args.option("--file");
    args.finish();
    let message = match &file {
        Some(path) => std::fs::read(path).unwrap_or_else(|e| {
            asyncore_examples::cli::usage_error(USAGE, &format!("cannot read {path}: {e}"))
        }),
        None => DEFAULT_MESSAGE.to_vec(),
    };

    let mut map = SocketMap::new();
    let mut server = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
    server.bind("127.0.0.1:0".parse::<std::net::SocketAddr>()?)?;
    server.listen(1)?;
    let address = server.local_addr()?;
    log::debug!(target: "EchoServer", "binding to {}", DisplayAddr(&address));
    map.insert(server, EchoServer)?;

    let mut client = Channel::create_socket(Domain::IPV4, Type::STREAM)?;
    client.connect(address)?;
    map.insert_data(Received::default());
    map.insert(
        client,
        EchoClient {
            sent_all: false,
            to_send: message.clone(),
        },
    )?;

    Loop::new().run(&mut map)?;

    if map.data::<Received>().is_some_and(|r| r.0 == message) {
        println!("RECEIVED COPY OF MESSAGE");
        Ok(())
    } else {
        println!("ERROR IN TRANSMISSION");
        std::process::exit(1);
    }
}
