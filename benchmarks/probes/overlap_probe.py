#!/usr/bin/env python3
"""Can the special-function unit (MUFU.EX2) or the FMA pipe run while wgmma keeps the tensor cores busy?

One block per SM of two warpgroups: warpgroup 0 issues back-to-back wgmma (INT8 m64n128k32 with both
operands in shared memory, or FP8 m64n136k32 with A in registers, the shapes of the int8-fp8 kernel's
Q K^T and P~ V), warpgroup 1 runs independent chains of ex2.approx (or FFMA). Each side alone, then
both: if both take about as long as the slower alone, the units overlap; about the sum, they do not.
Compiles with NVRTC and launches through the CUDA driver with ctypes (no toolkit, no PyTorch needed).
Usage: overlap_probe.py [--out results.jsonl] [--run ID] [--commit SHA]
"""
import argparse, ctypes, json, os, sys, time

NVRTC_CANDIDATES = [os.environ.get("SAGEJIT_NVRTC", ""), "/usr/local/cuda/lib64/libnvrtc.so.13", "libnvrtc.so.13",
                    "libnvrtc.so.12"]


def acc_list(n, first=0):
    return ", ".join("%%%d" % (first + i) for i in range(n))


def source():
    n_i = 64  # m64n128 INT32 accumulators per thread
    n_f = 68  # m64n136 FP32 accumulators per thread
    ops_i = ", ".join('"+r"(a[%d])' % i for i in range(n_i))
    ops_f = ", ".join('"+f"(d[%d])' % i for i in range(n_f))
    return r'''
typedef unsigned long long u64;
typedef unsigned int u32;
__device__ __forceinline__ u64 desc(u32 addr) {  // 128-byte swizzle, rows of 128 B, 8-row groups of 1024 B
    return (u64)((addr & 0x3FFFF) >> 4) | ((u64)1 << 16) | ((u64)(1024 >> 4) << 32) | ((u64)1 << 62);
}
__device__ __forceinline__ void mma_ss(int (&a)[64], u64 da, u64 db) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, 1, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 {''' + acc_list(n_i) + r'''}, %''' + str(n_i) + r''', %''' + str(n_i + 1) + r''', p; }\n"
                 : ''' + ops_i + r''' : "l"(da), "l"(db));
}
__device__ __forceinline__ void mma_rs(float (&d)[68], const u32 (&x)[4], u64 db) {
    asm volatile("{ .reg .pred p; setp.ne.b32 p, 1, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n136k32.f32.e4m3.e4m3 {''' + acc_list(n_f) + r'''}, {%''' + str(n_f) + r''', %''' + str(n_f + 1) + r''', %''' + str(n_f + 2) + r''', %''' + str(n_f + 3) + r'''}, %''' + str(n_f + 4) + r''', p, 1, 1; }\n"
                 : ''' + ops_f + r''' : "r"(x[0]), "r"(x[1]), "r"(x[2]), "r"(x[3]), "l"(db));
}
extern "C" __global__ void __launch_bounds__(256, 1)
probe(int mma_iters, int rs, int other_iters, int other_kind, float* out) {
    extern __shared__ __align__(1024) unsigned char smem[];
    for (int i = threadIdx.x; i < 48 * 1024 / 4; i += blockDim.x) reinterpret_cast<u32*>(smem)[i] = 0;
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
    __syncthreads();
    const u32 base = (u32)__cvta_generic_to_shared(smem);
    const u32 sb = (base + 1023) & ~1023u;
    float result = 0.f;
    if (threadIdx.x < 128) {
        if (rs) {
            float d[68];
            for (int i = 0; i < 68; ++i) d[i] = 0.f;
            u32 x[4] = {0x38383838u, 0x38383838u, 0x38383838u, 0x38383838u};
            for (int it = 0; it < mma_iters; ++it) {
                asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
                #pragma unroll
                for (int k = 0; k < 4; ++k) mma_rs(d, x, desc(sb + 16384 + 32 * k));
                asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
                asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
            }
            asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
            for (int i = 0; i < 68; ++i) result += d[i];
        } else {
            int a[64];
            for (int i = 0; i < 64; ++i) a[i] = 0;
            for (int it = 0; it < mma_iters; ++it) {
                asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory");
                #pragma unroll
                for (int k = 0; k < 4; ++k) mma_ss(a, desc(sb + 32 * k), desc(sb + 16384 + 32 * k));
                asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
                asm volatile("wgmma.wait_group.sync.aligned 1;\n" ::: "memory");
            }
            asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
            for (int i = 0; i < 64; ++i) result += (float)a[i];
        }
    } else {
        float v[16];
        for (int i = 0; i < 16; ++i) v[i] = 0.001f * (threadIdx.x + i);
        if (other_kind == 0) {
            for (int it = 0; it < other_iters; ++it) {
                #pragma unroll
                for (int i = 0; i < 16; ++i) asm volatile("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(v[i]) : "f"(-v[i]));
            }
        } else {
            for (int it = 0; it < other_iters; ++it) {
                #pragma unroll
                for (int i = 0; i < 16; ++i) asm volatile("fma.rn.f32 %0, %0, 0f3F7FF000, 0f3A800000;\n" : "+f"(v[i]));
            }
        }
        for (int i = 0; i < 16; ++i) result += v[i];
    }
    if (result == 12345.f) out[threadIdx.x] = result;  // keeps the work; never true
}
'''


