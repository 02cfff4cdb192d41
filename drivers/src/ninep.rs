//! A 9P2000.L client: the file protocol QEMU's `-virtfs` (virtio-9p)
//! speaks, as Linux's v9fs uses it.
//!
//! The client encodes one T-message at a time, hands it to a [`Channel`]
//! (for QEMU, [`crate::virtio::p9::Virtio9p`]) and decodes the R-message
//! that comes back. Requests are synchronous: one tag, one request in
//! flight. Everything a server sends is checked — lengths, message types,
//! counts — and a malformed reply is a [`NinePError::Protocol`], never a
//! panic or a read outside the reply.
//!
//! The client knows files only as fids and qids; what a file system built
//! on it means by them (inodes, open files) is its user's business.
//! Remote failures come back as the server's Linux `errno` number
//! ([`NinePError::Remote`]); mapping them is the caller's job too.

use alloc::string::String;
use alloc::vec::Vec;

/// The protocol version the client asks for.
pub const VERSION: &str = "9P2000.L";

/// The bytes of a message header: size[4] type[1] tag[2].
pub const HEADER_LEN: usize = 7;

/// The header of Rread plus the header of the message: what a read reply
/// costs on top of its data.
pub const READ_OVERHEAD: usize = HEADER_LEN + 4;

/// The header of Twrite: what a write request costs on top of its data.
pub const WRITE_OVERHEAD: usize = HEADER_LEN + 4 + 8 + 4;

/// "No fid" (`NOFID`), e.g. Tattach's afid when there is no authentication.
pub const NO_FID: u32 = !0;

/// Message types of 9P2000.L (T = request, R = reply).
mod kind {
    pub const RLERROR: u8 = 7;
    pub const TSTATFS: u8 = 8;
    pub const TLOPEN: u8 = 12;
    pub const TLCREATE: u8 = 14;
    pub const TSYMLINK: u8 = 16;
    pub const TREADLINK: u8 = 22;
    pub const TGETATTR: u8 = 24;
    pub const TSETATTR: u8 = 26;
    pub const TREADDIR: u8 = 40;
    pub const TFSYNC: u8 = 50;
    pub const TLINK: u8 = 70;
    pub const TMKDIR: u8 = 72;
    pub const TRENAMEAT: u8 = 74;
    pub const TUNLINKAT: u8 = 76;
    pub const TVERSION: u8 = 100;
    pub const TATTACH: u8 = 104;
    pub const TWALK: u8 = 110;
    pub const TREAD: u8 = 116;
    pub const TWRITE: u8 = 118;
    pub const TCLUNK: u8 = 120;
}

/// Open flags of Tlopen and Tlcreate (Linux's x86 values, which 9P2000.L
/// fixes for every server and client).
pub mod open_flags {
    /// read only
    pub const READ_ONLY: u32 = 0;
    /// write only
    pub const WRITE_ONLY: u32 = 1;
    /// read and write
    pub const READ_WRITE: u32 = 2;
    /// fail unless the file is a directory
    pub const DIRECTORY: u32 = 0o200000;
    /// do not follow a symbolic link in the last component
    pub const NO_FOLLOW: u32 = 0o400000;
}

/// File mode bits (`st_mode`): the type field and its values.
pub mod mode {
    /// the bits holding the file type
    pub const TYPE_MASK: u32 = 0o170000;
    /// a directory
    pub const DIRECTORY: u32 = 0o040000;
    /// a regular file
    pub const REGULAR: u32 = 0o100000;
    /// a symbolic link
    pub const SYMLINK: u32 = 0o120000;
    /// a character device
    pub const CHARACTER_DEVICE: u32 = 0o020000;
    /// a block device
    pub const BLOCK_DEVICE: u32 = 0o060000;
    /// a named pipe
    pub const FIFO: u32 = 0o010000;
    /// a Unix-domain socket
    pub const SOCKET: u32 = 0o140000;
}

/// What a Tsetattr changes (its `valid` field).
pub mod set {
    /// the permission bits
    pub const MODE: u32 = 0x1;
    /// the size (truncate or extend)
    pub const SIZE: u32 = 0x8;
    /// the access time: now, unless [`ATIME_SET`] gives it
    pub const ATIME: u32 = 0x10;
    /// the modification time: now, unless [`MTIME_SET`] gives it
    pub const MTIME: u32 = 0x20;
    /// the access time is the one in the message
    pub const ATIME_SET: u32 = 0x80;
    /// the modification time is the one in the message
    pub const MTIME_SET: u32 = 0x100;
}

