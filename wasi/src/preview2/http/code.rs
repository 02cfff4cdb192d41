//! The plain values of `wasi:http/types`: `method`, `scheme` and
//! `error-code`, between their Rust form and component [`Value`]s.

use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::vec;

use basalt_runtime::component::Value;

/// The methods `wasi:http/types.method` names, in case order (then
/// `other(string)`).
const METHODS: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH",
];

/// Whether `s` is a method token (RFC 9110: `tchar`s, at least one).
pub(crate) fn valid_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// `method` of `m` (as sent: a known name in upper case is its case).
pub(crate) fn method_value(m: &str) -> Value {
    match METHODS.iter().position(|k| *k == m) {
        Some(i) => Value::Variant(i as u32, None),
        None => Value::Variant(9, Some(Box::new(Value::String(m.to_string())))),
    }
}

/// The method a `method` value names, if it is a valid one.
pub(crate) fn method_of(v: &Value) -> Option<String> {
    match v {
        Value::Variant(i, None) => METHODS.get(*i as usize).map(|m| m.to_string()),
        Value::Variant(9, Some(p)) => match &**p {
            Value::String(s) if valid_token(s) => Some(s.clone()),
            _ => None,
        },
        _ => None,
    }
}

/// A request's scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scheme {
    /// `http`
    Http,
    /// `https`
    Https,
    /// another (RFC 3986 `scheme` syntax)
    Other(String),
}

impl Scheme {
    /// The scheme as written in a URI.
    pub fn as_str(&self) -> &str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Other(s) => s,
        }
    }
}

/// `scheme` of `s`.
pub(crate) fn scheme_value(s: &Scheme) -> Value {
    match s {
        Scheme::Http => Value::Variant(0, None),
        Scheme::Https => Value::Variant(1, None),
        Scheme::Other(o) => Value::Variant(2, Some(Box::new(Value::String(o.clone())))),
    }
}

/// The scheme a `scheme` value names, if valid (`Err` when not).
pub(crate) fn scheme_of(v: &Value) -> Result<Scheme, ()> {
    match v {
        Value::Variant(0, None) => Ok(Scheme::Http),
        Value::Variant(1, None) => Ok(Scheme::Https),
        Value::Variant(2, Some(p)) => match &**p {
            Value::String(s)
                if s.starts_with(|c: char| c.is_ascii_alphabetic())
                    && s.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b)) =>
            {
                Ok(Scheme::Other(s.clone()))
            }
            _ => Err(()),
        },
        _ => Err(()),
    }
}

/// The `error-code`s the host produces (`wasi:http/types.error-code`; the
/// comment on each case is its WIT name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// `DNS-timeout`
    DnsTimeout,
    /// `DNS-error`: the resolver's answer code, as text
    DnsError(Option<String>),
    /// `destination-unavailable`
    DestinationUnavailable,
    /// `connection-refused`
    ConnectionRefused,
    /// `connection-terminated`
    ConnectionTerminated,
    /// `connection-timeout`
    ConnectionTimeout,
    /// `connection-read-timeout`
    ConnectionReadTimeout,
    /// `connection-write-timeout`
    ConnectionWriteTimeout,
    /// `HTTP-request-denied`
    HttpRequestDenied,
    /// `HTTP-request-body-size`
    HttpRequestBodySize(Option<u64>),
    /// `HTTP-request-method-invalid`
    HttpRequestMethodInvalid,
    /// `HTTP-request-URI-invalid`
    HttpRequestUriInvalid,
    /// `HTTP-response-incomplete`
    HttpResponseIncomplete,
    /// `HTTP-response-header-section-size`
    HttpResponseHeaderSectionSize(Option<u32>),
    /// `HTTP-response-body-size`
    HttpResponseBodySize(Option<u64>),
    /// `HTTP-response-transfer-coding`
    HttpResponseTransferCoding(Option<String>),
    /// `HTTP-protocol-error`
    HttpProtocolError,
    /// `internal-error`
    InternalError(Option<String>),
}

fn some_string(s: &Option<String>) -> Value {
    Value::Option(s.clone().map(|s| Box::new(Value::String(s))))
}

impl ErrorCode {
    /// The `error-code` value.
    pub(crate) fn to_value(&self) -> Value {
        let case = |i: u32, p: Option<Value>| Value::Variant(i, p.map(Box::new));
        match self {
            ErrorCode::DnsTimeout => case(0, None),
            ErrorCode::DnsError(rcode) => case(
                1,
                Some(Value::Record(vec![some_string(rcode), Value::Option(None)])),
            ),
            ErrorCode::DestinationUnavailable => case(3, None),
            ErrorCode::ConnectionRefused => case(6, None),
            ErrorCode::ConnectionTerminated => case(7, None),
            ErrorCode::ConnectionTimeout => case(8, None),
            ErrorCode::ConnectionReadTimeout => case(9, None),
            ErrorCode::ConnectionWriteTimeout => case(10, None),
            ErrorCode::HttpRequestDenied => case(15, None),
            ErrorCode::HttpRequestBodySize(n) => {
                case(17, Some(Value::Option(n.map(|n| Box::new(Value::U64(n))))))
            }
            ErrorCode::HttpRequestMethodInvalid => case(18, None),
            ErrorCode::HttpRequestUriInvalid => case(19, None),
            ErrorCode::HttpResponseIncomplete => case(25, None),
            ErrorCode::HttpResponseHeaderSectionSize(n) => {
                case(26, Some(Value::Option(n.map(|n| Box::new(Value::U32(n))))))
            }
            ErrorCode::HttpResponseBodySize(n) => {
                case(28, Some(Value::Option(n.map(|n| Box::new(Value::U64(n))))))
            }
            ErrorCode::HttpResponseTransferCoding(c) => case(31, Some(some_string(c))),
            ErrorCode::HttpProtocolError => case(35, None),
            ErrorCode::InternalError(m) => case(38, Some(some_string(m))),
        }
    }
}

