//! The echo server of Python's asyncore documentation, on `DispatcherWithSend`.
//!
//! ```text
//! echo_server [--listen HOST:PORT]      (default 127.0.0.1:8080)
//! ```

use asyncore_core::{
    Channel, Context, Dispatcher, DispatcherWithSend, DisplayAddr, HandlerResult, Loop, SockAddr,
    Socket, SocketMap,
};
use asyncore_examples::cli::{announce, listener, Args};

const USAGE: &str = "usage: echo_server [--listen HOST:PORT]   (default 127.0.0.1:8080)";

/// Python: `class EchoHandler(asyncore.dispatcher_with_send)`.
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

/// Python: `class EchoServer(asyncore.dispatcher)`.
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
    env_logger::init();
    let mut args = Args::from_env(USAGE);
    let addr = args.listen("127.0.0.1:8080");
    args.finish();
    let (server, bound) = listener(addr)?;
    let mut map = SocketMap::new();
    map.insert(server, EchoServer)?;
    announce(&bound)?;
    Loop::new().run(&mut map)?;
    Ok(())
}
