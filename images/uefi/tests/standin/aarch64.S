// A stand-in AArch64 kernel for the UEFI loader's tests: a flat arm64
// Image (64-byte header, text_offset 0, image_size covering a zeroed tail).
// It checks the MMU is off (SCTLR_ELx.M), the handoff's magic at [x0] and
// that the Image's tail was zeroed; prints "HANDOFF OK", the exception
// level, the command line and the memory map on the PL011 at 0x09000000;
// then exits QEMU through semihosting (SYS_EXIT, status 0 on success, 1 on
// failure).
        .set MAGIC, 0x544c5342          // "BSLT"
        .set TAIL, 0x10000              // zeroed bytes past the file

        .text
_head:
        b start                         // code0
        .long 0                         // code1
        .quad 0                         // text_offset
        .quad _end - _head + TAIL       // image_size
        .quad 0xa                       // flags: LE, 4K pages, anywhere
        .quad 0, 0, 0                   // res2..res4
        .ascii "ARM\x64"                // magic
        .long 0                         // res5

start:
        mov x19, x0                     // the handoff
        movz x20, #0x0900, lsl #16      // PL011 data register
        mrs x1, CurrentEL
        lsr x1, x1, #2
        mov x21, x1                     // the exception level
        cmp x1, #2
        b.ne 1f
        mrs x2, sctlr_el2
        b 2f
1:      mrs x2, sctlr_el1
2:      tbnz x2, #0, bad                // M: the MMU must be off
        ldr w3, [x19]
        movz w4, #(MAGIC & 0xffff)
        movk w4, #(MAGIC >> 16), lsl #16
        cmp w3, w4
        b.ne bad
        adr x5, _end                    // the last word of the tail
        add x5, x5, #TAIL
        ldr x6, [x5, #-8]
        cbnz x6, bad
        adr x1, ok_msg
        bl puts
        adr x1, el_msg
        bl puts
        mov x0, x21
        bl puthex
        adr x1, cmd_msg
        bl puts
        ldr x22, [x19, #40]             // cmdline
        ldr x23, [x19, #48]             // its length
3:      cbz x23, 4f
        ldrb w0, [x22], #1
        bl putc
        sub x23, x23, #1
        b 3b
4:      adr x1, tables_msg              // acpi, dtb, smbios, systab
        bl puts
        ldr x0, [x19, #88]
        bl puthex
        ldr x0, [x19, #96]
        bl puthex
        ldr x0, [x19, #104]
        bl puthex
        ldr x0, [x19, #112]
        bl puthex
        adr x1, kernel_msg
        bl puts
        ldr x0, [x19, #56]
        bl puthex
        ldr x0, [x19, #64]
        bl puthex
        adr x1, map_msg
        bl puts
        ldr x22, [x19, #24]             // entries
        ldr x23, [x19, #32]             // count
5:      cbz x23, 6f
        ldr x0, [x22]
        bl puthex
        ldp x0, x1, [x22]
        add x0, x0, x1
        bl puthex
        ldr w0, [x22, #16]
        bl puthex
        mov w0, #'\n'
        bl putc
        add x22, x22, #24
        sub x23, x23, #1
        b 5b
6:      mov x1, #0
        b exit
bad:
        adr x1, bad_msg
        bl puts
        mov x1, #1
exit:
        adr x2, exit_block
        str x1, [x2, #8]                // the status
        mov x1, x2
        mov w0, #0x18                   // SYS_EXIT
        hlt #0xf000
7:      wfi
        b 7b

// Writes the NUL-terminated string at x1.
puts:
        mov x9, x30
1:      ldrb w0, [x1], #1
        cbz w0, 2f
        bl putc
        b 1b
2:      ret x9

// Writes w0 to the PL011 once it can take it.
putc:
        ldr w10, [x20, #0x18]           // UARTFR
        tbnz w10, #5, putc              // TXFF
        str w0, [x20]
        ret

// Writes x0 as 16 hex digits and a space.
puthex:
        mov x11, x30
        mov x12, x0
        mov x13, #16
1:      ror x12, x12, #60
        and x0, x12, #15
        add x0, x0, #'0'
        cmp x0, #'9'
        b.ls 2f
        add x0, x0, #7
2:      bl putc
        subs x13, x13, #1
        b.ne 1b
        mov w0, #' '
        bl putc
        ret x11

        .balign 8
exit_block:
        .quad 0x20026                   // ADP_Stopped_ApplicationExit
        .quad 0
ok_msg:     .asciz "HANDOFF OK\n"
bad_msg:    .asciz "HANDOFF BAD\n"
el_msg:     .asciz "EL: "
cmd_msg:    .asciz "\ncmdline: "
tables_msg: .asciz "\nacpi dtb smbios systab: "
kernel_msg: .asciz "\nkernel: "
map_msg:    .asciz "\nmemory map (start end kind):\n"
        .balign 8
_end:
