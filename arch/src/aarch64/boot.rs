//! The arm64 Image boot path (QEMU `-M virt -kernel`, Firecracker, and
//! Basalt's UEFI loader, which passes its handoff record where a device
//! tree would be: see `basalt_handoff`): the
//! 64-byte Linux Image header comes first, so loaders place the image
//! `text_offset` (2 MiB) above a 2 MiB-aligned base in RAM and jump to its
//! first byte with the MMU off and x0 holding the device tree's physical
//! address.
//!
//! The kernel is position-independent (linked at `0x40200000`, QEMU
//! `virt`'s RAM base + `text_offset`, but built as a static PIE), so the
//! header sets flag bit 3: the base may be anywhere in RAM. The stub first
//! computes the load offset (where it runs minus where it was linked) and
//! applies the image's `R_AARCH64_RELATIVE` relocations, before anything
//! reads an absolute address. Then it drops from EL2 to EL1 when entered at
//! EL2, turns on FP/SIMD, clears `.bss`, identity-maps the first 4 GiB
//! (device memory below 1 GiB, where `virt` keeps its MMIO, normal memory
//! above) plus the GiB blocks holding the image and the device tree
//! wherever they lie below 512 GiB, the first GiB included (a Raspberry
//! Pi's RAM starts at 0; its MMIO, in the fourth GiB, is then normal
//! memory until the kernel's own tables replace these: see
//! `paging::finish_boot_tables`), enables the MMU and caches, installs
//! the exception vectors and a separate exception stack (the kernel runs on
//! `SP_EL0`, exceptions on `SP_EL1`, so a kernel stack overflow is still
//! reported), and calls [`basalt_aarch64_entry`].

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::bootinfo::{BootInfo, PhysRange};

