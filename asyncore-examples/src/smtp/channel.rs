//! `SMTPChannel`: one SMTP conversation, its states and its commands.

use super::{getaddr, limits, Message, Settings, COMMAND_SIZE_LIMIT, VERSION};
use asyncore_chat::{ChatContext, ChatError, ChatHandler, Terminator};
use asyncore_core::{BoxError, HandlerResult};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Command,
    Data,
}

/// `SMTPChannel`: one SMTP conversation.
#[derive(Debug)]
pub struct SmtpChannel {
    settings: Settings,
    peer: String,
    smtp_state: State,
    mailfrom: Option<String>,
    rcpttos: Vec<String>,
    require_smtputf8: bool,
    num_bytes: usize,
    received_lines: Vec<u8>,
    seen_greeting: String,
    extended_smtp: bool,
    mail_options: Vec<String>,
    rcpt_options: Vec<String>,
    /// STARTTLS has upgraded the conversation.
    tls_active: bool,
}

/// Why a conversation ends without a reply, where smtpd raised.
#[derive(Debug)]
struct Raised(String);

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Raised {}

impl SmtpChannel {
    /// A conversation with the client at `peer`.
    pub fn new(settings: Settings, peer: String) -> SmtpChannel {
        SmtpChannel {
            settings,
            peer,
            smtp_state: State::Command,
            mailfrom: None,
            rcpttos: Vec::new(),
            require_smtputf8: false,
            num_bytes: 0,
            received_lines: Vec::new(),
            seen_greeting: String::new(),
            extended_smtp: false,
            mail_options: Vec::new(),
            rcpt_options: Vec::new(),
            tls_active: false,
        }
    }

    fn set_post_data_state(&mut self, chat: &mut ChatContext<'_, '_>) {
        self.smtp_state = State::Command;
        self.mailfrom = None;
        self.rcpttos.clear();
        self.require_smtputf8 = false;
        self.num_bytes = 0;
        chat.set_terminator(Terminator::CRLF);
    }

    fn set_rset_state(&mut self, chat: &mut ChatContext<'_, '_>) {
        self.set_post_data_state(chat);
        self.received_lines.clear();
    }

