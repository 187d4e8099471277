<#-- The int8-fp8 wgmma kernel's loads without a producer warpgroup. Two walkers follow the order a
     producer would, each tile after tile: the K walker each tile's Q and then its K blocks, the V
     walker its V blocks. Lane 0 of warp 0 runs the K walker and lane 0 of warp 1 the V walker, so
     two schedulers share the work. Each issues every load whose slot all consumer warps have
     released; the key loop pumps them once per key block, where they also wait for the releases of
     the block before (its slowest warp is a few instructions behind) and so keep STAGES - 1 blocks
     of loads ahead of the consumers, as a producer warp would. The releases they wait for are always
     of earlier blocks, so nothing is circular; a Q slot is released only when a tile's key loop ends,
     so K needs never wait for one (K loads behind the next tile's Q stay for a later pump).
     Without a producer warpgroup a block is its consumer warpgroups alone, and ptxas may give each
     thread 255 registers: the room to hold block j+1's P~ beside block j's P~ V in flight, which lets
     the softmax of one block run while the tensor cores multiply the other (sage2_fwd_wgmma.ftl).
     The walkers' state lives in shared memory and their arguments are kernel parameters, so they
     keep no registers across the key loop. Needs Sage2Tile and sage2_tile from the kernel. -->
struct Sage2Walker {
    int tile;           // the tile being loaded
    int n;              // tiles with keys before it (the K walker's Q slot uses)
    int block;          // its next block (-1: the tile's Q, K walker only)
    int uses;           // loads issued into the ring so far (across tiles)
    Sage2Tile tl;       // the tile's place and key blocks
    int kv_head;        // the K/V head of its query head
};
struct Sage2LoadState {
    Sage2Walker k, v;
    int tiles, m_blocks;
};

struct Sage2Loads {
    Sage2LoadState* st;  // in shared memory
    const SagePipeline& pl;
    const SageTensorMap *tm_q, *tm_k, *tm_v;
    int heads, batches, nq, nk, group;

    __device__ __forceinline__ void start_tile(Sage2Walker& w, int first_block) const {
        w.block = first_block;
        if (w.tile < st->tiles) {
            w.tl = sage2_tile(w.tile, st->m_blocks, heads, batches, nq, nk);
            w.kv_head = w.tl.head / group;
        }
    }
    __device__ __forceinline__ void next_tile(Sage2Walker& w, int first_block) const {
        w.tile += gridDim.x;
        start_tile(w, first_block);
    }
    // Thread 0, once: both walkers start at this block's first tile and issue what the free slots take
    // (the first tile's Q and STAGES blocks of K/V).
    __device__ __forceinline__ void init(int tiles, int m_blocks) const {
        st->tiles = tiles;
        st->m_blocks = m_blocks;
        Sage2Walker w;
        w.tile = blockIdx.x;
        w.n = 0;
        w.uses = 0;
        start_tile(w, -1);
        st->k = w;
        w.block = 0;
        st->v = w;
        pump_k(-1, -1);
        pump_v(-1);
    }
    // The K walker (Q, then K): issues while the slots are free, and waits for the releases up to the
    // K of ring use need_k and the Q of the need_q-th tile with keys (-1: none). Tiles whose rows see no
    // key load nothing.
    __device__ __forceinline__ void pump_k(int need_k, int need_q) const {
        Sage2Walker w = st->k;
        const int tiles = st->tiles;
        while (w.tile < tiles) {
            if (w.tl.n_blocks == 0) {
                next_tile(w, -1);
                continue;
            }
            if (w.block < 0) {
                const int slot = w.n % Q_SLOTS;
                if (w.n >= Q_SLOTS) {
                    const u32 bar = pl.empty_q(slot), parity = (u32)(w.n / Q_SLOTS - 1) & 1u;
                    if (!sage_mbar_test(bar, parity)) {
                        if (w.n > need_q) break;
                        sage_mbar_wait(bar, parity);
                    }
                }
                sage_mbar_expect_tx(pl.full_q(slot), Q_TILE_BYTES);
                #pragma unroll
                for (int cb = 0; cb < QK_COL_BLOCKS; ++cb) {
                    sage_tma_load_4d(pl.q_slot(slot) + cb * BLOCK_M * QK_ROW_BYTES, tm_q, cb * QK_COL_BLOCK_ELEMS,
                                     w.tl.m_block * BLOCK_M, w.tl.head, w.tl.batch, pl.full_q(slot));
                }
                w.block = 0;
                ++w.n;
            } else {
                const int s = w.uses % STAGES;
                if (w.uses >= STAGES) {
                    const u32 bar = pl.empty_k(s), parity = (u32)(w.uses / STAGES - 1) & 1u;
                    if (!sage_mbar_test(bar, parity)) {
                        if (w.uses > need_k) break;
                        sage_mbar_wait(bar, parity);
                    }
                }
                sage_mbar_expect_tx(pl.full_k(s), KV_TILE_BYTES);
                #pragma unroll
                for (int cb = 0; cb < QK_COL_BLOCKS; ++cb) {
                    sage_tma_load_4d(pl.k_stage(s) + cb * BLOCK_N * QK_ROW_BYTES, tm_k, cb * QK_COL_BLOCK_ELEMS,
                                     w.block * BLOCK_N, w.kv_head, w.tl.batch, pl.full_k(s));
                }
                ++w.uses;
                ++w.block;
            }
            if (w.block == w.tl.n_blocks) next_tile(w, -1);
        }
        st->k = w;
    }
    // The V walker: issues while the slots are free, and waits for the releases up to the V of ring
    // use need_v (-1: none).
    __device__ __forceinline__ void pump_v(int need_v) const {
        Sage2Walker w = st->v;
        const int tiles = st->tiles;
        while (w.tile < tiles) {
            if (w.block < w.tl.n_blocks) {
                const int s = w.uses % STAGES;
                if (w.uses >= STAGES) {
                    const u32 bar = pl.empty_v(s), parity = (u32)(w.uses / STAGES - 1) & 1u;
                    if (!sage_mbar_test(bar, parity)) {
                        if (w.uses > need_v) break;
                        sage_mbar_wait(bar, parity);
                    }
                }
                sage_mbar_expect_tx(pl.full_v(s), KV_TILE_BYTES);
                sage_tma_load_4d(pl.v_stage(s), tm_v, w.block * BLOCK_N, 0, w.kv_head, w.tl.batch, pl.full_v(s));
                ++w.uses;
                ++w.block;
            }
            if (w.block >= w.tl.n_blocks) next_tile(w, 0);
        }
        st->v = w;
    }
    // Both walkers, each in its own warp: the K walker in lane 0 of warp 0, the V walker in lane 0 of warp 1.
    __device__ __forceinline__ void pump(int tid, int need_k, int need_v, int need_q) const {
        if (tid == 0) pump_k(need_k, need_q);
        if (tid == 32) pump_v(need_v);
    }
};
