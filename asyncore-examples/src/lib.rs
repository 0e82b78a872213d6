//! Runnable asyncore-rs programs (in progress): the classic asyncore examples, a chat
//! server and a Redis-protocol server.
