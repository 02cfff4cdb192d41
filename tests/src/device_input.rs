//! What a device sends the drivers, driven from arbitrary bytes for the
//! smoke runs (`tests/tests/parsers_survive_garbage.rs`) and the
//! `cargo fuzz` targets `virtqueue` and `ninep_reply` (`fuzz/`): the used
//! ring of a split virtqueue, written by a simulated device that may lie,
//! and the replies of a 9P server to a session of client calls.
//!
//! Each driver must answer every input with a value or a typed error and
//! keep its own invariants; a panic here is a bug in the driver.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;

use basalt_drivers::ninep::{self, Channel, Client};
use basalt_drivers::virtio::dma::host::HostDmaArena;
use basalt_drivers::virtio::queue::simulated::FakeDevice;
use basalt_drivers::virtio::queue::{Buffer, MAX_QUEUE_SIZE, SplitQueue};

/// Reads the fuzz input a field at a time; past its end, zeros.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

// ---- virtqueues -------------------------------------------------------------

/// Drives one split queue through a script read from `data`: the driver
/// adds chains, the simulated device takes them and completes them
/// faithfully or writes whatever the script says into the used ring (ids
/// never given, lengths beyond the buffers, index jumps). Every
/// completion the driver accepts must be a chain in flight with a length
/// that fits it; a typed error ends the run, as it marks the device
/// broken in the kernel. Returns how many completions the driver
/// accepted (so a seed can be checked to reach them).
pub fn drive_virtqueue(data: &[u8]) -> usize {
    let mut input = Bytes(data);
    // A power of two from 1 to the largest queue.
    let size = 1u16 << (input.u8() % (MAX_QUEUE_SIZE.trailing_zeros() as u8 + 1));
    // The arena outlives the queue and the device (declared first).
    let mut arena = HostDmaArena::default();
    let Ok(mut queue) = SplitQueue::new(&mut arena, 0, size) else {
        return 0;
    };
    let mut accepted = 0;
    let mut device = FakeDevice::new(size, queue.addresses());
    // Chains in flight as the driver sees them: head → writable bytes.
    let mut in_flight: BTreeMap<u16, u32> = BTreeMap::new();
    // Chains the device took and has not completed: (head, writable bytes).
    let mut taken: Vec<(u16, u32)> = Vec::new();
    for _ in 0..10_000 {
        if input.is_empty() {
            break;
        }
        match input.u8() % 8 {
            0 | 1 => {
                let n = 1 + usize::from(input.u8() % 4);
                let chain: Vec<Buffer> = (0..n)
                    .map(|i| Buffer {
                        addr: 0x1000 * (i as u64 + 1),
                        len: u32::from(input.u16()),
                        device_writable: input.u8() & 1 == 1,
                    })
                    .collect();
                if let Ok(head) = queue.add(&chain) {
                    let writable = chain
                        .iter()
                        .filter(|b| b.device_writable)
                        .map(|b| b.len)
                        .sum();
                    let (seen, _) = device.take().expect("the chain just added");
                    assert_eq!(seen, head, "the device sees the head the driver returned");
                    in_flight.insert(head, writable);
                    taken.push((head, writable));
                }
            }
            2 if !taken.is_empty() => {
                let at = usize::from(input.u8()) % taken.len();
                let (head, writable) = taken.swap_remove(at);
                let len = input.u32() % (writable.saturating_add(1));
                device.complete(u32::from(head), len);
            }
            3 => device.complete(input.u32(), input.u32()),
            4 => device.set_used_idx(input.u16()),
            5 => device.complete(u32::from(input.u16() % size), input.u32()),
            6 => {
                device.set_no_notify(input.u8() & 1 == 1);
                let _ = queue.should_notify();
            }
            _ => queue.set_interrupts_suppressed(input.u8() & 1 == 1),
        }
        loop {
            match queue.poll_used() {
                Ok(Some(used)) => {
                    let writable = in_flight
                        .remove(&used.head)
                        .expect("a completion the driver accepts is of a chain in flight");
                    assert!(used.len <= writable, "an accepted length fits the chain");
                    taken.retain(|(h, _)| *h != used.head);
                    accepted += 1;
                }
                Ok(None) => break,
                Err(_) => return accepted,
            }
        }
        assert!(queue.num_free() <= size);
    }
    accepted
}

// ---- 9P ---------------------------------------------------------------------

/// The script a [`ScriptedServer`] answers from: `(op, reply)` pairs, in
/// order; each exchange takes the next reply.
type Script = Rc<RefCell<VecDeque<(u8, Vec<u8>)>>>;

/// A 9P server that answers each request with the next reply of a script.
struct ScriptedServer {
    script: Script,
    max: usize,
}

