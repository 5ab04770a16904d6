//! A small HTTP/1.1 keep-alive client over one tokio `TcpStream`: the load generator's
//! connection to a server's client port (easyraft-server's JSON-RPC, etcd's JSON
//! gateway). One request at a time on one connection, as a closed-loop client sends
//! them; answers with `Content-Length` or chunked bodies; every size it reads from
//! the server is bounded.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The largest response head (status line and headers) read.
pub const MAX_HEAD: usize = 64 << 10;
/// The largest response body read.
pub const MAX_BODY: usize = 16 << 20;

/// Why a request got no answer.
#[derive(Debug, Error)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    #[error("{addr}: {source}")]
    Io {
        /// The server.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
    /// No whole answer within the timeout.
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout {
        /// The server.
        addr: SocketAddr,
        /// The timeout.
        timeout: Duration,
    },
    /// The answer is not HTTP/1.1 as this client reads it.
    #[error("{addr}: bad response: {reason}")]
    Malformed {
        /// The server.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
    /// The server closed the connection (it is reopened on the next request).
    #[error("{addr}: connection closed")]
    Closed {
        /// The server.
        addr: SocketAddr,
    },
}

/// One keep-alive connection to `addr`, opened on first use and reopened after a
/// failure or a `Connection: close`.
pub struct Http1 {
    addr: SocketAddr,
    headers: String,
    timeout: Duration,
    stream: Option<BufReader<TcpStream>>,
}

impl Http1 {
    /// A connection to `addr` sending `headers` (each `Name: value\r\n`) with every
    /// request; a request gives up after `timeout`.
    pub fn new(addr: SocketAddr, headers: &str, timeout: Duration) -> Self {
        Http1 {
            addr,
            headers: headers.to_owned(),
            timeout,
            stream: None,
        }
    }

    /// The server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens the connection now (it is opened on first use otherwise).
    pub async fn connect(&mut self) -> Result<(), HttpError> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await.map_err(|e| self.io(e))?;
            let _ = s.set_nodelay(true);
            self.stream = Some(BufReader::new(s));
        }
        Ok(())
    }

    fn io(&self, source: std::io::Error) -> HttpError {
        HttpError::Io {
            addr: self.addr,
            source,
        }
    }

    fn malformed(&self, reason: impl Into<String>) -> HttpError {
        HttpError::Malformed {
            addr: self.addr,
            reason: reason.into(),
        }
    }

    /// `POST path` with a JSON body: the status and the body. A failure closes the
    /// connection (the next request opens a new one).
    pub async fn post(&mut self, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
        self.request("POST", path, body).await
    }

    /// `GET path`: the status and the body.
    pub async fn get(&mut self, path: &str) -> Result<(u16, Vec<u8>), HttpError> {
        self.request("GET", path, b"").await
    }

    /// `method path` with `body` (sent with its length, as JSON).
    pub async fn request(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
        let timeout = self.timeout;
        match tokio::time::timeout(timeout, self.exchange(method, path, body)).await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => {
                self.stream = None;
                Err(e)
            }
            Err(_) => {
                self.stream = None;
                Err(HttpError::Timeout {
                    addr: self.addr,
                    timeout,
                })
            }
        }
    }

    async fn exchange(&mut self, method: &str, path: &str, body: &[u8]) -> Result<(u16, Vec<u8>), HttpError> {
        self.connect().await?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{}Content-Length: {}\r\n\r\n",
            self.addr,
            self.headers,
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(body);
        let addr = self.addr;
        let Some(stream) = self.stream.as_mut() else {
            return Err(HttpError::Closed { addr });
        };
        stream
            .get_mut()
            .write_all(&request)
            .await
            .map_err(|source| HttpError::Io { addr, source })?;
        let head = read_head(stream, addr).await?;
        let parsed = Head::parse(&head).map_err(|r| self.malformed(r))?;
        let Some(stream) = self.stream.as_mut() else {
            return Err(HttpError::Closed { addr });
        };
        let body = match parsed.length {
            Length::Fixed(n) if n > MAX_BODY => return Err(self.malformed(format!("a body of {n} bytes"))),
            Length::Fixed(n) => {
                let mut b = vec![0u8; n];
                stream
                    .read_exact(&mut b)
                    .await
                    .map_err(|source| HttpError::Io { addr, source })?;
                b
            }
            Length::Chunked => read_chunked(stream, addr).await?,
        };
        if parsed.close {
            self.stream = None;
        }
        Ok((parsed.status, body))
    }
}

