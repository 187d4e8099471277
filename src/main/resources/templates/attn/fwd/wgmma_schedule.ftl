<#-- The persistent schedule of the wgmma forward kernels (wgmma_pipeline.ftl's consumers): a consumer's
     place in the K/V ring, the pingpong turns of two consumer warpgroups and the query tiles a block
     walks. Needs BLOCK_M, BLOCK_N, STAGES, CONSUMERS and CAUSAL from the kernel. -->

// A consumer's place in the K/V ring: the stage a block uses and the parity of its barriers' phase
// (the producer walks the same sequence). Advanced by compare-and-reset, not it % STAGES.
struct SageRing {
    u32 stage, phase;
    __device__ __forceinline__ void advance() {
        if (++stage == STAGES) { stage = 0; phase ^= 1u; }
    }
};

constexpr bool PINGPONG = ${pingpong?c};  // FwdKernelPlan.pingpong(): non-causal only
// Pingpong between the two consumer warpgroups (FlashAttention-3's schedule): a warpgroup issues
// its MMAs only in its turn (named barrier 2 + consumer) and then hands the turn over, so the
// tensor cores take one warpgroup's Q K^T and P~ V while the other runs its softmax, instead of
// both competing for them and then for the special-function units at the same time. Both
// warpgroups issue at the same points of the same tiles, so turns always pair up; consumer 1
// starts by handing consumer 0 the first turn (its last hand-over is left unclaimed at exit).
__device__ __forceinline__ void sage_turn_wait(int consumer) {
    if (PINGPONG) asm volatile("bar.sync %0, %1;\n" :: "r"(2 + consumer), "n"(CONSUMERS * 128) : "memory");
}
__device__ __forceinline__ void sage_turn_pass(int consumer) {
    if (PINGPONG) asm volatile("bar.arrive %0, %1;\n" :: "r"(3 - consumer), "n"(CONSUMERS * 128) : "memory");
}

// One query tile of the persistent schedule. Block b takes tiles b, b + gridDim.x, ...; tiles run
// head by head with the query block fastest, so the resident blocks share a few heads' K/V in L2
// (heaviest-first across all heads kept every head's K/V live at once and ran slower). Causal tiles
// of a head run heaviest (last query block) first.
struct SageTile {
    int m_block, head, batch, n_blocks;
};
__device__ __forceinline__ SageTile sage_tile(int t, int m_blocks, int heads, int batches, int nq, int nk) {
    SageTile tile;
    const int hb = t / m_blocks;
    tile.m_block = CAUSAL ? m_blocks - 1 - t % m_blocks : t % m_blocks;
    tile.head = hb % heads;
    tile.batch = hb / heads;
    const int row0 = tile.m_block * BLOCK_M;
    const int n_end = CAUSAL ? min(nk, row0 + BLOCK_M + nk - nq) : nk;
    tile.n_blocks = n_end > 0 ? (n_end + BLOCK_N - 1) / BLOCK_N : 0;
    return tile;
}
