//! Firecracker's AArch64 machine, reproduced on QEMU's `virt`.
//!
//! Firecracker loads the arm64 Image at its RAM base `0x8000_0000` plus
//! the header's `text_offset`, writes a device tree of its own (RAM from
//! `0x8000_0000`, a GICv3, the architected timer, PSCI over `hvc`, a PL031,
//! virtio-mmio transports and an `ns16550a` UART as the console), puts the
//! tree at the end of RAM and the initrd below it, and enters the Image
//! with x0 pointing at the tree. QEMU's `virt` has RAM from `0x4000_0000`
//! and no 16550 in memory, so this shape:
//! - gives `virt` 1 GiB more RAM than asked and describes only the part
//!   from `0x8000_0000` (the first GiB is never used);
//! - plugs a `pci-serial` (a 16550) into the PCIe root, whose I/O BAR a
//!   few instructions of "firmware" ([`entry_stub`]) place at I/O port
//!   0x1000, so its registers appear in memory through `virt`'s PCI I/O
//!   window at `0x3eff_1000`; the device tree names that address as an
//!   `ns16550a` and says nothing of PCI, so the kernel sees what it would
//!   see under Firecracker;
//! - loads the Image, the bundle, the tree and the stub with QEMU's
//!   generic loader (no `-kernel`: QEMU would put RAM's start in x0's
//!   tree), and starts the CPU at the stub at EL1 with the MMU off;
//! - leaves through PSCI `SYSTEM_OFF`, which QEMU's `virt` answers over
//!   `hvc` when it runs no firmware.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;

use crate::CliError;
use crate::vm::{self, RunDir, VmIo, VmOptions, VmReport};

/// Firecracker's RAM base on AArch64.
pub const RAM_BASE: u64 = 0x8000_0000;
/// Where QEMU's `virt` starts RAM.
const VIRT_RAM_BASE: u64 = 0x4000_0000;
/// The most RAM this shape gives (`virt` with `highmem=off` ends RAM at
/// 4 GiB).
pub const MAX_MEMORY_MIB: u64 = 2048;
/// Room for the device tree at the end of RAM, as Firecracker keeps.
const FDT_ROOM: u64 = 2 << 20;
/// `virt`'s ECAM window with `highmem=off`.
const ECAM_BASE: u64 = 0x3f00_0000;
/// The PCI slot the `pci-serial` sits in.
const SERIAL_SLOT: u64 = 1;
/// The I/O port its BAR 0 gets.
const SERIAL_IO_PORT: u64 = 0x1000;
/// `virt`'s PCI I/O window in memory.
const PCI_IO_WINDOW: u64 = 0x3eff_0000;
/// The 16550's registers as the CPU reaches them.
pub const SERIAL_BASE: u64 = PCI_IO_WINDOW + SERIAL_IO_PORT;
/// `virt`'s GICv3 distributor and redistributor regions.
const GICD: (u64, u64) = (0x0800_0000, 0x1_0000);
const GICR: (u64, u64) = (0x080a_0000, 0xf6_0000);
/// `virt`'s PL031.
const RTC: (u64, u64) = (0x0901_0000, 0x1000);
/// `virt`'s virtio-mmio transports: 32 of 0x200 bytes from here, on SPIs
/// 16 onwards.
const VIRTIO_BASE: u64 = 0x0a00_0000;
const VIRTIO_COUNT: u64 = 32;

/// Where each part goes in guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// the stub's address (the CPU starts here)
    pub stub: u64,
    /// the Image's load address (RAM base + its `text_offset`)
    pub image: u64,
    /// the device tree's address
    pub fdt: u64,
    /// the bundle's address (the initrd, below the tree)
    pub initrd: u64,
}

/// Places the parts as Firecracker does for `memory_mib` of RAM: the Image
/// at the RAM base + `text_offset`, the tree in the last 2 MiB, the initrd
/// page-aligned just below it; the stub at the RAM base, below the Image.
pub fn layout(
    memory_mib: u64,
    text_offset: u64,
    image_len: u64,
    initrd_len: u64,
) -> Result<Layout, CliError> {
    let ram_end = RAM_BASE + (memory_mib << 20);
    let fdt = ram_end - FDT_ROOM;
    let image = RAM_BASE + text_offset;
    let initrd = fdt.checked_sub(initrd_len).map(|a| a & !0xfff);
    match initrd {
        Some(initrd) if text_offset >= 0x1000 && image + image_len <= initrd => Ok(Layout {
            stub: RAM_BASE,
            image,
            fdt,
            initrd,
        }),
        _ => Err(CliError::Usage(format!(
            "the kernel ({} KiB) and the bundle ({} KiB) do not fit in {memory_mib} MiB: give the VM more --memory",
            image_len >> 10,
            initrd_len >> 10
        ))),
    }
}

