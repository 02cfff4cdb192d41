//! HTTP/1.1 on the wire, as `wasi:http`'s incoming handler needs it
//! (RFC 9112): reading requests out of a connection's bytes — heads parsed
//! by `httparse`, bodies framed by `Content-Length` or chunked, several
//! requests one after another on one connection (keep-alive, pipelining) —
//! and writing responses. Everything a peer sizes is bounded by
//! [`Limits`], and a request that breaks a rule gets the status a server
//! answers it with ([`RequestError::status`]: 400, 413, 431, 501, 505).
//!
//! No I/O here: the kernel's sockets and the host's feed it bytes.

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

/// What a peer may make the server hold for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// the request line and headers, in bytes (more: 431)
    pub max_head_bytes: usize,
    /// header fields (more: 431)
    pub max_headers: usize,
    /// the body, in bytes (more: 413)
    pub max_body_bytes: u64,
}

impl Default for Limits {
    /// 64 KiB of head, 100 header fields, 16 MiB of body.
    fn default() -> Self {
        Limits {
            max_head_bytes: 64 << 10,
            max_headers: 100,
            max_body_bytes: 16 << 20,
        }
    }
}

/// The HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0
    Http10,
    /// HTTP/1.1
    Http11,
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// no body
    Empty,
    /// exactly this many bytes (`Content-Length`)
    Length(u64),
    /// `Transfer-Encoding: chunked`
    Chunked,
}

/// A request's line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    /// the method, as sent (case matters)
    pub method: String,
    /// the request target, e.g. `/path?query`
    pub target: String,
    /// the version
    pub version: Version,
    /// the header fields in order: lower-cased names, raw values
    pub headers: Vec<(String, Vec<u8>)>,
    /// how its body is delimited
    pub framing: Framing,
    /// whether the connection stays open after the response
    pub keep_alive: bool,
}

impl RequestHead {
    /// The values of header `name` (lower case), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }
}

/// Why a request is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RequestError {
    /// malformed (what is wrong): 400
    BadRequest(&'static str),
    /// the head is larger than [`Limits::max_head_bytes`] or has more
    /// than [`Limits::max_headers`] fields: 431
    HeadTooLarge,
    /// the body is larger than [`Limits::max_body_bytes`]: 413
    BodyTooLarge,
    /// a transfer coding other than `chunked`: 501
    UnsupportedCoding,
    /// not HTTP/1.0 or HTTP/1.1: 505
    UnsupportedVersion,
}

impl RequestError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            RequestError::BadRequest(_) => 400,
            RequestError::HeadTooLarge => 431,
            RequestError::BodyTooLarge => 413,
            RequestError::UnsupportedCoding => 501,
            RequestError::UnsupportedVersion => 505,
        }
    }
}

impl core::fmt::Display for RequestError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RequestError::BadRequest(why) => write!(f, "bad request: {why}"),
            RequestError::HeadTooLarge => f.write_str("request header fields too large"),
            RequestError::BodyTooLarge => f.write_str("request body too large"),
            RequestError::UnsupportedCoding => f.write_str("transfer coding not implemented"),
            RequestError::UnsupportedVersion => f.write_str("HTTP version not supported"),
        }
    }
}

/// Whether the comma-separated list `value` holds `token` (any case).
fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// Whether the request line at the start of `buf` ends in `HTTP/`
/// something (a version, maybe one this server does not speak).
fn names_a_version(buf: &[u8]) -> bool {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    line.trim_ascii()
        .rsplit(|b| *b == b' ')
        .next()
        .is_some_and(|v| v.starts_with(b"HTTP/"))
}

/// Parses the request head at the start of `buf`: the head and how many
/// bytes it took, or `None` when more bytes are needed.
pub fn parse_request_head(
    buf: &[u8],
    limits: &Limits,
) -> Result<Option<(RequestHead, usize)>, RequestError> {
    let mut fields = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut req = httparse::Request::new(&mut fields);
    let consumed = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) if n > limits.max_head_bytes => {
            return Err(RequestError::HeadTooLarge);
        }
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > limits.max_head_bytes => {
            return Err(RequestError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(RequestError::HeadTooLarge),
        // An `HTTP/x.y` this server does not speak is 505; a line that is
        // not HTTP at all is 400.
        Err(httparse::Error::Version) if names_a_version(buf) => {
            return Err(RequestError::UnsupportedVersion);
        }
        Err(httparse::Error::Version) => {
            return Err(RequestError::BadRequest("malformed request line"));
        }
        Err(_) => return Err(RequestError::BadRequest("malformed request line or header")),
    };
    let version = match req.version {
        Some(0) => Version::Http10,
        Some(1) => Version::Http11,
        _ => return Err(RequestError::UnsupportedVersion),
    };
    let method = req.method.ok_or(RequestError::BadRequest("no method"))?;
    let target = req.path.ok_or(RequestError::BadRequest("no target"))?;
    let headers: Vec<(String, Vec<u8>)> = req
        .headers
        .iter()
        .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
        .collect();
    let mut head = RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        version,
        headers,
        framing: Framing::Empty,
        keep_alive: false,
    };
    head.framing = framing(&head, limits)?;
    if version == Version::Http11 && head.values("host").count() != 1 {
        return Err(RequestError::BadRequest("HTTP/1.1 needs exactly one Host"));
    }
    let connection: Vec<&[u8]> = head.values("connection").collect();
    head.keep_alive = match version {
        Version::Http11 => !connection.iter().any(|v| has_token(v, "close")),
        Version::Http10 => connection.iter().any(|v| has_token(v, "keep-alive")),
    };
    Ok(Some((head, consumed)))
}

/// How the body of request `head` is delimited (RFC 9112 §6.3).
fn framing(head: &RequestHead, limits: &Limits) -> Result<Framing, RequestError> {
    let codings: Vec<&[u8]> = head.values("transfer-encoding").collect();
    let lengths: Vec<&[u8]> = head.values("content-length").collect();
    if !codings.is_empty() {
        if !lengths.is_empty() {
            // A message with both is a smuggling attempt.
            return Err(RequestError::BadRequest(
                "both Transfer-Encoding and Content-Length",
            ));
        }
        if head.version == Version::Http10 {
            return Err(RequestError::BadRequest("Transfer-Encoding in HTTP/1.0"));
        }
        let all: Vec<&[u8]> = codings
            .iter()
            .flat_map(|v| v.split(|b| *b == b','))
            .map(|t| t.trim_ascii())
            .collect();
        let chunked = |t: &&[u8]| t.eq_ignore_ascii_case(b"chunked");
        return match all.as_slice() {
            [only] if chunked(only) => Ok(Framing::Chunked),
            [.., last] if !chunked(last) => Err(RequestError::BadRequest(
                "chunked is not the final transfer coding",
            )),
            _ => Err(RequestError::UnsupportedCoding),
        };
    }
    let mut length: Option<u64> = None;
    for v in lengths.iter().flat_map(|v| v.split(|b| *b == b',')) {
        let v = v.trim_ascii();
        if v.is_empty() || !v.iter().all(u8::is_ascii_digit) || v.len() > 19 {
            return Err(RequestError::BadRequest("malformed Content-Length"));
        }
        let n: u64 = core::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(RequestError::BadRequest("malformed Content-Length"))?;
        if length.is_some_and(|l| l != n) {
            return Err(RequestError::BadRequest("conflicting Content-Length"));
        }
        length = Some(n);
    }
    match length {
        Some(n) if n > limits.max_body_bytes => Err(RequestError::BodyTooLarge),
        Some(0) | None => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
    }
}

/// The longest chunk-size line (size, extensions) or trailer line.
const MAX_LINE: usize = 4096;
/// The most trailer bytes after the last chunk.
const MAX_TRAILERS: usize = 16 << 10;

/// Where a body decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    /// this many bytes of a `Content-Length` body are left
    Fixed(u64),
    /// reading a chunk-size line (into `BodyDecoder::line`)
    Size,
    /// this many bytes of the current chunk are left
    Data(u64),
    /// the CRLF after a chunk's data (how many of its two bytes seen)
    DataEnd(u8),
    /// the trailer section (bytes of it so far, and of the current line)
    Trailers(usize, usize),
    /// the body is over
    Done,
}

