<#-- The int8-fp8 wgmma kernel's loads without a producer warpgroup: one consumer thread issues each
     load at a fixed point of the key loop, right after that block's MMAs are issued, so the wait for
     the slot's release and the issue hide under Q K^T. With the K/V ring of STAGES slots (ring use u
     in slot u % STAGES, released when the use STAGES before it is done):
       - before a tile's key loop (the tail of the tile before it, or the kernel's start): its Q, the K
         of its first STAGES blocks and the V of its first STAGES - 1;
       - at steady block j: the K of block j + STAGES and the V of block j + STAGES - 1.
     Every slot they wait for was released by every consumer warp at the block before, so nothing is
     circular. The K loads run in thread 0 and the V loads in thread 32, so two schedulers share them.
     Without a producer warpgroup a block is its consumer warpgroups alone, and ptxas may give each
     thread 255 registers: the room to hold block j+1's P~ beside block j's P~ V in flight, which lets
     the softmax of one block run while the tensor cores multiply the other (sage2_fwd_wgmma.ftl).
     Needs Sage2Tile and sage2_tile from the kernel. -->

// The K tile of `block` into the slot of ring use `use`, once the use STAGES before it is released.
__device__ __forceinline__ void sage2_load_k(const SagePipeline& pl, const SageTensorMap* tm_k, int use, int block,
                                             int kv_head, int batch) {
    const int s = use % STAGES;
    if (use >= STAGES) sage_mbar_wait(pl.empty_k(s), (u32)(use / STAGES - 1) & 1u);
    sage_mbar_expect_tx(pl.full_k(s), KV_TILE_BYTES);
    #pragma unroll
    for (int cb = 0; cb < QK_COL_BLOCKS; ++cb) {
        sage_tma_load_4d(pl.k_stage(s) + cb * BLOCK_N * QK_ROW_BYTES, tm_k, cb * QK_COL_BLOCK_ELEMS, block * BLOCK_N,
                         kv_head, batch, pl.full_k(s));
    }
}

// The V^T tile of `block` into the slot of ring use `use`, once the use STAGES before it is released.
__device__ __forceinline__ void sage2_load_v(const SagePipeline& pl, const SageTensorMap* tm_v, int use, int block,
                                             int kv_head, int batch) {
    const int s = use % STAGES;
    if (use >= STAGES) sage_mbar_wait(pl.empty_v(s), (u32)(use / STAGES - 1) & 1u);
    sage_mbar_expect_tx(pl.full_v(s), KV_TILE_BYTES);
    sage_tma_load_4d(pl.v_stage(s), tm_v, block * BLOCK_N, 0, kv_head, batch, pl.full_v(s));
}

// The first tile with keys from `tile` on in this block's list (tiles whose rows see no key load
// nothing); its index is `tiles` if there is none.
__device__ __forceinline__ int sage2_next_tile_with_keys(int tile, Sage2Tile& tl, int tiles, int m_blocks, int heads,
                                                         int batches, int nq, int nk) {
    for (; tile < tiles; tile += gridDim.x) {
        tl = sage2_tile(tile, m_blocks, heads, batches, nq, nk);
        if (tl.n_blocks > 0) break;
    }
    return tile;
}

// A tile's loads before its key loop: its Q into slot q_use % Q_SLOTS (once the tile Q_SLOTS before
// released it), the K of its first STAGES blocks and the V of its first STAGES - 1; its first block
// takes ring use `first_use`.
__device__ __forceinline__ void sage2_load_tile_start(const SagePipeline& pl, const SageTensorMap* tm_q,
                                                      const SageTensorMap* tm_k, const SageTensorMap* tm_v,
                                                      const Sage2Tile& tl, int q_use, int first_use, int group) {
    const int slot = q_use % Q_SLOTS;
    if (q_use >= Q_SLOTS) sage_mbar_wait(pl.empty_q(slot), (u32)(q_use / Q_SLOTS - 1) & 1u);
    sage_mbar_expect_tx(pl.full_q(slot), Q_TILE_BYTES);
    #pragma unroll
    for (int cb = 0; cb < QK_COL_BLOCKS; ++cb) {
        sage_tma_load_4d(pl.q_slot(slot) + cb * BLOCK_M * QK_ROW_BYTES, tm_q, cb * QK_COL_BLOCK_ELEMS,
                         tl.m_block * BLOCK_M, tl.head, tl.batch, pl.full_q(slot));
    }
    const int kv_head = tl.head / group;
    for (int b = 0; b < STAGES && b < tl.n_blocks; ++b) {
        sage2_load_k(pl, tm_k, first_use + b, b, kv_head, tl.batch);
        if (b + 1 < STAGES) sage2_load_v(pl, tm_v, first_use + b, b, kv_head, tl.batch);
    }
}