/// The instructions the CPU runs first, in place of firmware: give the
/// `pci-serial`'s BAR 0 its I/O port and turn on its I/O decoding (through
/// `virt`'s ECAM; the MMU is off, so these are device accesses), then
/// enter the Image as the arm64 boot protocol says (x0 the tree, x1-x3
/// zero).
pub fn entry_stub(fdt: u64, entry: u64) -> Vec<u8> {
    let config = ECAM_BASE + (SERIAL_SLOT << 15);
    let mut code = Vec::new();
    load64(&mut code, 4, config);
    code.push(movz_w(5, SERIAL_IO_PORT as u16));
    code.push(str_w(5, 4, 0x10)); // BAR 0
    code.push(movz_w(5, 1));
    code.push(strh_w(5, 4, 0x04)); // command: I/O space
    load64(&mut code, 0, fdt);
    for reg in 1..=3 {
        code.push(movz_x(reg, 0, 0));
    }
    load64(&mut code, 4, entry);
    code.push(0xd61f_0000 | 4 << 5); // br x4
    code.iter().flat_map(|i| i.to_le_bytes()).collect()
}

/// `movz`/`movk` of the four half-words of `value` into `x<reg>`.
fn load64(code: &mut Vec<u32>, reg: u32, value: u64) {
    code.push(movz_x(reg, value as u16, 0));
    for hw in 1..4 {
        code.push(0xf280_0000 | hw << 21 | u32::from((value >> (16 * hw)) as u16) << 5 | reg);
    }
}

fn movz_x(reg: u32, imm: u16, hw: u32) -> u32 {
    0xd280_0000 | hw << 21 | u32::from(imm) << 5 | reg
}

fn movz_w(reg: u32, imm: u16) -> u32 {
    0x5280_0000 | u32::from(imm) << 5 | reg
}

/// `str w<rt>, [x<rn>, #offset]` (offset a multiple of 4).
fn str_w(rt: u32, rn: u32, offset: u32) -> u32 {
    0xb900_0000 | (offset / 4) << 10 | rn << 5 | rt
}

/// `strh w<rt>, [x<rn>, #offset]` (offset a multiple of 2).
fn strh_w(rt: u32, rn: u32, offset: u32) -> u32 {
    0x7900_0000 | (offset / 2) << 10 | rn << 5 | rt
}