core::arch::global_asm!(
    // The Image header (Documentation/arch/arm64/booting.rst).
    ".pushsection .text.basalt_head, \"ax\"",
    ".globl basalt_arm64_head",
    "basalt_arm64_head:",
    "b basalt_arm64_start",         // code0
    ".long 0",                      // code1
    ".quad 0x200000",               // text_offset
    ".quad __kernel_size",          // image_size, .bss included
    ".quad 0xa",                    // flags: little endian, 4 KiB pages, base anywhere
    ".quad 0",                      // res2
    ".quad 0",                      // res3
    ".quad 0",                      // res4
    ".byte 0x41, 0x52, 0x4d, 0x64", // magic "ARM\x64"
    ".long 0",                      // res5 (PE header offset: none)
    ".popsection",
    // Boot-time page tables and stacks.
    ".pushsection .bss.basalt_boot, \"aw\", %nobits",
    ".p2align 12",
    "basalt_boot_l0: .skip 4096",
    "basalt_boot_l1: .skip 4096",
    ".globl basalt_boot_stack_bottom",
    "basalt_boot_stack_bottom: .skip 65536",
    ".globl basalt_boot_stack_top",
    "basalt_boot_stack_top:",
    ".globl basalt_exception_stack_bottom",
    "basalt_exception_stack_bottom: .skip 32768",
    ".globl basalt_exception_stack_top",
    "basalt_exception_stack_top:",
    ".popsection",
    ".pushsection .text.basalt_boot, \"ax\"",
    "basalt_arm64_start:",
    "mov x19, x0",
    "msr daifset, #0xf",
    // The load offset (a multiple of 2 MiB): where the loader put the image
    // minus where it was linked. x20 keeps it for the Rust entry.
    "adrp x20, basalt_arm64_head",
    "add x20, x20, :lo12:basalt_arm64_head",
    "ldr x1, =__kernel_link_base",
    "sub x20, x20, x1",
    // Relocate. Every .rela.dyn entry is R_AARCH64_RELATIVE with symbol 0
    // (the CLI checks when it makes the Image; anything else stops here):
    // *(r_offset + offset) = r_addend + offset. With the MMU off these
    // stores bypass the caches; the loader cleaned the image to the point
    // of coherency but clean copies may still be cached, so each written
    // line is invalidated, and the instruction cache with it.
    "adrp x1, __rela_start",
    "add x1, x1, :lo12:__rela_start",
    "adrp x2, __rela_end",
    "add x2, x2, :lo12:__rela_end",
    "7:",
    "cmp x1, x2",
    "b.hs 8f",
    "ldp x3, x4, [x1], #16",
    "ldr x5, [x1], #8",
    "cmp x4, #0x403",
    "b.ne basalt_boot_hang",
    "add x3, x3, x20",
    "add x5, x5, x20",
    "str x5, [x3]",
    "dc ivac, x3",
    "b 7b",
    "8:",
    "dsb sy",
    "ic iallu",
    "dsb sy",
    "isb",
    "mrs x1, CurrentEL",
    "lsr x1, x1, #2",
    "cmp x1, #2",
    "b.ne 1f",
    // EL2: AArch64 EL1, EL1 may use the physical counter and timer, no
    // FP/SIMD traps, then drop to EL1h with interrupts masked.
    "mov x1, #(1 << 31)",
    "msr hcr_el2, x1",
    "mrs x1, cnthctl_el2",
    "orr x1, x1, #3",
    "msr cnthctl_el2, x1",
    "msr cntvoff_el2, xzr",
    "mov x1, #0x33ff",
    "msr cptr_el2, x1",
    "msr hstr_el2, xzr",
    // GICv3 system registers usable at EL1 (ICC_SRE_EL2: SRE, Enable).
    "mrs x1, id_aa64pfr0_el1",
    "ubfx x1, x1, #24, #4",
    "cbz x1, 5f",
    "mov x1, #0x9",
    "msr s3_4_c12_c9_5, x1",
    "isb",
    "5:",
    "ldr x1, =0x30d00800",
    "msr sctlr_el1, x1",
    "mov x1, #0x3c5",
    "msr spsr_el2, x1",
    "adr x1, 1f",
    "msr elr_el2, x1",
    "eret",
    "1:",
    "mrs x1, CurrentEL",
    "lsr x1, x1, #2",
    "cmp x1, #1",
    "b.ne basalt_boot_hang",
    // MMU and caches off (RES1 bits set) while the tables are built.
    "ldr x1, =0x30d00800",
    "msr sctlr_el1, x1",
    "isb",
    // FP/SIMD on (CPACR_EL1.FPEN = 0b11).
    "mov x1, #(3 << 20)",
    "msr cpacr_el1, x1",
    "isb",
    // Clear .bss (tables and stacks included).
    "adrp x1, __bss_start",
    "add x1, x1, :lo12:__bss_start",
    "adrp x2, __bss_end",
    "add x2, x2, :lo12:__bss_end",
    "2:",
    "cmp x1, x2",
    "b.hs 3f",
    "stp xzr, xzr, [x1], #16",
    "b 2b",
    "3:",
    // L0[0] -> L1; L1[0]: device block 0..1 GiB (AttrIndx 0, AF, PXN,
    // UXN); L1[1..4]: normal blocks (AttrIndx 1, inner shareable, AF).
    "adrp x1, basalt_boot_l0",
    "add x1, x1, :lo12:basalt_boot_l0",
    "adrp x2, basalt_boot_l1",
    "add x2, x2, :lo12:basalt_boot_l1",
    "orr x3, x2, #3",
    "str x3, [x1]",
    "ldr x3, =0x0060000000000401",
    "str x3, [x2]",
    "mov x4, #1",
    "ldr x5, =0x705",
    "4:",
    "lsl x3, x4, #30",
    "orr x3, x3, x5",
    "str x3, [x2, x4, lsl #3]",
    "add x4, x4, #1",
    "cmp x4, #4",
    "b.ne 4b",
    // The GiB blocks holding the image and the device tree as well, which
    // loaders may put above 4 GiB or in the first GiB (where RAM starts
    // at 0): normal memory too (the image must lie below 512 GiB, this one
    // L1 table's reach).
    "adrp x1, __kernel_start",
    "add x1, x1, :lo12:__kernel_start",
    "adrp x3, __kernel_end",
    "add x3, x3, :lo12:__kernel_end",
    "sub x3, x3, #1",
    "lsr x4, x3, #39",
    "cbnz x4, basalt_boot_hang",
    "bl basalt_boot_map_ram",
    "cbz x19, 9f",
    "ldr w4, [x19]",
    // Basalt's UEFI loader passes its handoff record ("BSLT") instead of
    // a device tree: map the record (its size is the u64 at offset 8).
    "ldr w5, =0x544c5342",
    "cmp w4, w5",
    "b.ne 13f",
    "ldr x3, [x19, #8]",
    "mov x1, x19",
    "add x3, x19, x3",
    "sub x3, x3, #1",
    "bl basalt_boot_map_ram",
    "b 9f",
    "13:",
    "ldr w5, =0xedfe0dd0", // the FDT magic, big-endian
    "cmp w4, w5",
    "b.ne 9f",
    "ldr w3, [x19, #4]", // its total size, big-endian
    "rev w3, w3",
    "mov x1, x19",
    "add x3, x19, w3, uxtw",
    "sub x3, x3, #1",
    "bl basalt_boot_map_ram",
    "9:",
    // .bss (tables and stacks) was written with the MMU and caches off:
    // drop any stale cache lines for it before the caches come on, so
    // neither reads nor later evictions see older contents.
    "mrs x3, ctr_el0",
    "ubfx x3, x3, #16, #4",
    "mov x4, #4",
    "lsl x3, x4, x3",
    "adrp x1, __bss_start",
    "add x1, x1, :lo12:__bss_start",
    "adrp x2, __bss_end",
    "add x2, x2, :lo12:__bss_end",
    "6:",
    "dc ivac, x1",
    "add x1, x1, x3",
    "cmp x1, x2",
    "b.lo 6b",
    "dsb sy",
    "adrp x1, basalt_boot_l0",
    "add x1, x1, :lo12:basalt_boot_l0",
    // MAIR: attr0 Device-nGnRnE, attr1 Normal write-back.
    "mov x3, #0xff00",
    "msr mair_el1, x3",
    // TCR: T0SZ 16 (48-bit), walks cacheable inner shareable, 4 KiB
    // granule, TTBR1 walks off, IPS from the CPU's physical range.
    "ldr x3, =0x903510",
    "mrs x4, id_aa64mmfr0_el1",
    "and x4, x4, #7",
    "cmp x4, #5",
    "mov x5, #5",
    "csel x4, x4, x5, ls",
    "bfi x3, x4, #32, #3",
    "msr tcr_el1, x3",
    "msr ttbr0_el1, x1",
    "isb",
    "tlbi vmalle1",
    "dsb nsh",
    "isb",
    "mrs x1, sctlr_el1",
    "ldr x3, =0x1005",
    "orr x1, x1, x3",
    "msr sctlr_el1, x1",
    "isb",
    "adrp x1, basalt_vectors",
    "add x1, x1, :lo12:basalt_vectors",
    "msr vbar_el1, x1",
    // Exceptions on SP_EL1 (their own stack), the kernel on SP_EL0.
    "msr spsel, #1",
    "adrp x1, basalt_exception_stack_top",
    "add x1, x1, :lo12:basalt_exception_stack_top",
    "mov sp, x1",
    "msr spsel, #0",
    "adrp x1, basalt_boot_stack_top",
    "add x1, x1, :lo12:basalt_boot_stack_top",
    "mov sp, x1",
    "isb",
    "mov x0, x19",
    "mov x1, x20",
    "mov x29, #0",
    "mov x30, #0",
    "bl basalt_aarch64_entry",
    "basalt_boot_hang:",
    "wfi",
    "b basalt_boot_hang",
    // Maps the GiB blocks from the one holding x1 to the one holding x3 as
    // normal memory in the L1 table at x2, skipping blocks at or above
    // 512 GiB. The first GiB too: a Raspberry Pi's RAM starts at 0 and
    // its firmware (or QEMU) loads the image there. Clobbers x4-x7.
    "basalt_boot_map_ram:",
    "lsr x4, x1, #30",
    "lsr x6, x3, #30",
    "mov x5, #0x705",
    "10:",
    "cmp x4, x6",
    "b.hi 12f",
    "cmp x4, #512",
    "b.hs 12f",
    "lsl x7, x4, #30",
    "orr x7, x7, x5",
    "str x7, [x2, x4, lsl #3]",
    "add x4, x4, #1",
    "b 10b",
    "12:",
    "ret",
    ".ltorg",
    ".popsection",
);

