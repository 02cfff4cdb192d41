//! `wasi:http/outgoing-handler`: one HTTP/1.1 request over one TCP
//! connection of the program's [`Network`], driven without threads.
//!
//! A [`ClientConn`] is an explicit state machine: the name is resolved,
//! each address tried until one connects (within the connect timeout),
//! the request head goes out once the connection is open, the body as the
//! guest writes it (with its `content-length`, or chunked when its length
//! is unknown), and the response is read as it arrives: the head, then
//! the body, framed by `content-length`, chunks, or the end of the
//! connection. Nothing blocks here: every call to [`ClientConn::pump`]
//! moves what can move now, and pollables wait on [`ClientConn::interest`]
//! and [`ClientConn::deadline`]. TLS is not implemented: an `https`
//! request fails with `internal-error`.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use super::body::OutBody;
use super::code::ErrorCode;
use super::fields::Fields;
use crate::http1::{self, BodyDecoder, Framing};
use crate::services::{Interest, IpAddr, NetError, Network, SocketAddr, SocketId, Transport};

/// The most bytes of a response head (status line and headers).
const MAX_HEAD: usize = 64 << 10;
/// The most header fields of a response.
const MAX_HEADERS: usize = 128;
/// The most decoded response-body bytes held before the guest reads them.
const BODY_BUFFER: usize = 1 << 20;
/// The most bytes one response body may have.
const MAX_BODY: u64 = u64::MAX;
/// wasmtime's default for each of the three timeouts: 600 s.
pub(crate) const DEFAULT_TIMEOUT_NS: u64 = 600_000_000_000;

/// The timeouts of one request (`request-options`), in nanoseconds.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    /// to open the connection
    pub connect: u64,
    /// from the request sent to the response's first byte
    pub first_byte: u64,
    /// between two bytes of the response
    pub between_bytes: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: DEFAULT_TIMEOUT_NS,
            first_byte: DEFAULT_TIMEOUT_NS,
            between_bytes: DEFAULT_TIMEOUT_NS,
        }
    }
}

/// The request a connection sends.
pub(crate) struct Request {
    /// the method
    pub method: String,
    /// the host (a name, or an IP address without brackets)
    pub host: String,
    /// the port
    pub port: u16,
    /// what the `host` header says
    pub authority: String,
    /// the request target
    pub path_with_query: String,
    /// the guest's header fields
    pub headers: Vec<(String, Vec<u8>)>,
    /// the body the guest writes
    pub body: Arc<OutBody>,
    /// the timeouts
    pub timeouts: Timeouts,
}

/// A response's status and header fields.
#[derive(Clone, Debug)]
pub(crate) struct ResponseHead {
    /// the status code
    pub status: u16,
    /// the header fields (lower-case names)
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Where the connection is.
enum Phase {
    /// the name is not resolved yet
    Resolve,
    /// trying `addrs[next]`, by `deadline`
    Connect {
        addrs: Vec<SocketAddr>,
        next: usize,
        deadline: u64,
    },
    /// connected: the request goes out, the response comes in
    Open,
    /// closed (done or failed)
    Closed,
}

/// How the response body ends.
enum BodyFraming {
    /// by its framing (length or chunks)
    Decoded(BodyDecoder),
    /// when the server closes the connection
    UntilClose,
}

/// One outgoing request and its response.
pub(crate) struct ClientConn {
    net: Arc<dyn Network>,
    request: Request,
    phase: Phase,
    sock: Option<SocketId>,
    /// how the request body is framed, once the head is written
    framing: Option<Framing>,
    /// the request's last byte is queued
    request_done: bool,
    /// when the request's last byte was handed to the network
    sent_at: Option<u64>,
    /// bytes to send
    outbox: Vec<u8>,
    /// bytes received, not yet parsed
    inbox: Vec<u8>,
    /// the response head, or why there is none
    head: Option<Result<ResponseHead, ErrorCode>>,
    /// how the response body ends, once the head is read
    body_framing: Option<BodyFraming>,
    /// decoded body bytes the guest has not read
    body: Vec<u8>,
    /// the body is over
    body_done: bool,
    /// why the body failed
    body_error: Option<ErrorCode>,
    /// when the last response byte came
    last_byte_at: u64,
    /// the peer closed its side
    eof: bool,
}

impl Drop for ClientConn {
    fn drop(&mut self) {
        if let Some(s) = self.sock.take() {
            self.net.close(s);
        }
    }
}

/// The error code of a network failure on an open connection.
fn io_code(e: NetError) -> ErrorCode {
    match e {
        NetError::Timeout => ErrorCode::ConnectionReadTimeout,
        _ => ErrorCode::ConnectionTerminated,
    }
}

impl ClientConn {
    /// A connection that will send `request` on `net`.
    pub fn new(net: Arc<dyn Network>, request: Request) -> ClientConn {
        ClientConn {
            net,
            request,
            phase: Phase::Resolve,
            sock: None,
            framing: None,
            request_done: false,
            sent_at: None,
            outbox: Vec::new(),
            inbox: Vec::new(),
            head: None,
            body_framing: None,
            body: Vec::new(),
            body_done: false,
            body_error: None,
            last_byte_at: 0,
            eof: false,
        }
    }

