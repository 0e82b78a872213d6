//! Port of CPython's `FileWrapperTest` and the file-dispatcher scenarios of issue 4:
//! pipes, regular files and a child process's output through the loop, on both backends.

#![cfg(unix)]

mod util;

use asyncore_core::{Channel, Context, Dispatcher, HandlerResult, SocketMap};
use asyncore_file::{file_dispatcher, file_dispatcher_from_raw_fd, FileWrapper};
use std::cell::RefCell;
use std::io::Read;
use std::rc::Rc;
use util::{run_until, Backend, TestDir};

const DATA: &[u8] = b"It's not dead, it's sleeping!";

/// Python: `FileWrapperTest.test_recv`.
#[test]
fn recv() {
    let dir = TestDir::new();
    let path = dir.fresh_path("txt");
    std::fs::write(&path, DATA).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let w = FileWrapper::new(&file).unwrap();
    let original = std::os::fd::AsRawFd::as_raw_fd(&file);
    drop(file);
    assert_ne!(w.fileno(), Some(original), "the wrapper holds a duplicate");
    let mut buf = [0u8; 13];
    assert_eq!(w.recv(&mut buf).unwrap(), 13);
    assert_eq!(&buf, b"It's not dead");
    let mut buf = [0u8; 6];
    assert_eq!(w.read(&mut buf).unwrap(), 6);
    assert_eq!(&buf, b", it's");
    w.close().unwrap();
    assert!(w.read(&mut buf).is_err(), "reading after close fails");
}

/// Python: `FileWrapperTest.test_send`.
#[test]
fn send() {
    let dir = TestDir::new();
    let path = dir.fresh_path("txt");
    std::fs::write(&path, DATA).unwrap();
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap();
    let w = FileWrapper::new(&file).unwrap();
    drop(file);
    assert_eq!(w.write(b"\n").unwrap(), 1);
    assert_eq!(w.send(DATA).unwrap(), DATA.len());
    w.close().unwrap();
    let mut expected = DATA.to_vec();
    expected.push(b'\n');
    expected.extend_from_slice(DATA);
    assert_eq!(std::fs::read(&path).unwrap(), expected);
}

/// Collects everything it reads until end of stream.
struct Collect(Rc<RefCell<Vec<u8>>>);

impl Dispatcher for Collect {
    fn writable(&self, _: &Channel) -> bool {
        false
    }
    fn handle_read(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        let mut buf = [0u8; 4096];
        let n = ctx.recv(&mut buf)?;
        self.0.borrow_mut().extend_from_slice(&buf[..n]);
        Ok(())
    }
    fn handle_close(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        ctx.close()?;
        Ok(())
    }
}

/// Python: `FileWrapperTest.test_dispatcher`: a file_dispatcher made from the number of a
/// regular file opened read-only, whose original is closed at once, reads the file.
mod dispatcher {
    use super::*;
    use std::os::fd::AsRawFd;

    fn run(backend: Backend) {
        let dir = TestDir::new();
        let path = dir.fresh_path("txt");
        std::fs::write(&path, DATA).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let chan = file_dispatcher_from_raw_fd(file.as_raw_fd()).unwrap();
        drop(file); // Python: os.close(fd)
        assert!(chan.connected());
        let got = Rc::new(RefCell::new(Vec::new()));
        let mut map = SocketMap::new();
        map.insert(chan, Collect(got.clone())).unwrap();
        run_until(&mut map, backend, "the file read to its end", |m| {
            m.is_empty()
        });
        assert_eq!(*got.borrow(), DATA);
    }

    #[test]
    fn mio() {
        run(Backend::Mio);
    }

    #[test]
    fn poll() {
        run(Backend::Poll);
    }
}

/// Python: `FileWrapperTest.test_resource_warning` has no Rust meaning; the nearest real
/// property: dropping an open wrapper closes its descriptor exactly once (here: the pipe's
/// write end is closed, so the reader sees end of stream).
#[test]
fn resource_warning() {
    let (mut reader, writer) = std::io::pipe().unwrap();
    let w = FileWrapper::new(&writer).unwrap();
    drop(writer);
    w.send(b"last words").unwrap();
    drop(w);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest).unwrap();
    assert_eq!(
        rest, b"last words",
        "end of stream after the wrapper was dropped"
    );
}

/// Closing twice is not an error. (The error-reporting half of Python's `test_close_twice`,
/// which closes the descriptor behind the wrapper's back, is in `file_wrapper_close.rs`,
/// a binary of its own, since closing a descriptor by number races with other tests.)
#[test]
fn close_twice() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let w = FileWrapper::new(&reader).unwrap();
    w.close().unwrap();
    assert_eq!(w.fileno(), None);
    w.close().unwrap();
}

#[test]
fn getsockopt_answers_so_error_and_refuses_the_rest() {
    let (reader, _writer) = std::io::pipe().unwrap();
    let w = FileWrapper::new(&reader).unwrap();
    assert_eq!(w.getsockopt(libc::SOL_SOCKET, libc::SO_ERROR).unwrap(), 0);
    let err = w.getsockopt(libc::SOL_SOCKET, libc::SO_RCVBUF).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::Unsupported);
}

