<#-- mbarriers and TMA tile loads (sm_90+). A barrier is 8 bytes of shared memory, addressed as a
     32-bit shared-window address. A load names its barrier, which counts the bytes that landed. -->
struct __align__(64) SageTensorMap { unsigned long long words[16]; };

__device__ __forceinline__ void sage_mbar_init(u32 bar, u32 arrivals) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" :: "r"(bar), "r"(arrivals) : "memory");
}
// Makes barrier inits visible to the async proxy (TMA) before any load names them.
__device__ __forceinline__ void sage_mbar_init_fence() {
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
// One arrival that also announces `bytes` more bytes to land on this barrier's current phase.
__device__ __forceinline__ void sage_mbar_expect_tx(u32 bar, u32 bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" :: "r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void sage_mbar_arrive(u32 bar) {
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" :: "r"(bar) : "memory");
}
// Waits until the phase with the given parity (0 for the first use, then alternating) completed.
// The warp sleeps in try_wait (up to the suspend-time
// hint, waking when the phase completes) instead of re-polling: a polling producer warp takes issue
// slots from the consumer warps of its scheduler.
__device__ __forceinline__ void sage_mbar_wait(u32 bar, u32 parity) {
    u32 done;
    do {
        asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2, %3;\n selp.u32 %0, 1, 0, p;\n}\n"
                     : "=r"(done) : "r"(bar), "r"(parity), "n"(${mbarSuspendNs?c}) : "memory");
    } while (!done);
}

__device__ __forceinline__ void sage_tma_prefetch(const SageTensorMap* map) {
    asm volatile("prefetch.tensormap [%0];\n" :: "l"(reinterpret_cast<unsigned long long>(map)) : "memory");
}
// Loads one box of a rank-4 tensor map at element coordinates (c0 innermost) into shared memory;
// elements outside the tensor arrive as zeros. Completion is counted in bytes on `bar`.
__device__ __forceinline__ void sage_tma_load_4d(u32 dst, const SageTensorMap* map, int c0, int c1, int c2, int c3,
                                                 u32 bar) {
    asm volatile("cp.async.bulk.tensor.4d.shared::cluster.global.tile.mbarrier::complete_tx::bytes"
                 " [%0], [%1, {%2, %3, %4, %5}], [%6];\n"
                 :: "r"(dst), "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3),
                    "r"(bar)
                 : "memory");
}

// Adds a box of FP32 (or the map's type) from shared memory into a rank-4 tensor map at element coordinates (c0
// innermost), the reduction done by the TMA unit in L2; elements outside the tensor are skipped. The source must
// not change until a bulk-group wait with .read says it was read (sage_bulk_commit, sage_bulk_wait_read).
__device__ __forceinline__ void sage_tma_reduce_add_4d(u32 src, const SageTensorMap* map, int c0, int c1, int c2,
                                                       int c3) {
    asm volatile("cp.reduce.async.bulk.tensor.4d.global.shared::cta.add.tile.bulk_group [%0, {%1, %2, %3, %4}], [%5];\n"
                 :: "l"(reinterpret_cast<unsigned long long>(map)), "r"(c0), "r"(c1), "r"(c2), "r"(c3), "r"(src)
                 : "memory");
}
__device__ __forceinline__ void sage_bulk_commit() { asm volatile("cp.async.bulk.commit_group;\n" ::: "memory"); }
// Waits until at most N committed bulk groups still read their shared-memory sources.
template <int N>
__device__ __forceinline__ void sage_bulk_wait_read() {
    asm volatile("cp.async.bulk.wait_group.read %0;\n" :: "n"(N) : "memory");
}
// Waits until at most N committed bulk groups are incomplete (their global writes done).
template <int N>
__device__ __forceinline__ void sage_bulk_wait() { asm volatile("cp.async.bulk.wait_group %0;\n" :: "n"(N) : "memory"); }