    /// smtpd's `push`: the reply and `\r\n`, in ASCII (UTF-8 once SMTPUTF8 is required);
    /// a reply that does not encode raises there, and closes here. Pushes after QUIT are
    /// dropped, as smtpd's are (they queue behind the close).
    fn push(&self, chat: &mut ChatContext<'_, '_>, msg: &str) -> HandlerResult {
        if !self.require_smtputf8 && !msg.is_ascii() {
            return Err(Raised(format!("'ascii' codec can't encode {msg:?}")).into());
        }
        match chat.push(format!("{msg}\r\n")) {
            Ok(()) | Err(ChatError::Closing) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    fn command(&mut self, chat: &mut ChatContext<'_, '_>, line: &[u8]) -> HandlerResult {
        let sz = std::mem::take(&mut self.num_bytes);
        if line.is_empty() {
            return self.push(chat, "500 Error: bad syntax");
        }
        let line = std::str::from_utf8(line)
            .map_err(|e| Raised(format!("'utf-8' codec can't decode the command: {e}")))?;
        let (command, arg) = match line.find(' ') {
            None => (line.to_uppercase(), None),
            Some(i) => (line[..i].to_uppercase(), Some(line[i + 1..].trim())),
        };
        let max_sz = if self.extended_smtp {
            limits(chat.map(), |l| l.get(&command))
        } else {
            COMMAND_SIZE_LIMIT
        };
        if sz > max_sz {
            return self.push(chat, "500 Error: line too long");
        }
        match command.as_str() {
            "HELO" => self.smtp_helo(chat, arg),
            "EHLO" => self.smtp_ehlo(chat, arg),
            "NOOP" => self.smtp_noop(chat, arg),
            "QUIT" => {
                self.push(chat, "221 Bye")?;
                chat.close_when_done();
                Ok(())
            }
            "HELP" => self.smtp_help(chat, arg),
            "VRFY" => self.smtp_vrfy(chat, arg),
            "MAIL" => self.smtp_mail(chat, arg),
            "RCPT" => self.smtp_rcpt(chat, arg),
            "RSET" => self.smtp_rset(chat, arg),
            "DATA" => self.smtp_data(chat, arg),
            "EXPN" => self.push(chat, "502 EXPN not implemented"),
            "STARTTLS" if self.settings.tls.is_some() => self.smtp_starttls(chat, arg),
            other => self.push(
                chat,
                &format!("500 Error: command \"{other}\" not recognized"),
            ),
        }
    }

    /// HELO's and EHLO's common part: `Ok(false)` when it was refused (and answered).
    fn greet(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        verb: &str,
        arg: Option<&str>,
    ) -> Result<bool, BoxError> {
        let arg = arg.unwrap_or("");
        if arg.is_empty() {
            self.push(chat, &format!("501 Syntax: {verb} hostname"))?;
            return Ok(false);
        }
        if !self.seen_greeting.is_empty() {
            self.push(chat, "503 Duplicate HELO/EHLO")?;
            return Ok(false);
        }
        self.set_rset_state(chat);
        self.seen_greeting = arg.to_string();
        Ok(true)
    }

    fn smtp_helo(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        if self.greet(chat, "HELO", arg)? {
            let reply = format!("250 {}", self.settings.hostname);
            self.push(chat, &reply)?;
        }
        Ok(())
    }

    fn smtp_ehlo(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        if !self.greet(chat, "EHLO", arg)? {
            return Ok(());
        }
        self.extended_smtp = true;
        let reply = format!("250-{}", self.settings.hostname);
        self.push(chat, &reply)?;
        if let Some(limit) = self.settings.data_size_limit.filter(|&l| l > 0) {
            self.push(chat, &format!("250-SIZE {limit}"))?;
            limits(chat.map(), |l| l.add("MAIL", 26));
        }
        self.push(chat, "250-8BITMIME")?;
        if self.settings.enable_smtputf8 {
            self.push(chat, "250-SMTPUTF8")?;
            limits(chat.map(), |l| l.add("MAIL", 10));
        }
        if self.settings.tls.is_some() && !self.tls_active {
            self.push(chat, "250-STARTTLS")?;
        }
        self.push(chat, "250 HELP")
    }

    /// RFC 3207 (not in smtpd): `220`, then TLS in place. What the client sent behind the
    /// command in plaintext is dropped unread (the injection of CVE-2011-0411), and the
    /// conversation starts over: the client greets again.
    fn smtp_starttls(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        arg: Option<&str>,
    ) -> HandlerResult {
        if arg.is_some_and(|a| !a.is_empty()) {
            return self.push(chat, "501 Syntax: STARTTLS");
        }
        let Some(tls) = self.settings.tls.clone().filter(|_| !self.tls_active) else {
            return self.push(chat, "503 Error: TLS already active");
        };
        self.push(chat, "220 Ready to start TLS")?;
        crate::tls::start_in_place(chat, &tls)?;
        self.tls_active = true;
        self.seen_greeting.clear();
        self.extended_smtp = false;
        self.set_rset_state(chat);
        Ok(())
    }

    fn smtp_noop(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        if arg.is_some_and(|a| !a.is_empty()) {
            self.push(chat, "501 Syntax: NOOP")
        } else {
            self.push(chat, "250 OK")
        }
    }

    fn smtp_help(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        let Some(arg) = arg.filter(|a| !a.is_empty()) else {
            return self.push(
                chat,
                "250 Supported commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY",
            );
        };
        let extended = if self.extended_smtp {
            " [SP <mail-parameters>]"
        } else {
            ""
        };
        let reply = match arg.to_uppercase().as_str() {
            "EHLO" => "250 Syntax: EHLO hostname".to_string(),
            "HELO" => "250 Syntax: HELO hostname".to_string(),
            "MAIL" => format!("250 Syntax: MAIL FROM: <address>{extended}"),
            "RCPT" => format!("250 Syntax: RCPT TO: <address>{extended}"),
            "DATA" => "250 Syntax: DATA".to_string(),
            "RSET" => "250 Syntax: RSET".to_string(),
            "NOOP" => "250 Syntax: NOOP".to_string(),
            "QUIT" => "250 Syntax: QUIT".to_string(),
            "VRFY" => "250 Syntax: VRFY <address>".to_string(),
            _ => "501 Supported commands: EHLO HELO MAIL RCPT DATA RSET NOOP QUIT VRFY".to_string(),
        };
        self.push(chat, &reply)
    }

    fn smtp_vrfy(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        let Some(arg) = arg.filter(|a| !a.is_empty()) else {
            return self.push(chat, "501 Syntax: VRFY <address>");
        };
        let (address, _) = getaddr(arg)?;
        if address.is_empty() {
            self.push(chat, &format!("502 Could not VRFY {arg}"))
        } else {
            self.push(
                chat,
                "252 Cannot VRFY user, but will accept message and attempt delivery",
            )
        }
    }

    fn syntax_error(&self, verb: &str) -> String {
        let mut err = format!("501 Syntax: {verb} <address>");
        if self.extended_smtp {
            err.push_str(" [SP <mail-parameters>]");
        }
        err
    }

    fn smtp_mail(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        if self.seen_greeting.is_empty() {
            return self.push(chat, "503 Error: send HELO first");
        }
        let syntaxerr = self.syntax_error("MAIL FROM:");
        let Some(arg) = arg else {
            return self.push(chat, &syntaxerr);
        };
        let arg = strip_command_keyword("FROM:", arg);
        let (address, params) = getaddr(&arg)?;
        if address.is_empty() || (!self.extended_smtp && !params.is_empty()) {
            return self.push(chat, &syntaxerr);
        }
        if self.mailfrom.as_deref().is_some_and(|m| !m.is_empty()) {
            return self.push(chat, "503 Error: nested MAIL command");
        }
        self.mail_options = params
            .to_uppercase()
            .split_whitespace()
            .map(String::from)
            .collect();
        let Some(mut params) = getparams(&self.mail_options) else {
            return self.push(chat, &syntaxerr);
        };
        match params.remove("BODY") {
            None => {}
            Some(Param::Value(body)) if body == "7BIT" || body == "8BITMIME" => {}
            Some(_) => return self.push(chat, "501 Error: BODY can only be one of 7BIT, 8BITMIME"),
        }
        if self.settings.enable_smtputf8 {
            match params.remove("SMTPUTF8") {
                None => {}
                Some(Param::Flag) => self.require_smtputf8 = true,
                Some(Param::Value(_)) => {
                    return self.push(chat, "501 Error: SMTPUTF8 takes no arguments")
                }
            }
        }
        match params.remove("SIZE") {
            None => {}
            Some(Param::Value(size)) => {
                if !size.chars().all(|c| c.is_ascii_digit()) {
                    return self.push(chat, &syntaxerr);
                }
                let too_big = self.settings.data_size_limit.is_some_and(|limit| {
                    limit > 0 && size.parse::<u128>().map_or(true, |s| s > limit as u128)
                });
                if too_big {
                    return self.push(
                        chat,
                        "552 Error: message size exceeds fixed maximum message size",
                    );
                }
            }
            // `True.isdigit()`: smtpd raises.
            Some(Param::Flag) => {
                return Err(Raised("'bool' object has no attribute 'isdigit'".into()).into())
            }
        }
        if !params.is_empty() {
            return self.push(
                chat,
                "555 MAIL FROM parameters not recognized or not implemented",
            );
        }
        self.mailfrom = Some(address);
        self.push(chat, "250 OK")
    }

    fn smtp_rcpt(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        if self.seen_greeting.is_empty() {
            return self.push(chat, "503 Error: send HELO first");
        }
        if self.mailfrom.as_deref().is_none_or(str::is_empty) {
            return self.push(chat, "503 Error: need MAIL command");
        }
        let syntaxerr = self.syntax_error("RCPT TO:");
        let Some(arg) = arg else {
            return self.push(chat, &syntaxerr);
        };
        let arg = strip_command_keyword("TO:", arg);
        let (address, params) = getaddr(&arg)?;
        if address.is_empty() || (!self.extended_smtp && !params.is_empty()) {
            return self.push(chat, &syntaxerr);
        }
        self.rcpt_options = params
            .to_uppercase()
            .split_whitespace()
            .map(String::from)
            .collect();
        let Some(params) = getparams(&self.rcpt_options) else {
            return self.push(chat, &syntaxerr);
        };
        if !params.is_empty() {
            return self.push(
                chat,
                "555 RCPT TO parameters not recognized or not implemented",
            );
        }
        self.rcpttos.push(address);
        self.push(chat, "250 OK")
    }

    fn smtp_rset(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        if arg.is_some_and(|a| !a.is_empty()) {
            return self.push(chat, "501 Syntax: RSET");
        }
        self.set_rset_state(chat);
        self.push(chat, "250 OK")
    }

    fn smtp_data(&mut self, chat: &mut ChatContext<'_, '_>, arg: Option<&str>) -> HandlerResult {
        if self.seen_greeting.is_empty() {
            return self.push(chat, "503 Error: send HELO first");
        }
        if self.rcpttos.is_empty() {
            return self.push(chat, "503 Error: need RCPT command");
        }
        if arg.is_some_and(|a| !a.is_empty()) {
            return self.push(chat, "501 Syntax: DATA");
        }
        self.smtp_state = State::Data;
        chat.set_terminator(Terminator::literal(b"\r\n.\r\n"));
        self.push(chat, "354 End data with <CR><LF>.<CR><LF>")
    }

    fn data(&mut self, chat: &mut ChatContext<'_, '_>, line: &[u8]) -> HandlerResult {
        if self
            .settings
            .data_size_limit
            .is_some_and(|limit| limit > 0 && self.num_bytes > limit)
        {
            self.num_bytes = 0;
            return self.push(chat, "552 Error: Too much mail data");
        }
        // Undo the dot-stuffing (RFC 5321, 4.5.2), lines joined by `\n`.
        let mut data = Vec::with_capacity(line.len());
        for (i, text) in split_crlf(line).enumerate() {
            if i > 0 {
                data.push(b'\n');
            }
            data.extend_from_slice(text.strip_prefix(b".").unwrap_or(text));
        }
        let msg = Message {
            peer: self.peer.clone(),
            mailfrom: self.mailfrom.clone().unwrap_or_default(),
            rcpttos: self.rcpttos.clone(),
            data,
            mail_options: self.mail_options.clone(),
            rcpt_options: self.rcpt_options.clone(),
        };
        let status = (self.settings.process_message)(&msg);
        self.set_post_data_state(chat);
        self.push(chat, status.as_deref().unwrap_or("250 OK"))
    }
}

impl ChatHandler for SmtpChannel {
    /// smtpd's `__init__`: the shared limits cleared, the greeting pushed.
    fn handle_added(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        limits(chat.map(), |l| l.0.clear());
        let greeting = format!("220 {} {VERSION}", self.settings.hostname);
        self.push(chat, &greeting)
    }

    fn collect_incoming_data(
        &mut self,
        chat: &mut ChatContext<'_, '_>,
        data: &[u8],
    ) -> HandlerResult {
        let limit = match self.smtp_state {
            State::Command => Some(limits(chat.map(), |l| l.max())),
            State::Data => self.settings.data_size_limit.filter(|&l| l > 0),
        };
        if let Some(limit) = limit {
            if self.num_bytes > limit {
                return Ok(());
            }
            self.num_bytes += data.len();
        }
        self.received_lines.extend_from_slice(data);
        Ok(())
    }

    fn found_terminator(&mut self, chat: &mut ChatContext<'_, '_>) -> HandlerResult {
        let line = std::mem::take(&mut self.received_lines);
        match self.smtp_state {
            State::Command => self.command(chat, &line),
            State::Data => self.data(chat, &line),
        }
    }

    /// asyncore's `handle_error`: what smtpd raised closes the connection, after the
    /// replies already pushed (smtpd sent each as it pushed it).
    fn handle_error(&mut self, chat: &mut ChatContext<'_, '_>, err: BoxError) -> HandlerResult {
        log::info!("{}: {err}; closing", self.peer);
        let _ = chat.initiate_send();
        chat.close()?;
        Ok(())
    }
}

/// smtpd's `_strip_command_keyword`: `arg` after `keyword` (case-insensitive), trimmed;
/// empty when `arg` does not start with it.
fn strip_command_keyword(keyword: &str, arg: &str) -> String {
    let head: String = arg.chars().take(keyword.chars().count()).collect();
    if head.to_uppercase() == keyword {
        arg[head.len()..].trim().to_string()
    } else {
        String::new()
    }
}

/// A parameter's value: `NAME=VALUE`, or a bare `NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Param {
    Flag,
    Value(String),
}

/// smtpd's `_getparams`: `None` unless every parameter is `ALNUM[=VALUE]` with a value
/// after any `=`.
fn getparams(params: &[String]) -> Option<HashMap<String, Param>> {
    let mut out = HashMap::new();
    for param in params {
        let (name, value) = match param.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (param.as_str(), None),
        };
        if name.is_empty() || !name.chars().all(char::is_alphanumeric) {
            return None;
        }
        if value.is_some_and(str::is_empty) {
            return None;
        }
        let value = value.map_or(Param::Flag, |v| Param::Value(v.to_string()));
        out.insert(name.to_string(), value);
    }
    Some(out)
}

/// `line.split(b"\r\n")`.
fn split_crlf(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(line);
    std::iter::from_fn(move || {
        let s = rest?;
        match memchr::memmem::find(s, b"\r\n") {
            Some(i) => {
                rest = Some(&s[i + 2..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_as_smtpd_reads_them() {
        let opts = |s: &str| s.split_whitespace().map(String::from).collect::<Vec<_>>();
        let p = getparams(&opts("SIZE=10 SMTPUTF8")).unwrap();
        assert_eq!(p["SIZE"], Param::Value("10".into()));
        assert_eq!(p["SMTPUTF8"], Param::Flag);
        assert!(getparams(&opts("SIZE=")).is_none());
        assert!(getparams(&opts("A-B=1")).is_none());
        assert_eq!(strip_command_keyword("FROM:", "from: <a@b>"), "<a@b>");
        assert_eq!(strip_command_keyword("FROM:", "<a@b>"), "");
    }
}