impl Channel for ScriptedServer {
    fn max_message(&self) -> usize {
        self.max
    }

    fn exchange(&mut self, _request: &[u8], reply: &mut [u8]) -> Result<usize, String> {
        let (_, bytes) = self
            .script
            .borrow_mut()
            .pop_front()
            .ok_or_else(|| String::from("the server hung up"))?;
        let n = bytes.len().min(reply.len());
        reply[..n].copy_from_slice(&bytes[..n]);
        Ok(n)
    }
}

/// The message size the scripted channel carries.
const SCRIPT_MAX_MESSAGE: usize = 16 * 1024;

/// Splits `data` into `(op, reply)` pairs: an op byte, a 16-bit length,
/// that many reply bytes.
fn script_of(data: &[u8]) -> VecDeque<(u8, Vec<u8>)> {
    let mut input = Bytes(data);
    let mut script = VecDeque::new();
    while !input.is_empty() {
        let op = input.u8();
        let len = usize::from(input.u16()).min(input.0.len());
        let (reply, rest) = input.0.split_at(len);
        script.push_back((op, reply.to_vec()));
        input.0 = rest;
    }
    script
}

/// Runs a 9P session whose server replies come from `data` (see
/// [`ninep_session`] for its shape): the first reply answers Tversion;
/// then each entry's op byte picks the next client call, which takes the
/// entry's reply (and the following ones, if it makes more than one
/// request). Every call must end in a value or a typed error, and what
/// the client hands back must respect what it asked for. Returns how
/// many calls succeeded.
pub fn drive_ninep(data: &[u8]) -> usize {
    let script: Script = Rc::new(RefCell::new(script_of(data)));
    let channel = ScriptedServer {
        script: script.clone(),
        max: SCRIPT_MAX_MESSAGE,
    };
    let Ok(mut client) = Client::connect(channel) else {
        return 0;
    };
    let mut succeeded = 0;
    assert!((4096..=SCRIPT_MAX_MESSAGE).contains(&client.msize()));
    let mut fid = 0;
    let mut buf = vec![0u8; 8192];
    for _ in 0..1000 {
        let Some(op) = script.borrow().front().map(|(op, _)| *op) else {
            break;
        };
        match op % 16 {
            0 => {
                if let Ok((f, _)) = client.attach(0) {
                    fid = f;
                    succeeded += 1;
                }
            }
            1 => {
                if let Ok((f, _)) = client.walk(fid, &[b"dir", b"file"]) {
                    fid = f;
                    succeeded += 1;
                }
            }
            2 => {
                if let Ok((f, _)) = client.walk(fid, &[]) {
                    fid = f;
                    succeeded += 1;
                }
            }
            3 => {
                succeeded += usize::from(client.getattr(fid).is_ok());
            }
            4 => {
                succeeded += usize::from(client.lopen(fid, ninep::open_flags::READ_WRITE).is_ok());
            }
            5 => {
                let want = usize::from(op) * 37 % buf.len();
                if let Ok(n) = client.read(fid, 0, &mut buf[..want]) {
                    assert!(n <= want, "a read returns at most what it asked for");
                    succeeded += 1;
                }
            }
            6 => {
                if let Ok(entries) = client.readdir(fid, 0) {
                    assert!(entries.len() <= client.msize());
                    succeeded += 1;
                }
            }
            7 => {
                if let Ok(target) = client.readlink(fid) {
                    assert!(target.len() < client.msize());
                    succeeded += 1;
                }
            }
            8 => {
                if let Ok(n) = client.write(fid, 0, b"hello, 9P") {
                    assert!(n <= 9, "a write reports at most what it sent");
                    succeeded += 1;
                }
            }
            9 => {
                succeeded += usize::from(client.statfs(fid).is_ok());
            }
            10 => {
                succeeded += usize::from(client.clunk(fid).is_ok());
            }
            11 => {
                succeeded += usize::from(client.lcreate(fid, b"new", 0, 0o644, 0).is_ok());
            }
            12 => {
                succeeded += usize::from(client.mkdir(fid, b"d", 0o755, 0).is_ok());
            }
            13 => {
                succeeded += usize::from(client.symlink(fid, b"l", b"target", 0).is_ok());
            }
            14 => {
                succeeded += usize::from(
                    client
                        .setattr(fid, Some(4), ninep::SetTime::Now, ninep::SetTime::At(1, 2))
                        .is_ok(),
                );
            }
            _ => {
                succeeded += usize::from(client.renameat(fid, b"a", fid, b"b").is_ok());
                succeeded += usize::from(client.unlinkat(fid, b"b", 0).is_ok());
                succeeded += usize::from(client.fsync(fid, true).is_ok());
            }
        }
    }
    succeeded
}