    /// Ends the connection with `e`: the response fails (or its body).
    fn fail(&mut self, e: ErrorCode) {
        if self.head.is_none() {
            self.head = Some(Err(e.clone()));
        } else if !self.body_done {
            self.body_error = Some(e.clone());
        }
        let mut b = self.request.body.state();
        if !b.finished && b.failed.is_none() {
            b.failed = Some(e);
        }
        drop(b);
        self.close();
    }

    fn close(&mut self) {
        if let Some(s) = self.sock.take() {
            self.net.close(s);
        }
        self.phase = Phase::Closed;
    }

    /// The addresses of the request's host.
    fn resolve(&self) -> Result<Vec<SocketAddr>, ErrorCode> {
        let host = self.request.host.as_str();
        let port = self.request.port;
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if host.eq_ignore_ascii_case("localhost") {
            return Ok(vec![
                SocketAddr::new(IpAddr::V4(core::net::Ipv4Addr::LOCALHOST), port),
                SocketAddr::new(IpAddr::V6(core::net::Ipv6Addr::LOCALHOST), port),
            ]);
        }
        match self.net.resolve(host) {
            Ok(ips) if !ips.is_empty() => Ok(ips
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect()),
            Ok(_) | Err(NetError::NameUnresolvable) | Err(NetError::ResolverPermanent) => Err(
                ErrorCode::DnsError(Some(format!("{host}: the name does not resolve"))),
            ),
            Err(NetError::ResolverTemporary) | Err(NetError::Timeout) => Err(ErrorCode::DnsTimeout),
            Err(e) => Err(ErrorCode::DnsError(Some(format!("{host}: {e:?}")))),
        }
    }

    /// Moves everything along that can move at `now` (the monotonic
    /// clock), without blocking.
    pub fn pump(&mut self, now: u64) {
        // Bounded: each round either changes phase or stops.
        for _ in 0..8 {
            match &mut self.phase {
                Phase::Closed => return,
                Phase::Resolve => match self.resolve() {
                    Ok(addrs) => {
                        self.phase = Phase::Connect {
                            addrs,
                            next: 0,
                            deadline: now.saturating_add(self.request.timeouts.connect),
                        }
                    }
                    Err(e) => return self.fail(e),
                },
                Phase::Connect {
                    addrs,
                    next,
                    deadline,
                } => {
                    let (addr, deadline) = (addrs[*next], *deadline);
                    let last = *next + 1 >= addrs.len();
                    let status = match self.sock {
                        None => self.start_connect(addr).map(|()| false),
                        Some(s) => self.net.connect_status(s),
                    };
                    match status {
                        Ok(true) => self.open(now),
                        Ok(false) if now >= deadline => {
                            return self.fail(ErrorCode::ConnectionTimeout);
                        }
                        Ok(false) => return,
                        Err(e) => {
                            if let Some(s) = self.sock.take() {
                                self.net.close(s);
                            }
                            if last {
                                return self.fail(match e {
                                    NetError::Timeout => ErrorCode::ConnectionTimeout,
                                    NetError::Unreachable => ErrorCode::DestinationUnavailable,
                                    _ => ErrorCode::ConnectionRefused,
                                });
                            }
                            if let Phase::Connect { next, .. } = &mut self.phase {
                                *next += 1;
                            }
                        }
                    }
                }
                Phase::Open => return self.pump_open(now),
            }
        }
    }