/// How the body's end is known.
#[derive(Debug, PartialEq, Eq)]
enum Length {
    Fixed(usize),
    Chunked,
}

/// What this client needs of a response head.
#[derive(Debug, PartialEq, Eq)]
struct Head {
    status: u16,
    length: Length,
    close: bool,
}

impl Head {
    fn parse(head: &str) -> Result<Head, String> {
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let mut parts = status_line.splitn(3, ' ');
        if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
            return Err(format!("status line {status_line:?}"));
        }
        let status = parts
            .next()
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| format!("status line {status_line:?}"))?;
        let mut length = Length::Fixed(0);
        let mut close = false;
        for line in lines.filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(':').ok_or_else(|| format!("header {line:?}"))?;
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_ascii_lowercase());
            match name.as_str() {
                "content-length" => {
                    let n = value.parse().map_err(|_| format!("content-length {value:?}"))?;
                    if length != Length::Chunked {
                        length = Length::Fixed(n);
                    }
                }
                "transfer-encoding" if value.contains("chunked") => length = Length::Chunked,
                "connection" if value.contains("close") => close = true,
                _ => {}
            }
        }
        Ok(Head { status, length, close })
    }
}

/// The response head up to the blank line, at most [`MAX_HEAD`] bytes.
async fn read_head(stream: &mut BufReader<TcpStream>, addr: SocketAddr) -> Result<String, HttpError> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = (&mut *stream)
            .take((MAX_HEAD - head.len().min(MAX_HEAD)) as u64 + 1)
            .read_until(b'\n', &mut head)
            .await
            .map_err(|source| HttpError::Io { addr, source })?;
        if n == 0 {
            return Err(HttpError::Closed { addr });
        }
        if head.len() > MAX_HEAD {
            return Err(HttpError::Malformed {
                addr,
                reason: format!("a head over {MAX_HEAD} bytes"),
            });
        }
        if &head[before..] == b"\r\n" {
            break;
        }
    }
    String::from_utf8(head).map_err(|_| HttpError::Malformed {
        addr,
        reason: "a head that is not UTF-8".into(),
    })
}

/// A `Transfer-Encoding: chunked` body, at most [`MAX_BODY`] bytes.
async fn read_chunked(stream: &mut BufReader<TcpStream>, addr: SocketAddr) -> Result<Vec<u8>, HttpError> {
    let io = |source| HttpError::Io { addr, source };
    let bad = |reason: String| HttpError::Malformed { addr, reason };
    let mut body = Vec::new();
    loop {
        let mut line = Vec::new();
        (&mut *stream)
            .take(1024)
            .read_until(b'\n', &mut line)
            .await
            .map_err(io)?;
        let text = String::from_utf8_lossy(&line);
        let size = text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size, 16).map_err(|_| bad(format!("chunk size {text:?}")))?;
        if size == 0 {
            // The trailer: lines up to a blank one.
            loop {
                let mut t = Vec::new();
                let n = (&mut *stream).take(1024).read_until(b'\n', &mut t).await.map_err(io)?;
                if n == 0 || t == b"\r\n" {
                    return Ok(body);
                }
            }
        }
        if body.len().saturating_add(size) > MAX_BODY {
            return Err(bad(format!("a body over {MAX_BODY} bytes")));
        }
        let start = body.len();
        body.resize(start + size, 0);
        stream.read_exact(&mut body[start..]).await.map_err(io)?;
        let mut crlf = [0u8; 2];
        stream.read_exact(&mut crlf).await.map_err(io)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_are_read_for_status_length_and_close() {
        let h = Head::parse("HTTP/1.1 200 OK\r\nContent-Length: 12\r\ncontent-type: x\r\n\r\n").unwrap();
        assert_eq!(
            h,
            Head {
                status: 200,
                length: Length::Fixed(12),
                close: false
            }
        );
        let h = Head::parse("HTTP/1.1 500 Oops\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap();
        assert_eq!((h.status, h.length, h.close), (500, Length::Chunked, true));
        assert!(Head::parse("SSH-2.0 hello\r\n\r\n").is_err());
        assert!(Head::parse("HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n").is_err());
    }
}