def load_nvrtc():
    for name in NVRTC_CANDIDATES:
        if not name:
            continue
        try:
            return ctypes.CDLL(name)
        except OSError:
            pass
    sys.exit("no libnvrtc found (set SAGEJIT_NVRTC)")


def compile_cubin(src, arch="sm_90a"):
    nv = load_nvrtc()
    prog = ctypes.c_void_p()
    if nv.nvrtcCreateProgram(ctypes.byref(prog), src.encode(), b"probe.cu", 0, None, None):
        sys.exit("nvrtcCreateProgram failed")
    opts = [b"--gpu-architecture=" + arch.encode(), b"-std=c++17", b"--ptxas-options=-v"]
    rc = nv.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
    n = ctypes.c_size_t()
    nv.nvrtcGetProgramLogSize(prog, ctypes.byref(n))
    log = ctypes.create_string_buffer(n.value)
    nv.nvrtcGetProgramLog(prog, log)
    if rc:
        sys.exit("NVRTC failed:\n" + log.value.decode())
    nv.nvrtcGetCUBINSize(prog, ctypes.byref(n))
    cubin = ctypes.create_string_buffer(n.value)
    nv.nvrtcGetCUBIN(prog, cubin)
    return cubin.raw, log.value.decode()


def check(rc, what):
    if rc:
        sys.exit("%s failed with CUDA error %d" % (what, rc))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--run", default=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    ap.add_argument("--commit", default="unknown")
    args = ap.parse_args()
    cubin, log = compile_cubin(source())
    print("\n".join(l for l in log.splitlines() if "registers" in l or "spill" in l))
    cu = ctypes.CDLL("libcuda.so.1")
    check(cu.cuInit(0), "cuInit")
    dev, ctx, mod, fn = ctypes.c_int(), ctypes.c_void_p(), ctypes.c_void_p(), ctypes.c_void_p()
    check(cu.cuDeviceGet(ctypes.byref(dev), 0), "cuDeviceGet")
    check(cu.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), "cuDevicePrimaryCtxRetain")
    check(cu.cuCtxSetCurrent(ctx), "cuCtxSetCurrent")
    name = ctypes.create_string_buffer(128)
    cu.cuDeviceGetName(name, 128, dev)
    sms = ctypes.c_int()
    cu.cuDeviceGetAttribute(ctypes.byref(sms), 16, dev)  # MULTIPROCESSOR_COUNT
    check(cu.cuModuleLoadData(ctypes.byref(mod), cubin), "cuModuleLoadData")
    check(cu.cuModuleGetFunction(ctypes.byref(fn), mod, b"probe"), "cuModuleGetFunction")
    smem = 48 * 1024 + 1024
    check(cu.cuFuncSetAttribute(fn, 8, smem), "cuFuncSetAttribute")  # MAX_DYNAMIC_SHARED_SIZE_BYTES
    out = ctypes.c_uint64()
    check(cu.cuMemAlloc_v2(ctypes.byref(out), 4096), "cuMemAlloc")
    e0, e1 = ctypes.c_void_p(), ctypes.c_void_p()
    cu.cuEventCreate(ctypes.byref(e0), 0)
    cu.cuEventCreate(ctypes.byref(e1), 0)

    def run(mma_iters, rs, other_iters, other_kind, reps=5):
        vals = [ctypes.c_int(mma_iters), ctypes.c_int(rs), ctypes.c_int(other_iters), ctypes.c_int(other_kind), out]
        params = (ctypes.c_void_p * 5)(*[ctypes.cast(ctypes.pointer(v), ctypes.c_void_p) for v in vals])
        times = []
        for _ in range(reps + 1):
            cu.cuEventRecord(e0, None)
            check(cu.cuLaunchKernel(fn, sms.value, 1, 1, 256, 1, 1, smem, None, params, None), "cuLaunchKernel")
            cu.cuEventRecord(e1, None)
            check(cu.cuEventSynchronize(e1), "cuEventSynchronize")
            ms = ctypes.c_float()
            cu.cuEventElapsedTime(ctypes.byref(ms), e0, e1)
            times.append(ms.value)
        return sorted(times[1:])[len(times[1:]) // 2]

    rows = []
    for rs, mma_name in ((0, "int8 m64n128k32 SS"), (1, "fp8 m64n136k32 RS")):
        mma_iters = 4000
        t_mma = run(mma_iters, rs, 0, 0)
        for kind, other_name in ((0, "ex2.approx (MUFU)"), (1, "fma.rn.f32 (FMA pipe)")):
            # the other side sized to take about as long alone as the MMAs do
            probe_iters = 2000
            t_probe = run(0, rs, probe_iters, kind)
            other_iters = max(1, int(probe_iters * t_mma / t_probe))
            t_other = run(0, rs, other_iters, kind)
            t_both = run(mma_iters, rs, other_iters, kind)
            overlap = (t_mma + t_other - t_both) / min(t_mma, t_other)
            line = dict(run=args.run, gpu=name.value.decode(), commit=args.commit, impl="sagejit-probe",
                        probe="tensor-vs-cuda-core-overlap", mma=mma_name, other=other_name, mma_ms=t_mma,
                        other_ms=t_other, both_ms=t_both, overlap=overlap)
            rows.append(line)
            print("%-20s + %-22s alone %.3f / %.3f ms, together %.3f ms: overlap %.0f%% of the shorter"
                  % (mma_name, other_name, t_mma, t_other, t_both, 100 * overlap))
    if args.out:
        with open(args.out, "a") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
