<#include "../common/header.ftl">
<#-- Quantizers of the int8-fp8 mode, exactly as docs/int8-fp8-quantization.md specifies: one
     module with four kernels, for one input type (${elemPtx}) and head dim (${headDim}). Inputs
     are [B, H, N, D] with any element strides (D contiguous); every kernel handles TOKENS tokens
     of one (head, batch) per block of THREADS threads, each thread 16-byte chunks of 8 elements.
       1. sage2_kv_stats: per-channel sums of K (-> kmean) and abs-max of V, by atomics
          (STATS_TILES * TOKENS tokens per block).
       2. sage2_quant_q: INT8 of Q rotated, one scale per row, and qshift = Q . kmean.
       3. sage2_quant_k: INT8 of (K - kmean) rotated, scales per (K scale block, (token % 8) / 2), one
          warp per scale group.
       4. sage2_quant_v: FP8 V^T per channel, tokens permuted inside each 16, transposed in registers.
     Without LSE the forward runs them as two launches instead: sage2_stats_and_q (1 beside 2 without
     qshift) and sage2_quant_kv (3 beside 4). -->
<#include "../common/types.ftl">
<#include "../common/ptx.ftl">
<#include "../common/fp8.ftl">
<#include "../common/int8_fp8_layout.ftl">

constexpr int HEAD_DIM = ${headDim};
constexpr int THREADS = ${threads};
constexpr int TOKENS = ${tokens};
constexpr int CHUNKS_PER_ROW = HEAD_DIM / 8;
constexpr int CHUNKS_PER_THREAD = TOKENS * CHUNKS_PER_ROW / THREADS;
constexpr int STATS_TILES = ${statsTiles};   // kv_stats blocks cover STATS_TILES * TOKENS tokens

<#include "../common/int8_quant.ftl">
<#include "../common/qk_rotation.ftl">