/// Takes a request body out of the connection's bytes, as they come.
#[derive(Clone, Debug)]
pub struct BodyDecoder {
    state: BodyState,
    /// the chunk-size line read so far
    line: Vec<u8>,
    /// body bytes so far
    total: u64,
    limit: u64,
}

/// The size a chunk-size line (`HEX[;extensions]`, CR included) gives.
fn chunk_size(line: &[u8]) -> Result<u64, RequestError> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let digits = line
        .split(|b| *b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(RequestError::BadRequest("malformed chunk size"));
    }
    core::str::from_utf8(digits)
        .ok()
        .and_then(|d| u64::from_str_radix(d, 16).ok())
        .ok_or(RequestError::BadRequest("malformed chunk size"))
}

impl BodyDecoder {
    /// A decoder for a body framed by `framing`, at most `limit` bytes.
    pub fn new(framing: Framing, limit: u64) -> BodyDecoder {
        let state = match framing {
            Framing::Empty => BodyState::Done,
            Framing::Length(n) => BodyState::Fixed(n),
            Framing::Chunked => BodyState::Size,
        };
        BodyDecoder {
            state,
            line: Vec::new(),
            total: 0,
            limit,
        }
    }

    /// Whether the whole body has been read (the bytes after it belong to
    /// the connection's next request).
    pub fn is_done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// Reads body bytes out of `input` into `out`; how many bytes of
    /// `input` it took (all of them unless the body ended).
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, RequestError> {
        let mut at = 0;
        while at < input.len() {
            match self.state {
                BodyState::Done => break,
                BodyState::Fixed(left) => {
                    let n = (left.min((input.len() - at) as u64)) as usize;
                    out.extend_from_slice(&input[at..at + n]);
                    at += n;
                    self.state = match left - n as u64 {
                        0 => BodyState::Done,
                        rest => BodyState::Fixed(rest),
                    };
                }
                BodyState::Size => {
                    let b = input[at];
                    at += 1;
                    if b != b'\n' {
                        if self.line.len() >= MAX_LINE {
                            return Err(RequestError::BadRequest("chunk-size line too long"));
                        }
                        self.line.push(b);
                        continue;
                    }
                    let size = chunk_size(&self.line)?;
                    self.line.clear();
                    if self.total.saturating_add(size) > self.limit {
                        return Err(RequestError::BodyTooLarge);
                    }
                    self.state = if size == 0 {
                        BodyState::Trailers(0, 0)
                    } else {
                        BodyState::Data(size)
                    };
                }
                BodyState::Data(left) => {
                    let n = (left.min((input.len() - at) as u64)) as usize;
                    out.extend_from_slice(&input[at..at + n]);
                    at += n;
                    self.total += n as u64;
                    self.state = match left - n as u64 {
                        0 => BodyState::DataEnd(0),
                        rest => BodyState::Data(rest),
                    };
                }
                BodyState::DataEnd(seen) => {
                    let want = if seen == 0 { b'\r' } else { b'\n' };
                    if input[at] != want {
                        return Err(RequestError::BadRequest("chunk data not followed by CRLF"));
                    }
                    at += 1;
                    self.state = if seen == 0 {
                        BodyState::DataEnd(1)
                    } else {
                        BodyState::Size
                    };
                }
                BodyState::Trailers(total, line) => {
                    let b = input[at];
                    at += 1;
                    if total + 1 > MAX_TRAILERS || line + 1 > MAX_LINE {
                        return Err(RequestError::HeadTooLarge);
                    }
                    self.state = match b {
                        // An empty line (CRLF alone, or a bare LF) ends them.
                        b'\n' if line == 0 || line == 1 => BodyState::Done,
                        b'\n' => BodyState::Trailers(total + 1, 0),
                        _ => BodyState::Trailers(total + 1, line + 1),
                    };
                }
            }
        }
        Ok(at)
    }
}

