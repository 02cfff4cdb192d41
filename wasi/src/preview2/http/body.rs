//! Bodies of `wasi:http` messages, behind `wasi:io` streams.
//!
//! An [`OutBody`] is what a guest writes (an outgoing request's body, or
//! an outgoing response's): bytes held until the connection takes them,
//! at most a cap at once, checked against the message's
//! `content-length`. An outgoing request's body is drained into its
//! connection ([`ClientConn`]) as it is written; a response's is taken by
//! the server when the handler returns.
//!
//! An [`InBody`] is what a guest reads: an incoming request's body (the
//! server read it whole before calling the handler) or an incoming
//! response's, read off its connection as the guest asks.

use alloc::sync::{Arc, Weak};
use alloc::vec::Vec;

use spin::Mutex;

use super::client::ClientConn;
use super::code::ErrorCode;
use super::fields::Fields;
use crate::services::{Interest, SocketId};

/// Which message a body belongs to (for the error code of a wrong size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BodyKind {
    /// an outgoing request's
    Request,
    /// an outgoing response's
    Response,
}

/// Why writing to an outgoing body failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum WriteFailure {
    /// the body was finished: the stream is closed
    Closed,
    /// the message failed (too many bytes, its connection broke)
    Failed(ErrorCode),
}

/// What is written and not yet sent, and the body's state.
pub(crate) struct OutState {
    /// bytes written, not yet taken by the connection
    pub buf: Vec<u8>,
    /// bytes written in all
    pub written: u64,
    /// the `content-length` the message declared
    pub expected: Option<u64>,
    /// `outgoing-body.finish` was called (and the size was right)
    pub finished: bool,
    /// the trailers `finish` gave
    pub trailers: Option<Fields>,
    /// why the body cannot go on
    pub failed: Option<ErrorCode>,
}

/// An outgoing message's body.
pub(crate) struct OutBody {
    kind: BodyKind,
    /// the most bytes held at once
    cap: usize,
    state: Mutex<OutState>,
    /// the connection sending it, once the request is handed to
    /// `outgoing-handler.handle` (weak: the connection owns the body)
    sink: Mutex<Weak<Mutex<ClientConn>>>,
}

impl OutBody {
    /// An empty body of a `kind` message that declared `expected` bytes,
    /// holding at most `cap` unsent bytes.
    pub fn new(kind: BodyKind, expected: Option<u64>, cap: usize) -> Arc<OutBody> {
        Arc::new(OutBody {
            kind,
            cap,
            state: Mutex::new(OutState {
                buf: Vec::new(),
                written: 0,
                expected,
                finished: false,
                trailers: None,
                failed: None,
            }),
            sink: Mutex::new(Weak::new()),
        })
    }

    /// Sends it on `conn` from now on.
    pub fn attach(&self, conn: &Arc<Mutex<ClientConn>>) {
        *self.sink.lock() = Arc::downgrade(conn);
    }

    /// The connection sending it, if any.
    fn conn(&self) -> Option<Arc<Mutex<ClientConn>>> {
        self.sink.lock().upgrade()
    }

    /// Lets the connection move bytes along (`now`: the monotonic clock).
    pub fn pump(&self, now: u64) {
        if let Some(c) = self.conn() {
            c.lock().pump(now);
        }
    }

