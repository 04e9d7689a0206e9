//! An SMTP sink on loopback for the invitation tests: it speaks enough SMTP for a real
//! client (EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT), keeps every message it accepts, and
//! refuses recipients whose address starts with `bounce` for good (550), as a mail server
//! refuses a mailbox that does not exist.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One message the sink accepted.
#[derive(Clone, Debug)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body, as sent (dot-stuffing undone).
    pub data: String,
}

/// The sink; it stops with the test process.
#[derive(Debug, Clone)]
pub struct SmtpSink {
    pub addr: SocketAddr,
    mails: Arc<Mutex<Vec<Mail>>>,
}

impl SmtpSink {
    pub fn start() -> SmtpSink {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the SMTP sink");
        let addr = listener.local_addr().expect("sink address");
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let kept = kept.clone();
                std::thread::spawn(move || {
                    let _ = session(conn, &kept);
                });
            }
        });
        eprintln!("[e2e] SMTP sink on {addr}");
        SmtpSink { addr, mails }
    }

    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Every message accepted so far.
    pub fn mails(&self) -> Vec<Mail> {
        self.mails.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The messages to `address`.
    pub fn to(&self, address: &str) -> Vec<Mail> {
        self.mails()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(address)))
            .collect()
    }

    /// Wait until `n` messages arrived (at most 30 s).
    pub fn wait_for(&self, n: usize) -> Vec<Mail> {
        let start = Instant::now();
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "only {} of {n} emails arrived",
                mails.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn path_of(arg: &str) -> String {
    let inner = arg.split_once(':').map_or(arg, |(_, rest)| rest).trim();
    inner
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn session(conn: TcpStream, kept: &Mutex<Vec<Mail>>) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut out = conn.try_clone()?;
    let mut lines = BufReader::new(conn);
    write!(out, "220 sink.test ESMTP\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_owned();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        match verb.as_str() {
            "EHLO" => write!(out, "250-sink.test\r\n250 8BITMIME\r\n")?,
            "HELO" => write!(out, "250 sink.test\r\n")?,
            "MAIL" => {
                from = path_of(&command);
                to.clear();
                write!(out, "250 2.1.0 OK\r\n")?;
            }
            "RCPT" => {
                let rcpt = path_of(&command);
                if rcpt.to_ascii_lowercase().starts_with("bounce") {
                    write!(out, "550 5.1.1 <{rcpt}>: no such mailbox\r\n")?;
                } else {
                    to.push(rcpt);
                    write!(out, "250 2.1.5 OK\r\n")?;
                }
            }
            "DATA" => {
                write!(out, "354 end with a dot\r\n")?;
                let mut data = String::new();
                loop {
                    line.clear();
                    if lines.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    data.push_str(line.strip_prefix('.').unwrap_or(&line));
                }
                kept.lock().unwrap_or_else(|p| p.into_inner()).push(Mail {
                    from: from.clone(),
                    to: std::mem::take(&mut to),
                    data,
                });
                write!(out, "250 2.0.0 queued\r\n")?;
            }
            "RSET" => {
                to.clear();
                write!(out, "250 OK\r\n")?;
            }
            "NOOP" => write!(out, "250 OK\r\n")?,
            "QUIT" => {
                write!(out, "221 bye\r\n")?;
                return Ok(());
            }
            _ => write!(out, "502 5.5.2 not implemented\r\n")?,
        }
        out.flush()?;
    }
}
