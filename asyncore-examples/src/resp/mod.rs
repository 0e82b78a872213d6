//! A Redis-protocol (RESP2) server on `async_chat`: the protocol pieces of `resp_server`.
//!
//! - [`parser`]: requests (inline and multibulk) cut out of the input in place, with Redis's
//!   leniencies and error texts.
//! - [`reply`]: replies and their exact encoding.
//! - [`store`]: the key space, with expiry times.
//! - [`server`]: the listener and the per-connection `async_chat` handler.
//! - [`commands`]: dispatch and the commands, with Redis's error texts.
//!
//! Replies are byte for byte those of Debian's `redis-server` 7.0 for the same requests
//! (run with `--databases 1`); `tests/data/resp_cases.txt` records them.

mod admin;
pub mod commands;
pub mod parser;
pub mod reply;
pub mod server;
pub mod store;
mod text;

pub use commands::{execute, with_args, Action, Exec, Session};
pub use parser::{
    parse_i64, split_args, ArgSlices, Limits, Parsed, ProtocolError, RequestParser,
    DEFAULT_MAX_BULK, DEFAULT_MAX_REQUEST, MAX_INLINE,
};
pub use reply::{Encoder, Reply};
pub use server::{lock, RespConnection, RespServer, Settings, SharedStore};
pub use store::{Expiry, Store};
