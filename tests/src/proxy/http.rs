//! HTTP/1.1 message framing for the fault proxy: whole requests and responses cut from a
//! byte stream by their heads (`Content-Length`, chunked, or until close), kept raw so that
//! the proxy forwards exactly what it read.

use std::io::{self, Read};
use std::net::TcpStream;

/// Longest request or response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// One parsed message head: the start line and the headers, with its raw bytes.
#[derive(Debug)]
struct Head {
    raw: Vec<u8>,
    start: String,
    headers: Vec<(String, String)>,
}

impl Head {
    fn parse(raw: Vec<u8>) -> io::Result<Head> {
        let text = String::from_utf8_lossy(&raw).into_owned();
        let mut lines = text.split("\r\n");
        let start = lines.next().unwrap_or_default().to_owned();
        let headers = lines
            .filter(|l| !l.is_empty())
            .map(|l| match l.split_once(':') {
                Some((k, v)) => Ok((k.trim().to_ascii_lowercase(), v.trim().to_owned())),
                None => Err(bad(format!("malformed header line {l:?}"))),
            })
            .collect::<io::Result<_>>()?;
        Ok(Head {
            raw,
            start,
            headers,
        })
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn is_chunked(&self) -> bool {
        self.header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    }

    fn content_length(&self) -> io::Result<Option<usize>> {
        self.header("content-length")
            .map(|v| {
                v.parse()
                    .map_err(|_| bad(format!("bad Content-Length {v:?}")))
            })
            .transpose()
    }

    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

fn bad(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// A connection with a read buffer, from which whole HTTP messages are cut.
pub(super) struct Wire {
    pub(super) stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    pub(super) fn new(stream: TcpStream) -> Wire {
        Wire {
            stream,
            buf: Vec::new(),
        }
    }

    /// Read more bytes into the buffer; 0 at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = self.stream.read(&mut chunk)?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Take `n` bytes.
    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if self.fill()? == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Take bytes up to and including the first `delimiter`; `None` at a clean end of stream.
    fn take_until(&mut self, delimiter: &[u8]) -> io::Result<Option<Vec<u8>>> {
        let mut searched = 0;
        loop {
            if let Some(at) = find(&self.buf[searched..], delimiter) {
                return self.take(searched + at + delimiter.len()).map(Some);
            }
            searched = self.buf.len().saturating_sub(delimiter.len());
            if self.buf.len() > MAX_HEAD {
                return Err(bad("message head too long".into()));
            }
            if self.fill()? == 0 {
                return if self.buf.is_empty() {
                    Ok(None)
                } else {
                    Err(io::ErrorKind::UnexpectedEof.into())
                };
            }
        }
    }

    fn head(&mut self) -> io::Result<Option<Head>> {
        self.take_until(b"\r\n\r\n")?.map(Head::parse).transpose()
    }

    /// A chunked body, raw (sizes, data, trailers), ending with its last empty line.
    fn chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut raw = Vec::new();
        loop {
            let line = self
                .take_until(b"\r\n")?
                .ok_or(io::ErrorKind::UnexpectedEof)?;
            let text = String::from_utf8_lossy(&line);
            let size_text = text.trim().split(';').next().unwrap_or_default();
            let size = usize::from_str_radix(size_text.trim(), 16)
                .map_err(|_| bad(format!("bad chunk size {size_text:?}")))?;
            raw.extend_from_slice(&line);
            if size == 0 {
                // Trailers, then the empty line that ends the message.
                loop {
                    let trailer = self
                        .take_until(b"\r\n")?
                        .ok_or(io::ErrorKind::UnexpectedEof)?;
                    raw.extend_from_slice(&trailer);
                    if trailer == b"\r\n" {
                        return Ok(raw);
                    }
                }
            }
            raw.extend(self.take(size + 2)?);
        }
    }

    fn rest(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buf))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// One whole request from a client.
#[derive(Debug)]
pub(super) struct Request {
    pub(super) bytes: Vec<u8>,
    /// The request line without the HTTP version, for counting faults by route.
    pub(super) route: String,
    is_head: bool,
    pub(super) wants_close: bool,
}

/// The next whole request on a client connection; `None` when the client closed it.
pub(super) fn read_request(client: &mut Wire) -> io::Result<Option<Request>> {
    let Some(head) = client.head()? else {
        return Ok(None);
    };
    let body = if head.is_chunked() {
        client.chunked()?
    } else {
        client.take(head.content_length()?.unwrap_or(0))?
    };
    let is_head = head.start.starts_with("HEAD ");
    let route = head
        .start
        .rsplit_once(' ')
        .map_or(head.start.as_str(), |(route, _)| route)
        .to_owned();
    let wants_close = head.wants_close();
    let mut bytes = head.raw;
    bytes.extend(body);
    Ok(Some(Request {
        bytes,
        route,
        is_head,
        wants_close,
    }))
}

/// One whole response from the server, raw, and whether it ends the connection.
pub(super) fn read_response(server: &mut Wire, request: &Request) -> io::Result<(Vec<u8>, bool)> {
    let mut raw = Vec::new();
    loop {
        let head = server.head()?.ok_or(io::ErrorKind::UnexpectedEof)?;
        let status: u16 = head
            .start
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(format!("bad status line {:?}", head.start)))?;
        let close = head.wants_close();
        let chunked = head.is_chunked();
        let length = head.content_length()?;
        raw.extend_from_slice(&head.raw);
        if (100..200).contains(&status) {
            // An interim answer (100 Continue): the real one follows.
            continue;
        }
        if request.is_head || status == 204 || status == 304 {
            return Ok((raw, close));
        }
        let body = match (chunked, length) {
            (true, _) => server.chunked()?,
            (false, Some(n)) => server.take(n)?,
            // Neither: the body runs until the server closes the connection.
            (false, None) => {
                raw.extend(server.rest()?);
                return Ok((raw, true));
            }
        };
        raw.extend(body);
        return Ok((raw, close));
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};

    use super::*;

    /// A `Wire` reading `bytes`, sent from the other end of a loopback connection that then
    /// closes.
    fn wire(bytes: &[u8]) -> Wire {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let mut writer =
            TcpStream::connect(listener.local_addr().expect("local addr")).expect("connect");
        let (reader, _) = listener.accept().expect("accept");
        writer.write_all(bytes).expect("write");
        drop(writer);
        Wire::new(reader)
    }

    #[test]
    fn keep_alive_requests_are_cut_at_their_content_length() {
        let first = b"POST /v1/sync/push HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
        let second = b"GET /v1/me HTTP/1.1\r\nConnection: close\r\n\r\n";
        let mut w = wire(&[&first[..], &second[..]].concat());
        let a = read_request(&mut w).expect("read").expect("a request");
        assert_eq!(a.bytes, first);
        assert_eq!(a.route, "POST /v1/sync/push");
        assert!(!a.wants_close);
        let b = read_request(&mut w).expect("read").expect("a request");
        assert_eq!(b.bytes, second);
        assert!(b.wants_close);
        assert!(read_request(&mut w).expect("clean end").is_none());
    }

    #[test]
    fn chunked_and_close_delimited_responses_are_read_whole() {
        let get = Request {
            bytes: Vec::new(),
            route: "GET /".into(),
            is_head: false,
            wants_close: false,
        };
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;x=y\r\nabcd\r\n0\r\nTrailer: t\r\n\r\n";
        let mut w = wire(&[&chunked[..], b"HTTP/1.1 204 No Content\r\n\r\n"].concat());
        assert_eq!(
            read_response(&mut w, &get).expect("chunked"),
            (chunked.to_vec(), false)
        );
        let (empty, _) = read_response(&mut w, &get).expect("204");
        assert_eq!(empty, b"HTTP/1.1 204 No Content\r\n\r\n");

        let until_close = b"HTTP/1.1 200 OK\r\n\r\nall of it";
        let mut w = wire(until_close);
        assert_eq!(
            read_response(&mut w, &get).expect("read"),
            (until_close.to_vec(), true)
        );

        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort";
        assert!(
            read_response(&mut wire(cut), &get).is_err(),
            "a cut body is an error"
        );
    }
}
