//! `socket.getfqdn()`: the name smtpd greets with.

use std::ffi::{CStr, CString};

/// Python's `socket.getfqdn()`: this host's name, resolved to an address whose name is
/// looked up in turn (`gethostbyaddr(gethostname())`); the host name itself when either
/// lookup fails. (Python also looks through the aliases for a name with a dot; the
/// reverse lookup here gives the canonical name only.)
pub fn getfqdn() -> String {
    let host = hostname();
    reverse_name(&host).unwrap_or(host)
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "localhost".to_string();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The name of the first address `host` resolves to, by a reverse lookup.
fn reverse_name(host: &str) -> Option<String> {
    let host = CString::new(host).ok()?;
    let mut res: *mut libc::addrinfo = std::ptr::null_mut();
    // SAFETY: an all-zero addrinfo is a valid "no hints" value.
    let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
    hints.ai_socktype = libc::SOCK_STREAM;
    // SAFETY: `host` is a NUL-terminated string, `hints` a valid addrinfo and `res` a
    // place for the result list, which is freed below.
    let rc = unsafe { libc::getaddrinfo(host.as_ptr(), std::ptr::null(), &hints, &mut res) };
    if rc != 0 || res.is_null() {
        return None;
    }
    let mut name = [0 as libc::c_char; 1025];
    // SAFETY: `res` is the non-null list getaddrinfo gave; its first entry's address and
    // length describe a valid sockaddr; `name` is writable for the length passed.
    let rc = unsafe {
        let ai = &*res;
        libc::getnameinfo(
            ai.ai_addr,
            ai.ai_addrlen,
            name.as_mut_ptr(),
            name.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    // SAFETY: `res` came from getaddrinfo and is freed once.
    unsafe { libc::freeaddrinfo(res) };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo succeeded, so `name` holds a NUL-terminated string.
    let name = unsafe { CStr::from_ptr(name.as_ptr()) };
    Some(name.to_string_lossy().into_owned())
}
