//! What the boot stub learned from the loader, in ISA-neutral form.

/// A range of physical memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhysRange {
    /// first byte
    pub start: u64,
    /// length in bytes
    pub len: u64,
}

impl PhysRange {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// What a region of the physical memory map holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemoryKind {
    /// RAM the kernel may use
    Usable,
    /// firmware or device memory
    #[default]
    Reserved,
    /// ACPI tables, reclaimable after they are read
    AcpiReclaimable,
    /// ACPI non-volatile storage
    AcpiNvs,
    /// defective RAM
    Unusable,
}

/// One entry of the physical memory map.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryRegion {
    /// where it is
    pub range: PhysRange,
    /// what it is
    pub kind: MemoryKind,
}

/// The most memory-map entries kept.
pub const MAX_REGIONS: usize = 128;

/// The most device windows kept.
pub const MAX_DEVICE_WINDOWS: usize = 64;

/// Everything the loader told the kernel.
#[derive(Debug, Clone)]
pub struct BootInfo {
    regions: [MemoryRegion; MAX_REGIONS],
    region_count: usize,
    /// the initial ramdisk (Basalt's bundle), if the loader passed one
    pub initrd: Option<PhysRange>,
    /// the kernel command line (may be empty)
    pub cmdline: &'static [u8],
    /// where the kernel image itself lies
    pub kernel_image: PhysRange,
    /// how the kernel was booted (e.g. "PVH")
    pub protocol: &'static str,
    /// the ACPI RSDP's physical address, if the loader gave it
    pub acpi_rsdp: Option<u64>,
    /// PC firmware: the extended BIOS data area's physical address (read
    /// from the BIOS data area at boot, while page 0 is still mapped), one
    /// of the places the ACPI RSDP may be
    pub ebda: Option<u64>,
    /// the flattened device tree's physical address, if the loader passed
    /// one (the arm64 Image protocol does, in x0)
    pub device_tree: Option<u64>,
    /// the machine has one console for everything (firmware boot): the
    /// kernel log shares the program's stdout channel (see
    /// `docs/guest-protocol.md`, "One console")
    pub shared_console: bool,
    /// the firmware's wall clock, sampled by the loader
    pub wall_clock: Option<WallClockSample>,
    /// the cycle counter when the loader started and when it jumped into
    /// the kernel (firmware boot)
    pub loader_counters: Option<(u64, u64)>,
    /// the UEFI system table, when UEFI firmware booted the machine
    pub uefi_system_table: Option<u64>,
    /// the SMBIOS entry point, if the firmware gave one
    pub smbios: Option<u64>,
    /// what loaded the kernel (`"UEFI (EDK II)"`), for the log
    pub loader_name: &'static str,
    /// the boot path found the loader's record unusable: the kernel stops
    /// with this as its load error
    pub boot_error: Option<&'static str>,
    /// device register windows the kernel reaches through the identity map
    /// (AArch64: mapped Device-nGnRnE, wherever they lie)
    device_windows: [PhysRange; MAX_DEVICE_WINDOWS],
    device_window_count: usize,
}

/// The firmware's wall clock and the cycle counter at the same moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WallClockSample {
    /// seconds since the Unix epoch (UTC)
    pub unix_seconds: i64,
    /// the ISA's cycle counter then
    pub counter: u64,
}

impl BootInfo {
    /// An empty boot record.
    pub const fn new(protocol: &'static str) -> BootInfo {
        BootInfo {
            regions: [MemoryRegion {
                range: PhysRange { start: 0, len: 0 },
                kind: MemoryKind::Reserved,
            }; MAX_REGIONS],
            region_count: 0,
            initrd: None,
            cmdline: &[],
            kernel_image: PhysRange { start: 0, len: 0 },
            protocol,
            acpi_rsdp: None,
            ebda: None,
            device_tree: None,
            shared_console: false,
            wall_clock: None,
            loader_counters: None,
            uefi_system_table: None,
            smbios: None,
            loader_name: "",
            boot_error: None,
            device_windows: [PhysRange { start: 0, len: 0 }; MAX_DEVICE_WINDOWS],
            device_window_count: 0,
        }
    }

    /// Adds a memory-map entry; returns false when the table is full.
    pub fn push_region(&mut self, region: MemoryRegion) -> bool {
        if self.region_count == MAX_REGIONS {
            return false;
        }
        self.regions[self.region_count] = region;
        self.region_count += 1;
        true
    }

    /// Takes `hole` out of the usable regions (firmware data the kernel
    /// keeps reading, e.g. a device tree in boot-services memory); returns
    /// false when the table had no room for a split region.
    pub fn carve_out(&mut self, hole: PhysRange) -> bool {
        let mut ok = true;
        let mut i = 0;
        while i < self.region_count {
            let r = self.regions[i];
            if r.kind != MemoryKind::Usable
                || hole.end() <= r.range.start
                || hole.start >= r.range.end()
            {
                i += 1;
                continue;
            }
            let left = PhysRange {
                start: r.range.start,
                len: hole.start.saturating_sub(r.range.start),
            };
            let right_start = hole.end().min(r.range.end());
            let right = PhysRange {
                start: right_start,
                len: r.range.end() - right_start,
            };
            self.regions[i].range = left;
            if right.len > 0 {
                ok &= self.push_region(MemoryRegion {
                    range: right,
                    kind: MemoryKind::Usable,
                });
            }
            i += 1;
        }
        ok
    }

    /// Records device registers the kernel will reach at their physical
    /// address; returns false when the table is full or `window` is empty.
    pub fn push_device_window(&mut self, window: PhysRange) -> bool {
        if self.device_window_count == MAX_DEVICE_WINDOWS || window.len == 0 {
            return false;
        }
        self.device_windows[self.device_window_count] = window;
        self.device_window_count += 1;
        true
    }

    /// The device windows recorded with [`BootInfo::push_device_window`].
    pub fn device_windows(&self) -> &[PhysRange] {
        &self.device_windows[..self.device_window_count]
    }

    /// The physical memory map, as the loader gave it.
    pub fn regions(&self) -> &[MemoryRegion] {
        &self.regions[..self.region_count]
    }

    /// One past the highest usable physical address.
    pub fn top_of_ram(&self) -> u64 {
        self.regions()
            .iter()
            .filter(|r| r.kind == MemoryKind::Usable)
            .map(|r| r.range.end())
            .max()
            .unwrap_or(0)
    }
}
