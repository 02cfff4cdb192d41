//! The MC146818-compatible CMOS real-time clock.

use crate::portio::{inb, outb};

use crate::WallClock;

/// The CMOS RTC at ports 0x70/0x71.
#[derive(Debug, Default)]
pub struct CmosRtc;

fn read_register(reg: u8) -> u8 {
    // 0x70/0x71 are the CMOS index/data ports; bit 7 of the index keeps
    // NMIs disabled.
    outb(0x70, 0x80 | reg);
    inb(0x71)
}

#[derive(PartialEq, Eq, Clone, Copy)]
struct Raw([u8; 7]);

fn read_raw() -> Raw {
    let mut spins = 0;
    while read_register(0x0a) & 0x80 != 0 && spins < 1_000_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    Raw([
        read_register(0x00),
        read_register(0x02),
        read_register(0x04),
        read_register(0x07),
        read_register(0x08),
        read_register(0x09),
        read_register(0x32),
    ])
}

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

impl WallClock for CmosRtc {
    fn unix_seconds(&mut self) -> Option<u64> {
        // No RTC behind the ports (Firecracker, `microvm,rtc=off`): the
        // bus reads all ones, a value register A never holds (its divider
        // bits 0b111 mean "held in reset"). Waiting for its update flag
        // to clear would spin until the limit.
        if read_register(0x0a) == 0xff {
            return None;
        }
        // Read until two consecutive reads agree (no update in between).
        let mut a = read_raw();
        let mut tries = 0;
        loop {
            let b = read_raw();
            if a == b || tries > 10 {
                break;
            }
            a = b;
            tries += 1;
        }
        let status_b = read_register(0x0b);
        let binary = status_b & 0x04 != 0;
        let h24 = status_b & 0x02 != 0;
        let conv = |v: u8| -> u32 {
            if binary {
                u32::from(v)
            } else {
                u32::from(v & 0x0f) + u32::from(v >> 4) * 10
            }
        };
        let [s, mi, h, d, mo, y, c] = a.0;
        let pm = !h24 && h & 0x80 != 0;
        let mut hour = conv(h & 0x7f);
        if !h24 {
            hour %= 12;
            if pm {
                hour += 12;
            }
        }
        let century = match conv(c) {
            19..=21 => conv(c),
            _ => 20,
        };
        let year = i64::from(century * 100 + conv(y));
        let (month, day) = (conv(mo), conv(d));
        let (minute, second) = (conv(mi), conv(s));
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let secs =
            days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second);
        u64::try_from(secs).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::days_from_civil;

    #[test]
    fn civil_dates_count_days_from_the_epoch() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(2024, 2, 29), 19_782);
        assert_eq!(days_from_civil(2026, 11, 28), 20_785);
    }
}
