//! Redis's string helpers, as the parser and the commands need them: `string2ll` (the
//! integers of headers and arguments) and `sdssplitargs` (the arguments of an inline
//! request, with redis-cli's quotes and escapes).

use std::ops::Range;

/// Redis's `string2ll`: an optional `-`, then `0` alone or digits without a leading zero;
/// no `+`, no spaces, no `-0`, at most 20 bytes, within `i64`.
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    if s.is_empty() || s.len() >= 21 {
        return None;
    }
    if s == b"0" {
        return Some(0);
    }
    let (negative, digits) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    match digits.first() {
        Some(b'1'..=b'9') => {}
        _ => return None,
    }
    let mut v: u64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if negative {
        0i64.checked_sub_unsigned(v)
    } else {
        i64::try_from(v).ok()
    }
}

/// C's `isspace` in the C locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Redis's `sdssplitargs`: splits an inline request into arguments. Outside quotes, space,
/// tab, `\r`, `\n` end an argument; `"..."` takes the escapes `\n \r \t \b \a \xHH \X`;
/// `'...'` takes `\'`; a closing quote must be followed by a space or the end. The line is
/// a C string to Redis, so it ends at its first NUL byte. `None` for unbalanced quotes.
///
/// ```
/// use asyncore_examples::resp::split_args;
/// assert_eq!(split_args(b"SET \"a b\" 'it\\'s'"), Some(vec![b"SET".to_vec(), b"a b".to_vec(), b"it's".to_vec()]));
/// assert_eq!(split_args(b"ECHO \"open"), None);
/// ```
pub fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let (mut buf, mut ranges) = (Vec::new(), Vec::new());
    split_args_into(line, &mut buf, &mut ranges)
        .then(|| ranges.into_iter().map(|r| buf[r].to_vec()).collect())
}

/// [`split_args`] into reused memory: the arguments' bytes go to `buf` and where each one
/// is to `ranges` (both cleared first). `false` for unbalanced quotes.
pub(crate) fn split_args_into(
    line: &[u8],
    buf: &mut Vec<u8>,
    ranges: &mut Vec<Range<usize>>,
) -> bool {
    buf.clear();
    ranges.clear();
    let line = match memchr_nul(line) {
        Some(i) => &line[..i],
        None => line,
    };
    // Byte `i` of the line, or NUL past its end (as C reads it).
    let at = |i: usize| line.get(i).copied().unwrap_or(0);
    let mut p = 0;
    loop {
        while p < line.len() && is_space(line[p]) {
            p += 1;
        }
        if p == line.len() {
            return true;
        }
        let start = buf.len();
        // The quote we are inside, if any.
        let mut quote: Option<u8> = None;
        let mut done = false;
        while !done {
            let c = at(p);
            if let Some(q) = quote {
                let hex = (hex_value(at(p + 2)), hex_value(at(p + 3)));
                if let (b'"', b'\\', b'x', (Some(hi), Some(lo))) = (q, c, at(p + 1), hex) {
                    buf.push(hi * 16 + lo);
                    p += 3;
                } else if q == b'"' && c == b'\\' && at(p + 1) != 0 {
                    p += 1;
                    buf.push(match line[p] {
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'b' => 0x08,
                        b'a' => 0x07,
                        other => other,
                    });
                } else if q == b'\'' && c == b'\\' && at(p + 1) == b'\'' {
                    p += 1;
                    buf.push(b'\'');
                } else if c == q {
                    // A closing quote must be followed by a blank or the end.
                    if at(p + 1) != 0 && !is_space(at(p + 1)) {
                        return false;
                    }
                    done = true;
                } else if c == 0 {
                    return false; // the line ended inside the quotes
                } else {
                    buf.push(c);
                }
            } else {
                match c {
                    b' ' | b'\n' | b'\r' | b'\t' | 0 => done = true,
                    b'"' | b'\'' => quote = Some(c),
                    _ => buf.push(c),
                }
            }
            if p < line.len() {
                p += 1;
            }
        }
        ranges.push(start..buf.len());
    }
}

fn memchr_nul(line: &[u8]) -> Option<usize> {
    line.iter().position(|&b| b == 0)
}
