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
/// port exists, else by reading back channel 0. Samples disturbed by a
/// pause of the CPU are retried (up to 8 times). `None` when the PIT does
/// not seem to count.
pub fn measure(ms: u32, counter: fn() -> u64) -> Option<u64> {
    let speaker = inb(GATE) != 0xff;
    for _ in 0..8 {
        let sample = if speaker {
            measure_channel2(ms, counter)
        } else {
            measure_channel0(ms, counter)
        };
        if sample.is_some() {
            return sample;
        }
    }
    None
}

fn measure_channel2(ms: u32, counter: fn() -> u64) -> Option<u64> {
    let ms = ms.clamp(1, 50);
    let count = (FREQUENCY_HZ * u64::from(ms) / 1000) as u16;
    let g = inb(GATE);
    outb(GATE, (g & !0x02) | 0x01); // gate on, speaker off
    outb(COMMAND, 0b1011_0000); // channel 2, lo/hi byte, mode 0, binary
    outb(CH2, count as u8);
    // The count starts with the high byte: bracket that write.
    let before = counter();
    outb(CH2, (count >> 8) as u8);
    let after = counter();
    // In mode 0 the output is low until the count expires; a port that
    // reads as all ones is no PC speaker port at all.
    if inb(GATE) & 0x20 != 0 {
        return None;
    }
    let mut last_low = after;
    let mut spins = 0u64;
    loop {
        let t = counter();
        if inb(GATE) & 0x20 != 0 {
            return bracketed(before, after, last_low, t);
        }
        last_low = t;
        spins += 1;
        if spins > 200_000_000 {
            return None;
        }
        core::hint::spin_loop();
    }
}

/// The counter ticks between the midpoints of the start and end brackets,
/// or `None` when either bracket is wide (the CPU was descheduled, as
/// happens to virtual CPUs), which would skew the measurement.
fn bracketed(start_before: u64, start_after: u64, end_before: u64, end_after: u64) -> Option<u64> {
    let total = end_after.checked_sub(start_before)?;
    let wide = |a: u64, b: u64| b.saturating_sub(a) > total / 200;
    if total == 0 || wide(start_before, start_after) || wide(end_before, end_after) {
        return None;
    }
    Some((end_before / 2 + end_after / 2).saturating_sub(start_before / 2 + start_after / 2))
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
    let start_before = counter();
    let mut last = read_channel0();
    let start_after = counter();
    let mut elapsed = 0u64;
    let mut unchanged = 0u32;
    loop {
        let before = counter();
        let now = read_channel0();
        let after = counter();
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
        if elapsed >= target {
            let cycles = bracketed(start_before, start_after, before, after)?;
            return Some(cycles * target / elapsed);
        }
    }
}
