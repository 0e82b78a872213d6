//! The address of `MAIL FROM:` and `RCPT TO:`, as CPython's smtpd reads it: its
//! `_getaddr`, over `email._header_value_parser`'s `get_angle_addr` and `get_addr_spec`
//! (RFC 5322's `angle-addr` and `addr-spec`, with the obsolete forms it accepts: a route
//! before the address, dots in a row, comments and folding white space anywhere).

/// Why an address could not be read: smtpd's parser raises, and the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrError(pub String);

impl std::fmt::Display for AddrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for AddrError {}

/// RFC 5322's specials; an atom ends at one of them or at white space.
const SPECIALS: &str = "()<>@,:;.\\\"[]";

fn ends_atom(c: char) -> bool {
    SPECIALS.contains(c) || c.is_whitespace()
}

/// smtpd's `_getaddr(arg)`: the address (its `addr_spec`, or `<>` for the null path) and
/// the rest of `arg` after it (the parameters). Empty for an empty `arg`.
///
/// ```
/// use asyncore_examples::smtp::getaddr;
/// assert_eq!(getaddr("<a@b.com> SIZE=100")?, ("a@b.com".into(), "SIZE=100".into()));
/// assert_eq!(getaddr(" a @ b")?, ("a@b".into(), "".into()));
/// assert_eq!(getaddr("<>")?, ("<>".into(), "".into()));
/// assert!(getaddr("@b").is_err()); // smtpd's parser raises: the connection closes
/// # Ok::<(), asyncore_examples::smtp::AddrError>(())
/// ```
///
/// # Errors
/// The text holds no atom or quoted string where the local part must start.
pub fn getaddr(arg: &str) -> Result<(String, String), AddrError> {
    if arg.is_empty() {
        return Ok((String::new(), String::new()));
    }
    let mut p = Parser { s: arg, pos: 0 };
    let address = if arg.trim_start().starts_with('<') {
        p.angle_addr()?
    } else {
        p.addr_spec()?
    };
    Ok((address, p.s[p.pos..].to_string()))
}

