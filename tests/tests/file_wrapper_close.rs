//! Python's `FileWrapperTest.test_close_twice`, whole: the descriptor is closed behind the
//! wrapper's back, so its first close reports the error and its second does nothing.
//!
//! A binary with a single test: closing a descriptor by number while other threads open
//! descriptors could close one of theirs.

#![cfg(unix)]

use asyncore_file::FileWrapper;

#[test]
fn close_twice() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let w = FileWrapper::new(&reader).unwrap();
    drop(reader);
    let fd = w.fileno().unwrap();
    // SAFETY: closes the wrapper's own descriptor behind its back, as the Python test
    // does; no other thread runs in this binary, so the number cannot be reused meanwhile.
    assert_eq!(unsafe { libc::close(fd) }, 0);
    let err = w.close().unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EBADF));
    assert_eq!(w.fileno(), None);
    w.close().unwrap();
}
