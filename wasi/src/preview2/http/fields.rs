//! The header map behind `wasi:http/types`'s `fields` resource:
//! names checked as RFC 9110 tokens and kept in lower case (lookups ignore
//! case, as `wasi:http` says), values checked for what may not travel in
//! a header (CR, LF, NUL and other controls), the hop-by-hop headers a
//! guest may not set refused as `forbidden`, and the maps of requests and
//! responses that are already sent `immutable`.

use alloc::string::String;
use alloc::vec::Vec;

/// `wasi:http/types.header-error`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// the name or a value is not valid in a header
    InvalidSyntax,
    /// the name is one the host sets itself
    Forbidden,
    /// the fields are those of a message already handed on
    Immutable,
}

/// Headers a guest may not set or see: the connection's own and the
/// proxy's, which the host manages (wasmtime's default list). `host` is
/// the request's authority.
const FORBIDDEN: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
];

/// Whether `name` is a valid field name (an RFC 9110 token).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Whether `value` may travel as a field value: visible characters,
/// spaces and tabs, and bytes past ASCII (obs-text); no other controls.
fn valid_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || b == b' ' || (0x21..=0x7e).contains(&b) || b >= 0x80)
}

/// A set of header fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Fields {
    /// (lower-cased name, value) in order
    entries: Vec<(String, Vec<u8>)>,
    immutable: bool,
}

impl Fields {
    /// No fields, mutable.
    pub fn new() -> Fields {
        Fields::default()
    }

    /// `fields.from-list`: the entries in order, each checked.
    pub fn from_list(list: &[(String, Vec<u8>)]) -> Result<Fields, HeaderError> {
        let mut f = Fields::new();
        for (name, value) in list {
            f.append(name, value)?;
        }
        Ok(f)
    }

    /// The fields of a message that came off the wire (`entries` with
    /// lower-case names, as [`crate::http1`] reads them), read-only, the
    /// forbidden ones left out.
    pub fn from_wire(entries: &[(String, Vec<u8>)]) -> Fields {
        Fields {
            entries: (entries.iter())
                .filter(|(n, _)| !FORBIDDEN.contains(&n.as_str()))
                .cloned()
                .collect(),
            immutable: true,
        }
    }

    /// Makes the fields read-only (their message was handed on).
    pub fn freeze(&mut self) {
        self.immutable = true;
    }

    fn check(&self, name: &str) -> Result<String, HeaderError> {
        if !valid_name(name) {
            return Err(HeaderError::InvalidSyntax);
        }
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN.contains(&lower.as_str()) {
            return Err(HeaderError::Forbidden);
        }
        if self.immutable {
            return Err(HeaderError::Immutable);
        }
        Ok(lower)
    }

    /// `fields.get`: the values of `name`, in order.
    pub fn get(&self, name: &str) -> Vec<Vec<u8>> {
        let lower = name.to_ascii_lowercase();
        (self.entries.iter())
            .filter(|(n, _)| *n == lower)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// `fields.has`.
    pub fn has(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        self.entries.iter().any(|(n, _)| *n == lower)
    }

    /// `fields.set`: `name`'s values replaced by `values`.
    pub fn set(&mut self, name: &str, values: &[Vec<u8>]) -> Result<(), HeaderError> {
        let lower = self.check(name)?;
        if !values.iter().all(|v| valid_value(v)) {
            return Err(HeaderError::InvalidSyntax);
        }
        self.entries.retain(|(n, _)| *n != lower);
        for v in values {
            self.entries.push((lower.clone(), v.clone()));
        }
        Ok(())
    }

    /// `fields.delete`: every value of `name` removed.
    pub fn delete(&mut self, name: &str) -> Result<(), HeaderError> {
        let lower = self.check(name)?;
        self.entries.retain(|(n, _)| *n != lower);
        Ok(())
    }

    /// `fields.append`: one more value for `name`.
    pub fn append(&mut self, name: &str, value: &[u8]) -> Result<(), HeaderError> {
        let lower = self.check(name)?;
        if !valid_value(value) {
            return Err(HeaderError::InvalidSyntax);
        }
        self.entries.push((lower, value.to_vec()));
        Ok(())
    }

    /// `fields.entries`: every (name, value), in order.
    pub fn entries(&self) -> &[(String, Vec<u8>)] {
        &self.entries
    }

    /// The bytes of every name and value.
    pub fn size(&self) -> usize {
        self.entries.iter().map(|(n, v)| n.len() + v.len()).sum()
    }

    /// The same entries, read-only (the headers a message shows).
    pub fn frozen_copy(&self) -> Fields {
        Fields {
            entries: self.entries.clone(),
            immutable: true,
        }
    }

    /// `fields.clone`: the same entries, mutable.
    pub fn mutable_copy(&self) -> Fields {
        Fields {
            entries: self.entries.clone(),
            immutable: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn names_are_tokens_compared_without_case() {
        let mut f = Fields::new();
        f.append("X-Thing", b"a").unwrap();
        f.append("x-thing", b"b").unwrap();
        assert_eq!(f.get("X-THING"), vec![b"a".to_vec(), b"b".to_vec()]);
        assert!(f.has("x-Thing"));
        assert_eq!(f.append("bad name", b"v"), Err(HeaderError::InvalidSyntax));
        assert_eq!(f.append("", b"v"), Err(HeaderError::InvalidSyntax));
        assert_eq!(
            f.append("x", b"a\r\nInjected: 1"),
            Err(HeaderError::InvalidSyntax)
        );
        assert_eq!(f.append("x", b"nul\0"), Err(HeaderError::InvalidSyntax));
        assert_eq!(f.append("x", "caf\u{e9}".as_bytes()), Ok(()));
    }

    #[test]
    fn set_delete_and_the_forbidden_and_frozen() {
        let mut f =
            Fields::from_list(&[("a".into(), b"1".to_vec()), ("b".into(), b"2".to_vec())]).unwrap();
        f.set("A", &[b"3".to_vec(), b"4".to_vec()]).unwrap();
        assert_eq!(f.get("a"), vec![b"3".to_vec(), b"4".to_vec()]);
        f.delete("b").unwrap();
        assert!(!f.has("b"));
        assert_eq!(
            f.append("Connection", b"close"),
            Err(HeaderError::Forbidden)
        );
        assert_eq!(
            Fields::from_list(&[("transfer-encoding".into(), b"chunked".to_vec())]),
            Err(HeaderError::Forbidden)
        );
        let mut copy = f.mutable_copy();
        f.freeze();
        assert_eq!(f.append("c", b"5"), Err(HeaderError::Immutable));
        assert_eq!(f.delete("a"), Err(HeaderError::Immutable));
        assert_eq!(copy.append("c", b"5"), Ok(()));
        assert_eq!(copy.entries().len(), 3);
    }
}
