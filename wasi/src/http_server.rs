//! An HTTP/1.1 server over a [`Network`]'s listener, without threads:
//! the connections of `basalt serve`, hosted and in the kernel alike.
//!
//! Every connection is an explicit state machine ([`Conn`]): bytes come in
//! as they arrive, a request's head and body are read with
//! [`crate::http1`] within [`Limits`], the whole request goes to the
//! [`Handler`], which answers at once or later ([`Server::respond`]: the
//! kernel runs requests side by side), and its response goes out as the
//! peer takes it. Requests
//! on one connection are answered in order (keep-alive, pipelining); the
//! next is read only once the previous answer is sent, so a peer that
//! does not read cannot make the server hold more than one response for
//! it. A peer that is slow to send a request gets 408 after
//! [`ServerConfig::request_timeout_ns`]; an idle connection is closed
//! after [`ServerConfig::idle_timeout_ns`]; past
//! [`ServerConfig::max_connections`] a new connection gets 503.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::http1::{self, BodyDecoder, Framing, Limits, RequestError, RequestHead};
use crate::services::{Interest, NetError, Network, Shutdown, SocketId};

/// How the server treats its peers.
#[derive(Clone, Copy, Debug)]
pub struct ServerConfig {
    /// what one request may hold
    pub limits: Limits,
    /// the most open connections; more get 503 and are closed
    pub max_connections: usize,
    /// how long a request may take to arrive, from its first byte
    pub request_timeout_ns: u64,
    /// how long a connection may sit between requests
    pub idle_timeout_ns: u64,
}

impl Default for ServerConfig {
    /// [`Limits::default`], 10,000 connections, 30 s to send a request,
    /// 60 s idle.
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            max_connections: 10_000,
            request_timeout_ns: 30_000_000_000,
            idle_timeout_ns: 60_000_000_000,
        }
    }
}

/// A request, read whole.
#[derive(Debug)]
pub struct Request {
    /// its line and headers
    pub head: RequestHead,
    /// its body
    pub body: Vec<u8>,
}

/// A response to send.
#[derive(Debug)]
pub struct Response {
    /// the status code
    pub status: u16,
    /// header fields (framing headers are the server's)
    pub headers: Vec<(String, Vec<u8>)>,
    /// the body
    pub body: Vec<u8>,
    /// whether the body is whole; if not, it is sent chunked and the
    /// connection is cut after it, so the peer sees it end early
    pub complete: bool,
    /// trailer fields (sent when the body is chunked)
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl Response {
    /// A short plain-text response.
    pub fn text(status: u16, text: &str) -> Response {
        Response {
            status,
            headers: alloc::vec![("content-type".into(), b"text/plain; charset=utf-8".to_vec())],
            body: text.as_bytes().to_vec(),
            complete: true,
            trailers: Vec::new(),
        }
    }
}

/// What answers requests.
pub trait Handler {
    /// The response to `request`, now; or `None`: it comes later, through
    /// [`Server::respond`] with `ticket`.
    fn handle(&mut self, ticket: u64, request: Request) -> Option<Response>;
}

/// Where a connection is in its current request.
enum ConnState {
    /// reading a request head
    Head,
    /// reading the body of `head`
    Body {
        head: RequestHead,
        decoder: BodyDecoder,
        body: Vec<u8>,
    },
    /// the handler answers request `ticket` later; whether the connection
    /// stays open after it, and whether it was a `HEAD`
    Waiting {
        ticket: u64,
        keep_alive: bool,
        head_only: bool,
    },
    /// the answer is the last thing sent; then the connection closes
    Closing,
}

/// One peer's connection.
struct Conn {
    sock: SocketId,
    state: ConnState,
    /// bytes received, not yet read as a request
    inbox: Vec<u8>,
    /// bytes to send
    outbox: Vec<u8>,
    /// when the current request's first byte came (`None`: between requests)
    started: Option<u64>,
    /// when anything last happened
    active: u64,
    /// the peer closed its side
    eof: bool,
}

/// What a connection needs after a step.
enum Next {
    /// keep it
    Keep,
    /// close it
    Close,
}

/// An HTTP/1.1 server on one listener.
pub struct Server {
    net: Arc<dyn Network>,
    listener: SocketId,
    config: ServerConfig,
    conns: Vec<Conn>,
    /// requests answered
    pub served: u64,
    /// the next request's ticket
    next_ticket: u64,
}

/// The most bytes read from a connection in one step.
const READ_CHUNK: usize = 64 << 10;

impl Server {
    /// A server answering on `listener` (a listening socket of `net`).
    pub fn new(net: Arc<dyn Network>, listener: SocketId, config: ServerConfig) -> Server {
        Server {
            net,
            listener,
            config,
            conns: Vec::new(),
            served: 0,
            next_ticket: 0,
        }
    }

