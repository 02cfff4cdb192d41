//! Powering off through ACPI: reading firmware tables from physical
//! memory and writing the PM1 control registers. Finding the registers and
//! values is the caller's business (`basalt_drivers::acpi`).

use x86_64::instructions::port::Port;

/// The end of the memory [`read_firmware`] reads: the boot stub's identity
/// map covers the first 4 GiB, where PC firmware keeps its tables.
const FIRMWARE_LIMIT: u64 = 4 << 30;

/// Copies firmware memory at physical `addr` into `buf`. Refuses (false)
/// page 0, which the kernel leaves unmapped, any other page the identity
/// map lacks, and anything at or above 4 GiB.
pub fn read_firmware(addr: u64, buf: &mut [u8]) -> bool {
    let Some(end) = addr.checked_add(buf.len() as u64) else {
        return false;
    };
    if addr < 0x1000 || end > FIRMWARE_LIMIT {
        return false;
    }
    // Guard pages inside the identity map are not present: check every page
    // (a bad table pointer must not fault on the way out).
    let mut page = addr & !0xfff;
    while page < end {
        if super::paging::translate(page as usize) != Some(page) {
            return false;
        }
        page += 0x1000;
    }
    for (i, b) in buf.iter_mut().enumerate() {
        // SAFETY: every page of the range is present in the identity map
        // (checked above); reading firmware tables or unbacked addresses has
        // no side effects.
        *b = unsafe { core::ptr::read_volatile((addr + i as u64) as *const u8) };
    }
    true
}

/// A PM1 control or sleep control register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PmRegister {
    /// an I/O port
    Io(u16),
    /// a physical address below 4 GiB
    Memory(u64),
}

/// What to write to enter a sleep state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcpiSleep {
    /// PM1a control
    pub pm1a: PmRegister,
    /// PM1b control, if any
    pub pm1b: Option<PmRegister>,
    /// `SLP_TYPa << 10 | SLP_EN`
    pub pm1a_value: u16,
    /// `SLP_TYPb << 10 | SLP_EN`
    pub pm1b_value: u16,
    /// SMI command port (0: the machine is always in ACPI mode)
    pub smi_command: u16,
    /// value that switches the firmware to ACPI mode
    pub acpi_enable: u8,
}

/// Why the machine is still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerOffError {
    /// a PM1 register is memory-mapped outside the identity map
    Unmapped(u64),
    /// `SCI_EN` never came on after asking the firmware for ACPI mode
    AcpiModeTimeout,
    /// the writes were made but the machine did not turn off
    StillRunning,
    /// the UEFI system table or its runtime services table is not where
    /// the loader said, or not valid
    NoUefiRuntime,
}

impl core::fmt::Display for PowerOffError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            PowerOffError::Unmapped(a) => write!(f, "PM1 register at {a:#x} is not mapped"),
            PowerOffError::AcpiModeTimeout => {
                f.write_str("the firmware did not switch to ACPI mode (SCI_EN stayed clear)")
            }
            PowerOffError::StillRunning => {
                f.write_str("the machine is still running after SLP_EN was written")
            }
            PowerOffError::NoUefiRuntime => {
                f.write_str("no valid UEFI system table and runtime services")
            }
        }
    }
}

const SCI_EN: u16 = 1;

fn check(reg: PmRegister) -> Result<(), PowerOffError> {
    match reg {
        PmRegister::Memory(a) if a < 0x1000 || a.saturating_add(2) > FIRMWARE_LIMIT => {
            Err(PowerOffError::Unmapped(a))
        }
        _ => Ok(()),
    }
}

fn read16(reg: PmRegister) -> u16 {
    match reg {
        // SAFETY: the PM1 control register the firmware's FADT names.
        PmRegister::Io(p) => unsafe { Port::<u16>::new(p).read() },
        // SAFETY: checked to lie in the identity map; the FADT's register.
        PmRegister::Memory(a) => unsafe { core::ptr::read_volatile(a as *const u16) },
    }
}

fn write16(reg: PmRegister, value: u16) {
    match reg {
        // SAFETY: the PM1 control register the firmware's FADT names.
        PmRegister::Io(p) => unsafe { Port::<u16>::new(p).write(value) },
        // SAFETY: checked to lie in the identity map; the FADT's register.
        PmRegister::Memory(a) => unsafe { core::ptr::write_volatile(a as *mut u16, value) },
    }
}

