//! The 8254 programmable interval timer, channel 2 (the PC speaker
//! channel, whose output can be polled) as a reference to calibrate the
//! CPU's cycle counter against.

use x86_64::instructions::port::Port;

/// Input frequency of the PIT in Hz.
pub const FREQUENCY_HZ: u64 = 1_193_182;

/// Measures how many ticks of `counter` elapse in `ms` milliseconds of
/// PIT time (at most 50). `None` when the PIT does not seem to count.
pub fn measure(ms: u32, counter: fn() -> u64) -> Option<u64> {
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
