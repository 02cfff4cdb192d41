//! Ending the run: one status marker line on the kernel log, then the
//! exit device, ACPI power-off, a controller reset and a halt, whichever
//! ends the machine first (see `docs/guest-protocol.md`).

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

    fn debug_exit_value(self) -> u32 {
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
    basalt_drivers::debug_exit::exit(status.debug_exit_value());
    // No debug-exit device (real machines, other VMMs): power off.
    acpi_power_off();
    // No ACPI either: a controller reset ends the VM under QEMU's
    // `-no-reboot` and on Firecracker; failing that, stop here (the host
    // has the marker).
    let _ = EmergencyLog.write_str("power: resetting through the keyboard controller\n");
    basalt_drivers::i8042::reset();
    basalt_arch::cpu::halt_forever()
}

/// Physical memory as the firmware left it, for the ACPI table parser.
struct Firmware;

impl basalt_drivers::acpi::PhysMemory for Firmware {
    fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
        basalt_arch::power::read_firmware(addr, buf)
    }
}

fn pm_register(r: basalt_drivers::acpi::Register) -> basalt_arch::power::PmRegister {
    use basalt_arch::power::PmRegister;
    use basalt_drivers::acpi::Register;
    match r {
        Register::Io(p) => PmRegister::Io(p),
        Register::Memory(a) => PmRegister::Memory(a),
    }
}

/// The S5 parameters, read once while the firmware's tables are intact.
static S5: spin::Once<Result<basalt_drivers::acpi::SleepS5, basalt_drivers::acpi::AcpiError>> =
    spin::Once::new();

fn find_s5() -> Result<basalt_drivers::acpi::SleepS5, basalt_drivers::acpi::AcpiError> {
    let (rsdp, ebda) = crate::BOOT_INFO
        .get()
        .map_or((None, None), |i| (i.acpi_rsdp, i.ebda));
    basalt_drivers::acpi::find_s5(&Firmware, rsdp, ebda)
}

/// Reads the ACPI power-off parameters now, before memory setup: some
/// machines (QEMU's microvm) put their tables in memory the map calls
/// usable, and the program may reuse it before the run ends.
pub fn prepare_power_off() {
    S5.call_once(find_s5);
}

/// Enters ACPI S5 (soft-off); returns, after saying why on the kernel log,
/// only when the machine is still running. Allocates nothing, so it works
/// from the panic path too.
fn acpi_power_off() {
    use basalt_drivers::acpi::SleepControl;
    let s5 = match *S5.call_once(find_s5) {
        Ok(s5) => s5,
        Err(e) => {
            let _ = writeln!(EmergencyLog, "power: no ACPI power-off: {e}");
            return;
        }
    };
    let result = match s5.control {
        SleepControl::Pm1 { a, b } => {
            let _ = writeln!(
                EmergencyLog,
                "power: powering off via ACPI S5 (PM1a control at {a}, SLP_TYPa {})",
                s5.slp_typ_a
            );
            basalt_arch::power::acpi_sleep(&basalt_arch::power::AcpiSleep {
                pm1a: pm_register(a),
                pm1b: b.map(pm_register),
                pm1a_value: s5.pm1a_value(),
                pm1b_value: s5.pm1b_value(),
                smi_command: s5.smi_command,
                acpi_enable: s5.acpi_enable,
            })
        }
        SleepControl::SleepRegister(r) => {
            let _ = writeln!(
                EmergencyLog,
                "power: powering off via ACPI S5 (sleep control register at {r}, SLP_TYP {})",
                s5.slp_typ_a
            );
            basalt_arch::power::acpi_sleep_register(pm_register(r), s5.sleep_register_value())
        }
    };
    if let Err(e) = result {
        let _ = writeln!(EmergencyLog, "power: ACPI power-off failed: {e}");
    }
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