    /// The state, for the connection to take bytes from.
    pub fn state(&self) -> spin::MutexGuard<'_, OutState> {
        self.state.lock()
    }

    fn size_error(&self, n: u64) -> ErrorCode {
        match self.kind {
            BodyKind::Request => ErrorCode::HttpRequestBodySize(Some(n)),
            BodyKind::Response => ErrorCode::HttpResponseBodySize(Some(n)),
        }
    }

    /// `check-write`: how many bytes a write may carry now.
    pub fn check_write(&self, now: u64) -> Result<u64, WriteFailure> {
        self.pump(now);
        let s = self.state.lock();
        if let Some(e) = &s.failed {
            return Err(WriteFailure::Failed(e.clone()));
        }
        if s.finished {
            return Err(WriteFailure::Closed);
        }
        Ok(self.cap.saturating_sub(s.buf.len()) as u64)
    }

    /// `write`: queues `data` (the guest checked the permit).
    pub fn write(&self, data: &[u8], now: u64) -> Result<(), WriteFailure> {
        {
            let mut s = self.state.lock();
            if let Some(e) = &s.failed {
                return Err(WriteFailure::Failed(e.clone()));
            }
            if s.finished {
                return Err(WriteFailure::Closed);
            }
            let total = s.written + data.len() as u64;
            if s.expected.is_some_and(|n| total > n) || s.buf.len() + data.len() > self.cap {
                // More than the message declared, or more than this host
                // holds for a message no connection drains: the message
                // cannot be sent whole any more.
                s.written = total;
                let e = self.size_error(total);
                s.failed = Some(e.clone());
                return Err(WriteFailure::Failed(e));
            }
            s.written = total;
            s.buf.extend_from_slice(data);
        }
        self.pump(now);
        Ok(())
    }

    /// Whether a write may go on (room, or a failure to report).
    pub fn ready(&self, now: u64) -> bool {
        self.pump(now);
        let s = self.state.lock();
        s.failed.is_some() || s.finished || s.buf.len() < self.cap
    }

    /// Whether everything written has been taken.
    pub fn drained(&self) -> bool {
        let s = self.state.lock();
        s.buf.is_empty() || s.failed.is_some()
    }

    /// `outgoing-body.finish`: the body is complete, with `trailers`.
    pub fn finish(&self, trailers: Option<Fields>, now: u64) -> Result<(), ErrorCode> {
        {
            let mut s = self.state.lock();
            if let Some(e) = &s.failed {
                return Err(e.clone());
            }
            if let Some(n) = s.expected
                && n != s.written
            {
                let e = self.size_error(s.written);
                s.failed = Some(e.clone());
                return Err(e);
            }
            s.finished = true;
            s.trailers = trailers;
        }
        self.pump(now);
        Ok(())
    }

    /// The guest dropped the body without finishing it: the message
    /// cannot be completed.
    pub fn abandon(&self) {
        let mut s = self.state.lock();
        if !s.finished && s.failed.is_none() {
            s.failed = Some(ErrorCode::InternalError(Some(
                "the body was dropped without outgoing-body.finish".into(),
            )));
        }
    }

    /// The connection's socket and what it waits for, to block on.
    pub fn interest(&self) -> Option<(SocketId, Interest)> {
        self.conn().and_then(|c| c.lock().interest())
    }

    /// The next deadline of the connection sending it.
    pub fn deadline(&self) -> Option<u64> {
        self.conn().and_then(|c| c.lock().deadline())
    }

    /// Takes everything written so far (the server sending a response):
    /// the bytes, whether the body is finished, and its trailers.
    pub fn take(&self) -> (Vec<u8>, bool, Option<Fields>) {
        let mut s = self.state.lock();
        let bytes = core::mem::take(&mut s.buf);
        (bytes, s.finished && s.failed.is_none(), s.trailers.take())
    }
}

/// A whole body, read by the guest from the start.
pub(crate) struct Buffered {
    data: Vec<u8>,
    pos: usize,
    trailers: Option<Fields>,
}

/// An incoming message's body.
pub(crate) enum InBody {
    /// all of it at hand (a request the server read)
    Buffered(Mutex<Buffered>),
    /// read off a client connection (a response)
    Client(Arc<Mutex<ClientConn>>),
}

/// How a read of an incoming body ended without bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ReadEnd {
    /// the body is over
    Closed,
    /// the message failed
    Failed(ErrorCode),
}

impl InBody {
    /// A body of `data`, followed by `trailers`.
    pub fn buffered(data: Vec<u8>, trailers: Option<Fields>) -> Arc<InBody> {
        Arc::new(InBody::Buffered(Mutex::new(Buffered {
            data,
            pos: 0,
            trailers,
        })))
    }

    /// `read`: up to `max` bytes (none yet: empty), or how it ended.
    pub fn read(&self, max: usize, now: u64) -> Result<Vec<u8>, ReadEnd> {
        match self {
            InBody::Buffered(b) => {
                let mut b = b.lock();
                if b.pos >= b.data.len() {
                    return Err(ReadEnd::Closed);
                }
                let end = b.data.len().min(b.pos + max);
                let out = b.data[b.pos..end].to_vec();
                b.pos = end;
                Ok(out)
            }
            InBody::Client(c) => {
                let mut c = c.lock();
                c.pump(now);
                c.read_body(max)
            }
        }
    }

    /// Whether a read would return bytes or the end.
    pub fn ready(&self, now: u64) -> bool {
        match self {
            InBody::Buffered(_) => true,
            InBody::Client(c) => {
                let mut c = c.lock();
                c.pump(now);
                c.body_ready()
            }
        }
    }

    /// The trailers, once the body is over: `None` before.
    pub fn trailers(&self, now: u64) -> Option<Result<Option<Fields>, ErrorCode>> {
        match self {
            InBody::Buffered(b) => Some(Ok(b.lock().trailers.take())),
            InBody::Client(c) => {
                let mut c = c.lock();
                c.pump(now);
                c.trailers()
            }
        }
    }

    /// The socket to wait on and for what.
    pub fn interest(&self) -> Option<(SocketId, Interest)> {
        match self {
            InBody::Buffered(_) => None,
            InBody::Client(c) => c.lock().interest(),
        }
    }

    /// The next deadline of its connection.
    pub fn deadline(&self) -> Option<u64> {
        match self {
            InBody::Buffered(_) => None,
            InBody::Client(c) => c.lock().deadline(),
        }
    }
}