unsafe extern "Rust" {
    /// The kernel's entry point, defined by the kernel binary.
    fn basalt_kernel_main(info: &'static BootInfo) -> !;
}

unsafe extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
    static __text_start: u8;
    static __text_end: u8;
    static basalt_boot_stack_bottom: u8;
    static basalt_boot_stack_top: u8;
}

/// The kernel's code, `[start, end)`: a fault there is never a wasm trap.
pub fn kernel_text() -> (usize, usize) {
    (
        (&raw const __text_start) as usize,
        (&raw const __text_end) as usize,
    )
}

/// The boot stack's address range `[bottom, top)`.
pub fn boot_stack() -> (usize, usize) {
    (
        (&raw const basalt_boot_stack_bottom) as usize,
        (&raw const basalt_boot_stack_top) as usize,
    )
}

/// Where the kernel runs minus where it was linked, set once at entry.
static LOAD_OFFSET: AtomicUsize = AtomicUsize::new(0);

/// How far above its link address the loader placed the kernel (a
/// multiple of 2 MiB; wrapping, in case it went below). Kernel addresses
/// at run time are link addresses (the ELF's, `kernel.syms`') plus this.
pub fn load_offset() -> usize {
    LOAD_OFFSET.load(Ordering::Relaxed)
}

static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

