//! The plain-HTTP side of the port: read a request head, refuse anything that is not
//! a WebSocket upgrade of `/raft/` with a short status, and replay the head to the
//! WebSocket handshake otherwise.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use serde_json::json;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// The longest request head accepted.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// Reads until the end of the request head (`\r\n\r\n`). Returns everything read
/// (the head and possibly the start of what follows).
pub(crate) async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if buf.windows(4).any(|w| w == b"\r\n\r\n") {
            return Ok(buf);
        }
        if buf.len() >= MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "request head too large"));
        }
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in request head",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The method and path of the request line.
pub(crate) fn request_line(head: &[u8]) -> Option<(String, String)> {
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    Some((method, path))
}

/// Answers a request for anything but the Raft endpoint: this port carries Raft
/// traffic only (a node's API, health and status are served by the application's
/// API server, on its own port). `400` when there is not even a request line.
pub(crate) async fn not_found<S: AsyncWrite + Unpin>(stream: &mut S, garbled: bool) -> io::Result<()> {
    let status = if garbled { "400 Bad Request" } else { "404 Not Found" };
    write_json(
        stream,
        status,
        "",
        &json!({ "error": "this port serves the Raft WebSocket endpoint /raft/ only" }),
    )
    .await
}

async fn write_json<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    extra_headers: &str,
    body: &serde_json::Value,
) -> io::Result<()> {
    write_response(stream, status, "application/json", extra_headers, &body.to_string()).await
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: &str,
    content_type: &str,
    extra_headers: &str,
    body: &str,
) -> io::Result<()> {
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra_headers}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

/// The values of header `name` in a request head (case-insensitive name).
fn header_values<'a>(head: &'a [u8], name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or(head.len());
    std::str::from_utf8(&head[..end])
        .unwrap_or("")
        .split("\r\n")
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .filter(move |(k, _)| k.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

// Fix (tests): the WebSocket handshake closes the connection without any answer when
// the request is not a well-formed upgrade (a plain GET of /raft/, a wrong
// Sec-WebSocket-Version...). These checks run first so such clients get a status.
/// Why a request for the Raft endpoint cannot become a WebSocket, if it cannot:
/// `(status line, reason)`.
pub(crate) fn upgrade_problem(method: &str, head: &[u8]) -> Option<(&'static str, &'static str)> {
    let has = |name: &'static str, want: &'static str| {
        header_values(head, name).any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(want)))
    };
    if method != "GET" {
        Some((
            "405 Method Not Allowed",
            "the Raft endpoint takes a GET with Upgrade: websocket",
        ))
    } else if !has("upgrade", "websocket") || !has("connection", "upgrade") {
        Some((
            "426 Upgrade Required",
            "the Raft endpoint is a WebSocket: send Upgrade: websocket and Connection: Upgrade",
        ))
    } else if !has("sec-websocket-version", "13") {
        Some(("426 Upgrade Required", "unsupported WebSocket version: use 13"))
    } else if header_values(head, "sec-websocket-key").next().is_none() {
        Some(("400 Bad Request", "missing Sec-WebSocket-Key"))
    } else {
        None
    }
}

/// Answers a request for the Raft endpoint that is not a WebSocket upgrade.
pub(crate) async fn refuse_upgrade<S: AsyncWrite + Unpin>(stream: &mut S, status: &str, why: &str) -> io::Result<()> {
    let extra = if status.starts_with("426") {
        "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
    } else {
        ""
    };
    write_json(stream, status, extra, &json!({ "error": why })).await
}

/// A stream that first yields bytes already read, then the inner stream.
pub(crate) struct Prefixed<S> {
    prefix: Vec<u8>,
    pos: usize,
    inner: S,
}

impl<S> Prefixed<S> {
    pub(crate) fn new(prefix: Vec<u8>, inner: S) -> Self {
        Prefixed { prefix, pos: 0, inner }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.pos < this.prefix.len() {
            let n = (this.prefix.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.prefix[this.pos..this.pos + n]);
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