impl core::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ErrorCode::DnsTimeout => f.write_str("DNS timeout"),
            ErrorCode::DnsError(Some(r)) => write!(f, "DNS error: {r}"),
            ErrorCode::DnsError(None) => f.write_str("DNS error"),
            ErrorCode::DestinationUnavailable => f.write_str("destination unavailable"),
            ErrorCode::ConnectionRefused => f.write_str("connection refused"),
            ErrorCode::ConnectionTerminated => f.write_str("connection terminated"),
            ErrorCode::ConnectionTimeout => f.write_str("connection timeout"),
            ErrorCode::ConnectionReadTimeout => f.write_str("connection read timeout"),
            ErrorCode::ConnectionWriteTimeout => f.write_str("connection write timeout"),
            ErrorCode::HttpRequestDenied => f.write_str("HTTP request denied"),
            ErrorCode::HttpRequestBodySize(n) => write!(f, "HTTP request body size {n:?}"),
            ErrorCode::HttpRequestMethodInvalid => f.write_str("HTTP request method invalid"),
            ErrorCode::HttpRequestUriInvalid => f.write_str("HTTP request URI invalid"),
            ErrorCode::HttpResponseIncomplete => f.write_str("HTTP response incomplete"),
            ErrorCode::HttpResponseHeaderSectionSize(n) => {
                write!(f, "HTTP response header section size {n:?}")
            }
            ErrorCode::HttpResponseBodySize(n) => write!(f, "HTTP response body size {n:?}"),
            ErrorCode::HttpResponseTransferCoding(c) => {
                write!(f, "HTTP response transfer coding {c:?}")
            }
            ErrorCode::HttpProtocolError => f.write_str("HTTP protocol error"),
            ErrorCode::InternalError(Some(m)) => write!(f, "internal error: {m}"),
            ErrorCode::InternalError(None) => f.write_str("internal error"),
        }
    }
}

/// The WIT name of `error-code` case `case`, for messages about a code a
/// guest gave.
pub(crate) fn error_case_name(case: u32) -> &'static str {
    const NAMES: [&str; 39] = [
        "DNS-timeout",
        "DNS-error",
        "destination-not-found",
        "destination-unavailable",
        "destination-IP-prohibited",
        "destination-IP-unroutable",
        "connection-refused",
        "connection-terminated",
        "connection-timeout",
        "connection-read-timeout",
        "connection-write-timeout",
        "connection-limit-reached",
        "TLS-protocol-error",
        "TLS-certificate-error",
        "TLS-alert-received",
        "HTTP-request-denied",
        "HTTP-request-length-required",
        "HTTP-request-body-size",
        "HTTP-request-method-invalid",
        "HTTP-request-URI-invalid",
        "HTTP-request-URI-too-long",
        "HTTP-request-header-section-size",
        "HTTP-request-header-size",
        "HTTP-request-trailer-section-size",
        "HTTP-request-trailer-size",
        "HTTP-response-incomplete",
        "HTTP-response-header-section-size",
        "HTTP-response-header-size",
        "HTTP-response-body-size",
        "HTTP-response-trailer-section-size",
        "HTTP-response-trailer-size",
        "HTTP-response-transfer-coding",
        "HTTP-response-content-coding",
        "HTTP-response-timeout",
        "HTTP-upgrade-failed",
        "HTTP-protocol-error",
        "loop-detected",
        "configuration-error",
        "internal-error",
    ];
    NAMES.get(case as usize).copied().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_and_schemes_round_trip() {
        for m in ["GET", "PATCH", "PURGE"] {
            assert_eq!(method_of(&method_value(m)).as_deref(), Some(m));
        }
        let bad = Value::Variant(9, Some(Box::new(Value::String("bad\nmethod".into()))));
        assert_eq!(method_of(&bad), None);
        for s in [Scheme::Http, Scheme::Https, Scheme::Other("ws".into())] {
            assert_eq!(scheme_of(&scheme_value(&s)), Ok(s));
        }
        let bad = Value::Variant(2, Some(Box::new(Value::String("bad\nscheme".into()))));
        assert_eq!(scheme_of(&bad), Err(()));
    }

    #[test]
    fn error_codes_use_their_wit_cases() {
        let Value::Variant(i, _) = ErrorCode::HttpProtocolError.to_value() else {
            panic!()
        };
        assert_eq!(error_case_name(i), "HTTP-protocol-error");
        let Value::Variant(i, _) = ErrorCode::HttpRequestBodySize(Some(3)).to_value() else {
            panic!()
        };
        assert_eq!(error_case_name(i), "HTTP-request-body-size");
    }
}
