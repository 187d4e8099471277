<#-- The TMA/mbarrier pipeline shared by the wgmma forward kernels. Shared memory, from a
     1024-byte-aligned base: the Q tile, STAGES K tiles, STAGES V tiles, then the barriers.
     Q and K tiles are column blocks of [rows][QK_ROW_BYTES] (one TMA box each, swizzled);
     V tiles are [BLOCK_N][V_ROW_BYTES] column blocks, or with V_TRANSPOSED one [HEAD_DIM] x
     V_TILE_BYTES / HEAD_DIM-byte block of V^T (8-bit V is stored transposed in global memory), with
     ONES_ROWS followed by ROW_SUM_COLUMNS rows of ones (V_STAGE_BYTES per stage).
     Warpgroup 0 produces: one thread loads each tile's Q and streams K/V blocks through the ring;
     every Q slot and ring slot has full (TMA landed) and empty (every consumer warp done) barriers.
     Persistent kernels keep two Q slots, so the next tile's Q and K/V load while the consumers
     finish the current one (one when two blocks share the SM). -->
constexpr int STAGES = ${stages};
constexpr int CONSUMERS = ${consumerWarpgroups};
constexpr int Q_SLOTS = ${qSlots};             // 2: a persistent block loads the next tile's Q early (1 when
                                               // that would keep a second block off the SM)
constexpr u32 Q_TILE_BYTES = ${qTileBytes};
constexpr u32 KV_TILE_BYTES = ${kvTileBytes};
constexpr u32 V_TILE_BYTES = ${vTileBytes};       // what TMA writes of a V stage
constexpr u32 V_STAGE_BYTES = ${vStageBytes};     // the V tile, then (int8-fp8) its ones rows and padding
constexpr u32 QK_ROW_BYTES = ${qkRowBytes};
constexpr int QK_COL_BLOCKS = ${qkColBlocks};
constexpr int QK_COL_BLOCK_ELEMS = ${qkColBlockElems};
constexpr bool V_TRANSPOSED = ${vTransposed?c};

struct SagePipeline {
    u32 q, k, v, bars;
    __device__ __forceinline__ u32 q_slot(int slot) const { return q + slot * Q_TILE_BYTES; }
    __device__ __forceinline__ u32 full_q(int slot) const { return bars + 8 * slot; }
    __device__ __forceinline__ u32 empty_q(int slot) const { return bars + 8 * (2 + slot); }
    __device__ __forceinline__ u32 full_k(int s) const { return bars + 8 * (4 + s); }
    __device__ __forceinline__ u32 full_v(int s) const { return bars + 8 * (4 + STAGES + s); }
    __device__ __forceinline__ u32 empty_k(int s) const { return bars + 8 * (4 + 2 * STAGES + s); }
    __device__ __forceinline__ u32 empty_v(int s) const { return bars + 8 * (4 + 3 * STAGES + s); }
    __device__ __forceinline__ u32 k_stage(int s) const { return k + s * KV_TILE_BYTES; }
    __device__ __forceinline__ u32 v_stage(int s) const { return v + s * V_STAGE_BYTES; }
};

// Lays out shared memory from the aligned base; thread 0 initialises the barriers, then the block syncs.
__device__ __forceinline__ SagePipeline sage_pipeline_init(u32 base) {
    SagePipeline pl;
    pl.q = base;
    pl.k = pl.q + Q_SLOTS * Q_TILE_BYTES;
    pl.v = pl.k + STAGES * KV_TILE_BYTES;
    pl.bars = pl.v + STAGES * V_STAGE_BYTES;
<#if onesRows>
    // The ones rows after every V^T stage (TMA never writes them): P~ V's last n8 tile is then P~'s
    // row sums. Generic-proxy stores, made visible to wgmma's async-proxy reads before the sync.
    for (u32 i = 4 * threadIdx.x; i < STAGES * (V_STAGE_BYTES - V_TILE_BYTES); i += 4 * blockDim.x) {
        const u32 s = i / (V_STAGE_BYTES - V_TILE_BYTES), off = i % (V_STAGE_BYTES - V_TILE_BYTES);
        asm volatile("st.shared.b32 [%0], %1;\n" :: "r"(pl.v_stage(s) + V_TILE_BYTES + off), "r"(SAGE_E4M3_ONES) : "memory");
    }
    sage_fence_proxy_async();
</#if>
    if (threadIdx.x == 0) {
        for (int slot = 0; slot < 2; ++slot) {
            sage_mbar_init(pl.full_q(slot), 1);
            sage_mbar_init(pl.empty_q(slot), 4 * CONSUMERS);
        }
        for (int s = 0; s < STAGES; ++s) {
            sage_mbar_init(pl.full_k(s), 1);
            sage_mbar_init(pl.full_v(s), 1);
            sage_mbar_init(pl.empty_k(s), 4 * CONSUMERS);
            sage_mbar_init(pl.empty_v(s), 4 * CONSUMERS);
        }
        sage_mbar_init_fence();
    }
    __syncthreads();
    return pl;
}

