//! Ending the run: one status marker line on the kernel log, then the
//! platform's way out of the VM (see `docs/guest-protocol.md`).

use core::fmt::Write;

use crate::log::EmergencyLog;

/// How the run ended, as the host sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `BASALT-EXIT n`
    Exit,
    /// `BASALT-TRAP kind message`
    Trap,
    /// `BASALT-PANIC message`
    Panic,
    /// `BASALT-ERROR message`
    Error,
}

impl Status {
    fn marker(self) -> &'static str {
        match self {
            Status::Exit => "BASALT-EXIT",
            Status::Trap => "BASALT-TRAP",
            Status::Panic => "BASALT-PANIC",
            Status::Error => "BASALT-ERROR",
        }
    }

    /// The exit device's value; QEMU's status is `value << 1 | 1`.
    fn exit_value(self) -> u32 {
        match self {
            Status::Exit => 0x10,
            Status::Trap => 0x11,
            Status::Panic => 0x12,
            Status::Error => 0x13,
        }
    }
}

/// Prints `<MARKER> <detail>` on one line and leaves the VM. The detail's
/// newlines are flattened so the marker stays one line.
pub fn finish(status: Status, detail: core::fmt::Arguments<'_>) -> ! {
    let mut line = LineWriter(EmergencyLog);
    let _ = write!(line.0, "{} ", status.marker());
    let _ = line.write_fmt(detail);
    let _ = line.0.write_str("\n");
    crate::platform::leave(status.exit_value())
}

/// Reads what powering off needs while the firmware's data is intact
/// (before memory setup).
pub fn prepare_power_off() {
    crate::platform::prepare_power_off();
}

struct LineWriter(EmergencyLog);

impl Write for LineWriter {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for (i, part) in s.split(['\n', '\r']).enumerate() {
            if i > 0 {
                self.0.write_str(" ")?;
            }
            self.0.write_str(part)?;
        }
        Ok(())
    }
}
