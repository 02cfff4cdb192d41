//! The folded text form of the legacy exception-handling `try`, which the
//! `wast` crate no longer reads, rewritten into the flat form it still
//! reads (the spec's `legacy/` scripts use the folded one):
//!
//! ```text
//! (try $l (result i32) (do A…) (catch $e B…) (catch_all C…))
//!   => try $l (result i32) A… catch $e B… catch_all C… end
//! (try (do A…) (delegate $l))
//!   => try A… delegate $l
//! ```
//!
//! Strings and comments are copied untouched, and every newline is kept,
//! so line numbers in the script stay right. A folded `try` that does not
//! have this shape is left as it is, for the parser to report.

use std::borrow::Cow;

/// `text` with every well-formed folded legacy `try` unfolded.
pub fn unfold(text: &str) -> Cow<'_, str> {
    if !text.contains("(try") {
        return Cow::Borrowed(text);
    }
    let mut u = Unfolder {
        src: text.as_bytes(),
        at: 0,
        out: Vec::with_capacity(text.len()),
    };
    u.sequence(false);
    // Only whole ASCII tokens were moved or dropped: still UTF-8.
    match String::from_utf8(u.out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(text),
    }
}

struct Unfolder<'a> {
    src: &'a [u8],
    at: usize,
    out: Vec<u8>,
}