/// The Rust entry, called by the boot stub at EL1 with the MMU on, the
/// image relocated by `load_offset`. The memory map, initrd and command
/// line are in the device tree, which the kernel reads (it owns the
/// parser, in `drivers/`).
#[unsafe(no_mangle)]
extern "C" fn basalt_aarch64_entry(device_tree: u64, load_offset: u64) -> ! {
    LOAD_OFFSET.store(load_offset as usize, Ordering::Relaxed);
    super::traps::init();
    super::cpu::init();
    let info = BOOT_INFO.call_once(|| {
        let mut info = BootInfo::new("arm64 Image");
        let (ks, ke) = (
            (&raw const __kernel_start) as u64,
            (&raw const __kernel_end) as u64,
        );
        info.kernel_image = PhysRange {
            start: ks,
            len: ke - ks,
        };
        // SAFETY: x0 as the loader passed it; the boot stub mapped the
        // block it lies in when it held a handoff record or a device tree.
        let magic = (device_tree != 0).then(|| unsafe { (device_tree as *const u32).read() });
        if magic == Some(basalt_handoff::MAGIC) {
            info.protocol = "UEFI";
            // SAFETY: the loader's handoff record, mapped by the stub (it
            // and what it points to are one allocation the kernel keeps).
            unsafe { crate::handoff::read(device_tree, &mut info) };
            // The image is where the stub found itself.
            info.kernel_image = PhysRange {
                start: ks,
                len: ke - ks,
            };
        } else {
            info.device_tree = Some(device_tree).filter(|a| *a != 0);
        }
        info
    });
    // SAFETY: the kernel defines this symbol; it is called once, here.
    unsafe { basalt_kernel_main(info) }
}
