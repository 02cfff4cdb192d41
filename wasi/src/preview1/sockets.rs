//! Preview1 sockets: `sock_accept`, `sock_recv`, `sock_send`,
//! `sock_shutdown`, and reading and writing a socket descriptor with
//! `fd_read` and `fd_write`, as wasmtime exposes them: TCP listeners
//! preopened by the runner (`--tcplisten`) and the connections accepted
//! from them, blocking unless the descriptor is non-blocking.
//!
//! Every call asks the [`Network`] without waiting; a blocking descriptor
//! that would block waits in [`Network::wait`] and asks again.

use alloc::sync::Arc;
use alloc::vec;

use super::{Args, Failure, Outcome};
use crate::abi::*;
use crate::ctx::{Descriptor, OpenFd, Socket, WasiCtx};
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::services::{Interest, NetError, Network, Shutdown, SocketId};

impl From<NetError> for Failure {
    fn from(e: NetError) -> Self {
        Failure::Errno(e.into())
    }
}

/// The most bytes one receive copies through a bounce buffer (the rest
/// waits for the next call, as a short read).
const RECV_MAX: usize = 1 << 20;

/// The socket behind descriptor `fd`: `EBADF` if there is none,
/// `ENOTSOCK` if it is something else.
fn socket(cx: &WasiCtx, fd: u32) -> Result<(&OpenFd, &Socket), Errno> {
    let entry = cx.fd(fd)?;
    match &entry.desc {
        Descriptor::Socket(s) => Ok((entry, s)),
        _ => Err(Errno::Notsock),
    }
}

/// What a call needs of a socket descriptor, copied out of the table.
struct Handle {
    net: Arc<dyn Network>,
    id: SocketId,
    blocking: bool,
}

fn handle(cx: &WasiCtx, fd: u32, rights: u64) -> Result<Handle, Errno> {
    let (entry, s) = socket(cx, fd)?;
    entry.require(rights)?;
    Ok(Handle {
        net: s.net.clone(),
        id: s.id,
        blocking: entry.flags & FDFLAGS_NONBLOCK == 0,
    })
}

/// Runs `op` until it stops answering "would block", waiting for
/// `interest` between tries on a blocking descriptor.
fn retry<T>(
    h: &Handle,
    interest: Interest,
    mut op: impl FnMut() -> Result<T, NetError>,
) -> Result<T, NetError> {
    loop {
        match op() {
            Err(NetError::WouldBlock) if h.blocking => h.net.wait(&[(h.id, interest)], None),
            other => return other,
        }
    }
}

/// Receives into the iovec array at `iovs`: at least one byte (or end of
/// stream) on a blocking socket; with `waitall`, until the buffers are
/// full or the stream ends.
pub(super) fn recv_into(
    cx: &WasiCtx,
    fd: u32,
    mem: &mut GuestMemory<'_>,
    iovs: u32,
    count: u32,
    peek: bool,
    waitall: bool,
) -> Result<u64, Failure> {
    let h = handle(cx, fd, RIGHT_FD_READ)?;
    let vecs = mem.iovecs(iovs, count, RECV_MAX as u64)?;
    let want: usize = vecs
        .iter()
        .map(|(_, len)| *len as usize)
        .sum::<usize>()
        .min(RECV_MAX);
    if want == 0 {
        return Ok(0);
    }
    let mut buf = vec![0u8; want];
    let mut got = retry(&h, Interest::Read, || h.net.recv(h.id, &mut buf, peek))?;
    if waitall && !peek {
        while got < want {
            match retry(&h, Interest::Read, || {
                h.net.recv(h.id, &mut buf[got..], false)
            }) {
                Ok(0) => break,
                Ok(n) => got += n,
                // What came before the error is the program's.
                Err(NetError::WouldBlock) => break,
                Err(e) if got == 0 => return Err(e.into()),
                Err(_) => break,
            }
        }
    }
    let mut at = 0;
    for (ptr, len) in vecs {
        if at >= got {
            break;
        }
        let n = (len as usize).min(got - at);
        mem.write_bytes(ptr, &buf[at..at + n])?;
        at += n;
    }
    Ok(got as u64)
}

