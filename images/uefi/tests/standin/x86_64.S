# A stand-in x86-64 kernel for the UEFI loader's tests: an ELF linked at
# 0x100000 with a Basalt entry note. Its entry checks the handoff's magic
# (rdi), that .bss was zeroed and the stack is as if called, prints
# "HANDOFF OK", the command line, the counters and the memory map on COM1,
# then leaves QEMU through isa-debug-exit (status 0x21 on success, 0x23 on
# failure: QEMU exits with value << 1 | 1).
        .set MAGIC, 0x544c5342          # "BSLT"
        .set COM1, 0x3f8
        .ifndef BSS_SIZE
        .set BSS_SIZE, 0x10000
        .endif

        .section .note.basalt, "a"
        .balign 4
        .long 7                         # namesz ("Basalt\0")
        .long 8                         # descsz
        .long 0x42410001                # ENTRY_NOTE_TYPE
        .asciz "Basalt"
        .balign 4
        .quad entry

        .text
        .code64
        .globl entry
entry:
        mov %rdi, %r15                  # the handoff
        mov %rsp, %rax                  # as if called: rsp + 8 16-aligned
        add $8, %rax
        test $15, %rax
        jnz bad
        cmpl $MAGIC, (%r15)
        jne bad
        cmpl $1, 4(%r15)                # version
        jne bad
        cmpq $0, bss_end - 8(%rip)      # the last .bss word, zeroed
        jne bad
        lea ok_msg(%rip), %rsi
        call puts
        lea cmd_msg(%rip), %rsi         # the command line
        call puts
        mov 40(%r15), %rsi
        mov 48(%r15), %rcx
1:      jrcxz 2f
        lodsb
        call putc
        dec %rcx
        jmp 1b
2:      mov $'\n', %al
        call putc
        lea flags_msg(%rip), %rsi
        call puts
        mov 16(%r15), %rax
        call puthex
        lea kernel_msg(%rip), %rsi
        call puts
        mov 56(%r15), %rax
        call puthex
        mov 64(%r15), %rax
        call puthex
        lea bundle_msg(%rip), %rsi
        call puts
        mov 72(%r15), %rax
        call puthex
        mov 80(%r15), %rax
        call puthex
        lea tables_msg(%rip), %rsi      # acpi, dtb, smbios, systab
        call puts
        mov 88(%r15), %rax
        call puthex
        mov 96(%r15), %rax
        call puthex
        mov 104(%r15), %rax
        call puthex
        mov 112(%r15), %rax
        call puthex
        lea fb_msg(%rip), %rsi          # framebuffer base, size, w|h, stride|format
        call puts
        mov 120(%r15), %rax
        call puthex
        mov 128(%r15), %rax
        call puthex
        mov 136(%r15), %rax
        call puthex
        mov 144(%r15), %rax
        call puthex
        lea time_msg(%rip), %rsi        # wall clock, its counter, start, exit
        call puts
        mov 152(%r15), %rax
        call puthex
        mov 160(%r15), %rax
        call puthex
        mov 168(%r15), %rax
        call puthex
        mov 176(%r15), %rax
        call puthex
        lea name_msg(%rip), %rsi
        call puts
        lea 184(%r15), %rsi
        call puts
        lea map_msg(%rip), %rsi
        call puts
        mov 24(%r15), %rbx              # entries
        mov 32(%r15), %r12              # count
3:      test %r12, %r12
        jz 4f
        mov (%rbx), %rax                # start
        call puthex
        mov (%rbx), %rax                # end
        add 8(%rbx), %rax
        call puthex
        mov 16(%rbx), %eax              # kind
        call puthex
        mov $'\n', %al
        call putc
        add $24, %rbx
        dec %r12
        jmp 3b
4:      mov $0x10, %al                  # exit status 0x21
        jmp exit
bad:
        lea bad_msg(%rip), %rsi
        call puts
        mov $0x11, %al                  # exit status 0x23
exit:
        mov $0xf4, %dx
        out %al, %dx
5:      hlt
        jmp 5b

# Writes the NUL-terminated string at rsi.
puts:
        lodsb
        test %al, %al
        jz 1f
        call putc
        jmp puts
1:      ret

# Writes al to COM1 once it can take it.
putc:
        push %rdx
        push %rax
        mov $COM1 + 5, %dx
1:      in %dx, %al
        test $0x20, %al
        jz 1b
        pop %rax
        mov $COM1, %dx
        out %al, %dx
        pop %rdx
        ret

# Writes rax as 16 hex digits and a space.
puthex:
        push %rcx
        push %rdx
        mov %rax, %rdx
        mov $16, %ecx
1:      rol $4, %rdx
        mov %dl, %al
        and $15, %al
        add $'0', %al
        cmp $'9', %al
        jbe 2f
        add $7, %al
2:      call putc
        loop 1b
        mov $' ', %al
        call putc
        pop %rdx
        pop %rcx
        ret

        .section .rodata
ok_msg:     .asciz "HANDOFF OK\n"
bad_msg:    .asciz "HANDOFF BAD\n"
cmd_msg:    .asciz "cmdline: "
flags_msg:  .asciz "flags: "
kernel_msg: .asciz "\nkernel: "
bundle_msg: .asciz "\nbundle: "
tables_msg: .asciz "\nacpi dtb smbios systab: "
fb_msg:     .asciz "\nframebuffer: "
time_msg:   .asciz "\nwall counter start exit: "
name_msg:   .asciz "\nloader: "
map_msg:    .asciz "\nmemory map (start end kind):\n"

        .bss
        .balign 4096
bss_start:
        .skip BSS_SIZE
bss_end:
