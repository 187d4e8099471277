<#-- Warpgroup MMA (sm_90a): shared-memory matrix descriptors, the fence/commit/wait protocol, and
     one wrapper per instruction shape the kernel uses (generated below from the template model's
     `wgmmaShapes`). Accumulators are float[N/8][4]: per warp the same (g, 2t) layout as mma.sync's
     m16n8 tiles, warp w of the warpgroup owning rows 16w..16w+15 of the 64. -->


// Descriptor of a swizzled tile: `addr` is 16-byte aligned inside a swizzle pattern that starts on
// its repeat (1024 B for 128-byte rows, 512 B for 64-byte rows); lbo/sbo are the leading/stride byte
// offsets; row_bytes (128, 64 or 32) picks the swizzle mode.
template <int ROW_BYTES>
__device__ __forceinline__ u64 sage_wgmma_desc(u32 addr, u32 lbo, u32 sbo) {
    constexpr u64 mode = ROW_BYTES == 128 ? 1 : ROW_BYTES == 64 ? 2 : 3;
    return (u64)((addr & 0x3FFFF) >> 4) | ((u64)((lbo & 0x3FFFF) >> 4) << 16)
         | ((u64)((sbo & 0x3FFFF) >> 4) << 32) | (mode << 62);
}
// A descriptor as its two words, for tiles that move through a ring: only the start address
// (low word, in 16-byte units) changes, so `at(bytes)` costs one add. Valid while the tile stays
// below 256 KB of shared memory (the address field's reach), which every sm_90a block does.
struct SageDesc {
    u32 lo, hi;
    __device__ __forceinline__ u64 at(u32 bytes) const { return ((u64)hi << 32) | (lo + (bytes >> 4)); }
};
template <int ROW_BYTES>
__device__ __forceinline__ SageDesc sage_wgmma_desc_words(u32 addr, u32 lbo, u32 sbo) {
    const u64 d = sage_wgmma_desc<ROW_BYTES>(addr, lbo, sbo);
    return SageDesc{(u32)d, (u32)(d >> 32)};
}
// Generic-proxy shared-memory writes (st.shared, cp.async) made visible to later wgmma reads (async
// proxy); every writing thread issues it before the barrier that publishes the tile.
__device__ __forceinline__ void sage_fence_proxy_async() { asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory"); }
__device__ __forceinline__ void sage_wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void sage_wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int N>
__device__ __forceinline__ void sage_wgmma_wait() { asm volatile("wgmma.wait_group.sync.aligned %0;\n" :: "n"(N) : "memory"); }
// Tells the compiler the accumulators may have changed behind its back (async MMA in flight).
template <int T>
__device__ __forceinline__ void sage_wgmma_touch(float (&d)[T][4]) {
    #pragma unroll
    for (int i = 0; i < T; ++i) {
        asm volatile("" : "+f"(d[i][0]), "+f"(d[i][1]), "+f"(d[i][2]), "+f"(d[i][3]) :: "memory");
    }
}
// The A registers of a wgmma stay in use until its group is waited for: touching them after the
// wait keeps the compiler from reusing them for new values while the MMA still reads them.
template <int T>
__device__ __forceinline__ void sage_wgmma_touch(u32 (&a)[T][4]) {
    #pragma unroll
    for (int i = 0; i < T; ++i) {
        asm volatile("" : "+r"(a[i][0]), "+r"(a[i][1]), "+r"(a[i][2]), "+r"(a[i][3]) :: "memory");
    }
}
template <int T>
__device__ __forceinline__ void sage_wgmma_touch(int (&d)[T][4]) {
    #pragma unroll
    for (int i = 0; i < T; ++i) {
        asm volatile("" : "+r"(d[i][0]), "+r"(d[i][1]), "+r"(d[i][2]), "+r"(d[i][3]) :: "memory");
    }
}
<#macro accOperands n c><#list 0..<(n/2) as i>"+${c}"(d[${(i/4)?floor}][${i%4}])<#if i_has_next>, </#if></#list></#macro>
<#macro accList n first><#list 0..<(n/2) as i>%${first + i}<#if i_has_next>, </#if></#list></#macro>
<#list wgmmaShapes as w>

// ${w.doc}
__device__ __forceinline__ void ${w.name}(${w.accType} (&d)[${w.n / 8}][4], <#if w.aFromRegs>const u32 (&a)[4]<#else>u64 da</#if>, u64 db, int accumulate) {
    asm volatile("{\n .reg .pred p;\n setp.ne.b32 p, %${w.n / 2 + (w.aFromRegs?then(5, 2))}, 0;\n"
                 " wgmma.mma_async.sync.aligned.m64n${w.n}k${w.k}.${w.dtype}.${w.atype}.${w.btype}"
                 " {<@accList w.n 0/>},"
<#if w.aFromRegs>
                 " {%${w.n / 2}, %${w.n / 2 + 1}, %${w.n / 2 + 2}, %${w.n / 2 + 3}}, %${w.n / 2 + 4}, p${w.immSuffix};\n}\n"
                 : <@accOperands w.n w.accConstraint/>
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(db), "r"(accumulate));
<#else>
                 " %${w.n / 2}, %${w.n / 2 + 1}, p${w.immSuffix};\n}\n"
                 : <@accOperands w.n w.accConstraint/>
                 : "l"(da), "l"(db), "r"(accumulate));
</#if>
}
</#list>
