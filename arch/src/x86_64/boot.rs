//! The x86-64 boot paths.
//!
//! - **PVH**: an ELF note tells the loader (QEMU `-kernel`, Firecracker,
//!   Cloud Hypervisor) where our 32-bit entry is. The entry clears `.bss`,
//!   identity-maps the first 4 GiB with 2 MiB pages, enters long mode and
//!   calls [`basalt_x86_64_entry`], which reads the PVH `hvm_start_info`
//!   into a [`BootInfo`] and calls the kernel.
//! - **Basalt's UEFI loader**: a second note (`basalt_handoff::ENTRY_NOTE_TYPE`)
//!   names a 64-bit entry, which the loader jumps to after exiting boot
//!   services, paging on and the handoff record's address in `rdi`. It
//!   masks the legacy interrupt controllers the firmware used, builds the
//!   same boot tables, loads our GDT and stack and calls
//!   [`basalt_x86_64_loader_entry`]. The loader needs the record (and what
//!   it points to) below 4 GiB, where the boot tables reach.

use crate::bootinfo::{BootInfo, MemoryKind, MemoryRegion, PhysRange};

// The boot stub. Register use at PVH entry: ebx = physical address of
// hvm_start_info, flat 32-bit protected mode, paging off, interrupts off.
core::arch::global_asm!(
    // The PVH note: type XEN_ELFNOTE_PHYS32_ENTRY (18), name "Xen", an
    // 8-byte descriptor with the physical entry address (QEMU reads a
    // pointer-sized value for ELF64 images). Section alignment 4, so the
    // loader's alignment of the name field matches ours.
    ".pushsection .note.Xen, \"a\", @note",
    ".p2align 2",
    ".long 4",
    ".long 8",
    ".long 18",
    ".asciz \"Xen\"",
    ".p2align 2",
    ".quad basalt_pvh_start",
    ".popsection",
    // The loader note: name "Basalt", type basalt_handoff::ENTRY_NOTE_TYPE,
    // descriptor the 64-bit entry's physical address.
    ".pushsection .note.basalt, \"a\", @note",
    ".p2align 2",
    ".long 7",
    ".long 8",
    ".long 0x42410001",
    ".asciz \"Basalt\"",
    ".p2align 2",
    ".quad basalt_loader_start",
    ".popsection",
    // Boot-time page tables and stack.
    ".pushsection .bss.basalt_boot, \"aw\", @nobits",
    ".p2align 12",
    ".globl basalt_boot_pml4",
    "basalt_boot_pml4: .skip 4096",
    "basalt_boot_pdpt: .skip 4096",
    "basalt_boot_pd: .skip 4 * 4096",
    ".globl basalt_boot_stack_bottom",
    "basalt_boot_stack_bottom: .skip 65536",
    ".globl basalt_boot_stack_top",
    "basalt_boot_stack_top:",
    ".popsection",
    ".pushsection .rodata.basalt_boot, \"a\"",
    ".p2align 3",
    "basalt_boot_gdt:",
    ".quad 0",
    ".quad 0x00af9a000000ffff", // 0x08: 64-bit code
    ".quad 0x00cf92000000ffff", // 0x10: data
    "basalt_boot_gdt_end:",
    ".p2align 3",
    "basalt_boot_gdtr:",
    ".word basalt_boot_gdt_end - basalt_boot_gdt - 1",
    ".quad basalt_boot_gdt",
    ".popsection",
    ".pushsection .text.basalt_boot32, \"ax\"",
    ".code32",
    ".globl basalt_pvh_start",
    "basalt_pvh_start:",
    "cli",
    "cld",
    "mov esi, ebx",
    // Clear .bss (the loader should have, but do not rely on it).
    "mov edi, offset __bss_start",
    "mov ecx, offset __bss_end",
    "sub ecx, edi",
    "xor eax, eax",
    "rep stosb",
    "mov esp, offset basalt_boot_stack_top",
    // PML4[0] -> PDPT; PDPT[0..4] -> PD pages; PD entries: 2 MiB pages.
    "mov eax, offset basalt_boot_pdpt",
    "or eax, 3",
    "mov dword ptr [basalt_boot_pml4], eax",
    "xor ecx, ecx",
    "basalt_boot_pdpt_loop:",
    "mov eax, ecx",
    "shl eax, 12",
    "add eax, offset basalt_boot_pd",
    "or eax, 3",
    "mov dword ptr [basalt_boot_pdpt + ecx * 8], eax",
    "inc ecx",
    "cmp ecx, 4",
    "jne basalt_boot_pdpt_loop",
    "xor ecx, ecx",
    "basalt_boot_pd_loop:",
    "mov eax, ecx",
    "shl eax, 21",
    "or eax, 0x83",
    "mov dword ptr [basalt_boot_pd + ecx * 8], eax",
    "mov eax, ecx",
    "shr eax, 11",
    "mov dword ptr [basalt_boot_pd + ecx * 8 + 4], eax",
    "inc ecx",
    "cmp ecx, 2048",
    "jne basalt_boot_pd_loop",
    // PAE on, CR3, EFER.LME, paging + write protect on.
    "mov eax, cr4",
    "or eax, 0x20",
    "mov cr4, eax",
    "mov eax, offset basalt_boot_pml4",
    "mov cr3, eax",
    "mov ecx, 0xC0000080",
    "rdmsr",
    "or eax, 0x100",
    "wrmsr",
    "mov eax, cr0",
    "or eax, 0x80010001",
    "mov cr0, eax",
    "lgdt [basalt_boot_gdtr]",
    // ljmp 0x08:basalt_boot64
    ".byte 0xea",
    ".long basalt_boot64",
    ".word 0x08",
    ".code64",
    "basalt_boot64:",
    "mov ax, 0x10",
    "mov ds, ax",
    "mov es, ax",
    "mov ss, ax",
    "xor eax, eax",
    "mov fs, ax",
    "mov gs, ax",
    "lea rsp, [rip + basalt_boot_stack_top]",
    "mov edi, esi",
    "xor ebp, ebp",
    "call basalt_x86_64_entry",
    "basalt_boot_hang:",
    "hlt",
    "jmp basalt_boot_hang",
    // The loader entry: 64-bit mode, the firmware's identity paging and
    // descriptor tables, rdi = the handoff record.
    ".globl basalt_loader_start",
    "basalt_loader_start:",
    "cli",
    "cld",
    "mov r12, rdi",
    // Mask both 8259 PICs: the firmware's timer tick must not arrive
    // through vectors the kernel never set up.
    "mov al, 0xff",
    "out 0x21, al",
    "out 0xa1, al",
    // Clear .bss (the loader zeroed it; do not rely on it).
    "lea rdi, [rip + __bss_start]",
    "lea rcx, [rip + __bss_end]",
    "sub rcx, rdi",
    "xor eax, eax",
    "rep stosb",
    // The boot tables, as the PVH stub builds them.
    "lea rax, [rip + basalt_boot_pdpt]",
    "or rax, 3",
    "mov [rip + basalt_boot_pml4], rax",
    "lea rsi, [rip + basalt_boot_pdpt]",
    "lea rdx, [rip + basalt_boot_pd]",
    "xor ecx, ecx",
    "basalt_loader_pdpt_loop:",
    "mov rax, rcx",
    "shl rax, 12",
    "add rax, rdx",
    "or rax, 3",
    "mov [rsi + rcx * 8], rax",
    "inc ecx",
    "cmp ecx, 4",
    "jne basalt_loader_pdpt_loop",
    "xor ecx, ecx",
    "basalt_loader_pd_loop:",
    "mov rax, rcx",
    "shl rax, 21",
    "or rax, 0x83",
    "mov [rdx + rcx * 8], rax",
    "inc ecx",
    "cmp ecx, 2048",
    "jne basalt_loader_pd_loop",
    "lea rax, [rip + basalt_boot_pml4]",
    "mov cr3, rax",
    "lgdt [rip + basalt_boot_gdtr]",
    "lea rsp, [rip + basalt_boot_stack_top]",
    // Reload CS with our 64-bit code segment (far return: retfq).
    "push 0x08",
    "lea rax, [rip + basalt_loader_cs]",
    "push rax",
    ".byte 0x48, 0xcb",
    "basalt_loader_cs:",
    "mov ax, 0x10",
    "mov ds, ax",
    "mov es, ax",
    "mov ss, ax",
    "xor eax, eax",
    "mov fs, ax",
    "mov gs, ax",
    "mov rdi, r12",
    "xor ebp, ebp",
    "call basalt_x86_64_loader_entry",
    "jmp basalt_boot_hang",
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

/// How far above its link address the kernel runs: always 0 here, since
/// PVH loaders put the ELF's segments where it was linked. (On AArch64 the
/// loader chooses and the kernel relocates itself.)
pub fn load_offset() -> usize {
    0
}

static BOOT_INFO: spin::Once<BootInfo> = spin::Once::new();

const START_INFO_MAGIC: u32 = 0x336e_c578;

/// `struct hvm_start_info` (Xen public/arch-x86/hvm/start_info.h).
#[repr(C)]
#[derive(Clone, Copy)]
struct StartInfo {
    magic: u32,
    version: u32,
    flags: u32,
    nr_modules: u32,
    modlist_paddr: u64,
    cmdline_paddr: u64,
    rsdp_paddr: u64,
    memmap_paddr: u64,
    memmap_entries: u32,
    reserved: u32,
}

/// `struct hvm_modlist_entry`.
#[repr(C)]
#[derive(Clone, Copy)]
struct ModlistEntry {
    paddr: u64,
    size: u64,
    cmdline_paddr: u64,
    reserved: u64,
}

/// `struct hvm_memmap_table_entry`.
#[repr(C)]
#[derive(Clone, Copy)]
struct MemmapEntry {
    addr: u64,
    size: u64,
    kind: u32,
    reserved: u32,
}

/// Reads a little-endian value of type `T` at a physical address.
///
/// # Safety
/// `addr` must be identity-mapped readable memory holding a `T`.
unsafe fn read_phys<T: Copy>(addr: u64) -> T {
    // SAFETY: forwarded contract; unaligned reads are fine on x86.
    unsafe { (addr as *const T).read_unaligned() }
}

/// Reads the PVH `hvm_start_info` at `paddr` into a [`BootInfo`].
///
/// # Safety
/// `paddr` must be the start-info address the PVH loader passed, still
/// identity-mapped (as the boot page tables map the first 4 GiB).
unsafe fn parse_start_info(paddr: u64) -> BootInfo {
    let mut info = BootInfo::new("PVH");
    let (ks, ke) = (
        (&raw const __kernel_start) as u64,
        (&raw const __kernel_end) as u64,
    );
    info.kernel_image = PhysRange {
        start: ks,
        len: ke - ks,
    };
    // SAFETY: the BIOS data area's EBDA segment word, in page 0, which the
    // boot tables still map; it holds garbage or zero without a BIOS.
    let ebda = u64::from(unsafe { read_phys::<u16>(0x40e) }) << 4;
    info.ebda = Some(ebda).filter(|e| (0x8_0000..0xa_0000).contains(e));
    // SAFETY: the loader's start_info (caller's contract).
    let si: StartInfo = unsafe { read_phys(paddr) };
    if si.magic != START_INFO_MAGIC {
        return info;
    }
    info.acpi_rsdp = Some(si.rsdp_paddr).filter(|a| *a != 0);
    if si.cmdline_paddr != 0 {
        let mut len = 0usize;
        // SAFETY: a NUL-terminated string from the loader; bounded scan.
        while len < 4096 && unsafe { read_phys::<u8>(si.cmdline_paddr + len as u64) } != 0 {
            len += 1;
        }
        // SAFETY: the loader's command line stays in low memory the kernel
        // never hands out (frames are allocated above 1 MiB and outside it).
        info.cmdline = unsafe { core::slice::from_raw_parts(si.cmdline_paddr as *const u8, len) };
    }
    if si.nr_modules > 0 && si.modlist_paddr != 0 {
        // SAFETY: the first hvm_modlist_entry.
        let m: ModlistEntry = unsafe { read_phys(si.modlist_paddr) };
        if m.size > 0 {
            info.initrd = Some(PhysRange {
                start: m.paddr,
                len: m.size,
            });
        }
    }
    if si.version >= 1 {
        for i in 0..u64::from(si.memmap_entries) {
            // SAFETY: entry `i` of the loader's hvm_memmap_table_entry array.
            let e: MemmapEntry = unsafe { read_phys(si.memmap_paddr + i * 24) };
            let kind = match e.kind {
                1 => MemoryKind::Usable,
                3 => MemoryKind::AcpiReclaimable,
                4 => MemoryKind::AcpiNvs,
                5 => MemoryKind::Unusable,
                _ => MemoryKind::Reserved,
            };
            if !info.push_region(MemoryRegion {
                range: PhysRange {
                    start: e.addr,
                    len: e.size,
                },
                kind,
            }) {
                break;
            }
        }
    }
    info
}

/// The Rust entry from Basalt's UEFI loader, called by the loader stub on
/// the boot stack with the boot tables loaded.
#[unsafe(no_mangle)]
extern "C" fn basalt_x86_64_loader_entry(handoff: u64) -> ! {
    super::traps::init();
    super::cpu::init();
    let info = BOOT_INFO.call_once(|| {
        let mut info = BootInfo::new("UEFI");
        if handoff >= 4 << 30 {
            info.boot_error = Some("the loader's handoff record lies above 4 GiB");
        } else {
            // SAFETY: the record the loader passed in rdi, below 4 GiB where
            // the boot tables map it (checked), left intact by the loader.
            unsafe { crate::handoff::read(handoff, &mut info) };
        }
        // The image is where it was linked, whatever the record says.
        let (ks, ke) = (
            (&raw const __kernel_start) as u64,
            (&raw const __kernel_end) as u64,
        );
        info.kernel_image = PhysRange {
            start: ks,
            len: ke - ks,
        };
        info
    });
    // SAFETY: the kernel defines this symbol; it is called once, here.
    unsafe { basalt_kernel_main(info) }
}

/// The 64-bit Rust entry, called by the boot stub on the boot stack.
#[unsafe(no_mangle)]
extern "C" fn basalt_x86_64_entry(start_info: u32) -> ! {
    // Descriptor tables first: until a real TSS is loaded some hypervisors
    // (KVM without unrestricted guest) must emulate every instruction.
    super::traps::init();
    super::cpu::init();
    // SAFETY: `start_info` is what the PVH loader passed in ebx.
    let info = BOOT_INFO.call_once(|| unsafe { parse_start_info(u64::from(start_info)) });
    // SAFETY: the kernel defines this symbol; it is called once, here.
    unsafe { basalt_kernel_main(info) }
}