    fn start_connect(&mut self, addr: SocketAddr) -> Result<(), NetError> {
        let s = self
            .net
            .create(Transport::Tcp, matches!(addr, SocketAddr::V6(_)))?;
        self.sock = Some(s);
        self.net.connect(s, addr)
    }

    /// The connection is open: writes the request head.
    fn open(&mut self, now: u64) {
        self.phase = Phase::Open;
        self.last_byte_at = now;
        let framing = {
            let b = self.request.body.state();
            match b.expected {
                Some(n) => Framing::Length(n),
                None if b.finished => match b.written {
                    0 => Framing::Empty,
                    n => Framing::Length(n),
                },
                None => Framing::Chunked,
            }
        };
        let r = &self.request;
        let mut head = format!(
            "{} {} HTTP/1.1\r\nhost: {}\r\n",
            r.method, r.path_with_query, r.authority
        )
        .into_bytes();
        for (name, value) in &r.headers {
            if name == "content-length" {
                continue;
            }
            head.extend_from_slice(name.as_bytes());
            head.extend_from_slice(b": ");
            head.extend_from_slice(value);
            head.extend_from_slice(b"\r\n");
        }
        match framing {
            Framing::Length(n) => {
                head.extend_from_slice(format!("content-length: {n}\r\n").as_bytes())
            }
            Framing::Chunked => head.extend_from_slice(b"transfer-encoding: chunked\r\n"),
            Framing::Empty if matches!(r.method.as_str(), "POST" | "PUT" | "PATCH") => {
                head.extend_from_slice(b"content-length: 0\r\n")
            }
            Framing::Empty => {}
        }
        head.extend_from_slice(b"\r\n");
        self.outbox = head;
        self.framing = Some(framing);
    }

    /// Moves the guest's body bytes into the outbox, framed; why the
    /// request cannot be completed, if the body failed.
    fn take_body(&mut self) -> Option<ErrorCode> {
        if self.request_done {
            return None;
        }
        let framing = self.framing?;
        let mut b = self.request.body.state();
        if let Some(e) = &b.failed {
            return Some(e.clone());
        }
        let bytes = core::mem::take(&mut b.buf);
        match framing {
            Framing::Chunked => http1::write_chunk(&mut self.outbox, &bytes),
            _ => self.outbox.extend_from_slice(&bytes),
        }
        if b.finished {
            if framing == Framing::Chunked {
                self.outbox.extend_from_slice(b"0\r\n");
                if let Some(t) = &b.trailers {
                    for (name, value) in t.entries() {
                        self.outbox.extend_from_slice(name.as_bytes());
                        self.outbox.extend_from_slice(b": ");
                        self.outbox.extend_from_slice(value);
                        self.outbox.extend_from_slice(b"\r\n");
                    }
                }
                self.outbox.extend_from_slice(b"\r\n");
            }
            self.request_done = true;
        }
        None
    }

