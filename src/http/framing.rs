//! Refusing ambiguous HTTP/1.1 body framing, which hyper would otherwise
//! accept: a request with both `Content-Length` and `Transfer-Encoding` (or
//! two `Content-Length`s) is how requests are smuggled past a proxy that
//! reads the other framing. hyper drops the `Content-Length` of such a
//! request before the service sees it, so the check reads the bytes of the
//! connection: [`Scanned`] follows the request heads (and skips bodies by
//! their framing) as hyper reads them and raises a flag the connection's
//! service answers with 400 (RFC 9112, 6.3 lets a server refuse them).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest head line followed; past it hyper refuses the request itself.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// In a request head (request line and header lines).
    Head,
    /// In a body of known length: bytes left.
    Body(u64),
    /// In a chunk-size line.
    ChunkSize,
    /// In chunk data: bytes left (then its CRLF).
    ChunkData(u64),
    /// The CRLF after chunk data: bytes left.
    ChunkEnd(u8),
    /// In the trailer section after the last chunk.
    Trailers,
    /// Not followed any further (HTTP/2, an upgrade, an oversized line).
    Stopped,
}

/// Follows the requests of one HTTP/1 connection byte by byte.
#[derive(Debug)]
pub struct FramingScan {
    state: State,
    line: Vec<u8>,
    first_line: bool,
    lengths: u32,
    length: Option<u64>,
    transfer_encoding: bool,
    chunked: bool,
    upgrade: bool,
}

impl Default for FramingScan {
    fn default() -> Self {
        FramingScan {
            state: State::Head,
            line: Vec::new(),
            first_line: true,
            lengths: 0,
            length: None,
            transfer_encoding: false,
            chunked: false,
            upgrade: false,
        }
    }
}

impl FramingScan {
    /// Feeds bytes read from the connection; true when a request head with
    /// ambiguous framing was seen.
    pub fn feed(&mut self, mut bytes: &[u8]) -> bool {
        let mut ambiguous = false;
        while !bytes.is_empty() {
            match self.state {
                State::Stopped => return ambiguous,
                State::Body(n) | State::ChunkData(n) => {
                    let take = n.min(bytes.len() as u64);
                    bytes = &bytes[take as usize..];
                    let left = n - take;
                    self.state = match (self.state, left) {
                        (State::Body(_), 0) => State::Head,
                        (State::Body(_), l) => State::Body(l),
                        (_, 0) => State::ChunkEnd(2),
                        (_, l) => State::ChunkData(l),
                    };
                }
                State::ChunkEnd(n) => {
                    let take = usize::from(n).min(bytes.len());
                    bytes = &bytes[take..];
                    let left = n - take as u8;
                    self.state = if left == 0 {
                        State::ChunkSize
                    } else {
                        State::ChunkEnd(left)
                    };
                }
                State::Head | State::ChunkSize | State::Trailers => {
                    let Some(end) = bytes.iter().position(|b| *b == b'\n') else {
                        self.push(bytes);
                        return ambiguous;
                    };
                    self.push(&bytes[..end]);
                    bytes = &bytes[end + 1..];
                    if self.state == State::Stopped {
                        return ambiguous;
                    }
                    let mut line = std::mem::take(&mut self.line);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    ambiguous |= self.line_done(&line);
                }
            }
        }
        ambiguous
    }

    fn push(&mut self, bytes: &[u8]) {
        if self.line.len() + bytes.len() > MAX_LINE {
            self.state = State::Stopped;
            self.line.clear();
        } else {
            self.line.extend_from_slice(bytes);
        }
    }

    /// One complete line in a head, chunk-size or trailer state.
    fn line_done(&mut self, line: &[u8]) -> bool {
        match self.state {
            State::ChunkSize => {
                let text = String::from_utf8_lossy(line);
                let size = text.split(';').next().unwrap_or("").trim();
                self.state = match u64::from_str_radix(size, 16) {
                    Ok(0) => State::Trailers,
                    Ok(n) => State::ChunkData(n),
                    Err(_) => State::Stopped,
                };
                false
            }
            State::Trailers => {
                if line.is_empty() {
                    self.state = State::Head;
                }
                false
            }
            _ => self.head_line(line),
        }
    }

