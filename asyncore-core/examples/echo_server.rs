//! The echo server of Python's asyncore documentation, on `DispatcherWithSend`.
//!
//! `cargo run -p asyncore-core --example echo_server -- [HOST:PORT]` (default
//! 127.0.0.1:8080); prints `listening on HOST:PORT` once it listens.

use asyncore_core::*;
use std::io::Write;
use std::net::SocketAddr;

struct EchoHandler;

impl Dispatcher for EchoHandler {
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 8192];
        let n = ctx.recv(&mut buf)?;
        if n > 0 {
            ctx.send(&buf[..n])?;
        }
        Ok(())
    }

    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.close()?;
        Ok(())
    }
}

struct EchoServer;

impl Dispatcher for EchoServer {
    fn handle_accepted(
        &mut self,
        ctx: &mut Context<'_>,
        sock: Socket,
        addr: SockAddr,
    ) -> HandlerResult {
        log::info!("Incoming connection from {}", DisplayAddr(&addr));
        ctx.insert(
            Channel::from_socket(sock)?,
            DispatcherWithSend::new(EchoHandler),
        )?;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = match std::env::args().nth(1) {
        Some(a) => a.parse()?,
        None => "127.0.0.1:8080".parse()?,
    };
    let mut server = Channel::create_socket(Domain::for_address(addr), Type::STREAM)?;
    server.set_reuse_addr()?;
    server.bind(addr)?;
    server.listen(128)?;
    let bound = server.local_addr()?;
    let mut map = SocketMap::new();
    map.insert(server, EchoServer)?;
    println!("listening on {}", DisplayAddr(&bound));
    std::io::stdout().flush()?;
    Loop::new().run(&mut map)?;
    Ok(())
}
