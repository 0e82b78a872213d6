//! The unix implementation: everything here works on raw descriptors.

mod dispatcher;
mod wrapper;

pub use dispatcher::{file_dispatcher, file_dispatcher_from_raw_fd};
pub use wrapper::FileWrapper;
