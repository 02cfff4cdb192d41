//! The 8254 programmable interval timer, channel 2 (the PC speaker
//! channel, whose output can be polled) as a reference to calibrate the
//! CPU's cycle counter against.

use x86_64::instructions::port::Port;

/// Input frequency of the PIT in Hz.
pub const FREQUENCY_HZ: u64 = 1_193_182;

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
    let mut gate: Port<u8> = Port::new(0x61);
    let mut command: Port<u8> = Port::new(0x43);
    let mut ch2: Port<u8> = Port::new(0x42);
    // SAFETY: ports 0x42/0x43/0x61 are the PIT and its gate on every PC;
    // channel 2 only drives the speaker, which we keep disconnected.
    unsafe {
        let g = gate.read();
        gate.write((g & !0x02) | 0x01); // gate on, speaker off
        command.write(0b1011_0000); // channel 2, lo/hi byte, mode 0, binary
        ch2.write(count as u8);
        ch2.write((count >> 8) as u8);
        // In mode 0 the output is low until the count expires; a port that
        // reads as all ones is no PC speaker port at all.
        if gate.read() & 0x20 != 0 {
            return None;
        }
        let start = counter();
        let mut spins = 0u64;
        while gate.read() & 0x20 == 0 {
            spins += 1;
            if spins > 200_000_000 {
                return None;
            }
            core::hint::spin_loop();
        }
        let end = counter();
        Some(end.wrapping_sub(start))
    }
}

fn read_channel0() -> u16 {
    let mut command: Port<u8> = Port::new(0x43);
    let mut ch0: Port<u8> = Port::new(0x40);
    // SAFETY: latching and reading channel 0's count has no side effects
    // beyond the latch itself.
    unsafe {
        command.write(0b0000_0000); // latch channel 0
        let lo = ch0.read();
        let hi = ch0.read();
        u16::from_le_bytes([lo, hi])
    }
}

fn measure_channel0(ms: u32, counter: fn() -> u64) -> Option<u64> {
    let ms = ms.clamp(1, 50);
    let target = FREQUENCY_HZ * u64::from(ms) / 1000;
    let mut command: Port<u8> = Port::new(0x43);
    let mut ch0: Port<u8> = Port::new(0x40);
    // SAFETY: reprogramming channel 0 (interrupts are masked; nothing uses
    // its IRQ) as a free-running rate generator with the full 65536 count.
    unsafe {
        command.write(0b0011_0100); // channel 0, lo/hi, mode 2, binary
        ch0.write(0);
        ch0.write(0);
    }
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
    Some((end.wrapping_sub(start)) * target / elapsed.max(1))
}
