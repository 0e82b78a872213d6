//! The unix implementation: everything here works on raw descriptors.

mod dispatcher;
mod wrapper;

pub use dispatcher::file_dispatcher;
pub use wrapper::FileWrapper;