__device__ __forceinline__ void sage_prefetch_maps(const SageTensorMap* tm_q, const SageTensorMap* tm_k,
                                                   const SageTensorMap* tm_v) {
    sage_tma_prefetch(tm_q);
    sage_tma_prefetch(tm_k);
    sage_tma_prefetch(tm_v);
}

// The producer thread's work for one query tile: its Q rows [row0, row0 + BLOCK_M) into Q slot
// `slot` (used `slot_use` times before: it waits until the consumers released the previous use),
// then K/V blocks 0..n_blocks-1, block by block into ring slot it % STAGES once every consumer warp
// released that slot's previous block. `it` counts ring uses across the tiles of a block.
__device__ __forceinline__ void sage_produce_tile(const SagePipeline& pl, const SageTensorMap* tm_q,
                                                  const SageTensorMap* tm_k, const SageTensorMap* tm_v, int slot,
                                                  int slot_use, int row0, int head, int kv_head, int batch,
                                                  int n_blocks, int& it) {
    if (slot_use > 0) sage_mbar_wait(pl.empty_q(slot), (slot_use - 1) & 1);
    sage_mbar_expect_tx(pl.full_q(slot), Q_TILE_BYTES);
    #pragma unroll
    for (int cb = 0; cb < QK_COL_BLOCKS; ++cb) {
        sage_tma_load_4d(pl.q_slot(slot) + cb * BLOCK_M * QK_ROW_BYTES, tm_q, cb * QK_COL_BLOCK_ELEMS, row0, head,
                         batch, pl.full_q(slot));
    }
    for (int j = 0; j < n_blocks; ++j, ++it) {
        const int s = it % STAGES;
        const u32 reuse_parity = ((it / STAGES) - 1) & 1;
        if (it >= STAGES) sage_mbar_wait(pl.empty_k(s), reuse_parity);
        sage_mbar_expect_tx(pl.full_k(s), KV_TILE_BYTES);
        #pragma unroll
        for (int cb = 0; cb < QK_COL_BLOCKS; ++cb) {
            sage_tma_load_4d(pl.k_stage(s) + cb * BLOCK_N * QK_ROW_BYTES, tm_k, cb * QK_COL_BLOCK_ELEMS,
                             j * BLOCK_N, kv_head, batch, pl.full_k(s));
        }
        if (it >= STAGES) sage_mbar_wait(pl.empty_v(s), reuse_parity);
        sage_mbar_expect_tx(pl.full_v(s), V_TILE_BYTES);
        if (V_TRANSPOSED) {
            sage_tma_load_4d(pl.v_stage(s), tm_v, j * BLOCK_N, 0, kv_head, batch, pl.full_v(s));
        } else {
            #pragma unroll
            for (int cb = 0; cb < QK_COL_BLOCKS; ++cb) {
                sage_tma_load_4d(pl.v_stage(s) + cb * BLOCK_N * QK_ROW_BYTES, tm_v, cb * QK_COL_BLOCK_ELEMS,
                                 j * BLOCK_N, kv_head, batch, pl.full_v(s));
            }
        }
    }
}

// Tile start on the swizzle pattern's repeat (the plan reserves the slack in dynamic shared memory).
__device__ __forceinline__ u32 sage_aligned_smem_base(const unsigned char* smem_raw) {
    const u32 raw = sage_smem_addr(smem_raw);
    return (raw + ${swizzleAlign - 1}) & ~${swizzleAlign - 1}u;
}

// Every consumer warpgroup has finished with Q (so its tile can stage the output).
__device__ __forceinline__ void sage_consumers_sync() {
    asm volatile("bar.sync 1, %0;\n" :: "n"(CONSUMERS * 128) : "memory");
}