/// Tunlinkat's flag for removing a directory (Linux `AT_REMOVEDIR`).
pub const REMOVE_DIRECTORY: u32 = 0x200;

/// Tgetattr's mask for the basic `stat` fields (mode through blocks).
pub const GETATTR_BASIC: u64 = 0x7ff;

/// The largest name component the client sends (Linux's `NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// A server's unique identity for a file: its type bits, a version that
/// changes as it changes, and a number unique on the server (the host's
/// inode number, remapped across devices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Qid {
    /// `QTDIR` (0x80), `QTSYMLINK` (0x02), … or 0 for a regular file
    pub kind: u8,
    /// the file's version (QEMU: from its modification time)
    pub version: u32,
    /// the number identifying the file on the server
    pub path: u64,
}

/// A file's attributes (Rgetattr).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attr {
    /// the file's identity
    pub qid: Qid,
    /// type and permission bits (`st_mode`)
    pub mode: u32,
    /// hard links
    pub nlink: u64,
    /// bytes
    pub size: u64,
    /// last access (seconds, nanoseconds)
    pub atime: (u64, u64),
    /// last modification (seconds, nanoseconds)
    pub mtime: (u64, u64),
    /// last status change (seconds, nanoseconds)
    pub ctime: (u64, u64),
}

/// How a Tsetattr changes one timestamp.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    /// leave it
    Keep,
    /// the server's current time
    Now,
    /// this time (seconds, nanoseconds since the epoch)
    At(u64, u64),
}

/// One entry of an Rreaddir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// the file the entry names
    pub qid: Qid,
    /// the offset that continues the listing after this entry
    pub offset: u64,
    /// the entry's `d_type` (Linux `DT_*`)
    pub kind: u8,
    /// the name, raw bytes as the host has them
    pub name: Vec<u8>,
}

/// Why a 9P request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NinePError {
    /// the server refused it with this Linux `errno`
    Remote(u32),
    /// the reply broke the protocol (what was wrong)
    Protocol(&'static str),
    /// the request does not fit the negotiated message size
    TooBig,
    /// all fids are in use
    NoFids,
    /// the transport failed (its description)
    Channel(String),
}

impl core::fmt::Display for NinePError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NinePError::Remote(e) => write!(f, "the 9P server answered errno {e}"),
            NinePError::Protocol(what) => write!(f, "malformed 9P reply: {what}"),
            NinePError::TooBig => f.write_str("the 9P request is larger than the message size"),
            NinePError::NoFids => f.write_str("no 9P fids left"),
            NinePError::Channel(why) => write!(f, "9P transport: {why}"),
        }
    }
}

/// Where 9P messages go: one request out, its reply back.
pub trait Channel {
    /// The largest message, request or reply, the channel carries.
    fn max_message(&self) -> usize;
    /// Sends `request` (a whole T-message) and writes the reply into
    /// `reply`, returning its length. `reply` is
    /// [`Channel::max_message`] bytes long.
    fn exchange(&mut self, request: &[u8], reply: &mut [u8]) -> Result<usize, String>;
}

/// Builds one T-message.
struct Request {
    bytes: Vec<u8>,
}

impl Request {
    fn new(kind: u8) -> Request {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[0; 4]);
        bytes.push(kind);
        // One request at a time: every request is tag 0.
        bytes.extend_from_slice(&0u16.to_le_bytes());
        Request { bytes }
    }

    fn u16(mut self, v: u16) -> Request {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn u32(mut self, v: u32) -> Request {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    fn u64(mut self, v: u64) -> Request {
        self.bytes.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A string: length[2] then its bytes (names longer than
    /// [`NAME_MAX`] are refused before they get here).
    fn str(self, s: &[u8]) -> Request {
        let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
        let mut r = self.u16(len);
        r.bytes.extend_from_slice(&s[..usize::from(len)]);
        r
    }

    fn data(mut self, d: &[u8]) -> Request {
        self.bytes.extend_from_slice(d);
        self
    }

    fn finish(mut self) -> Vec<u8> {
        let size = self.bytes.len() as u32;
        self.bytes[..4].copy_from_slice(&size.to_le_bytes());
        self.bytes
    }
}

/// Reads one R-message's body, each read checked against its end.
pub struct Reply<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reply<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], NinePError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|e| *e <= self.body.len())
            .ok_or(NinePError::Protocol("reply shorter than its fields"))?;
        let s = &self.body[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, NinePError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, NinePError> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, NinePError> {
        let mut a = [0; 4];
        a.copy_from_slice(self.take(4)?);
        Ok(u32::from_le_bytes(a))
    }

    fn u64(&mut self) -> Result<u64, NinePError> {
        let mut a = [0; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_le_bytes(a))
    }

    fn str(&mut self) -> Result<&'a [u8], NinePError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }

    fn qid(&mut self) -> Result<Qid, NinePError> {
        Ok(Qid {
            kind: self.u8()?,
            version: self.u32()?,
            path: self.u64()?,
        })
    }
}

/// Checks `reply` is a well-formed answer of type `want` and returns its
/// body; an Rlerror becomes [`NinePError::Remote`].
pub fn parse_reply(reply: &[u8], want: u8) -> Result<Reply<'_>, NinePError> {
    if reply.len() < HEADER_LEN {
        return Err(NinePError::Protocol("reply shorter than a header"));
    }
    let size = u32::from_le_bytes([reply[0], reply[1], reply[2], reply[3]]) as usize;
    if size < HEADER_LEN || size > reply.len() {
        return Err(NinePError::Protocol("reply size field out of range"));
    }
    let tag = u16::from_le_bytes([reply[5], reply[6]]);
    if tag != 0 {
        return Err(NinePError::Protocol("reply to a tag never sent"));
    }
    let mut body = Reply {
        body: &reply[HEADER_LEN..size],
        at: 0,
    };
    match reply[4] {
        kind::RLERROR => Err(NinePError::Remote(body.u32()?)),
        k if k == want => Ok(body),
        _ => Err(NinePError::Protocol("reply of the wrong type")),
    }
}