    /// How many connections are open.
    pub fn connections(&self) -> usize {
        self.conns.len()
    }

    /// Accepts, reads, answers and writes what can be done at `now` (the
    /// monotonic clock, ns) without waiting.
    pub fn step(&mut self, now: u64, handler: &mut dyn Handler) {
        self.accept(now);
        let mut i = 0;
        while i < self.conns.len() {
            match self.drive(i, now, handler) {
                Next::Keep => i += 1,
                Next::Close => {
                    let c = self.conns.swap_remove(i);
                    self.net.close(c.sock);
                }
            }
        }
    }

    /// Waits until something can be done or a timeout falls due (at most
    /// until `deadline`), also watching `extra` (a shutdown listener).
    pub fn wait(&self, deadline: Option<u64>, extra: &[(SocketId, Interest)]) {
        let mut interests: Vec<(SocketId, Interest)> =
            Vec::with_capacity(self.conns.len() + 1 + extra.len());
        interests.push((self.listener, Interest::Read));
        interests.extend_from_slice(extra);
        let mut next = deadline;
        let mut earliest = |t: u64| next = Some(next.map_or(t, |n: u64| n.min(t)));
        for c in &self.conns {
            if !c.outbox.is_empty() {
                interests.push((c.sock, Interest::Write));
            } else if !c.eof && !matches!(c.state, ConnState::Waiting { .. }) {
                // (A connection waiting for its answer reads nothing.)
                interests.push((c.sock, Interest::Read));
            }
            match c.started {
                Some(s) => earliest(s.saturating_add(self.config.request_timeout_ns)),
                None => earliest(c.active.saturating_add(self.config.idle_timeout_ns)),
            }
        }
        self.net.wait(&interests, next);
    }

    fn accept(&mut self, now: u64) {
        loop {
            match self.net.accept(self.listener) {
                Ok(sock) if self.conns.len() >= self.config.max_connections => {
                    let r = Response::text(503, "too many connections\n");
                    let mut out = Vec::new();
                    write_response(&mut out, &r, false, false);
                    let _ = self.net.send(sock, &out);
                    self.net.close(sock);
                }
                Ok(sock) => self.conns.push(Conn {
                    sock,
                    state: ConnState::Head,
                    inbox: Vec::new(),
                    outbox: Vec::new(),
                    started: None,
                    active: now,
                    eof: false,
                }),
                Err(_) => return,
            }
        }
    }