/// The reason phrase of a status code.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Writes a response's status line and headers to `out`: `headers` as
/// given (names and values must be valid: `wasi:http` checks them when
/// the program sets them), then the framing header and `Connection:
/// close` when the connection ends after this response.
pub fn write_response_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(String, Vec<u8>)],
    framing: Framing,
    keep_alive: bool,
) {
    out.extend_from_slice(alloc::format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
    for (name, value) in headers {
        let n = name.as_bytes();
        if n.eq_ignore_ascii_case(b"content-length")
            || n.eq_ignore_ascii_case(b"transfer-encoding")
            || n.eq_ignore_ascii_case(b"connection")
        {
            // The framing is this writer's to say.
            continue;
        }
        out.extend_from_slice(n);
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.extend_from_slice(b"\r\n");
    }
    match framing {
        Framing::Empty => out.extend_from_slice(b"content-length: 0\r\n"),
        Framing::Length(n) => {
            out.extend_from_slice(alloc::format!("content-length: {n}\r\n").as_bytes())
        }
        Framing::Chunked => out.extend_from_slice(b"transfer-encoding: chunked\r\n"),
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Writes `data` as one chunk of a chunked body (nothing for no data:
/// an empty chunk would end the body).
pub fn write_chunk(out: &mut Vec<u8>, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(alloc::format!("{:x}\r\n", data.len()).as_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Writes the last chunk, which ends a chunked body.
pub fn write_last_chunk(out: &mut Vec<u8>) {
    out.extend_from_slice(b"0\r\n\r\n");
}

/// The whole response the server sends for a refused request (`error`),
/// closing the connection.
pub fn error_response(error: &RequestError) -> Vec<u8> {
    let body = alloc::format!("{error}\n");
    let mut out = Vec::new();
    write_response_head(
        &mut out,
        error.status(),
        &[("content-type".into(), b"text/plain".to_vec())],
        Framing::Length(body.len() as u64),
        false,
    );
    out.extend_from_slice(body.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &[u8]) -> Result<Option<(RequestHead, usize)>, RequestError> {
        parse_request_head(text, &Limits::default())
    }

    #[test]
    fn a_get_and_the_one_pipelined_after_it() {
        let two = b"GET /a?x=1 HTTP/1.1\r\nHost: h\r\nX-Y: z\r\n\r\nGET /b HTTP/1.1\r\nhost: h\r\nConnection: close\r\n\r\n";
        let (a, n) = head(two).unwrap().unwrap();
        assert_eq!(
            (a.method.as_str(), a.target.as_str(), a.version),
            ("GET", "/a?x=1", Version::Http11)
        );
        assert_eq!(a.values("x-y").collect::<Vec<_>>(), [b"z"]);
        assert_eq!((a.framing, a.keep_alive), (Framing::Empty, true));
        let (b, m) = head(&two[n..]).unwrap().unwrap();
        assert_eq!((b.target.as_str(), b.keep_alive), ("/b", false));
        assert_eq!(n + m, two.len());
    }

    #[test]
    fn an_incomplete_head_waits_until_it_is_too_large() {
        assert_eq!(head(b"GET / HTTP/1.1\r\nHost: h\r\n"), Ok(None));
        let limits = Limits {
            max_head_bytes: 64,
            ..Limits::default()
        };
        let mut big = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        big.extend(core::iter::repeat_n(b'a', 100));
        assert_eq!(
            parse_request_head(&big, &limits),
            Err(RequestError::HeadTooLarge)
        );
        let few = Limits {
            max_headers: 2,
            ..Limits::default()
        };
        let many = b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n";
        assert_eq!(
            parse_request_head(many, &few),
            Err(RequestError::HeadTooLarge)
        );
    }

    #[test]
    fn broken_requests_get_their_status() {
        let status = |t: &[u8]| head(t).map(|_| 0).unwrap_or_else(|e| e.status());
        assert_eq!(status(b"GARBAGE\r\n\r\n"), 400);
        assert_eq!(status(b"GET / HTTP/1.1\r\n\r\n"), 400); // no Host
        assert_eq!(status(b"GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            501
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n"),
            400
        );
        assert_eq!(
            status(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999\r\n\r\n"),
            413
        );
        // HTTP/1.0: no Host needed, closed unless asked otherwise.
        let (h, _) = head(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!h.keep_alive);
        let (h, _) = head(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(h.keep_alive);
    }

    #[test]
    fn a_chunked_body_read_a_byte_at_a_time() {
        let wire = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\nNEXT";
        let mut d = BodyDecoder::new(Framing::Chunked, 1 << 20);
        let mut body = Vec::new();
        let mut used = 0;
        while !d.is_done() {
            used += d.decode(&wire[used..used + 1], &mut body).unwrap();
        }
        assert_eq!(body, b"hello, world");
        assert_eq!(&wire[used..], b"NEXT");
        // And whole, in one go.
        let mut d = BodyDecoder::new(Framing::Chunked, 1 << 20);
        let mut body = Vec::new();
        assert_eq!(d.decode(wire, &mut body), Ok(wire.len() - 4));
        assert!(d.is_done());
    }

    #[test]
    fn bodies_past_their_limit_or_malformed_are_refused() {
        let mut out = Vec::new();
        let mut d = BodyDecoder::new(Framing::Chunked, 4);
        assert_eq!(
            d.decode(b"5\r\nhello\r\n", &mut out),
            Err(RequestError::BodyTooLarge)
        );
        let mut d = BodyDecoder::new(Framing::Chunked, 1 << 20);
        assert_eq!(
            d.decode(b"zz\r\n", &mut out).map_err(|e| e.status()),
            Err(400)
        );
        let mut d = BodyDecoder::new(Framing::Chunked, 1 << 20);
        assert_eq!(
            d.decode(b"1\r\nab\r\n", &mut out).map_err(|e| e.status()),
            Err(400)
        );
        let mut d = BodyDecoder::new(Framing::Chunked, u64::MAX);
        assert_eq!(
            d.decode(b"fffffffffffffffffff\r\n", &mut out)
                .map_err(|e| e.status()),
            Err(400)
        );
        let mut d = BodyDecoder::new(Framing::Length(3), 1 << 20);
        out.clear();
        assert_eq!(d.decode(b"abcdef", &mut out), Ok(3));
        assert_eq!((out.as_slice(), d.is_done()), (&b"abc"[..], true));
    }

    /// Random and mutated requests, fed whole and in random pieces: the
    /// parser and the decoder answer every one (no panic, no unbounded
    /// growth), and a decoder never takes more than it was given.
    #[test]
    fn hostile_bytes_are_answered_not_crashed_on() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let samples: [&[u8]; 3] = [
            b"POST /x HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nwiki\r\n0\r\n\r\n",
            b"PUT / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        ];
        let limits = Limits {
            max_head_bytes: 256,
            max_headers: 8,
            max_body_bytes: 64,
        };
        for round in 0..3000 {
            let mut bytes = samples[round % samples.len()].to_vec();
            for _ in 0..(next() % 6) {
                let at = (next() as usize) % bytes.len();
                match next() % 3 {
                    0 => bytes[at] = next() as u8,
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, next() as u8),
                }
            }
            if round % 7 == 0 {
                bytes = (0..(next() % 300)).map(|_| next() as u8).collect();
            }
            let Ok(Some((h, used))) = parse_request_head(&bytes, &limits) else {
                continue;
            };
            let mut d = BodyDecoder::new(h.framing, limits.max_body_bytes);
            let mut body = Vec::new();
            let mut at = used;
            while at < bytes.len() && !d.is_done() {
                let piece = 1 + (next() as usize) % 7;
                let end = (at + piece).min(bytes.len());
                match d.decode(&bytes[at..end], &mut body) {
                    Ok(n) => {
                        assert!(n <= end - at);
                        at += n;
                        if n == 0 {
                            break;
                        }
                    }
                    Err(e) => {
                        assert!(matches!(e.status(), 400 | 413 | 431));
                        break;
                    }
                }
            }
            assert!(body.len() as u64 <= limits.max_body_bytes);
        }
    }

    #[test]
    fn responses_say_their_framing_once() {
        let mut out = Vec::new();
        write_response_head(
            &mut out,
            200,
            &[
                ("content-type".into(), b"text/plain".to_vec()),
                ("Content-Length".into(), b"999".to_vec()),
            ],
            Framing::Chunked,
            true,
        );
        write_chunk(&mut out, b"hi");
        write_chunk(&mut out, b"");
        write_last_chunk(&mut out);
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"
        );
        let e = error_response(&RequestError::HeadTooLarge);
        assert!(e.starts_with(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"));
        assert!(e.windows(17).any(|w| w == b"connection: close"));
    }
}
