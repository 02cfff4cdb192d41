/* setjmp/longjmp as wasi-libc lowers them onto exception handling
 * (`-mllvm -wasm-enable-sjlj`): jumps across many frames, through a
 * function pointer, out of nested setjmps, with 0, and in a loop. The
 * output is compared with wasmtime's (tests/tests/real_programs.rs). */
#include <setjmp.h>
#include <stdio.h>

static jmp_buf outer;
static int frames;

static void dive(int n) {
    if (n == 0) longjmp(outer, 42);
    frames++;
    dive(n - 1);
}

static void jump_via(void (*f)(int), int n) { f(n); }

static int nested(void) {
    jmp_buf inner;
    volatile int steps = 0;
    int v = setjmp(inner);
    steps++;
    if (v < 3) longjmp(inner, v + 1);
    return steps * 100 + v;
}

int main(void) {
    int v = setjmp(outer);
    if (v == 0) dive(10000);
    printf("deep: longjmp gave %d after %d frames\n", v, frames);

    frames = 0;
    v = setjmp(outer);
    if (v == 0) jump_via(dive, 3);
    printf("through a pointer: %d after %d frames\n", v, frames);

    printf("nested: %d\n", nested());

    jmp_buf zero;
    volatile int passes = 0;
    if (setjmp(zero) == 0) {
        passes++;
        longjmp(zero, 0);
    }
    printf("longjmp(0) returns 1 to setjmp; passes %d\n", passes);

    long sum = 0;
    for (int i = 0; i < 100000; i++) {
        jmp_buf loop;
        int r = setjmp(loop);
        if (r == 0) longjmp(loop, i % 7 + 1);
        sum += r;
    }
    printf("loop: %ld\n", sum);
    return 0;
}