/// The device tree Firecracker would write for this machine.
pub fn device_tree(
    memory_mib: u64,
    cmdline: &str,
    initrd: (u64, u64),
) -> Result<Vec<u8>, vm_fdt::Error> {
    const GIC: u32 = 1;
    const CLOCK: u32 = 2;
    const SPI: u32 = 0;
    const PPI: u32 = 1;
    const LEVEL_HIGH: u32 = 4;
    let mut fdt = vm_fdt::FdtWriter::new()?;
    let root = fdt.begin_node("")?;
    fdt.property_string("compatible", "linux,dummy-virt")?;
    fdt.property_u32("#address-cells", 2)?;
    fdt.property_u32("#size-cells", 2)?;
    fdt.property_u32("interrupt-parent", GIC)?;

    let cpus = fdt.begin_node("cpus")?;
    fdt.property_u32("#address-cells", 1)?;
    fdt.property_u32("#size-cells", 0)?;
    let cpu = fdt.begin_node("cpu@0")?;
    fdt.property_string("device_type", "cpu")?;
    fdt.property_string("compatible", "arm,arm-v8")?;
    fdt.property_string("enable-method", "psci")?;
    fdt.property_u32("reg", 0)?;
    fdt.end_node(cpu)?;
    fdt.end_node(cpus)?;

    let memory = fdt.begin_node(&format!("memory@{RAM_BASE:x}"))?;
    fdt.property_string("device_type", "memory")?;
    fdt.property_array_u64("reg", &[RAM_BASE, memory_mib << 20])?;
    fdt.end_node(memory)?;

    let chosen = fdt.begin_node("chosen")?;
    fdt.property_string("bootargs", cmdline)?;
    fdt.property_u64("linux,initrd-start", initrd.0)?;
    fdt.property_u64("linux,initrd-end", initrd.1)?;
    fdt.end_node(chosen)?;

    let gic = fdt.begin_node(&format!("intc@{:x}", GICD.0))?;
    fdt.property_string("compatible", "arm,gic-v3")?;
    fdt.property_null("interrupt-controller")?;
    fdt.property_u32("#interrupt-cells", 3)?;
    fdt.property_array_u64("reg", &[GICD.0, GICD.1, GICR.0, GICR.1])?;
    fdt.property_u32("phandle", GIC)?;
    fdt.end_node(gic)?;

    let timer = fdt.begin_node("timer")?;
    fdt.property_string("compatible", "arm,armv8-timer")?;
    fdt.property_null("always-on")?;
    // Secure, non-secure, virtual and hypervisor timers' PPIs.
    let mut cells = Vec::new();
    for ppi in [13, 14, 11, 10] {
        cells.extend([PPI, ppi, 0xf08]);
    }
    fdt.property_array_u32("interrupts", &cells)?;
    fdt.end_node(timer)?;

    let psci = fdt.begin_node("psci")?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,psci-0.2".to_string(), "arm,psci".to_string()],
    )?;
    fdt.property_string("method", "hvc")?;
    fdt.end_node(psci)?;

    let clock = fdt.begin_node("apb-pclk")?;
    fdt.property_string("compatible", "fixed-clock")?;
    fdt.property_u32("#clock-cells", 0)?;
    fdt.property_u32("clock-frequency", 24_000_000)?;
    fdt.property_string("clock-output-names", "clk24mhz")?;
    fdt.property_u32("phandle", CLOCK)?;
    fdt.end_node(clock)?;

    let uart = fdt.begin_node(&format!("uart@{SERIAL_BASE:x}"))?;
    fdt.property_string("compatible", "ns16550a")?;
    fdt.property_array_u64("reg", &[SERIAL_BASE, 8])?;
    fdt.property_u32("clock-frequency", 1_843_200)?;
    // The PCI slot's INTA, as `virt` swizzles it (SPIs 3-6).
    fdt.property_array_u32(
        "interrupts",
        &[SPI, 3 + (SERIAL_SLOT as u32 % 4), LEVEL_HIGH],
    )?;
    fdt.end_node(uart)?;

    let rtc = fdt.begin_node(&format!("rtc@{:x}", RTC.0))?;
    fdt.property_string_list(
        "compatible",
        vec!["arm,pl031".to_string(), "arm,primecell".to_string()],
    )?;
    fdt.property_array_u64("reg", &[RTC.0, RTC.1])?;
    fdt.property_array_u32("interrupts", &[SPI, 2, LEVEL_HIGH])?;
    fdt.property_u32("clocks", CLOCK)?;
    fdt.property_string("clock-names", "apb_pclk")?;
    fdt.end_node(rtc)?;

    for i in 0..VIRTIO_COUNT {
        let base = VIRTIO_BASE + i * 0x200;
        let node = fdt.begin_node(&format!("virtio_mmio@{base:x}"))?;
        fdt.property_string("compatible", "virtio,mmio")?;
        fdt.property_array_u64("reg", &[base, 0x200])?;
        fdt.property_array_u32("interrupts", &[SPI, 16 + i as u32, 1])?;
        fdt.property_null("dma-coherent")?;
        fdt.end_node(node)?;
    }
    fdt.end_node(root)?;
    fdt.finish()
}

/// The QEMU command line of this shape, without the parts (the caller
/// adds their loaders).
pub fn command(opts: &VmOptions, console: &Path) -> Command {
    let mut shape = opts.clone();
    shape.memory_mib = opts.memory_mib + ((RAM_BASE - VIRT_RAM_BASE) >> 20);
    let mut cmd = vm::base_command(&shape, "virt,gic-version=3,highmem=off");
    cmd.args(["-global", "virtio-mmio.force-legacy=false"]);
    if opts.virtio_rng {
        cmd.args(["-device", "virtio-rng-device"]);
    }
    vm::share_args(&mut cmd, &opts.shares, "virtio-9p-device");
    if let Some(net) = &opts.network {
        vm::network_args_with(&mut cmd, net, "virtio-net-device", None, false);
    }
    if let Some(ifname) = &opts.network_tap {
        vm::tap_args(&mut cmd, ifname, "virtio-net-device");
    }
    cmd.arg("-chardev")
        .arg(format!("socket,id=com1,path={}", console.display()));
    cmd.arg("-device").arg(format!(
        "pci-serial,chardev=com1,bus=pcie.0,addr={SERIAL_SLOT:#x}.0"
    ));
    cmd.args(&opts.extra_qemu_args);
    cmd
}