    fn head_line(&mut self, line: &[u8]) -> bool {
        if self.first_line {
            if line.is_empty() {
                // Blank lines before a request line are allowed.
                return false;
            }
            self.first_line = false;
            if line.starts_with(b"PRI * HTTP/2") || line.starts_with(b"CONNECT ") {
                self.state = State::Stopped;
            }
            return false;
        }
        if !line.is_empty() {
            let text = String::from_utf8_lossy(line);
            if let Some((name, value)) = text.split_once(':') {
                let name = name.trim().to_ascii_lowercase();
                let value = value.trim().to_ascii_lowercase();
                match name.as_str() {
                    "content-length" => {
                        self.lengths += 1;
                        self.length = value.parse().ok();
                    }
                    "transfer-encoding" => {
                        self.transfer_encoding = true;
                        self.chunked = value.split(',').any(|v| v.trim() == "chunked");
                    }
                    "upgrade" => self.upgrade = true,
                    _ => {}
                }
            }
            return false;
        }
        // The end of a head: judge its framing, then follow its body.
        let ambiguous = self.lengths > 1 || (self.lengths > 0 && self.transfer_encoding);
        self.state = if self.upgrade || ambiguous {
            // After either, hyper closes or hands the connection over.
            State::Stopped
        } else if self.chunked {
            State::ChunkSize
        } else {
            match self.length {
                Some(n) if n > 0 => State::Body(n),
                _ => State::Head,
            }
        };
        *self = FramingScan {
            state: self.state,
            ..FramingScan::default()
        };
        ambiguous
    }
}

/// The answer to a request with ambiguous framing (the connection closes).
pub fn refusal() -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        http::StatusCode::BAD_REQUEST,
        [
            (http::header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (http::header::CONNECTION, "close"),
        ],
        "bad request: a body framed by both Content-Length and Transfer-Encoding (or by two Content-Lengths) is refused\n",
    )
        .into_response()
}

/// A connection whose reads are followed by a [`FramingScan`]; `flag` is
/// raised when a request with ambiguous framing arrives.
pub struct Scanned<T> {
    inner: T,
    scan: FramingScan,
    flag: Arc<AtomicBool>,
}

impl<T> Scanned<T> {
    /// Wraps `inner`; `flag` is shared with the connection's service.
    pub fn new(inner: T, flag: Arc<AtomicBool>) -> Scanned<T> {
        Scanned {
            inner,
            scan: FramingScan::default(),
            flag,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Scanned<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r
            && this.scan.feed(&buf.filled()[before..])
        {
            this.flag.store(true, Ordering::Release);
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Scanned<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(parts: &[&[u8]]) -> bool {
        let mut s = FramingScan::default();
        let mut seen = false;
        for p in parts {
            seen |= s.feed(p);
        }
        seen
    }

    #[test]
    fn both_framings_are_seen_however_the_bytes_arrive() {
        let req = b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert!(scan(&[req]));
        // A byte at a time.
        let bytes: Vec<&[u8]> = req.chunks(1).collect();
        assert!(scan(&bytes));
        assert!(scan(&[
            b"POST / HTTP/1.1\r\ncontent-length: 1\r\ncontent-length: 1\r\n\r\nx"
        ]));
    }

    #[test]
    fn normal_requests_on_one_connection_are_followed_through_their_bodies() {
        // A body that looks like headers is skipped by its length, and a
        // chunked body by its chunks.
        let body = b"\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut first =
            format!("POST /a HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
        first.extend_from_slice(body);
        let second = b"POST /b HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nab\r\n\r\n0\r\nTrailer: 1\r\n\r\n";
        let third = b"GET /c HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(!scan(&[&first, second, third]));
        // ... and the next ambiguous one is still caught.
        let fourth = b"POST /d HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n";
        assert!(scan(&[&first, second, third, fourth]));
    }

    #[test]
    fn http2_and_upgrades_are_left_alone() {
        assert!(!scan(&[b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"]));
        assert!(!scan(&[b"GET / HTTP/1.1\r\nUpgrade: websocket\r\n\r\nContent-Length: 1\r\nTransfer-Encoding: x\r\n\r\n"]));
    }
}
