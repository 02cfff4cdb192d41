//! The request-head parser of the HTTP server: pure (bytes in, a verdict
//! out), so it is also fuzzed on the host (`fuzz/fuzz_targets/http_request.rs`)
//! and smoke-tested with mutated requests (`tests/tests/parsers_survive_garbage.rs`).

/// The largest request head (request line and headers) accepted.
pub const MAX_HEAD: usize = 16 * 1024;
/// The largest request body accepted.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// A parsed request head.
pub struct Request<'a> {
    /// the method, e.g. `GET`
    pub method: &'a str,
    /// the request target, starting with `/`
    pub path: &'a str,
    /// the body's length (`Content-Length`, at most [`MAX_BODY`])
    pub content_length: usize,
    /// whether the connection closes after the answer
    pub close: bool,
}

/// How a request head parses.
pub enum Parse<'a> {
    /// more bytes are needed
    Incomplete,
    /// the head, and its length in bytes
    Head(Request<'a>, usize),
    /// not HTTP: answer with this status and close
    Bad(u16, &'static str),
}

/// Parses the request head at the start of `input`.
pub fn parse(input: &[u8]) -> Parse<'_> {
    let Some(end) = input.windows(4).position(|w| w == b"\r\n\r\n") else {
        return if input.len() > MAX_HEAD {
            Parse::Bad(431, "Request Header Fields Too Large")
        } else {
            Parse::Incomplete
        };
    };
    if end > MAX_HEAD {
        return Parse::Bad(431, "Request Header Fields Too Large");
    }
    let Ok(head) = std::str::from_utf8(&input[..end]) else {
        return Parse::Bad(400, "Bad Request");
    };
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Parse::Bad(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !path.starts_with('/') {
        return Parse::Bad(400, "Bad Request");
    }
    let mut req = Request {
        method,
        path,
        content_length: 0,
        close: version == "HTTP/1.0",
    };
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Parse::Bad(400, "Bad Request");
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            match value.parse::<usize>() {
                Ok(n) if n <= MAX_BODY => req.content_length = n,
                Ok(_) => return Parse::Bad(413, "Content Too Large"),
                Err(_) => return Parse::Bad(400, "Bad Request"),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked bodies are not supported: refuse rather than misread.
            return Parse::Bad(501, "Not Implemented");
        } else if name.eq_ignore_ascii_case("connection") {
            if value.eq_ignore_ascii_case("close") {
                req.close = true;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                req.close = false;
            }
        }
    }
    Parse::Head(req, end + 4)
}
