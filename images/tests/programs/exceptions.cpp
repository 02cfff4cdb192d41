// C++ exceptions as clang lowers them (-fwasm-exceptions): throws across
// indirect and virtual calls, destructors during unwinding, rethrow,
// nested handlers, catch by base class, catch (...), and deep recursion.
// The output is compared with wasmtime's (tests/tests/real_programs.rs).
#include <cstdio>
#include <exception>

struct Error : std::exception {
    int code;
    explicit Error(int c) : code(c) {}
    const char* what() const noexcept override { return "Error"; }
};
struct Fatal : Error {
    explicit Fatal(int c) : Error(c) {}
    const char* what() const noexcept override { return "Fatal"; }
};

static int destroyed;
struct Guard {
    int id;
    ~Guard() {
        destroyed++;
        if (id < 3) std::printf("  ~Guard %d\n", id);
    }
};

static int recurse(int n, int at) {
    Guard g{n};
    if (n == at) throw Fatal(n);
    return recurse(n + 1, at) + 1;
}

static void thrower(int c) { throw Error(c); }
static void (*volatile indirect)(int) = thrower;

struct Shape {
    virtual ~Shape() = default;
    virtual int area() const = 0;
};
struct Bad : Shape {
    int area() const override { throw Error(-1); }
};

static int rethrow_once(int c) {
    try {
        indirect(c);
    } catch (Error& e) {
        e.code += 1000;
        throw;
    }
    return 0;
}

int main() {
    try {
        recurse(0, 5);
    } catch (const Error& e) {
        std::printf("destructors: caught %s %d after %d\n", e.what(), e.code, destroyed);
    }

    try {
        indirect(7);
    } catch (const Error& e) {
        std::printf("indirect: %d\n", e.code);
    }

    Bad bad;
    const Shape& s = bad;
    try {
        std::printf("%d\n", s.area());
    } catch (const std::exception& e) {
        std::printf("virtual: caught by base class: %s\n", e.what());
    }

    try {
        rethrow_once(5);
    } catch (const Error& e) {
        std::printf("rethrow: %d\n", e.code);
    }

    try {
        try {
            throw 42;
        } catch (const Error&) {
            std::printf("wrong handler\n");
        } catch (int v) {
            std::printf("nested: inner %d\n", v);
            try {
                throw Fatal(v + 1);
            } catch (...) {
                std::printf("nested: catch-all inside a handler\n");
            }
            throw;
        }
    } catch (int v) {
        std::printf("nested: outer %d\n", v);
    }

    destroyed = 0;
    try {
        recurse(0, 2000);
    } catch (const Fatal& e) {
        std::printf("deep: %d frames unwound\n", destroyed);
    }

    long sum = 0;
    for (int i = 0; i < 20000; i++) {
        try {
            indirect(i);
        } catch (const Error& e) {
            sum += e.code;
        }
    }
    std::printf("loop: %ld\n", sum);
    return 0;
}