    /// One step of connection `i`.
    fn drive(&mut self, i: usize, now: u64, handler: &mut dyn Handler) -> Next {
        let net = self.net.clone();
        let limits = self.config.limits;
        // Send what is queued.
        {
            let c = &mut self.conns[i];
            while !c.outbox.is_empty() {
                match net.send(c.sock, &c.outbox) {
                    Ok(0) | Err(NetError::WouldBlock) => break,
                    Ok(n) => {
                        c.outbox.drain(..n);
                        c.active = now;
                    }
                    Err(_) => return Next::Close,
                }
            }
            if !c.outbox.is_empty() {
                // The peer reads slowly: read nothing more until it has
                // taken this answer.
                return Next::Keep;
            }
            if matches!(c.state, ConnState::Closing) {
                let _ = net.shutdown(c.sock, Shutdown::Write);
                return Next::Close;
            }
            if matches!(c.state, ConnState::Waiting { .. }) {
                // Nothing more is read until the answer is out: a peer
                // cannot pile requests up meanwhile.
                return Next::Keep;
            }
            // Take in what came.
            let mut buf = [0u8; 16 << 10];
            let mut took = 0;
            while !c.eof && took < READ_CHUNK {
                match net.recv(c.sock, &mut buf, false) {
                    Ok(0) => c.eof = true,
                    Ok(n) => {
                        if c.started.is_none() {
                            c.started = Some(now);
                        }
                        c.inbox.extend_from_slice(&buf[..n]);
                        c.active = now;
                        took += n;
                    }
                    Err(NetError::WouldBlock) => break,
                    Err(_) => return Next::Close,
                }
            }
        }
        // Read requests, and answer each one whole before the next.
        loop {
            let c = &mut self.conns[i];
            match &mut c.state {
                ConnState::Closing => return Next::Keep,
                ConnState::Waiting { .. } => {
                    // The peer left before its answer: nobody will read it.
                    if c.eof && c.inbox.is_empty() {
                        return Next::Close;
                    }
                    return Next::Keep;
                }
                ConnState::Head => {
                    if c.inbox.is_empty() {
                        if c.eof {
                            return Next::Close;
                        }
                        c.started = None;
                        if now.saturating_sub(c.active) >= self.config.idle_timeout_ns {
                            return Next::Close;
                        }
                        return Next::Keep;
                    }
                    match http1::parse_request_head(&c.inbox, &limits) {
                        Ok(Some((head, n))) => {
                            c.inbox.drain(..n);
                            if head.framing != Framing::Empty
                                && head
                                    .values("expect")
                                    .any(|v| v.eq_ignore_ascii_case(b"100-continue"))
                            {
                                c.outbox.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                            }
                            let decoder = BodyDecoder::new(head.framing, limits.max_body_bytes);
                            c.state = ConnState::Body {
                                head,
                                decoder,
                                body: Vec::new(),
                            };
                        }
                        Ok(None) if c.eof => return Next::Close,
                        Ok(None) => return self.check_slow(i, now),
                        Err(e) => return self.refuse(i, &e),
                    }
                }
                ConnState::Body { decoder, body, .. } => {
                    let used = match decoder.decode(&c.inbox, body) {
                        Ok(n) => n,
                        Err(e) => return self.refuse(i, &e),
                    };
                    c.inbox.drain(..used);
                    if !decoder.is_done() {
                        if c.eof {
                            return Next::Close;
                        }
                        return self.check_slow(i, now);
                    }
                    let ConnState::Body { head, body, .. } =
                        core::mem::replace(&mut c.state, ConnState::Head)
                    else {
                        unreachable!("matched above")
                    };
                    let keep_alive = head.keep_alive;
                    let head_only = head.method == "HEAD";
                    c.started = if c.inbox.is_empty() { None } else { Some(now) };
                    let ticket = self.next_ticket;
                    self.next_ticket += 1;
                    let Some(response) = handler.handle(ticket, Request { head, body }) else {
                        self.conns[i].state = ConnState::Waiting {
                            ticket,
                            keep_alive,
                            head_only,
                        };
                        return Next::Keep;
                    };
                    return self.answer(i, &response, keep_alive, head_only, now);
                }
            }
        }
    }

    /// Queues `response` on connection `i` and sends what the peer takes.
    fn answer(
        &mut self,
        i: usize,
        response: &Response,
        keep_alive: bool,
        head_only: bool,
        now: u64,
    ) -> Next {
        self.served += 1;
        let c = &mut self.conns[i];
        let keep = keep_alive && response.complete;
        write_response(&mut c.outbox, response, keep, head_only);
        c.active = now;
        c.state = if keep {
            ConnState::Head
        } else {
            ConnState::Closing
        };
        self.drive_send(i, now)
    }