    fn pump_open(&mut self, now: u64) {
        let Some(sock) = self.sock else { return };
        if let Some(e) = self.take_body() {
            return self.fail(e);
        }
        while !self.outbox.is_empty() {
            match self.net.send(sock, &self.outbox) {
                Ok(0) | Err(NetError::WouldBlock) => break,
                Ok(n) => {
                    self.outbox.drain(..n);
                }
                Err(e) => return self.fail(io_code(e)),
            }
        }
        if self.request_done && self.outbox.is_empty() && self.sent_at.is_none() {
            self.sent_at = Some(now);
        }
        // Read while there is room for what is read.
        let mut buf = [0u8; 16 << 10];
        while !self.eof && self.body.len() < BODY_BUFFER {
            match self.net.recv(sock, &mut buf, false) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    self.inbox.extend_from_slice(&buf[..n]);
                    self.last_byte_at = now;
                    if self.head.is_none() && self.inbox.len() > MAX_HEAD {
                        break;
                    }
                }
                Err(NetError::WouldBlock) => break,
                Err(e) => return self.fail(io_code(e)),
            }
        }
        if self.head.is_none()
            && let Err(e) = self.parse_head()
        {
            return self.fail(e);
        }
        if self.head.is_some()
            && !self.body_done
            && let Err(e) = self.decode_body()
        {
            return self.fail(e);
        }
        if self.body_done && self.request_done && self.outbox.is_empty() {
            // The exchange is over; the connection is not reused.
            self.close();
            return;
        }
        if self.eof && self.head.is_none() {
            return self.fail(if self.inbox.is_empty() {
                ErrorCode::ConnectionTerminated
            } else {
                ErrorCode::HttpResponseIncomplete
            });
        }
        let quiet = now.saturating_sub(self.last_byte_at);
        match (&self.head, self.sent_at) {
            (None, Some(sent)) if now.saturating_sub(sent) >= self.request.timeouts.first_byte => {
                self.fail(ErrorCode::ConnectionReadTimeout)
            }
            (Some(_), _) if !self.body_done && quiet >= self.request.timeouts.between_bytes => {
                self.fail(ErrorCode::ConnectionReadTimeout)
            }
            _ => {}
        }
    }

    /// Parses the response head out of the inbox, if it is all there.
    fn parse_head(&mut self) -> Result<(), ErrorCode> {
        loop {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut fields);
            let n = match resp.parse(&self.inbox) {
                Ok(httparse::Status::Complete(n)) => n,
                Ok(httparse::Status::Partial) => {
                    if self.inbox.len() > MAX_HEAD {
                        return Err(ErrorCode::HttpResponseHeaderSectionSize(Some(
                            self.inbox.len() as u32,
                        )));
                    }
                    return Ok(());
                }
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ErrorCode::HttpResponseHeaderSectionSize(None));
                }
                Err(_) => return Err(ErrorCode::HttpProtocolError),
            };
            let status = resp.code.unwrap_or(0);
            let headers: Vec<(String, Vec<u8>)> = (resp.headers.iter())
                .map(|h| (h.name.to_ascii_lowercase(), h.value.to_vec()))
                .collect();
            self.inbox.drain(..n);
            if (100..200).contains(&status) && status != 101 {
                // An interim response; the final one follows.
                continue;
            }
            let framing = response_framing(&self.request.method, status, &headers)?;
            self.body_framing = Some(match framing {
                Some(f) => BodyFraming::Decoded(BodyDecoder::new(f, MAX_BODY)),
                None => BodyFraming::UntilClose,
            });
            self.head = Some(Ok(ResponseHead { status, headers }));
            return Ok(());
        }
    }

    /// Decodes body bytes out of the inbox.
    fn decode_body(&mut self) -> Result<(), ErrorCode> {
        match &mut self.body_framing {
            Some(BodyFraming::Decoded(d)) => {
                let used = d
                    .decode(&self.inbox, &mut self.body)
                    .map_err(|_| ErrorCode::HttpProtocolError)?;
                self.inbox.drain(..used);
                if d.is_done() {
                    self.body_done = true;
                    self.inbox.clear();
                } else if self.eof {
                    return Err(ErrorCode::HttpResponseIncomplete);
                }
            }
            Some(BodyFraming::UntilClose) => {
                self.body.append(&mut self.inbox);
                if self.eof {
                    self.body_done = true;
                }
            }
            None => {}
        }
        Ok(())
    }

    /// Whether the response head (or the failure) is there.
    pub fn head_ready(&self) -> bool {
        self.head.is_some()
    }

    /// The response head, or why there is none (`None`: not yet).
    pub fn head(&self) -> Option<Result<ResponseHead, ErrorCode>> {
        self.head.clone()
    }

    /// Takes up to `max` body bytes (none yet: empty), or how it ended.
    pub fn read_body(&mut self, max: usize) -> Result<Vec<u8>, super::body::ReadEnd> {
        use super::body::ReadEnd;
        if !self.body.is_empty() {
            let n = max.min(self.body.len());
            return Ok(self.body.drain(..n).collect());
        }
        if let Some(e) = &self.body_error {
            return Err(ReadEnd::Failed(e.clone()));
        }
        if self.body_done {
            return Err(ReadEnd::Closed);
        }
        Ok(Vec::new())
    }

    /// Whether a read of the body returns something.
    pub fn body_ready(&self) -> bool {
        !self.body.is_empty() || self.body_done || self.body_error.is_some()
    }

    /// The response's trailers once its body is over (`None` before).
    pub fn trailers(&self) -> Option<Result<Option<Fields>, ErrorCode>> {
        if let Some(e) = &self.body_error {
            return Some(Err(e.clone()));
        }
        // Trailer fields of a chunked response are read past, not kept.
        self.body_done.then_some(Ok(None))
    }

    /// The socket to wait on, and for what.
    pub fn interest(&self) -> Option<(SocketId, Interest)> {
        let s = self.sock?;
        match self.phase {
            Phase::Connect { .. } => Some((s, Interest::Write)),
            Phase::Open if !self.outbox.is_empty() => Some((s, Interest::Write)),
            Phase::Open if self.body.len() < BODY_BUFFER => Some((s, Interest::Read)),
            _ => None,
        }
    }

    /// When a timeout of this request falls due.
    pub fn deadline(&self) -> Option<u64> {
        match &self.phase {
            Phase::Resolve => Some(0),
            Phase::Connect { deadline, .. } => Some(*deadline),
            Phase::Open => match (&self.head, self.sent_at) {
                (None, Some(sent)) => Some(sent.saturating_add(self.request.timeouts.first_byte)),
                (Some(_), _) if !self.body_done => Some(
                    self.last_byte_at
                        .saturating_add(self.request.timeouts.between_bytes),
                ),
                _ => None,
            },
            Phase::Closed => None,
        }
    }
}

