package dev.sagejit.compile;

/** Small real kernels for compile tests; no includes, so NVRTC needs no CUDA headers. */
final class Kernels {
    private Kernels() {
    }

    /** One bf16 m16n8k16 mma.sync and an ex2.approx per thread, through inline PTX. */
    static KernelSource mmaProbe(String name) {
        String code = """
                // %s
                extern "C" __global__ void mma_probe(const unsigned* a, const unsigned* b, float* out) {
                    const unsigned t = threadIdx.x;
                    unsigned a0 = a[t * 4], a1 = a[t * 4 + 1], a2 = a[t * 4 + 2], a3 = a[t * 4 + 3];
                    unsigned b0 = b[t * 2], b1 = b[t * 2 + 1];
                    float c0 = 0.f, c1 = 0.f, c2 = 0.f, c3 = 0.f;
                    asm volatile(
                        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
                        "{%%0,%%1,%%2,%%3}, {%%4,%%5,%%6,%%7}, {%%8,%%9}, {%%0,%%1,%%2,%%3};\\n"
                        : "+f"(c0), "+f"(c1), "+f"(c2), "+f"(c3)
                        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
                    float e;
                    asm("ex2.approx.f32 %%0, %%1;" : "=f"(e) : "f"(c0));
                    out[t * 4] = e; out[t * 4 + 1] = c1; out[t * 4 + 2] = c2; out[t * 4 + 3] = c3;
                }
                """.formatted(name);
        return new KernelSource(name, code, "mma_probe");
    }

    /** Holds 48 live floats and 16 KiB of shared memory; spills when capped at 32 registers. */
    static KernelSource spiller() {
        String code = """
                extern "C" __global__ void spiller(const float* __restrict__ in, float* out, int n) {
                    __shared__ float sm[4096];
                    float acc[48];
                    for (int i = 0; i < 48; i++) acc[i] = in[i * n + threadIdx.x];
                    for (int j = 0; j < n; j++) {
                        sm[threadIdx.x] = acc[j % 48];
                        __syncthreads();
                        for (int i = 0; i < 48; i++) acc[i] = acc[i] * sm[(threadIdx.x + i) & 4095] + in[j + i];
                    }
                    float s = 0.f;
                    for (int i = 0; i < 48; i++) s += acc[i] * acc[(i + 1) % 48];
                    out[threadIdx.x] = s;
                }
                """;
        return new KernelSource("spiller", code, "spiller");
    }

    /** Does not compile: an undeclared identifier. */
    static KernelSource broken() {
        return new KernelSource("broken_kernel", """
                extern "C" __global__ void broken(float* out) {
                    out[threadIdx.x] = not_declared_anywhere;
                }
                """, "broken");
    }
}
