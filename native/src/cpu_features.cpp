// Which of the instruction sets the packaged builds use (native/cpu-builds.json) this CPU runs, as Linux's
// /proc/cpuinfo names them: the runtime asks before it loads one of those builds, which would die with SIGILL on a
// CPU without them. Compiled for the architecture's baseline, unlike the builds it chooses between. x86-64: reads
// CPUID, and XGETBV for whether the operating system saves the AVX and AVX-512 registers (a CPU flag without that
// cannot be used). arm64 Linux: the kernel's hardware capabilities (getauxval), which /proc/cpuinfo prints.
#include <napi.h>

#if defined(__x86_64__) || defined(_M_X64)
#    if defined(_MSC_VER)
#        include <immintrin.h>
#        include <intrin.h>

static void cpuid(int leaf, int sub, unsigned r[4]) {
    int v[4];
    __cpuidex(v, leaf, sub);
    for (int i = 0; i < 4; i++) {
        r[i] = (unsigned) v[i];
    }
}

static unsigned long long xcr0() {
    return _xgetbv(0);
}
#    else
#        include <cpuid.h>

static void cpuid(int leaf, int sub, unsigned r[4]) {
    __cpuid_count(leaf, sub, r[0], r[1], r[2], r[3]);
}

static unsigned long long xcr0() {
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long) hi << 32) | lo;
}
#    endif

static Napi::Value Features(const Napi::CallbackInfo & info) {
    Napi::Array out = Napi::Array::New(info.Env());
    auto        add = [&](bool has, const char * name) {
        if (has) {
            out.Set(out.Length(), name);
        }
    };
    unsigned r1[4], r7[4] = {}, r0[4];
    cpuid(0, 0, r0);
    cpuid(1, 0, r1);
    if (r0[0] >= 7) {
        cpuid(7, 0, r7);
    }
    const bool               osxsave = (r1[2] >> 27) & 1;
    const unsigned long long x       = osxsave ? xcr0() : 0;
    const bool               ymm     = (x & 0x6) == 0x6;    // SSE and AVX state
    const bool               zmm     = (x & 0xe6) == 0xe6;  // and AVX-512's opmask and upper ZMM state
    add(ymm && ((r1[2] >> 28) & 1), "avx");
    add(ymm && ((r7[1] >> 5) & 1), "avx2");
    add(ymm && ((r1[2] >> 12) & 1), "fma");
    add(ymm && ((r1[2] >> 29) & 1), "f16c");
    add((r7[1] >> 8) & 1, "bmi2");
    add(zmm && ((r7[1] >> 16) & 1), "avx512f");
    add(zmm && ((r7[1] >> 17) & 1), "avx512dq");
    add(zmm && ((r7[1] >> 28) & 1), "avx512cd");
    add(zmm && ((r7[1] >> 30) & 1), "avx512bw");
    add(zmm && ((r7[1] >> 31) & 1), "avx512vl");
    add(zmm && ((r7[2] >> 1) & 1), "avx512vbmi");
    add(zmm && ((r7[2] >> 11) & 1), "avx512_vnni");
    return out;
}
#elif defined(__aarch64__) && defined(__linux__)
#    include <sys/auxv.h>

static Napi::Value Features(const Napi::CallbackInfo & info) {
    Napi::Array out = Napi::Array::New(info.Env());
    auto        add = [&](bool has, const char * name) {
        if (has) {
            out.Set(out.Length(), name);
        }
    };
    // The bits of <asm/hwcap.h>, named here so that older kernel headers build it too.
    const unsigned long hwcap  = getauxval(AT_HWCAP);
    const unsigned long hwcap2 = getauxval(AT_HWCAP2);
    add(hwcap & (1UL << 9), "fphp");
    add(hwcap & (1UL << 10), "asimdhp");
    add(hwcap & (1UL << 20), "asimddp");
    add(hwcap & (1UL << 22), "sve");
    add(hwcap2 & (1UL << 13), "i8mm");
    return out;
}
#else
// Elsewhere (macOS, Windows on ARM) the probe reads nothing: null, and the runtime takes the most portable build.
static Napi::Value Features(const Napi::CallbackInfo & info) {
    return info.Env().Null();
}
#endif

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
    exports.Set("features", Napi::Function::New(env, Features));
    return exports;
}

NODE_API_MODULE(dream_cpu, Init)