    /// The answer to the request of `ticket` (a [`Handler`] gave `None`):
    /// sent on its connection, unless that closed meanwhile.
    pub fn respond(&mut self, ticket: u64, response: &Response, now: u64) {
        let Some(i) = self
            .conns
            .iter()
            .position(|c| matches!(c.state, ConnState::Waiting { ticket: t, .. } if t == ticket))
        else {
            return;
        };
        let ConnState::Waiting {
            keep_alive,
            head_only,
            ..
        } = self.conns[i].state
        else {
            return;
        };
        if let Next::Close = self.answer(i, response, keep_alive, head_only, now) {
            let c = self.conns.swap_remove(i);
            self.net.close(c.sock);
        }
    }

    /// Sends what the answer just queued, as far as the peer takes it.
    fn drive_send(&mut self, i: usize, now: u64) -> Next {
        let c = &mut self.conns[i];
        while !c.outbox.is_empty() {
            match self.net.send(c.sock, &c.outbox) {
                Ok(0) | Err(NetError::WouldBlock) => return Next::Keep,
                Ok(n) => {
                    c.outbox.drain(..n);
                    c.active = now;
                }
                Err(_) => return Next::Close,
            }
        }
        if matches!(c.state, ConnState::Closing) {
            let _ = self.net.shutdown(c.sock, Shutdown::Write);
            return Next::Close;
        }
        // More pipelined requests may be waiting in the inbox: the next
        // step reads them (the socket may not signal again).
        Next::Keep
    }

    /// A request that takes too long to arrive gets 408.
    fn check_slow(&mut self, i: usize, now: u64) -> Next {
        let c = &mut self.conns[i];
        match c.started {
            Some(s) if now.saturating_sub(s) >= self.config.request_timeout_ns => {
                let r =
                    Response::text(408, "request timeout: the request did not arrive in time\n");
                write_response(&mut c.outbox, &r, false, false);
                c.state = ConnState::Closing;
                self.drive_send(i, now)
            }
            _ => Next::Keep,
        }
    }

    /// Answers a request that breaks a rule with its status, and closes.
    fn refuse(&mut self, i: usize, e: &RequestError) -> Next {
        let c = &mut self.conns[i];
        c.outbox.extend_from_slice(&http1::error_response(e));
        c.inbox.clear();
        c.state = ConnState::Closing;
        Next::Keep
    }

    /// Whether the server has work left that a step can do at once (a
    /// pipelined request already in an inbox).
    pub fn has_buffered_requests(&self) -> bool {
        self.conns.iter().any(|c| {
            c.outbox.is_empty() && !c.inbox.is_empty() && matches!(c.state, ConnState::Head)
        })
    }
}

/// Writes `r` to `out`: whole with its length, or (not complete) chunked
/// without the last chunk. A response to HEAD carries no body.
fn write_response(out: &mut Vec<u8>, r: &Response, keep_alive: bool, head_only: bool) {
    let bodyless = head_only || r.status == 204 || r.status == 304 || r.status < 200;
    if r.complete && (r.trailers.is_empty() || bodyless) {
        let framing = if r.body.is_empty() {
            Framing::Empty
        } else {
            Framing::Length(r.body.len() as u64)
        };
        http1::write_response_head(out, r.status, &r.headers, framing, keep_alive);
        if !bodyless {
            out.extend_from_slice(&r.body);
        }
        return;
    }
    http1::write_response_head(out, r.status, &r.headers, Framing::Chunked, keep_alive);
    if bodyless {
        return;
    }
    http1::write_chunk(out, &r.body);
    if r.complete {
        out.extend_from_slice(b"0\r\n");
        for (name, value) in &r.trailers {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
    }
}