// Each quantizer is a per-tile function (tile bx of (head, batch) among `heads`) that its own kernel
// calls with the block's coordinates; the merged kernels below interleave two of them in one grid.
__device__ __forceinline__ void sage2_kv_stats_tile(int bx, int head, int batch, int heads, const u16* __restrict__ k,
                                                    const u16* __restrict__ v, i64 k_sb, i64 k_sh, i64 k_sn, i64 v_sb,
                                                    i64 v_sh, i64 v_sn, int nk, float* __restrict__ ksum,
                                                    int* __restrict__ vmax_bits) {
    __shared__ float s_sum[HEAD_DIM];
    __shared__ int s_max[HEAD_DIM];
    for (int c = threadIdx.x; c < HEAD_DIM; c += THREADS) { s_sum[c] = 0.f; s_max[c] = 0; }
    __syncthreads();
    const u16* kp = k + batch * k_sb + head * k_sh;
    const u16* vp = v + batch * v_sb + head * v_sh;
    float sum[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
    int mx[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    // THREADS is a multiple of CHUNKS_PER_ROW, so every chunk a thread visits has the same columns.
    // Every tile's loads go out before any is used: one memory round trip per block, not one per tile
    // (tiles past nk load row nk - 1 and count as zeros).
    u32x4 rk[STATS_TILES][CHUNKS_PER_THREAD], rv[STATS_TILES][CHUNKS_PER_THREAD];
    #pragma unroll
    for (int tile = 0; tile < STATS_TILES; ++tile) {
        const int row0 = (bx * STATS_TILES + tile) * TOKENS;
        #pragma unroll
        for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
            rk[tile][i] = sage_load_raw(kp, k_sn, row0, nk, threadIdx.x + i * THREADS);
            rv[tile][i] = sage_load_raw(vp, v_sn, row0, nk, threadIdx.x + i * THREADS);
        }
    }
    #pragma unroll
    for (int tile = 0; tile < STATS_TILES; ++tile) {
        const int row0 = (bx * STATS_TILES + tile) * TOKENS;
        #pragma unroll
        for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
            const bool valid = sage_chunk_valid(row0, nk, threadIdx.x + i * THREADS);
            float x[8];
            sage_unpack(x, rk[tile][i], valid);
            #pragma unroll
            for (int e = 0; e < 8; ++e) sum[e] += x[e];
            sage_unpack(x, rv[tile][i], valid);
            #pragma unroll
            for (int e = 0; e < 8; ++e) mx[e] = max(mx[e], sage_abs_bits(x[e]));
        }
    }
    const int col = (threadIdx.x % CHUNKS_PER_ROW) * 8;
    #pragma unroll
    for (int e = 0; e < 8; ++e) { atomicAdd(&s_sum[col + e], sum[e]); atomicMax(&s_max[col + e], mx[e]); }
    __syncthreads();
    const i64 hd = ((i64)batch * heads + head) * HEAD_DIM;
    for (int c = threadIdx.x; c < HEAD_DIM; c += THREADS) {
        atomicAdd(&ksum[hd + c], s_sum[c]);
        atomicMax(&vmax_bits[hd + c], s_max[c]);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
sage2_kv_stats(const u16* __restrict__ k, const u16* __restrict__ v, i64 k_sb, i64 k_sh, i64 k_sn,
               i64 v_sb, i64 v_sh, i64 v_sn, int nk, float* __restrict__ ksum, int* __restrict__ vmax_bits) {
    sage2_kv_stats_tile(blockIdx.x, blockIdx.y, blockIdx.z, gridDim.y, k, v, k_sb, k_sh, k_sn, v_sb, v_sh, v_sn, nk,
                        ksum, vmax_bits);
}

// with_shift: also qshift = Q . kmean (only the LSE needs it; without it the tile does not read ksum,
// so it may run before or beside kv_stats).
__device__ __forceinline__ void sage2_quant_q_tile(int bx, int head, int batch, int heads, const u16* __restrict__ q,
                                                   i64 q_sb, i64 q_sh, i64 q_sn, int nq, int group, int nk,
                                                   const float* __restrict__ ksum, signed char* __restrict__ q8,
                                                   float* __restrict__ q_scale, float* __restrict__ q_shift,
                                                   int q_groups, bool with_shift) {
    static_assert(Q_GROUPS_PER_SLICE == Q_SCALE_ROWS, "one Q scale per row: a row's lanes find it alone");
    __shared__ float s_kmean[HEAD_DIM];
    const int row0 = bx * TOKENS;
    // The tile's loads go out first: the kmean table's own load and the barrier then wait alongside
    // them instead of before them.
    const u16* qp = q + batch * q_sb + head * q_sh;
    u32x4 raw[CHUNKS_PER_THREAD];
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) raw[i] = sage_load_raw(qp, q_sn, row0, nq, threadIdx.x + i * THREADS);
    if (with_shift) {
        sage_kmean_table(s_kmean, ksum + ((i64)batch * (heads / group) + head / group) * HEAD_DIM, nk);
        __syncthreads();
    }
    const int chunk = threadIdx.x % CHUNKS_PER_ROW;
    const int col = chunk * 8;
    const u32 signs = sage2_rotation_signs(chunk);
    float kmean[8];
    #pragma unroll
    for (int e = 0; e < 8; ++e) kmean[e] = with_shift ? s_kmean[col + e] : 0.f;
    const i64 gbase = ((i64)batch * heads + head) * q_groups + sage2_q_group(row0);
    // One pass: a row's scale is its own abs-max, which the CHUNKS_PER_ROW consecutive lanes holding
    // the row reduce among themselves (xor shuffles leave the same bits in each), so every lane
    // quantizes its 8 values at once: no shared table, no second pass.
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
        const int c = threadIdx.x + i * THREADS;
        const int r = c / CHUNKS_PER_ROW;
        float x[8];
        sage_unpack(x, raw[i], sage_chunk_valid(row0, nq, c));
        float dot = 0.f;
        #pragma unroll
        for (int e = 0; e < 8; ++e) {
            if (with_shift) dot = fmaf(x[e], kmean[e], dot);
        }
        sage2_rotate(x, chunk, signs);  // qshift above is of Q itself
        int mx = 0;
        #pragma unroll
        for (int e = 0; e < 8; ++e) mx = max(mx, sage_abs_bits(x[e]));
        #pragma unroll
        for (int off = CHUNKS_PER_ROW / 2; off > 0; off /= 2) {
            if (with_shift) dot += __shfl_xor_sync(0xffffffffu, dot, off);
            mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, off));
        }
        float scale, inv;
        sage_int8_scale(mx, scale, inv);  // rows past nq: all zeros, scale 0
        if (chunk == 0) {
            if (with_shift && row0 + r < nq) q_shift[((i64)batch * heads + head) * nq + row0 + r] = dot;
            // Scales of every row whose 16-row slice starts before nq; the rotation's R R^T = ROTATION_BLOCK I.
            if (row0 + r / Q_SCALE_ROWS * Q_SCALE_ROWS < nq) {
                q_scale[gbase + sage2_q_group(r)] = __fmul_rn(scale, SAGE2_ROTATION_UNSCALE);
            }
        }
        if (row0 + r < nq) {
            signed char* dst = q8 + (((i64)batch * heads + head) * nq + row0 + r) * HEAD_DIM + col;
            *reinterpret_cast<uint2*>(dst) = sage_int8x8(x, inv);
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
sage2_quant_q(const u16* __restrict__ q, i64 q_sb, i64 q_sh, i64 q_sn, int nq, int group, int nk,
              const float* __restrict__ ksum, signed char* __restrict__ q8, float* __restrict__ q_scale,
              float* __restrict__ q_shift, int q_groups) {
    sage2_quant_q_tile(blockIdx.x, blockIdx.y, blockIdx.z, gridDim.y, q, q_sb, q_sh, q_sn, nq, group, nk, ksum, q8,
                       q_scale, q_shift, q_groups, true);
}

// A raw K chunk as quant_k quantizes it: smoothed (minus kmean) and rotated; zeros past nk.
__device__ __forceinline__ void sage2_k_chunk(float (&x)[8], const u32x4& raw, bool valid, const float (&kmean)[8],
                                              int chunk, u32 signs) {
    sage_unpack(x, raw, valid);
    #pragma unroll
    for (int e = 0; e < 8; ++e) x[e] = valid ? __fsub_rn(x[e], kmean[e]) : 0.f;
    sage2_rotate(x, chunk, signs);
}

__device__ __forceinline__ void sage2_quant_k_tile(int bx, int head, int batch, int heads, const u16* __restrict__ k,
                                                   i64 k_sb, i64 k_sh, i64 k_sn, int nk, const float* __restrict__ ksum,
                                                   signed char* __restrict__ k8, float* __restrict__ k_scale,
                                                   int k_groups) {
    static_assert(TOKENS == K_SCALE_TOKENS && THREADS == 32 * K_GROUPS_PER_BLOCK
                  && CHUNKS_PER_THREAD * 32 * K_GROUPS_PER_BLOCK == TOKENS * CHUNKS_PER_ROW,
                  "one warp per K scale group of the tile");
    __shared__ float s_kmean[HEAD_DIM];
    const int row0 = bx * TOKENS;
    const i64 hd = ((i64)batch * heads + head);
    // Warp t holds exactly group t of the tile's K scale block, the 16 tokens n with (n % 8) / 2 == t:
    // its lanes run along those tokens' rows (CHUNKS_PER_ROW consecutive lanes per row, so loads and
    // stores stay whole rows), and the group's abs-max is a warp reduction. One pass: no shared
    // table, no barrier after the kmean table's.
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    int rows[CHUNKS_PER_THREAD];  // the tile's token of each of this lane's chunks
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
        rows[i] = sage2_k_group_token(warp, (lane + 32 * i) / CHUNKS_PER_ROW);
    }
    // The tile's loads first (see sage2_quant_q).
    const u16* kp = k + batch * k_sb + head * k_sh;
    const int chunk = lane % CHUNKS_PER_ROW;
    u32x4 raw[CHUNKS_PER_THREAD];  // kept raw (half the registers of floats) and unpacked twice
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) raw[i] = sage_load_raw(kp, k_sn, row0, nk, rows[i] * CHUNKS_PER_ROW + chunk);
    sage_kmean_table(s_kmean, ksum + hd * HEAD_DIM, nk);
    __syncthreads();
    const int col = chunk * 8;
    const u32 signs = sage2_rotation_signs(chunk);
    float kmean[8];
    #pragma unroll
    for (int e = 0; e < 8; ++e) kmean[e] = s_kmean[col + e];
    int mx = 0;
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
        const bool valid = row0 + rows[i] < nk;
        float x[8];
        sage2_k_chunk(x, raw[i], valid, kmean, chunk, signs);
        #pragma unroll
        for (int e = 0; e < 8; ++e) mx = max(mx, sage_abs_bits(x[e]));
    }
    #pragma unroll
    for (int off = 16; off > 0; off /= 2) mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    float scale, inv;
    sage_int8_scale(mx, scale, inv);  // a group with no tokens: 0
    if (lane == 0 && row0 < nk) k_scale[hd * k_groups + sage2_k_group(row0) + warp] = scale;
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {  // the chunks again, now with the group's scale
        const bool valid = row0 + rows[i] < nk;
        float x[8];
        sage_opaque(raw[i]);
        sage2_k_chunk(x, raw[i], valid, kmean, chunk, signs);
        if (!valid) continue;
        signed char* dst = k8 + (hd * nk + row0 + rows[i]) * HEAD_DIM + col;
        *reinterpret_cast<uint2*>(dst) = sage_int8x8(x, inv);
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
sage2_quant_k(const u16* __restrict__ k, i64 k_sb, i64 k_sh, i64 k_sn, int nk, const float* __restrict__ ksum,
              signed char* __restrict__ k8, float* __restrict__ k_scale, int k_groups) {
    sage2_quant_k_tile(blockIdx.x, blockIdx.y, blockIdx.z, gridDim.y, k, k_sb, k_sh, k_sn, nk, ksum, k8, k_scale,
                       k_groups);
}

// Position p of every V_PERM_PERIOD tokens of V^T holds token SAGE_V_PERM[p] of them.
__device__ __constant__ int SAGE_V_PERM[V_PERM_PERIOD] = {<#list vPerm as p>${p}<#sep>, </#sep></#list>};

// V^T straight from registers: every lane handles the four positions 4q..4q+3 of one 16-token group
// (tokens SAGE_V_PERM[4q..4q+3]: {2q, 2q+1, 2q+8, 2q+9}) for 8 channels, and writes one 4-byte
// word per channel. A warp's 16 lanes of one channel chunk cover the block's 64 positions (one
// contiguous 64-byte run per channel); its other 16 lanes take the neighbouring chunk, so each load
// instruction reads whole 32-byte sectors.
constexpr int V_GROUPS = TOKENS / V_PERM_PERIOD;                       // 16-token groups per block
constexpr int V_QUADS = V_PERM_PERIOD / 4;                              // 4-position quads per group
constexpr int V_LANES_PER_CHUNK = V_GROUPS * V_QUADS;
constexpr int V_UNITS_PER_THREAD = V_LANES_PER_CHUNK * CHUNKS_PER_ROW / THREADS;
static_assert(V_LANES_PER_CHUNK == 16 && V_UNITS_PER_THREAD >= 1, "V quantizer lane map wants 64-token blocks");

__device__ __forceinline__ void sage2_quant_v_tile(int bx, int head, int batch, int heads, const u16* __restrict__ v,
                                                   i64 v_sb, i64 v_sh, i64 v_sn, int nk, int nk_pad,
                                                   const int* __restrict__ vmax_bits, unsigned char* __restrict__ v8t,
                                                   float* __restrict__ v_scale) {
    __shared__ float s_inv[HEAD_DIM];
    const int row0 = bx * TOKENS;
    const i64 hd = ((i64)batch * heads + head);
    const u16* vp = v + batch * v_sb + head * v_sh;
    const int quad = threadIdx.x % V_QUADS;
    const int grp = (threadIdx.x / V_QUADS) % V_GROUPS;
    const int p0 = row0 + grp * V_PERM_PERIOD + 4 * quad;  // first V^T position this lane writes
    int tok[4];
    #pragma unroll
    for (int k = 0; k < 4; ++k) tok[k] = SAGE_V_PERM[4 * quad + k];
    // Every load of the tile goes out before the scale table's load and the barrier (see sage2_quant_q).
    u32x4 raw[V_UNITS_PER_THREAD][4];
    #pragma unroll
    for (int u = 0; u < V_UNITS_PER_THREAD; ++u) {
        const int chunk = threadIdx.x / V_LANES_PER_CHUNK + u * (THREADS / V_LANES_PER_CHUNK);
        #pragma unroll
        for (int k = 0; k < 4; ++k) {
            // Chunk c is (row c / CHUNKS_PER_ROW, column chunk c % CHUNKS_PER_ROW).
            raw[u][k] = sage_load_raw(vp, v_sn, row0, nk, (grp * V_PERM_PERIOD + tok[k]) * CHUNKS_PER_ROW + chunk);
        }
    }
    // 448 / amax per channel, once per block (0 for a zero or non-finite channel: codes 0).
    for (int ch = threadIdx.x; ch < HEAD_DIM; ch += THREADS) {
        const int bits = vmax_bits[hd * HEAD_DIM + ch];
        const float amax = __int_as_float(bits);
        const bool finite = bits < 0x7f800000;
        s_inv[ch] = finite && bits != 0 ? __fdiv_rn(SAGE_FP8_MAX, amax) : 0.f;
        if (bx == 0) v_scale[hd * HEAD_DIM + ch] = finite ? __fdiv_rn(amax, SAGE_FP8_MAX) : __int_as_float(0x7fc00000);
    }
    __syncthreads();
    #pragma unroll
    for (int u = 0; u < V_UNITS_PER_THREAD; ++u) {
        const int chunk = threadIdx.x / V_LANES_PER_CHUNK + u * (THREADS / V_LANES_PER_CHUNK);
        const int col = chunk * 8;
        float inv[8];
        #pragma unroll
        for (int e = 0; e < 8; ++e) inv[e] = s_inv[col + e];
        float x[4][8];
        #pragma unroll
        for (int k = 0; k < 4; ++k) sage_unpack(x[k], raw[u][k], row0 + grp * V_PERM_PERIOD + tok[k] < nk);
        if (p0 < nk_pad) {
            #pragma unroll
            for (int e = 0; e < 8; ++e) {
                *reinterpret_cast<u32*>(v8t + (hd * HEAD_DIM + col + e) * nk_pad + p0) =
                        sage_fp8x4(sage_scaled(x[0][e], inv[e]), sage_scaled(x[1][e], inv[e]),
                                   sage_scaled(x[2][e], inv[e]), sage_scaled(x[3][e], inv[e]));
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(THREADS)
sage2_quant_v(const u16* __restrict__ v, i64 v_sb, i64 v_sh, i64 v_sn, int nk, int nk_pad,
              const int* __restrict__ vmax_bits, unsigned char* __restrict__ v8t, float* __restrict__ v_scale) {
    sage2_quant_v_tile(blockIdx.x, blockIdx.y, blockIdx.z, gridDim.y, v, v_sb, v_sh, v_sn, nk, nk_pad, vmax_bits, v8t,
                       v_scale);
}

// Two quantizers in one grid of a_tiles + b_tiles blocks, interleaved in proportion (block i is of
// kind A when floor((i + 1) * A / (A + B)) > floor(i * A / (A + B))), so each SM holds both kinds and
// one kind's memory waits overlap the other's. Tiles of a kind run x fastest, then head, then batch.
struct Sage2Split {
    bool a;
    int x, head, batch;
};
__device__ __forceinline__ Sage2Split sage2_split(int a_tiles, int a_x, int a_heads, int b_tiles, int b_x, int b_heads) {
    const long long i = blockIdx.x, total = (long long)a_tiles + b_tiles;
    const int a_before = (int)(i * a_tiles / total);
    Sage2Split t;
    t.a = (int)((i + 1) * a_tiles / total) > a_before;
    const int idx = t.a ? a_before : (int)i - a_before;
    const int x = t.a ? a_x : b_x, heads = t.a ? a_heads : b_heads;
    t.x = idx % x;
    t.head = idx / x % heads;
    t.batch = idx / x / heads;
    return t;
}

// kv_stats beside quant_q without qshift (neither reads the other's output): the forward without LSE.
// Parameters: kv_stats's, then quant_q's (its group, nk, ksum and q_shift go unread), then the grid.
extern "C" __global__ void __launch_bounds__(THREADS)
sage2_stats_and_q(const u16* __restrict__ k, const u16* __restrict__ v, i64 k_sb, i64 k_sh, i64 k_sn, i64 v_sb,
                  i64 v_sh, i64 v_sn, int nk, float* __restrict__ ksum, int* __restrict__ vmax_bits,
                  const u16* __restrict__ q, i64 q_sb, i64 q_sh, i64 q_sn, int nq, int group, int q_nk,
                  const float* __restrict__ q_ksum, signed char* __restrict__ q8, float* __restrict__ q_scale,
                  float* __restrict__ q_shift, int q_groups, int stats_x, int hkv, int q_x, int hq, int batches) {
    const Sage2Split t = sage2_split(stats_x * hkv * batches, stats_x, hkv, q_x * hq * batches, q_x, hq);
    if (t.a) {
        sage2_kv_stats_tile(t.x, t.head, t.batch, hkv, k, v, k_sb, k_sh, k_sn, v_sb, v_sh, v_sn, nk, ksum, vmax_bits);
    } else {
        sage2_quant_q_tile(t.x, t.head, t.batch, hq, q, q_sb, q_sh, q_sn, nq, group, q_nk, q_ksum, q8, q_scale, q_shift,
                           q_groups, false);
    }
}

// quant_k beside quant_v (both read kv_stats' output only). Parameters: quant_k's, quant_v's, the grid.
extern "C" __global__ void __launch_bounds__(THREADS)
sage2_quant_kv(const u16* __restrict__ k, i64 k_sb, i64 k_sh, i64 k_sn, int nk, const float* __restrict__ ksum,
               signed char* __restrict__ k8, float* __restrict__ k_scale, int k_groups, const u16* __restrict__ v,
               i64 v_sb, i64 v_sh, i64 v_sn, int v_nk, int nk_pad, const int* __restrict__ vmax_bits,
               unsigned char* __restrict__ v8t, float* __restrict__ v_scale, int x_tiles, int hkv, int batches) {
    const int tiles = x_tiles * hkv * batches;
    const Sage2Split t = sage2_split(tiles, x_tiles, hkv, tiles, x_tiles, hkv);
    if (t.a) {
        sage2_quant_k_tile(t.x, t.head, t.batch, hkv, k, k_sb, k_sh, k_sn, nk, ksum, k8, k_scale, k_groups);
    } else {
        sage2_quant_v_tile(t.x, t.head, t.batch, hkv, v, v_sb, v_sh, v_sn, v_nk, nk_pad, vmax_bits, v8t, v_scale);
    }
}
