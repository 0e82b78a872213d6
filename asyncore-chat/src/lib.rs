//! Python's `asynchat` in Rust (in progress): `async_chat` with terminators (a byte string,
//! a byte count, or none), producers, and bounded input and output, on top of
//! `asyncore-core`'s buffered-send layer.
