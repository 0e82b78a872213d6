//! The echo server of Python's asyncore documentation, on `DispatcherWithSend`.
//!
//! ```text
//! echo_server [--listen HOST:PORT] [--threads N]     (default 127.0.0.1:8080, 1 thread)
//! ```
//! With `--threads N`, N loops on N threads share the port (`SO_REUSEPORT`). SIGINT or
//! SIGTERM shuts down gracefully: queued echoes are sent, then the program exits 0.

use asyncore_core::{
    Channel, Context, Dispatcher, DispatcherWithSend, DisplayAddr, HandlerResult, SockAddr, Socket,
};
use asyncore_examples::cli::{serve, Args};

const USAGE: &str =
    "usage: echo_server [--listen HOST:PORT] [--threads N]   (default 127.0.0.1:8080, 1 thread)";

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
        let mut chan = Channel::from_socket(sock)?;
        chan.set_nodelay(true)?;
        ctx.insert(chan, DispatcherWithSend::new(EchoHandler))?;
        Ok(())
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut args = Args::from_env(USAGE);
    let addr = args.listen("127.0.0.1:8080");
    let threads: usize = args.parsed("--threads", 1);
    args.finish();
    if threads == 0 {
        asyncore_examples::cli::usage_error(USAGE, "--threads must be at least 1");
    }
    serve(addr, threads, || EchoServer)
}
