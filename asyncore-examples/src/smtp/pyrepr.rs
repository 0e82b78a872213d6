//! Python's `repr` of the values DebuggingServer prints: byte strings (each line of a
//! message) and lists of strings (the MAIL and RCPT options).

/// `repr(b)` of a Python `bytes`: `b'...'`, or `b"..."` when the bytes hold a `'` and no
/// `"`; `\\`, the quote, `\t`, `\n`, `\r` escaped, other bytes outside 0x20..0x7e as
/// `\xNN`.
///
/// ```
/// use asyncore_examples::smtp::bytes_repr;
/// assert_eq!(bytes_repr(b"Subject: hi"), "b'Subject: hi'");
/// assert_eq!(bytes_repr(b"it's"), "b\"it's\"");
/// assert_eq!(bytes_repr(b"\xc3\xa9\t\\"), "b'\\xc3\\xa9\\t\\\\'");
/// ```
pub fn bytes_repr(b: &[u8]) -> String {
    let quote = if b.contains(&b'\'') && !b.contains(&b'"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(b.len() + 3);
    out.push('b');
    out.push(quote);
    for &c in b {
        match c {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            c if char::from(c) == quote => {
                out.push('\\');
                out.push(quote);
            }
            0x20..=0x7e => out.push(char::from(c)),
            c => out.push_str(&format!("\\x{c:02x}")),
        }
    }
    out.push(quote);
    out
}

/// `repr(s)` of a Python `str` (printable characters as they are).
fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if c == quote => {
                out.push('\\');
                out.push(quote);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `repr(list)` of a Python list of strings: `['A', 'B']`.
///
/// ```
/// use asyncore_examples::smtp::list_repr;
/// assert_eq!(list_repr(&["BODY=8BITMIME".into(), "SMTPUTF8".into()]), "['BODY=8BITMIME', 'SMTPUTF8']");
/// ```
pub fn list_repr(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|s| str_repr(s)).collect();
    format!("[{}]", inner.join(", "))
}