/// The most fids the client hands out at once.
const MAX_FIDS: usize = 1 << 16;

/// A 9P2000.L session over a [`Channel`].
pub struct Client<C: Channel> {
    channel: C,
    /// the negotiated message size
    msize: usize,
    /// the reply buffer, `msize` bytes
    reply: Vec<u8>,
    /// fids given back, to reuse
    free_fids: Vec<u32>,
    /// the next never-used fid
    next_fid: u32,
}

impl<C: Channel> Client<C> {
    /// Opens a session: negotiates 9P2000.L and a message size of at most
    /// what the channel carries.
    pub fn connect(channel: C) -> Result<Client<C>, NinePError> {
        let max = channel.max_message();
        let mut c = Client {
            channel,
            msize: max,
            reply: alloc::vec![0; max],
            free_fids: Vec::new(),
            next_fid: 0,
        };
        let msize = u32::try_from(max).unwrap_or(u32::MAX);
        let req = Request::new(kind::TVERSION)
            .u32(msize)
            .str(VERSION.as_bytes())
            .finish();
        // Tversion uses NOTAG.
        let mut req = req;
        req[5..7].copy_from_slice(&u16::MAX.to_le_bytes());
        let n = c
            .channel
            .exchange(&req, &mut c.reply)
            .map_err(NinePError::Channel)?;
        let reply = &mut c.reply[..n.min(max)];
        if reply.len() >= HEADER_LEN {
            // Answer to NOTAG: accept it as tag 0 for parsing.
            reply[5..7].copy_from_slice(&0u16.to_le_bytes());
        }
        let mut body = parse_reply(reply, kind::TVERSION + 1)?;
        let server_msize = body.u32()? as usize;
        if body.str()? != VERSION.as_bytes() {
            return Err(NinePError::Protocol("the server does not speak 9P2000.L"));
        }
        if server_msize < 4096 || server_msize > max {
            return Err(NinePError::Protocol("the server chose an unusable msize"));
        }
        c.msize = server_msize;
        Ok(c)
    }

    /// The negotiated message size.
    pub fn msize(&self) -> usize {
        self.msize
    }

    /// The most data bytes one [`Client::read`] returns.
    pub fn max_read(&self) -> usize {
        self.msize - READ_OVERHEAD
    }

    /// The most data bytes one [`Client::write`] sends.
    pub fn max_write(&self) -> usize {
        self.msize - WRITE_OVERHEAD
    }

    fn new_fid(&mut self) -> Result<u32, NinePError> {
        if let Some(f) = self.free_fids.pop() {
            return Ok(f);
        }
        if self.next_fid as usize >= MAX_FIDS {
            return Err(NinePError::NoFids);
        }
        self.next_fid += 1;
        Ok(self.next_fid - 1)
    }

    /// Sends `req` and returns the reply's length in `self.reply`, after
    /// checking its type.
    fn call(&mut self, req: Request, want: u8) -> Result<usize, NinePError> {
        let req = req.finish();
        if req.len() > self.msize {
            return Err(NinePError::TooBig);
        }
        let n = self
            .channel
            .exchange(&req, &mut self.reply)
            .map_err(NinePError::Channel)?;
        let n = n.min(self.reply.len());
        parse_reply(&self.reply[..n], want)?;
        Ok(n)
    }