/// Enters the sleep state `s` describes (S5: the machine turns off).
/// Switches to ACPI mode first when `SCI_EN` is clear. Returns only if the
/// machine is still running.
pub fn acpi_sleep(s: &AcpiSleep) -> Result<(), PowerOffError> {
    check(s.pm1a)?;
    if let Some(b) = s.pm1b {
        check(b)?;
    }
    if read16(s.pm1a) & SCI_EN == 0 && s.smi_command != 0 && s.acpi_enable != 0 {
        // SAFETY: the FADT's SMI command port; ACPI_ENABLE is its
        // documented request.
        unsafe { Port::<u8>::new(s.smi_command).write(s.acpi_enable) };
        let mut spins = 0u32;
        while read16(s.pm1a) & SCI_EN == 0 {
            spins += 1;
            if spins > 1_000_000 {
                return Err(PowerOffError::AcpiModeTimeout);
            }
            core::hint::spin_loop();
        }
    }
    // Keep the other bits (SCI_EN among them), replace SLP_TYP and SLP_EN.
    let keep = !(7u16 << 10 | 1 << 13);
    write16(s.pm1a, (read16(s.pm1a) & keep) | s.pm1a_value);
    if let Some(b) = s.pm1b {
        write16(b, (read16(b) & keep) | s.pm1b_value);
    }
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    Err(PowerOffError::StillRunning)
}

/// Writes `value` (`SLP_TYP << 2 | SLP_EN`) to a hardware-reduced
/// machine's 8-bit sleep control register. Returns only if the machine is
/// still running.
pub fn acpi_sleep_register(reg: PmRegister, value: u8) -> Result<(), PowerOffError> {
    check(reg)?;
    match reg {
        // SAFETY: the sleep control register the firmware's FADT names.
        PmRegister::Io(p) => unsafe { Port::<u8>::new(p).write(value) },
        // SAFETY: checked to lie in the identity map; the FADT's register.
        PmRegister::Memory(a) => unsafe { core::ptr::write_volatile(a as *mut u8, value) },
    }
    for _ in 0..1_000_000 {
        core::hint::spin_loop();
    }
    Err(PowerOffError::StillRunning)
}

/// `EFI_SYSTEM_TABLE`'s signature ("IBI SYST").
const EFI_SYSTEM_TABLE_SIGNATURE: u64 = 0x5453_5953_2049_4249;
/// `EFI_RUNTIME_SERVICES`' signature ("RUNTSERV").
const EFI_RUNTIME_SERVICES_SIGNATURE: u64 = 0x5652_4553_544e_5552;
/// `EfiResetShutdown`.
const EFI_RESET_SHUTDOWN: u32 = 2;

/// Powers off through UEFI's runtime service `ResetSystem(EfiResetShutdown)`,
/// the last resort after ACPI S5 (UEFI 2.10, 8.5.1). `system_table` is the
/// `EFI_SYSTEM_TABLE` the loader passed; the kernel never called
/// `SetVirtualAddressMap`, so the firmware's runtime code runs at its
/// physical addresses, on a map that lets it execute
/// ([`super::paging::with_firmware_map`]). Returns only if the table is
/// not valid or the machine is still running.
pub fn uefi_reset_shutdown(system_table: u64) -> Result<(), PowerOffError> {
    let read_u64 = |addr: u64| {
        let mut b = [0u8; 8];
        read_firmware(addr, &mut b).then(|| u64::from_le_bytes(b))
    };
    // EFI_SYSTEM_TABLE: header (signature at 0), RuntimeServices at 88;
    // EFI_RUNTIME_SERVICES: header, ResetSystem at 104.
    if read_u64(system_table) != Some(EFI_SYSTEM_TABLE_SIGNATURE) {
        return Err(PowerOffError::NoUefiRuntime);
    }
    let runtime = read_u64(system_table + 88).ok_or(PowerOffError::NoUefiRuntime)?;
    if read_u64(runtime) != Some(EFI_RUNTIME_SERVICES_SIGNATURE) {
        return Err(PowerOffError::NoUefiRuntime);
    }
    let reset = read_u64(runtime + 104)
        .filter(|a| *a >= 0x1000 && *a < FIRMWARE_LIMIT)
        .ok_or(PowerOffError::NoUefiRuntime)?;
    type ResetSystem = unsafe extern "efiapi" fn(u32, usize, usize, *const u8);
    // SAFETY: a non-null address below the identity limit, read from the
    // runtime services table whose signature was checked: the firmware's
    // ResetSystem, which keeps the UEFI calling convention.
    let reset: ResetSystem = unsafe { core::mem::transmute::<u64, ResetSystem>(reset) };
    // SAFETY: masks interrupts (the kernel keeps them off outside `hlt`;
    // this makes sure) on the way out.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    let call = || {
        // SAFETY: the firmware's ResetSystem (above), with its arguments
        // as UEFI defines them; it returns only if the reset failed.
        unsafe { reset(EFI_RESET_SHUTDOWN, 0, 0, core::ptr::null()) }
    };
    // SAFETY: interrupts are off on the one CPU the kernel runs; the
    // firmware's runtime code needs its memory executable, which the
    // firmware map gives.
    unsafe { super::paging::with_firmware_map(call) };
    Err(PowerOffError::StillRunning)
}
