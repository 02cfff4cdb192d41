//! The 8254 programmable interval timer as a reference to calibrate the
//! CPU's cycle counter against.

use crate::portio::{inb, outb};

/// Input frequency of the PIT in Hz.
pub const FREQUENCY_HZ: u64 = 1_193_182;

const CH0: u16 = 0x40;
const CH2: u16 = 0x42;
const COMMAND: u16 = 0x43;
/// The PC speaker / channel 2 gate port.
const GATE: u16 = 0x61;

/// Measures how many ticks of `counter` elapse in `ms` milliseconds of
/// PIT time (at most 50): through channel 2's gate where the PC speaker
/// port exists, else by reading back channel 0. `None` when the PIT does
/// not seem to count.
pub fn measure(ms: u32, counter: fn() -> u64) -> Option<u64> {
    measure_channel2(ms, counter).or_else(|| measure_channel0(ms, counter))
}

fn measure_channel2(ms: u32, counter: fn() -> u64) -> Option<u64> {
    let ms = ms.clamp(1, 50);
    let count = (FREQUENCY_HZ * u64::from(ms) / 1000) as u16;
    let g = inb(GATE);
    outb(GATE, (g & !0x02) | 0x01); // gate on, speaker off
    outb(COMMAND, 0b1011_0000); // channel 2, lo/hi byte, mode 0, binary
    outb(CH2, count as u8);
    outb(CH2, (count >> 8) as u8);
    // In mode 0 the output is low until the count expires; a port that
    // reads as all ones is no PC speaker port at all.
    if inb(GATE) & 0x20 != 0 {
        return None;
    }
    let start = counter();
    let mut spins = 0u64;
    while inb(GATE) & 0x20 == 0 {
        spins += 1;
        if spins > 200_000_000 {
            return None;
        }
        core::hint::spin_loop();
    }
    let end = counter();
    Some(end.wrapping_sub(start))
}

fn read_channel0() -> u16 {
    outb(COMMAND, 0b0000_0000); // latch channel 0
    let lo = inb(CH0);
    let hi = inb(CH0);
    u16::from_le_bytes([lo, hi])
}

fn measure_channel0(ms: u32, counter: fn() -> u64) -> Option<u64> {
    let ms = ms.clamp(1, 50);
    let target = FREQUENCY_HZ * u64::from(ms) / 1000;
    // Channel 0 as a free-running rate generator with the full 65536 count
    // (interrupts stay masked; nothing uses its IRQ).
    outb(COMMAND, 0b0011_0100);
    outb(CH0, 0);
    outb(CH0, 0);
    let mut last = read_channel0();
    let mut elapsed = 0u64;
    let mut unchanged = 0u32;
    let start = counter();
    while elapsed < target {
        let now = read_channel0();
        if now == last {
            unchanged += 1;
            if unchanged > 1_000_000 {
                return None;
            }
            continue;
        }
        unchanged = 0;
        elapsed += u64::from(last.wrapping_sub(now));
        last = now;
    }
    let end = counter();
    Some(end.wrapping_sub(start) * target / elapsed.max(1))
}