    /// The body of the last reply, `n` bytes long (already checked).
    fn body(&self, n: usize, want: u8) -> Reply<'_> {
        // `call` checked this exact reply.
        parse_reply(&self.reply[..n], want).unwrap_or(Reply { body: &[], at: 0 })
    }

    /// Attaches to the export as user `uid` (QEMU ignores the names);
    /// returns the root's fid and qid.
    pub fn attach(&mut self, uid: u32) -> Result<(u32, Qid), NinePError> {
        let fid = self.new_fid()?;
        let req = Request::new(kind::TATTACH)
            .u32(fid)
            .u32(NO_FID)
            .str(b"")
            .str(b"")
            .u32(uid);
        match self.call(req, kind::TATTACH + 1) {
            Ok(n) => Ok((fid, self.body(n, kind::TATTACH + 1).qid()?)),
            Err(e) => {
                self.free_fids.push(fid);
                Err(e)
            }
        }
    }

    /// Walks from `fid` through `names` (at most 16; none clones the fid)
    /// to a new fid. A walk that stops early is the error of the first
    /// missing name (`ENOENT`), and no fid is made.
    pub fn walk(&mut self, fid: u32, names: &[&[u8]]) -> Result<(u32, Qid), NinePError> {
        if names.len() > 16 || names.iter().any(|n| n.len() > NAME_MAX) {
            return Err(NinePError::TooBig);
        }
        let newfid = self.new_fid()?;
        let mut req = Request::new(kind::TWALK)
            .u32(fid)
            .u32(newfid)
            .u16(names.len() as u16);
        for n in names {
            req = req.str(n);
        }
        let n = match self.call(req, kind::TWALK + 1) {
            Ok(n) => n,
            Err(e) => {
                self.free_fids.push(newfid);
                return Err(e);
            }
        };
        let mut body = self.body(n, kind::TWALK + 1);
        let count = usize::from(body.u16()?);
        let mut last = Qid::default();
        for _ in 0..count {
            last = body.qid()?;
        }
        if count != names.len() {
            // A partial walk makes no fid (9P: newfid is not affected).
            self.free_fids.push(newfid);
            return Err(if count > names.len() {
                NinePError::Protocol("walk answered more qids than names")
            } else {
                NinePError::Remote(2)
            });
        }
        if count == 0 {
            // A clone: the qid is the original's; ask for it.
            let attr = self.getattr(newfid)?;
            last = attr.qid;
        }
        Ok((newfid, last))
    }

    /// Forgets `fid` (closing the file if it was opened).
    pub fn clunk(&mut self, fid: u32) -> Result<(), NinePError> {
        let r = self.call(Request::new(kind::TCLUNK).u32(fid), kind::TCLUNK + 1);
        // The fid is free after Tclunk whatever the answer (9P says so).
        self.free_fids.push(fid);
        r.map(|_| ())
    }

    /// The attributes of `fid`'s file.
    pub fn getattr(&mut self, fid: u32) -> Result<Attr, NinePError> {
        let req = Request::new(kind::TGETATTR).u32(fid).u64(GETATTR_BASIC);
        let n = self.call(req, kind::TGETATTR + 1)?;
        let mut b = self.body(n, kind::TGETATTR + 1);
        let _valid = b.u64()?;
        let qid = b.qid()?;
        let mode = b.u32()?;
        let _uid = b.u32()?;
        let _gid = b.u32()?;
        let nlink = b.u64()?;
        let _rdev = b.u64()?;
        let size = b.u64()?;
        let _blksize = b.u64()?;
        let _blocks = b.u64()?;
        let atime = (b.u64()?, b.u64()?);
        let mtime = (b.u64()?, b.u64()?);
        let ctime = (b.u64()?, b.u64()?);
        Ok(Attr {
            qid,
            mode,
            nlink,
            size,
            atime,
            mtime,
            ctime,
        })
    }

    /// Changes `fid`'s size and/or timestamps.
    pub fn setattr(
        &mut self,
        fid: u32,
        size: Option<u64>,
        atime: SetTime,
        mtime: SetTime,
    ) -> Result<(), NinePError> {
        let mut valid = 0;
        if size.is_some() {
            valid |= set::SIZE;
        }
        let mut times = [(0, 0); 2];
        for (i, (t, bit, given)) in [
            (atime, set::ATIME, set::ATIME_SET),
            (mtime, set::MTIME, set::MTIME_SET),
        ]
        .into_iter()
        .enumerate()
        {
            match t {
                SetTime::Keep => {}
                SetTime::Now => valid |= bit,
                SetTime::At(s, ns) => {
                    valid |= bit | given;
                    times[i] = (s, ns);
                }
            }
        }
        let req = Request::new(kind::TSETATTR)
            .u32(fid)
            .u32(valid)
            .u32(0)
            .u32(0)
            .u32(0)
            .u64(size.unwrap_or(0))
            .u64(times[0].0)
            .u64(times[0].1)
            .u64(times[1].0)
            .u64(times[1].1);
        self.call(req, kind::TSETATTR + 1).map(|_| ())
    }

    /// Opens `fid` with `flags` ([`open_flags`]); returns the file's qid
    /// and the server's preferred I/O size (0: none).
    pub fn lopen(&mut self, fid: u32, flags: u32) -> Result<(Qid, u32), NinePError> {
        let n = self.call(
            Request::new(kind::TLOPEN).u32(fid).u32(flags),
            kind::TLOPEN + 1,
        )?;
        let mut b = self.body(n, kind::TLOPEN + 1);
        Ok((b.qid()?, b.u32()?))
    }

    /// Creates regular file `name` in directory `fid` with permission
    /// bits `perm` and opens it with `flags`; `fid` becomes the new open
    /// file.
    pub fn lcreate(
        &mut self,
        fid: u32,
        name: &[u8],
        flags: u32,
        perm: u32,
        gid: u32,
    ) -> Result<Qid, NinePError> {
        let req = Request::new(kind::TLCREATE)
            .u32(fid)
            .str(name)
            .u32(flags)
            .u32(perm)
            .u32(gid);
        let n = self.call(req, kind::TLCREATE + 1)?;
        self.body(n, kind::TLCREATE + 1).qid()
    }

    /// Creates directory `name` in directory `dfid`.
    pub fn mkdir(
        &mut self,
        dfid: u32,
        name: &[u8],
        perm: u32,
        gid: u32,
    ) -> Result<Qid, NinePError> {
        let req = Request::new(kind::TMKDIR)
            .u32(dfid)
            .str(name)
            .u32(perm)
            .u32(gid);
        let n = self.call(req, kind::TMKDIR + 1)?;
        self.body(n, kind::TMKDIR + 1).qid()
    }

    /// Creates symbolic link `name` → `target` in directory `dfid`.
    pub fn symlink(
        &mut self,
        dfid: u32,
        name: &[u8],
        target: &[u8],
        gid: u32,
    ) -> Result<Qid, NinePError> {
        if target.len() > usize::from(u16::MAX) {
            return Err(NinePError::TooBig);
        }
        let req = Request::new(kind::TSYMLINK)
            .u32(dfid)
            .str(name)
            .str(target)
            .u32(gid);
        let n = self.call(req, kind::TSYMLINK + 1)?;
        self.body(n, kind::TSYMLINK + 1).qid()
    }

    /// The target of symbolic link `fid`.
    pub fn readlink(&mut self, fid: u32) -> Result<Vec<u8>, NinePError> {
        let n = self.call(Request::new(kind::TREADLINK).u32(fid), kind::TREADLINK + 1)?;
        Ok(self.body(n, kind::TREADLINK + 1).str()?.to_vec())
    }

    /// Adds hard link `name` in directory `dfid` to file `fid`.
    pub fn link(&mut self, dfid: u32, fid: u32, name: &[u8]) -> Result<(), NinePError> {
        let req = Request::new(kind::TLINK).u32(dfid).u32(fid).str(name);
        self.call(req, kind::TLINK + 1).map(|_| ())
    }

    /// Removes entry `name` of directory `dfid` (`flags`:
    /// [`REMOVE_DIRECTORY`] for a directory).
    pub fn unlinkat(&mut self, dfid: u32, name: &[u8], flags: u32) -> Result<(), NinePError> {
        let req = Request::new(kind::TUNLINKAT).u32(dfid).str(name).u32(flags);
        self.call(req, kind::TUNLINKAT + 1).map(|_| ())
    }

    /// Renames `old` in `old_dfid` to `new` in `new_dfid`.
    pub fn renameat(
        &mut self,
        old_dfid: u32,
        old: &[u8],
        new_dfid: u32,
        new: &[u8],
    ) -> Result<(), NinePError> {
        let req = Request::new(kind::TRENAMEAT)
            .u32(old_dfid)
            .str(old)
            .u32(new_dfid)
            .str(new);
        self.call(req, kind::TRENAMEAT + 1).map(|_| ())
    }

    /// Reads up to `buf.len()` bytes (at most [`Client::max_read`]) of
    /// open file `fid` at `offset`; returns how many came.
    pub fn read(&mut self, fid: u32, offset: u64, buf: &mut [u8]) -> Result<usize, NinePError> {
        let want = buf.len().min(self.max_read());
        let req = Request::new(kind::TREAD)
            .u32(fid)
            .u64(offset)
            .u32(want as u32);
        let n = self.call(req, kind::TREAD + 1)?;
        let mut b = self.body(n, kind::TREAD + 1);
        let count = b.u32()? as usize;
        if count > want {
            return Err(NinePError::Protocol("read answered more than asked"));
        }
        buf[..count].copy_from_slice(b.take(count)?);
        Ok(count)
    }

    /// Writes `data` (at most [`Client::max_write`] bytes of it) to open
    /// file `fid` at `offset`; returns how many were written.
    pub fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Result<usize, NinePError> {
        let data = &data[..data.len().min(self.max_write())];
        let req = Request::new(kind::TWRITE)
            .u32(fid)
            .u64(offset)
            .u32(data.len() as u32)
            .data(data);
        let n = self.call(req, kind::TWRITE + 1)?;
        let count = self.body(n, kind::TWRITE + 1).u32()? as usize;
        if count > data.len() {
            return Err(NinePError::Protocol("write answered more than sent"));
        }
        Ok(count)
    }

    /// Entries of open directory `fid` from `offset` (0: the start), as
    /// many as fit in one reply; empty at the end.
    pub fn readdir(&mut self, fid: u32, offset: u64) -> Result<Vec<DirEntry>, NinePError> {
        let count = self.max_read() as u32;
        let req = Request::new(kind::TREADDIR).u32(fid).u64(offset).u32(count);
        let n = self.call(req, kind::TREADDIR + 1)?;
        let mut b = self.body(n, kind::TREADDIR + 1);
        let len = b.u32()? as usize;
        let mut data = Reply {
            body: b.take(len)?,
            at: 0,
        };
        let mut out = Vec::new();
        while data.at < data.body.len() {
            let qid = data.qid()?;
            let offset = data.u64()?;
            let kind = data.u8()?;
            let name = data.str()?.to_vec();
            out.push(DirEntry {
                qid,
                offset,
                kind,
                name,
            });
        }
        Ok(out)
    }

    /// Flushes open file `fid` to stable storage (`datasync`: data only).
    pub fn fsync(&mut self, fid: u32, datasync: bool) -> Result<(), NinePError> {
        let req = Request::new(kind::TFSYNC).u32(fid).u32(u32::from(datasync));
        self.call(req, kind::TFSYNC + 1).map(|_| ())
    }

    /// Whether the server answers at all (a Tstatfs of `fid`).
    pub fn statfs(&mut self, fid: u32) -> Result<(), NinePError> {
        self.call(Request::new(kind::TSTATFS).u32(fid), kind::TSTATFS + 1)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::string::ToString;
    use std::vec;

    /// A channel that records requests and answers from a script.
    struct Scripted {
        sent: Vec<Vec<u8>>,
        replies: VecDeque<Vec<u8>>,
        max: usize,
    }

    impl Channel for Scripted {
        fn max_message(&self) -> usize {
            self.max
        }
        fn exchange(&mut self, request: &[u8], reply: &mut [u8]) -> Result<usize, String> {
            self.sent.push(request.to_vec());
            let r = self
                .replies
                .pop_front()
                .ok_or_else(|| "no reply".to_string())?;
            reply[..r.len()].copy_from_slice(&r);
            Ok(r.len())
        }
    }

    fn msg(kind: u8, tag: u16, body: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        m.extend_from_slice(&((HEADER_LEN + body.len()) as u32).to_le_bytes());
        m.push(kind);
        m.extend_from_slice(&tag.to_le_bytes());
        m.extend_from_slice(body);
        m
    }

    fn rversion(msize: u32) -> Vec<u8> {
        let mut b = msize.to_le_bytes().to_vec();
        b.extend_from_slice(&(VERSION.len() as u16).to_le_bytes());
        b.extend_from_slice(VERSION.as_bytes());
        msg(101, u16::MAX, &b)
    }

    fn client(replies: Vec<Vec<u8>>) -> Client<Scripted> {
        let mut all = VecDeque::from(vec![rversion(8192)]);
        all.extend(replies);
        Client::connect(Scripted {
            sent: Vec::new(),
            replies: all,
            max: 16384,
        })
        .unwrap()
    }

    fn qid_bytes(kind: u8, path: u64) -> Vec<u8> {
        let mut b = vec![kind];
        b.extend_from_slice(&7u32.to_le_bytes());
        b.extend_from_slice(&path.to_le_bytes());
        b
    }

    #[test]
    fn version_negotiates_the_smaller_msize() {
        let c = client(vec![]);
        assert_eq!(c.msize(), 8192);
        let sent = &c.channel.sent[0];
        assert_eq!(sent[4], 100);
        assert_eq!(&sent[5..7], &[0xff, 0xff], "Tversion goes with NOTAG");
        assert_eq!(u32::from_le_bytes(sent[7..11].try_into().unwrap()), 16384);
        assert_eq!(&sent[13..], VERSION.as_bytes());
    }

    #[test]
    fn a_server_of_another_dialect_is_refused() {
        let mut b = 8192u32.to_le_bytes().to_vec();
        b.extend_from_slice(&6u16.to_le_bytes());
        b.extend_from_slice(b"9P2000");
        let r = Client::connect(Scripted {
            sent: Vec::new(),
            replies: VecDeque::from(vec![msg(101, u16::MAX, &b)]),
            max: 16384,
        });
        assert!(matches!(r, Err(NinePError::Protocol(_))));
    }

    #[test]
    fn walk_encodes_names_and_reads_the_last_qid() {
        let mut body = 2u16.to_le_bytes().to_vec();
        body.extend(qid_bytes(0x80, 5));
        body.extend(qid_bytes(0, 9));
        let mut c = client(vec![msg(111, 0, &body)]);
        let (fid, qid) = c.walk(0, &[b"a", b"bc"]).unwrap();
        assert_eq!(fid, 0);
        assert_eq!(qid.path, 9);
        let sent = &c.channel.sent[1];
        assert_eq!(sent[4], 110);
        // fid, newfid, nwname, "a", "bc"
        assert_eq!(&sent[7..11], &0u32.to_le_bytes());
        assert_eq!(&sent[15..17], &2u16.to_le_bytes());
        assert_eq!(&sent[17..], b"\x01\x00a\x02\x00bc");
    }

    #[test]
    fn a_partial_walk_is_enoent_and_frees_the_fid() {
        let mut body = 1u16.to_le_bytes().to_vec();
        body.extend(qid_bytes(0x80, 5));
        let mut c = client(vec![msg(111, 0, &body)]);
        assert_eq!(c.walk(0, &[b"a", b"b"]), Err(NinePError::Remote(2)));
        assert_eq!(c.free_fids, vec![0]);
    }

    #[test]
    fn rlerror_is_the_servers_errno() {
        let mut c = client(vec![msg(7, 0, &13u32.to_le_bytes())]);
        assert_eq!(
            c.lopen(1, open_flags::READ_ONLY),
            Err(NinePError::Remote(13))
        );
    }

    #[test]
    fn malformed_replies_are_errors_not_panics() {
        // Too short, a size beyond the buffer, the wrong type, a wrong tag,
        // a read count beyond its data, a readdir entry cut short.
        let cases = vec![
            vec![1, 0, 0],
            msg(117, 0, &[]),
            {
                let mut m = msg(117, 0, &[]);
                m[0] = 200;
                m
            },
            msg(121, 0, &[]),
            msg(117, 3, &0u32.to_le_bytes()),
            msg(117, 0, &100u32.to_le_bytes()),
        ];
        for reply in cases {
            let mut c = client(vec![reply.clone()]);
            let mut buf = [0; 64];
            let r = c.read(1, 0, &mut buf);
            assert!(
                matches!(r, Err(NinePError::Protocol(_))),
                "{reply:?}: {r:?}"
            );
        }
        let mut body = 30u32.to_le_bytes().to_vec();
        body.extend(qid_bytes(0, 1));
        body.extend_from_slice(&[1, 2, 3]);
        let mut c = client(vec![msg(41, 0, &body)]);
        assert!(matches!(c.readdir(1, 0), Err(NinePError::Protocol(_))));
    }

    #[test]
    fn readdir_decodes_entries() {
        let mut data = Vec::new();
        for (name, off) in [(&b"."[..], 1u64), (b"file", 2)] {
            data.extend(qid_bytes(0, off));
            data.extend_from_slice(&off.to_le_bytes());
            data.push(8);
            data.extend_from_slice(&(name.len() as u16).to_le_bytes());
            data.extend_from_slice(name);
        }
        let mut body = (data.len() as u32).to_le_bytes().to_vec();
        body.extend(data);
        let mut c = client(vec![msg(41, 0, &body)]);
        let e = c.readdir(3, 0).unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].name, b"file");
        assert_eq!(e[1].offset, 2);
    }

    #[test]
    fn reads_and_writes_are_capped_by_msize() {
        let mut c = client(vec![
            msg(117, 0, &{
                let mut b = 3u32.to_le_bytes().to_vec();
                b.extend_from_slice(b"abc");
                b
            }),
            msg(119, 0, &(8192u32 - WRITE_OVERHEAD as u32).to_le_bytes()),
        ]);
        let mut buf = vec![0; 100_000];
        assert_eq!(c.read(1, 0, &mut buf).unwrap(), 3);
        assert_eq!(&buf[..3], b"abc");
        let asked = u32::from_le_bytes(c.channel.sent[1][19..23].try_into().unwrap());
        assert_eq!(asked as usize, 8192 - READ_OVERHEAD);
        let n = c.write(1, 0, &buf).unwrap();
        assert_eq!(n, 8192 - WRITE_OVERHEAD);
        assert_eq!(c.channel.sent[2].len(), 8192);
    }

    #[test]
    fn setattr_sets_only_what_changes() {
        let mut c = client(vec![msg(27, 0, &[])]);
        c.setattr(1, None, SetTime::Now, SetTime::At(5, 6)).unwrap();
        let sent = &c.channel.sent[1];
        let valid = u32::from_le_bytes(sent[11..15].try_into().unwrap());
        assert_eq!(valid, set::ATIME | set::MTIME | set::MTIME_SET);
        assert_eq!(u64::from_le_bytes(sent[51..59].try_into().unwrap()), 5);
    }

    /// Every reply the client decodes, mutated thousands of ways (as a
    /// hostile or broken server would send them): each call answers with
    /// a value or an error, never a panic.
    #[test]
    fn mutated_replies_are_errors_not_panics() {
        let dirent = |name: &[u8], off: u64| {
            let mut d = qid_bytes(0, off);
            d.extend_from_slice(&off.to_le_bytes());
            d.push(8);
            d.extend_from_slice(&(name.len() as u16).to_le_bytes());
            d.extend_from_slice(name);
            d
        };
        let mut readdir = Vec::new();
        for (n, o) in [(&b"a"[..], 1u64), (b"bb", 2), (b"ccc", 3)] {
            readdir.extend(dirent(n, o));
        }
        let mut readdir_body = (readdir.len() as u32).to_le_bytes().to_vec();
        readdir_body.extend(readdir);
        let mut walk = 2u16.to_le_bytes().to_vec();
        walk.extend(qid_bytes(0x80, 5));
        walk.extend(qid_bytes(0, 6));
        let mut getattr = 0x7ffu64.to_le_bytes().to_vec();
        getattr.extend(qid_bytes(0, 9));
        getattr.extend_from_slice(&[0u8; 4 * 3 + 8 * 11]);
        let mut lopen = qid_bytes(0, 3);
        lopen.extend_from_slice(&4096u32.to_le_bytes());
        let mut read = 5u32.to_le_bytes().to_vec();
        read.extend_from_slice(b"hello");
        let mut readlink = 4u16.to_le_bytes().to_vec();
        readlink.extend_from_slice(b"dest");
        let samples: Vec<(u8, Vec<u8>)> = vec![
            (kind::TWALK + 1, walk),
            (kind::TGETATTR + 1, getattr),
            (kind::TLOPEN + 1, lopen),
            (kind::TREAD + 1, read),
            (kind::TREADDIR + 1, readdir_body),
            (kind::TREADLINK + 1, readlink),
            (kind::TMKDIR + 1, qid_bytes(0x80, 4)),
            (kind::RLERROR, 2u32.to_le_bytes().to_vec()),
        ];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..3000usize {
            let (k, body) = &samples[round % samples.len()];
            let mut m = msg(*k, 0, body);
            for _ in 0..=(next() % 4) {
                let at = (next() as usize) % m.len();
                match next() % 4 {
                    0 => m[at] = next() as u8,
                    1 => m.truncate(at.max(1)),
                    2 => m.insert(at, next() as u8),
                    _ => m[at] ^= 0xff,
                }
            }
            m.truncate(16384);
            let mut c = client(vec![m]);
            let mut buf = [0u8; 64];
            let _ = match round % samples.len() {
                0 => c.walk(1, &[b"a", b"b"]).map(|_| ()),
                1 => c.getattr(1).map(|_| ()),
                2 => c.lopen(1, 0).map(|_| ()),
                3 => c.read(1, 0, &mut buf).map(|_| ()),
                4 => c.readdir(1, 0).map(|_| ()),
                5 => c.readlink(1).map(|_| ()),
                6 => c.mkdir(1, b"d", 0o755, 0).map(|_| ()),
                _ => c.clunk(1),
            };
        }
    }
}