#[test]
fn wrapping_a_closed_descriptor_is_a_clear_error() {
    let err = FileWrapper::from_raw_fd(-1).unwrap_err();
    assert_eq!(err.raw_os_error(), None);
    assert!(
        err.to_string().contains("cannot wrap descriptor -1"),
        "{err}"
    );
    let err = file_dispatcher_from_raw_fd(-1).unwrap_err();
    assert!(
        err.to_string().contains("cannot wrap descriptor -1"),
        "{err}"
    );
}

/// More buffers than one `writev` takes (IOV_MAX) make a shorter write, not an error.
#[test]
fn write_vectored_past_iov_max_writes_a_prefix() {
    use asyncore_core::RawIo;
    use std::io::IoSlice;

    let (mut reader, writer) = std::io::pipe().unwrap();
    let w = FileWrapper::new(&writer).unwrap();
    drop(writer);
    let bytes: Vec<u8> = (0..2000u32).map(|i| (i % 251) as u8).collect();
    let slices: Vec<IoSlice<'_>> = bytes.chunks(1).map(IoSlice::new).collect();
    let n = RawIo::write_vectored(&w, &slices).unwrap();
    assert!(n > 0 && n < bytes.len(), "wrote {n} of {}", bytes.len());
    drop(w);
    let mut got = Vec::new();
    reader.read_to_end(&mut got).unwrap();
    assert_eq!(got, bytes[..n]);
}

/// Writes `data` through its output queue, then closes.
struct Writer {
    data: Option<Vec<u8>>,
}

impl Dispatcher for Writer {
    fn readable(&self, _: &Channel) -> bool {
        false
    }
    fn writable(&self, chan: &Channel) -> bool {
        self.data.is_some() || !chan.out_queue().is_empty()
    }
    fn handle_write(&mut self, ctx: &mut Context<'_>) -> HandlerResult {
        if let Some(data) = self.data.take() {
            ctx.push(data)?;
        } else {
            ctx.initiate_send()?;
        }
        if ctx.out_queue().is_empty() {
            ctx.close()?;
        }
        Ok(())
    }
}

/// A writer and a reader dispatcher on the two ends of one pipe, in one loop: 16 MiB
/// arrive intact.
mod pipe_16_mib {
    use super::*;

    fn run(backend: Backend) {
        let data: Vec<u8> = (0..16 * 1024 * 1024u32)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let (reader, writer) = std::io::pipe().unwrap();
        let got = Rc::new(RefCell::new(Vec::with_capacity(data.len())));
        let mut map = SocketMap::new();
        map.insert(file_dispatcher(&reader).unwrap(), Collect(got.clone()))
            .unwrap();
        map.insert(
            file_dispatcher(&writer).unwrap(),
            Writer {
                data: Some(data.clone()),
            },
        )
        .unwrap();
        drop((reader, writer));
        run_until(&mut map, backend, "16 MiB through the pipe", |m| {
            m.is_empty()
        });
        let got = got.borrow();
        assert_eq!(got.len(), data.len());
        assert!(*got == data, "bytes differ");
    }

    #[test]
    fn mio() {
        run(Backend::Mio);
    }

    #[test]
    fn poll() {
        run(Backend::Poll);
    }
}

/// A regular file (epoll refuses it) is read to its end through the loop.
mod regular_file {
    use super::*;

    fn run(backend: Backend) {
        let dir = TestDir::new();
        let path = dir.fresh_path("bin");
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = std::fs::File::open(&path).unwrap();
        let got = Rc::new(RefCell::new(Vec::new()));
        let mut map = SocketMap::new();
        map.insert(file_dispatcher(&file).unwrap(), Collect(got.clone()))
            .unwrap();
        run_until(&mut map, backend, "the file read to its end", |m| {
            m.is_empty()
        });
        assert!(*got.borrow() == data, "file content differs");
    }

    #[test]
    fn mio() {
        run(Backend::Mio);
    }

    #[test]
    fn poll() {
        run(Backend::Poll);
    }
}

/// A child process's output, read through a pipe until the child exits.
mod child_output {
    use super::*;

    fn run(backend: Backend) {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "for i in 1 2 3; do echo line$i; done"])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let got = Rc::new(RefCell::new(Vec::new()));
        let mut map = SocketMap::new();
        map.insert(file_dispatcher(&stdout).unwrap(), Collect(got.clone()))
            .unwrap();
        drop(stdout);
        run_until(&mut map, backend, "the child's output to end", |m| {
            m.is_empty()
        });
        assert!(child.wait().unwrap().success());
        assert_eq!(*got.borrow(), b"line1\nline2\nline3\n");
    }

    #[test]
    fn mio() {
        run(Backend::Mio);
    }

    #[test]
    fn poll() {
        run(Backend::Poll);
    }
}