/// One R-message: size, type, tag 0, body.
fn reply(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = ((ninep::HEADER_LEN + body.len()) as u32)
        .to_le_bytes()
        .to_vec();
    m.push(kind);
    m.extend_from_slice(&0u16.to_le_bytes());
    m.extend_from_slice(body);
    m
}

/// A qid's 13 bytes.
fn qid(kind: u8, path: u64) -> Vec<u8> {
    let mut q = vec![kind];
    q.extend_from_slice(&1u32.to_le_bytes());
    q.extend_from_slice(&path.to_le_bytes());
    q
}

/// A well-formed session in [`drive_ninep`]'s format, every call answered
/// as QEMU would (plus one Rlerror): the seed the smoke runs mutate and
/// the fuzz target starts from.
pub fn ninep_session() -> Vec<u8> {
    let mut entries: Vec<(u8, Vec<u8>)> = Vec::new();
    let mut version = 8192u32.to_le_bytes().to_vec();
    version.extend_from_slice(&(ninep::VERSION.len() as u16).to_le_bytes());
    version.extend_from_slice(ninep::VERSION.as_bytes());
    let mut rversion = reply(101, &version);
    rversion[5..7].copy_from_slice(&u16::MAX.to_le_bytes());
    entries.push((0, rversion));
    entries.push((0, reply(105, &qid(0x80, 1))));
    let mut walk = 2u16.to_le_bytes().to_vec();
    walk.extend(qid(0x80, 2));
    walk.extend(qid(0, 3));
    entries.push((1, reply(111, &walk)));
    let mut attr = 0x7ffu64.to_le_bytes().to_vec();
    attr.extend(qid(0, 3));
    attr.extend_from_slice(&0o100644u32.to_le_bytes());
    attr.extend_from_slice(&[0; 8]); // uid, gid
    for v in [1u64, 0, 9, 4096, 1, 5, 6, 7, 8, 9, 10] {
        attr.extend_from_slice(&v.to_le_bytes());
    }
    entries.push((3, reply(25, &attr)));
    // A clone walk: Rwalk with no qids, then the Rgetattr it asks for.
    entries.push((2, reply(111, &0u16.to_le_bytes())));
    entries.push((0, reply(25, &attr)));
    let mut open = qid(0, 3);
    open.extend_from_slice(&0u32.to_le_bytes());
    entries.push((4, reply(13, &open)));
    let mut read = 9u32.to_le_bytes().to_vec();
    read.extend_from_slice(b"some data");
    entries.push((5, reply(117, &read)));
    let mut dirents = Vec::new();
    for (i, name) in [&b"."[..], b"..", b"file"].iter().enumerate() {
        dirents.extend(qid(0, i as u64));
        dirents.extend_from_slice(&(i as u64 + 1).to_le_bytes());
        dirents.push(8);
        dirents.extend_from_slice(&(name.len() as u16).to_le_bytes());
        dirents.extend_from_slice(name);
    }
    let mut readdir = (dirents.len() as u32).to_le_bytes().to_vec();
    readdir.extend(dirents);
    entries.push((6, reply(41, &readdir)));
    let mut link = 6u16.to_le_bytes().to_vec();
    link.extend_from_slice(b"target");
    entries.push((7, reply(23, &link)));
    entries.push((8, reply(119, &9u32.to_le_bytes())));
    entries.push((9, reply(9, &[0; 60])));
    entries.push((11, reply(15, &qid(0, 9))));
    entries.push((12, reply(7, &2u32.to_le_bytes()))); // Rlerror ENOENT
    entries.push((14, reply(27, &[])));
    entries.push((10, reply(121, &[])));
    let mut data = Vec::new();
    for (op, bytes) in entries {
        data.push(op);
        data.extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        data.extend(bytes);
    }
    data
}

/// A script in [`drive_virtqueue`]'s format that adds chains and
/// completes them faithfully, with one lie in between: the smoke runs'
/// seed.
pub fn virtqueue_session() -> Vec<u8> {
    let mut data = vec![4]; // a queue of 16
    for round in 0..24u8 {
        // add: 2 buffers of 0x0100 bytes, the second writable
        data.extend_from_slice(&[0, 1, 0, 1, 0, 0, 1, 1]);
        if round % 3 == 2 {
            // complete a taken chain with 0x10 bytes
            data.extend_from_slice(&[2, round, 0x10, 0, 0, 0]);
        }
    }
    data.extend_from_slice(&[5, 3, 0, 0, 0x10, 0, 0]); // too long for its chain
    data.extend_from_slice(&[6, 1, 7, 1, 4, 9, 0]);
    data
}