struct Parser<'a> {
    s: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<char> {
        self.s[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            return true;
        }
        false
    }

    /// Folding white space and comments (nested, with quoted pairs).
    fn cfws(&mut self) {
        loop {
            match self.peek() {
                Some(c) if c.is_whitespace() => self.pos += c.len_utf8(),
                Some('(') => self.comment(),
                _ => return,
            }
        }
    }

    fn comment(&mut self) {
        let mut depth = 0usize;
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        return;
                    }
                }
                '\\' => {
                    if let Some(q) = self.peek() {
                        self.pos += q.len_utf8();
                    }
                }
                _ => {}
            }
        }
    }

    fn atom(&mut self) -> Option<String> {
        let start = self.pos;
        while let Some(c) = self.peek().filter(|&c| !ends_atom(c)) {
            self.pos += c.len_utf8();
        }
        (self.pos > start).then(|| self.s[start..self.pos].to_string())
    }

    /// A quoted string's content, unquoted (quoted pairs resolved); an unterminated one
    /// runs to the end, as the parser lets it.
    fn quoted(&mut self) -> String {
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            match c {
                '"' => break,
                '\\' => {
                    if let Some(q) = self.peek() {
                        self.pos += q.len_utf8();
                        out.push(q);
                    }
                }
                c => out.push(c),
            }
        }
        out
    }

    /// One word of a local part: an atom or a quoted string, with the CFWS around it.
    fn word(&mut self) -> Option<String> {
        self.cfws();
        let word = if self.eat('"') {
            Some(self.quoted())
        } else {
            self.atom()
        };
        self.cfws();
        word
    }

    /// `local-part [ "@" domain ]` and the CFWS after it, as `addr_spec` writes it: the
    /// local part quoted when it holds a special or white space.
    fn addr_spec(&mut self) -> Result<String, AddrError> {
        let Some(first) = self.word() else {
            let rest = &self.s[self.pos..];
            return Err(AddrError(format!(
                "Expected 'atom' or 'quoted-string' but found '{rest}'"
            )));
        };
        let mut local = first;
        // Dots between words, also in a row (the obsolete local part).
        while self.peek() == Some('.') {
            while self.eat('.') {
                local.push('.');
            }
            if let Some(word) = self.word() {
                local.push_str(&word);
            }
        }
        let quoted = local.chars().any(|c| c != '.' && ends_atom(c));
        let mut spec = if quoted {
            format!("\"{}\"", local.replace('\\', "\\\\").replace('"', "\\\""))
        } else {
            local
        };
        if self.eat('@') {
            spec.push('@');
            spec.push_str(&self.domain());
        }
        Ok(spec)
    }

    /// A dot-atom domain or a domain literal, with the CFWS around it.
    fn domain(&mut self) -> String {
        self.cfws();
        let mut out = String::new();
        if self.eat('[') {
            out.push('[');
            while let Some(c) = self.peek() {
                self.pos += c.len_utf8();
                if c.is_whitespace() {
                    continue;
                }
                out.push(c);
                if c == ']' {
                    break;
                }
            }
        } else {
            if let Some(atom) = self.atom() {
                out.push_str(&atom);
            }
            loop {
                self.cfws();
                if !self.eat('.') {
                    break;
                }
                out.push('.');
                self.cfws();
                if let Some(atom) = self.atom() {
                    out.push_str(&atom);
                }
            }
        }
        self.cfws();
        out
    }

    /// `"<" [obs-route] addr-spec ">"` (or `<>`), and the CFWS after it. A missing `>` is
    /// let go, as the parser does.
    fn angle_addr(&mut self) -> Result<String, AddrError> {
        self.cfws();
        self.eat('<');
        if self.eat('>') {
            self.cfws();
            return Ok("<>".to_string());
        }
        self.cfws();
        if self.peek() == Some('@') {
            // The obsolete route: `@a,@b:` before the address, dropped.
            if let Some(colon) = self.s[self.pos..].find(':') {
                self.pos += colon + 1;
            }
        }
        let spec = self.addr_spec()?;
        self.eat('>');
        self.cfws();
        Ok(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::getaddr;

    /// What CPython 3.11's `SMTPChannel._getaddr` returns for each (recorded with it).
    #[test]
    fn reads_addresses_as_smtpd_does() {
        let cases = [
            ("<a@b.com>", "a@b.com", ""),
            ("a@b.com", "a@b.com", ""),
            ("<a@b.com> SIZE=100", "a@b.com", "SIZE=100"),
            ("<>", "<>", ""),
            ("< a@b.com >", "a@b.com", ""),
            ("\"x y\"@b.com", "\"x y\"@b.com", ""),
            ("<\"x y\"@b.com>", "\"x y\"@b.com", ""),
            ("a.b@c", "a.b@c", ""),
            ("<a>", "a", ""),
            ("a", "a", ""),
            ("<@x,@y:a@b>", "a@b", ""),
            ("a@[1.2.3.4]", "a@[1.2.3.4]", ""),
            (" a@b.com", "a@b.com", ""),
            ("<a@b.com", "a@b.com", ""),
            ("a@b.com>", "a@b.com", ">"),
            ("a @ b", "a@b", ""),
            ("(c)a@b", "a@b", ""),
            ("<a@b.com>x", "a@b.com", "x"),
            ("Ä@b.com", "Ä@b.com", ""),
            ("<a..b@c>", "a..b@c", ""),
            (
                "a@b.com SIZE=1 BODY=8BITMIME",
                "a@b.com",
                "SIZE=1 BODY=8BITMIME",
            ),
        ];
        for (arg, address, rest) in cases {
            assert_eq!(
                getaddr(arg).unwrap(),
                (address.to_string(), rest.to_string()),
                "{arg:?}"
            );
        }
        assert!(getaddr("@b").is_err());
        assert_eq!(getaddr("").unwrap(), (String::new(), String::new()));
    }
}