/// Sends all of `data` on a blocking socket (waiting for room as needed);
/// on a non-blocking one, what fits now (`EAGAIN` if nothing does).
pub(super) fn send_all(cx: &WasiCtx, fd: u32, data: &[u8]) -> Result<usize, Failure> {
    let h = handle(cx, fd, RIGHT_FD_WRITE)?;
    if data.is_empty() {
        return Ok(0);
    }
    let mut sent = 0;
    while sent < data.len() {
        match h.net.send(h.id, &data[sent..]) {
            Ok(n) => sent += n,
            Err(NetError::WouldBlock) if h.blocking => h.net.wait(&[(h.id, Interest::Write)], None),
            Err(NetError::WouldBlock) if sent > 0 => break,
            Err(e) if sent == 0 => return Err(e.into()),
            Err(_) => break,
        }
    }
    Ok(sent)
}

/// `sock_accept(fd, flags, result_fd)`: a connection from listener `fd`,
/// on a new descriptor with `flags` (only `nonblock` is allowed).
pub(super) fn sock_accept(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = a.u32(0);
    let flags = a.u32(1);
    let h = handle(cx, fd, RIGHT_SOCK_ACCEPT)?;
    if flags & !u32::from(FDFLAGS_NONBLOCK) != 0 {
        return Err(Errno::Inval.into());
    }
    let out = a.u32(2);
    mem.read_u32(out)?;
    let id = retry(&h, Interest::Read, || h.net.accept(h.id))?;
    let sock = Socket {
        net: h.net.clone(),
        id,
        listener: false,
    };
    let new_fd = cx.insert(OpenFd {
        desc: Descriptor::Socket(sock),
        rights_base: SOCKET_RIGHTS & !RIGHT_SOCK_ACCEPT,
        rights_inheriting: 0,
        flags: flags as u16,
        position: 0,
        preopen: None,
    })?;
    mem.write_u32(out, new_fd)?;
    Ok(())
}

/// `sock_recv(fd, ri_data, ri_data_len, ri_flags, ro_datalen, ro_flags)`.
pub(super) fn sock_recv(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = a.u32(0);
    let flags = (a.u32(3) & 0xffff) as u16;
    socket(cx, fd)?;
    if flags & !(RIFLAGS_RECV_PEEK | RIFLAGS_RECV_WAITALL) != 0 {
        return Err(Errno::Inval.into());
    }
    let (len_out, flags_out) = (a.u32(4), a.u32(5));
    mem.read_u32(len_out)?;
    mem.read_u16(flags_out)?;
    let n = recv_into(
        cx,
        fd,
        mem,
        a.u32(1),
        a.u32(2),
        flags & RIFLAGS_RECV_PEEK != 0,
        flags & RIFLAGS_RECV_WAITALL != 0,
    )?;
    mem.write_u32(len_out, u32::try_from(n).map_err(|_| Errno::Overflow)?)?;
    // roflags: datagram truncation never happens on a stream.
    mem.write_u16(flags_out, 0)?;
    Ok(())
}

/// `sock_send(fd, si_data, si_data_len, si_flags, so_datalen)`.
pub(super) fn sock_send(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = a.u32(0);
    socket(cx, fd)?;
    if a.u32(3) & 0xffff != 0 {
        // siflags has no flags defined
        return Err(Errno::Inval.into());
    }
    let out = a.u32(4);
    mem.read_u32(out)?;
    let iovs = mem.iovecs(a.u32(1), a.u32(2), super::MAX_TRANSFER)?;
    let n = super::send_iovecs(cx, fd, mem, &iovs)?;
    mem.write_u32(out, n as u32)?;
    Ok(())
}

/// `sock_shutdown(fd, how)`.
pub(super) fn sock_shutdown(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = a.u32(0);
    let h = handle(cx, fd, RIGHT_SOCK_SHUTDOWN)?;
    let how = match (a.u32(1) & 0xff) as u8 {
        SDFLAGS_RD => Shutdown::Read,
        SDFLAGS_WR => Shutdown::Write,
        x if x == SDFLAGS_RD | SDFLAGS_WR => Shutdown::Both,
        _ => return Err(Errno::Inval.into()),
    };
    h.net.shutdown(h.id, how)?;
    Ok(())
}
