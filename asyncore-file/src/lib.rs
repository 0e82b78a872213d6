//! Python's `asyncore.file_wrapper` and `file_dispatcher` in Rust (in progress): pipes,
//! terminals and files in the same map and loop as sockets. Unix only.