/// Boots `bundle` on the AArch64 Firecracker shape and relays its one
/// console until the VM ends.
pub fn boot(opts: &VmOptions, bundle: &[u8], io: VmIo) -> Result<VmReport, CliError> {
    if opts.memory_mib > MAX_MEMORY_MIB {
        return Err(CliError::Usage(format!(
            "the aarch64 firecracker machine takes at most {MAX_MEMORY_MIB} MiB (--memory)"
        )));
    }
    let image_path = crate::guest::boot_image(opts.arch, &opts.kernel);
    let image = std::fs::read(&image_path)
        .map_err(|e| CliError::Build(format!("{}: {e}", image_path.display())))?;
    let text_offset = image
        .get(8..16)
        .and_then(|b| b.try_into().ok())
        .map(u64::from_le_bytes)
        .ok_or_else(|| CliError::Build(format!("{}: no arm64 header", image_path.display())))?;
    let at = layout(
        opts.memory_mib,
        text_offset,
        image.len() as u64,
        bundle.len() as u64,
    )?;
    let fdt = device_tree(
        opts.memory_mib,
        &opts.framed_cmdline(),
        (at.initrd, at.initrd + bundle.len() as u64),
    )
    .map_err(|e| CliError::Build(format!("the device tree: {e}")))?;
    let dir = RunDir::new()?;
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.0.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| CliError::Io(format!("{}: {e}", path.display())))?;
        Ok::<_, CliError>(path)
    };
    let parts = [
        (write("stub.bin", &entry_stub(at.fdt, at.image))?, at.stub),
        (image_path.clone(), at.image),
        (write("bundle.tar", bundle)?, at.initrd),
        (write("machine.dtb", &fdt)?, at.fdt),
    ];
    let socket = dir.0.join("console");
    let listener = UnixListener::bind(&socket)
        .map_err(|e| CliError::Io(format!("{}: {e}", socket.display())))?;
    let mut cmd = command(opts, &socket);
    for (path, addr) in &parts {
        cmd.arg("-device").arg(format!(
            "loader,file={},addr={addr:#x},force-raw=on",
            path.display()
        ));
    }
    cmd.arg("-device")
        .arg(format!("loader,addr={:#x},cpu-num=0", at.stub));
    crate::vm_console::relay(opts, cmd, listener, io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parts_are_placed_as_firecracker_places_them() {
        let at = layout(1024, 0x20_0000, 6 << 20, 3 << 20).unwrap();
        assert_eq!(at.image, 0x8020_0000);
        assert_eq!(at.fdt, 0x8000_0000 + (1022 << 20));
        assert_eq!(at.initrd, at.fdt - (3 << 20));
        assert_eq!(at.stub, RAM_BASE);
        // A bundle that would run into the kernel is refused.
        assert!(layout(16, 0x20_0000, 6 << 20, 9 << 20).is_err());
    }

    #[test]
    fn the_stub_is_the_expected_instructions() {
        let code = entry_stub(0x8123_4000, 0x8020_0000);
        let words: Vec<u32> = code
            .chunks(4)
            .map(|w| u32::from_le_bytes(w.try_into().unwrap()))
            .collect();
        // movz x4, #0x8000 (ECAM 0x3f00_8000: slot 1), movk x4, #0x3f00, lsl 16
        assert_eq!(words[0], 0xd290_0004);
        assert_eq!(words[1], 0xf2a7_e004);
        // movz w5, #0x1000; str w5, [x4, #0x10]
        assert_eq!(words[4], 0x5282_0005);
        assert_eq!(words[5], 0xb900_1085);
        // movz w5, #1; strh w5, [x4, #4]
        assert_eq!(words[6], 0x5280_0025);
        assert_eq!(words[7], 0x7900_0885);
        // br x4
        assert_eq!(*words.last().unwrap(), 0xd61f_0080);
    }

    #[test]
    fn the_device_tree_names_the_16550_and_ram_at_2_gib() {
        let fdt = device_tree(512, "basalt.console=framed", (0x9000_0000, 0x9010_0000)).unwrap();
        let text = String::from_utf8_lossy(&fdt);
        assert!(text.contains("ns16550a"));
        assert!(text.contains("uart@3eff1000"));
        assert!(text.contains("memory@80000000"));
        assert!(!text.contains("pci"), "the tree says nothing of PCI");
    }
}
