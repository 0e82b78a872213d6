//! Runnable asyncore-rs programs, and the pieces they share.
//!
//! The programs (binaries of this crate; `cargo build --release -p asyncore-examples`):
//!
//! | program | what it shows |
//! |---|---|
//! | `http_client URL...` | the classic asyncore HTTP client: one channel per URL, all in one loop |
//! | `echo_pair [--file PATH]` | PyMOTW's echo server and client in one process and one map |
//! | `echo_server [--listen HOST:PORT]` | the docs' echo server on `DispatcherWithSend` |
//! | `loop_count URL...` | driving the loop one pass at a time (`count = 1`) from your own `while` |
//! | `file_reader PATH` | PyMOTW's `file_dispatcher` reader; `-` reads standard input |
//! | `chat_server [--listen HOST:PORT] [--max-line BYTES] [--idle-timeout SECS]` | a multi-user line chat on `async_chat` |
//! | `resp_server [--listen HOST:PORT] [--max-bulk BYTES]` | a Redis-protocol (RESP2) server on `async_chat`: `redis-cli` and `redis-benchmark` talk to it |
//! | `smtp_server [--listen HOST:PORT] [--hostname NAME] [-s BYTES] [-u]` | CPython's `smtpd` ported, a drop-in for `python -m smtpd -n -c DebuggingServer` |
//!
//! Every server takes `--listen HOST:PORT` and prints exactly one line `listening on
//! HOST:PORT` once it listens (so `--listen 127.0.0.1:0` works). Logging goes through
//! `env_logger` (`RUST_LOG=debug`). A bad argument prints usage to standard error and exits 2.

#![deny(missing_docs, missing_debug_implementations)]

pub mod chat;
pub mod cli;
pub mod http;
pub mod resp;
mod signals;
pub mod smtp;
pub mod tls;
