//! The host's side of a shared console (`docs/guest-protocol.md`, "One
//! console"): under firmware boot the guest has one serial line for the
//! program's stdout and stderr and the kernel log. What the firmware wrote
//! before the kernel's start line is kept apart; after it the kernel
//! frames its channels (`basalt.console=framed`, which `basalt run`
//! asks for), and [`Demux`] turns the bytes back into three streams.

/// The line the kernel writes when it takes the console over.
pub const START_LINE: &[u8] = b"BASALT-START\n";

/// The framing escape byte.
const ESCAPE: u8 = 0xff;

/// Where a run of console bytes belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Piece<'a> {
    /// the firmware's output, before the kernel's start line
    Firmware(&'a [u8]),
    /// the program's stdout
    Stdout(&'a [u8]),
    /// the program's stderr
    Stderr(&'a [u8]),
    /// kernel log text (lines, and the status marker)
    Log(&'a [u8]),
}

/// Which stream the bytes go to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// before the start line: `matched` bytes of it seen
    Firmware { matched: usize },
    /// after it, on channel `1`, `2` or `3`; `escape`: an `0xff` was the
    /// last byte
    Framed { channel: u8, escape: bool },
}

/// A decoder of one shared console's byte stream.
#[derive(Debug)]
pub struct Demux {
    state: State,
    out: Vec<u8>,
}

impl Default for Demux {
    fn default() -> Self {
        Demux::new()
    }
}

impl Demux {
    /// A decoder at the start of the stream (in the firmware's output).
    pub fn new() -> Demux {
        Demux {
            state: State::Firmware { matched: 0 },
            out: Vec::new(),
        }
    }

    /// Whether the kernel's start line has been seen (stdin may be sent
    /// from then on: before, the firmware would read it as key presses).
    pub fn started(&self) -> bool {
        matches!(self.state, State::Framed { .. })
    }

    /// Decodes `bytes`, handing each run of bytes of one stream to `sink`
    /// in order. Bytes of the start line itself go nowhere.
    pub fn feed(&mut self, bytes: &[u8], sink: &mut dyn FnMut(Piece<'_>)) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match self.state {
                State::Firmware { matched } => {
                    // Look for the start line; firmware bytes pass through.
                    let mut m = matched;
                    let mut used = 0;
                    for (i, b) in rest.iter().enumerate() {
                        used = i + 1;
                        if *b == START_LINE[m] {
                            m += 1;
                        } else {
                            // A partial match that fails: those bytes were
                            // firmware output after all.
                            if m > 0 {
                                sink(Piece::Firmware(&START_LINE[..m]));
                            }
                            m = usize::from(*b == START_LINE[0]);
                            if m == 0 {
                                sink(Piece::Firmware(std::slice::from_ref(b)));
                            }
                        }
                        if m == START_LINE.len() {
                            break;
                        }
                    }
                    rest = &rest[used..];
                    self.state = if m == START_LINE.len() {
                        State::Framed {
                            channel: 3,
                            escape: false,
                        }
                    } else {
                        State::Firmware { matched: m }
                    };
                }
                State::Framed { channel, escape } => {
                    self.out.clear();
                    let (mut channel, mut escape) = (channel, escape);
                    let mut used = 0;
                    for b in rest {
                        used += 1;
                        if escape {
                            escape = false;
                            match *b {
                                0 => self.out.push(ESCAPE),
                                c @ 1..=3 => {
                                    if c != channel {
                                        break_out(channel, &self.out, sink);
                                        self.out.clear();
                                        channel = c;
                                    }
                                }
                                // Not a sequence the kernel writes: keep
                                // both bytes as data.
                                other => self.out.extend_from_slice(&[ESCAPE, other]),
                            }
                        } else if *b == ESCAPE {
                            escape = true;
                        } else {
                            self.out.push(*b);
                        }
                    }
                    break_out(channel, &self.out, sink);
                    self.state = State::Framed { channel, escape };
                    rest = &rest[used..];
                }
            }
        }
    }
}

fn break_out(channel: u8, bytes: &[u8], sink: &mut dyn FnMut(Piece<'_>)) {
    if bytes.is_empty() {
        return;
    }
    sink(match channel {
        1 => Piece::Stdout(bytes),
        2 => Piece::Stderr(bytes),
        _ => Piece::Log(bytes),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(chunks: &[&[u8]]) -> (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>) {
        let mut d = Demux::new();
        let (mut fw, mut out, mut err, mut log) = (vec![], vec![], vec![], vec![]);
        for c in chunks {
            d.feed(c, &mut |p| match p {
                Piece::Firmware(b) => fw.extend_from_slice(b),
                Piece::Stdout(b) => out.extend_from_slice(b),
                Piece::Stderr(b) => err.extend_from_slice(b),
                Piece::Log(b) => log.extend_from_slice(b),
            });
        }
        (fw, out, err, log)
    }

    #[test]
    fn firmware_noise_then_framed_channels() {
        let stream: &[u8] = b"BdsDxe: loading BASALT\r\n\nBASALT-START\nbooting\n\xff\x01hello \xff\x00!\xff\x02oops\xff\x03BASALT-EXIT 0\n";
        let (fw, out, err, log) = decode(&[stream]);
        assert_eq!(fw, b"BdsDxe: loading BASALT\r\n\n");
        assert_eq!(out, b"hello \xff!");
        assert_eq!(err, b"oops");
        assert_eq!(log, b"booting\nBASALT-EXIT 0\n");
    }

    #[test]
    fn any_split_of_the_stream_decodes_alike() {
        let stream: &[u8] =
            b"xBASALT-STBASALT-START\n\xff\x01a\xff\x00b\xff\x02c\xff\x03L\n\xff\x01d";
        let whole = decode(&[stream]);
        assert_eq!(whole.0, b"xBASALT-ST");
        assert_eq!(whole.1, b"a\xffbd");
        for cut in 0..stream.len() {
            let (a, b) = stream.split_at(cut);
            assert_eq!(decode(&[a, b]), whole, "split at {cut}");
        }
        let bytes: Vec<&[u8]> = stream.chunks(1).collect();
        assert_eq!(decode(&bytes), whole);
    }
}