impl Unfolder<'_> {
    fn peek(&self, s: &[u8]) -> bool {
        self.src[self.at..].starts_with(s)
    }

    fn copy(&mut self, n: usize) {
        let end = (self.at + n).min(self.src.len());
        self.out.extend_from_slice(&self.src[self.at..end]);
        self.at = end;
    }

    /// Copies a string, a comment, whitespace or a token: one item that is
    /// not a parenthesis. Returns false at a parenthesis or the end.
    fn atom(&mut self) -> bool {
        let Some(&c) = self.src.get(self.at) else {
            return false;
        };
        if self.peek(b"(;") {
            let start = self.at;
            let mut depth = 0usize;
            while self.at < self.src.len() {
                if self.peek(b"(;") {
                    depth += 1;
                    self.at += 2;
                } else if self.peek(b";)") {
                    depth -= 1;
                    self.at += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    self.at += 1;
                }
            }
            self.out.extend_from_slice(&self.src[start..self.at]);
            return true;
        }
        match c {
            b'(' | b')' => false,
            b'"' => {
                let start = self.at;
                self.at += 1;
                while let Some(&c) = self.src.get(self.at) {
                    self.at += 1;
                    match c {
                        b'\\' => self.at += 1,
                        b'"' => break,
                        _ => {}
                    }
                }
                self.at = self.at.min(self.src.len());
                self.out.extend_from_slice(&self.src[start..self.at]);
                true
            }
            b';' if self.peek(b";;") => {
                let len = self.src[self.at..]
                    .iter()
                    .position(|&c| c == b'\n')
                    .unwrap_or(self.src.len() - self.at);
                self.copy(len);
                true
            }
            c if c.is_ascii_whitespace() => {
                self.copy(1);
                true
            }
            _ => {
                let len = self.token_len();
                self.copy(len.max(1));
                true
            }
        }
    }

    fn token_len(&self) -> usize {
        self.src[self.at..]
            .iter()
            .position(|&c| c.is_ascii_whitespace() || matches!(c, b'(' | b')' | b'"' | b';'))
            .unwrap_or(self.src.len() - self.at)
    }

    /// The keyword of the group opening at `self.at` (after `(` and any
    /// spaces), and where it ends.
    fn keyword(&self) -> (&[u8], usize) {
        let mut i = self.at + 1;
        while self.src.get(i).is_some_and(|c| c.is_ascii_whitespace()) {
            i += 1;
        }
        let len = self.src[i..]
            .iter()
            .position(|&c| c.is_ascii_whitespace() || matches!(c, b'(' | b')' | b'"' | b';'))
            .unwrap_or(self.src.len() - i);
        (&self.src[i..i + len], i + len)
    }

    /// Copies items up to the `)` closing the enclosing group (left
    /// unread) when `inside`, else to the end, unfolding `try`s.
    fn sequence(&mut self, inside: bool) {
        loop {
            if self.atom() {
                continue;
            }
            match self.src.get(self.at) {
                None => return,
                Some(b')') if inside => return,
                Some(b')') => self.copy(1),
                Some(_) => self.group(),
            }
        }
    }

    /// A group at `(`: a folded `try` is unfolded, anything else copied.
    fn group(&mut self) {
        let (kw, _) = self.keyword();
        if kw == b"try" {
            let (at, len) = (self.at, self.out.len());
            if self.unfold_try() {
                return;
            }
            self.at = at;
            self.out.truncate(len);
        }
        self.copy(1);
        self.sequence(true);
        if self.at < self.src.len() {
            self.copy(1);
        }
    }

    /// Unfolds the `try` group at `self.at`; false if it is not one of the
    /// two legacy shapes (the caller rolls back).
    fn unfold_try(&mut self) -> bool {
        let (_, after) = self.keyword();
        self.at = after;
        self.out.extend_from_slice(b"try");
        // The label and block type, up to `(do`.
        loop {
            if self.atom() {
                continue;
            }
            if self.src.get(self.at) != Some(&b'(') {
                return false;
            }
            let (kw, _) = self.keyword();
            match kw {
                b"do" => break,
                b"result" | b"param" | b"type" => {
                    self.copy(1);
                    self.sequence(true);
                    if self.src.get(self.at) != Some(&b')') {
                        return false;
                    }
                    self.copy(1);
                }
                _ => return false,
            }
        }
        if !self.clause(b"") {
            return false;
        }
        let (mut catch_all, mut delegate, mut catches) = (false, false, 0usize);
        loop {
            if self.atom() {
                continue;
            }
            match self.src.get(self.at) {
                Some(b')') => break,
                Some(b'(') => {}
                _ => return false,
            }
            if delegate || catch_all {
                return false;
            }
            let (kw, _) = self.keyword();
            match kw {
                b"catch" => catches += 1,
                b"catch_all" => catch_all = true,
                b"delegate" if catches == 0 => delegate = true,
                _ => return false,
            }
            let kw = kw.to_vec();
            if !self.clause(&kw) {
                return false;
            }
        }
        self.at += 1; // the `try`'s `)`
        if !delegate {
            self.out.extend_from_slice(b" end");
        }
        true
    }

    /// A `(do …)`, `(catch …)`, `(catch_all …)` or `(delegate …)` group:
    /// writes `keyword` (none for `do`) and the unfolded contents.
    fn clause(&mut self, keyword: &[u8]) -> bool {
        let (_, after) = self.keyword();
        self.at = after;
        self.out.push(b' ');
        self.out.extend_from_slice(keyword);
        self.sequence(true);
        if self.src.get(self.at) != Some(&b')') {
            return false;
        }
        self.at += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::unfold;

    /// `s` with every run of whitespace made one space.
    fn squash(s: &str) -> String {
        s.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    #[test]
    fn folded_try_becomes_flat() {
        assert_eq!(
            squash(&unfold(
                "(func (try $t (result i32) (do (i32.const 1)) (catch $e (i32.const 2)) (catch_all (i32.const 3))))"
            )),
            "(func try $t (result i32) (i32.const 1) catch $e (i32.const 2) catch_all (i32.const 3) end)"
        );
        assert_eq!(
            squash(&unfold("(try (do (try (do (throw $e)) (delegate 0))))")),
            "try try (throw $e) delegate 0 end"
        );
    }

    #[test]
    fn strings_comments_and_newlines_are_kept() {
        let text = "(module quote \"(try (do))\") ;; (try\n(; (try (do)) ;)\n(try\n (do\n nop))";
        let out = unfold(text);
        assert!(out.starts_with("(module quote \"(try (do))\") ;; (try\n(; (try (do)) ;)\n"));
        assert_eq!(out.matches('\n').count(), text.matches('\n').count());
        assert!(squash(&out).ends_with(";) try nop end"), "{out}");
    }

    #[test]
    fn malformed_shapes_are_left_alone() {
        for text in [
            "(try (do) (catch_all) (catch_all))",
            "(try (do) (catch $e) (delegate 0))",
            "(try (do) (delegate) (delegate 0))",
            "(try (catch $e))",
            "(try (do)",
        ] {
            assert_eq!(unfold(text), text);
        }
        assert_eq!(unfold("(try_table (do))"), "(try_table (do))");
    }
}