/// How a response to `method` with `status` and `headers` is framed
/// (RFC 9112 section 6.3); `None`: until the connection closes.
fn response_framing(
    method: &str,
    status: u16,
    headers: &[(String, Vec<u8>)],
) -> Result<Option<Framing>, ErrorCode> {
    if method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(Some(Framing::Empty));
    }
    fn value<'a>(
        headers: &'a [(String, Vec<u8>)],
        name: &'static str,
    ) -> impl Iterator<Item = &'a Vec<u8>> {
        headers
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v)
    }
    if let Some(te) = value(headers, "transfer-encoding").last() {
        let last = te
            .rsplit(|b| *b == b',')
            .next()
            .unwrap_or_default()
            .trim_ascii();
        return if last.eq_ignore_ascii_case(b"chunked") {
            Ok(Some(Framing::Chunked))
        } else {
            Err(ErrorCode::HttpResponseTransferCoding(Some(
                String::from_utf8_lossy(te).to_string(),
            )))
        };
    }
    let mut length = None;
    for v in value(headers, "content-length") {
        let n = core::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .ok_or(ErrorCode::HttpProtocolError)?;
        if length.is_some_and(|l| l != n) {
            return Err(ErrorCode::HttpProtocolError);
        }
        length = Some(n);
    }
    Ok(match length {
        Some(0) => Some(Framing::Empty),
        Some(n) => Some(Framing::Length(n)),
        None => None,
    })
}
