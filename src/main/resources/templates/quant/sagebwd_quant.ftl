<#include "../common/header.ftl">
<#-- Quantizer of SageBwd (docs/sagebwd.md): one kernel for every operand. Each block of THREADS
     threads turns BLOCK rows of one (head, batch) of a [B, H, N, D] 16-bit tensor (${elemPtx}, any
     strides, D contiguous) into INT8 with one scale (s = absmax / 127, code = rint(x * 127 / absmax)),
     optionally:
       - mean_mode 1 (K): x = K - kmean first (kmean = ksum / nk of the row's head);
       - mean_mode 2 (Q): shift[row] = Q . kmean of the row's kv head (the LSE's smoothing term);
       - out8: the codes row-major [B, H, N, D];
       - out8t: the codes transposed per head [B, H, D, NPad], positions ordered by `order`
         (0: PERM_COLUMNS, 1: PERM_ROWS of spec/SageBwdLayout.java), rows past N as code 0;
       - partner (dO's quantization in the backward, mean_mode 0): delta[row] = rowsum(x * partner)
         (D = rowsum(dO * O)) and the row's FP32 dQ accumulator (zero_rows, [B, H, N, D]) zeroed, so the
         backward needs no separate preparation pass over dO.
     Each variant (mean mode, whole block or the ragged last one, with or without a partner) is its own
     instantiation, so a block runs no selects or mean arithmetic it does not need. -->
<#include "../common/types.ftl">
<#include "../common/ptx.ftl">

constexpr int HEAD_DIM = ${headDim};
constexpr int THREADS = ${threads};
constexpr int BLOCK = ${block};
constexpr int SAGE_INT8_MAX = ${int8Max};
constexpr int PERM_PERIOD = ${permPeriod};
constexpr int CHUNKS_PER_ROW = HEAD_DIM / 8;
constexpr int CHUNKS_PER_THREAD = BLOCK * CHUNKS_PER_ROW / THREADS;
constexpr int ROWS_PER_PASS = THREADS / CHUNKS_PER_ROW;  // chunk i of a thread is row tid / CHUNKS_PER_ROW + i * this
// Shared code rows in 32-bit words: an odd pitch keeps the transposing reads (16 tokens, 2 channel words
// per warp access) to at most 2-way bank conflicts.
constexpr int CODE_WORDS = HEAD_DIM / 4 + 1;
constexpr int POS_GROUPS = BLOCK / 4;                     // 4-position words per channel of the transposed block
constexpr int CHANNEL_GROUPS = HEAD_DIM / 4;              // 4-channel words per token of a code row
constexpr int T_PASSES = POS_GROUPS * CHANNEL_GROUPS / THREADS;
constexpr int ZERO_VECS = BLOCK * HEAD_DIM / 4 / THREADS; // float4 stores per thread zeroing the block's dQ rows
static_assert(BLOCK * CHUNKS_PER_ROW % THREADS == 0 && THREADS % CHUNKS_PER_ROW == 0, "chunk map");
static_assert(THREADS % POS_GROUPS == 0 && POS_GROUPS * CHANNEL_GROUPS % THREADS == 0, "transposed word map");
static_assert(BLOCK * HEAD_DIM / 4 % THREADS == 0 && BLOCK % PERM_PERIOD == 0 && PERM_PERIOD % 4 == 0, "block map");

<#include "../common/int8_quant.ftl">

__device__ __constant__ int SAGEBWD_PERM[2][PERM_PERIOD] = {
    {<#list permColumns as p>${p}<#sep>, </#sep></#list>},
    {<#list permRows as p>${p}<#sep>, </#sep></#list>}};

// The kernel's parameters, gathered for the variants below.
struct SagebwdQuantArgs {
    const u16* __restrict__ src;
    i64 sb, sh, sn;
    int n, group;
    const float* __restrict__ ksum;
    int nk;
    signed char* __restrict__ out8;
    unsigned char* __restrict__ out8t;
    int order;
    float* __restrict__ scale_out;
    float* __restrict__ shift_out;
    int n_pad;
    const u16* __restrict__ partner;
    i64 pb, ph, pn;
    float* __restrict__ delta;
    float* __restrict__ zero_rows;
};

// The block's shared memory, declared once in the kernel (a __shared__ inside the variants would be
// allocated once per instantiation).
struct SagebwdQuantSmem {
    float kmean[HEAD_DIM];
    u32 warp_max[THREADS / 32];
    u32 codes[BLOCK * CODE_WORDS];
};

// The sum of v over the CHUNKS_PER_ROW adjacent lanes that hold one row.
__device__ __forceinline__ float sagebwd_row_sum(float v) {
    #pragma unroll
    for (int off = CHUNKS_PER_ROW / 2; off > 0; off /= 2) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// A thread's raw chunks of one column group: rows row, row + ROWS_PER_PASS, ... of base (rows past n
// load row n - 1 unless the block is FULL), all issued before any is used.
template <bool FULL, int CHUNKS>
__device__ __forceinline__ void sagebwd_load_chunks(u32x4 (&raw)[CHUNKS], const u16* base, i64 sn, int row, int n) {
    const u16* p = base + (i64)row * sn;
    const i64 step = (i64)ROWS_PER_PASS * sn;
    #pragma unroll
    for (int i = 0; i < CHUNKS; ++i) {
        raw[i] = *reinterpret_cast<const u32x4*>(FULL ? p + i * step : base + (i64)min(row + i * ROWS_PER_PASS, n - 1) * sn);
    }
}

// Four 4-byte words (w[e]: four channels of token e) transposed: out[c] holds channel c of tokens 0..3.
__device__ __forceinline__ void sagebwd_transpose4x4(const u32 (&w)[4], u32 (&out)[4]) {
    const u32 lo01 = __byte_perm(w[0], w[1], 0x5140), hi01 = __byte_perm(w[0], w[1], 0x7362);
    const u32 lo23 = __byte_perm(w[2], w[3], 0x5140), hi23 = __byte_perm(w[2], w[3], 0x7362);
    out[0] = __byte_perm(lo01, lo23, 0x5410);
    out[1] = __byte_perm(lo01, lo23, 0x7632);
    out[2] = __byte_perm(hi01, hi23, 0x5410);
    out[3] = __byte_perm(hi01, hi23, 0x7632);
}

// One block of BLOCK rows. MEAN: the kernel's mean_mode; FULL: every row of the block is before n;
// PARTNER: delta and the zeroed dQ rows as well.
template <int MEAN, bool FULL, bool PARTNER>
__device__ __forceinline__ void sagebwd_quant_block(const SagebwdQuantArgs& a, SagebwdQuantSmem& s) {
    const int head = blockIdx.y, batch = blockIdx.z, row0 = blockIdx.x * BLOCK;
    const int tid = threadIdx.x;
    const i64 bh = (i64)batch * gridDim.y + head;
    const int col = (tid % CHUNKS_PER_ROW) * 8;
    const int trow = tid / CHUNKS_PER_ROW;
    // Every load goes out before any is used (rows past n load row n - 1 and count as zeros).
    u32x4 raw[CHUNKS_PER_THREAD];
    sagebwd_load_chunks<FULL>(raw, a.src + batch * a.sb + head * a.sh + col, a.sn, row0 + trow, a.n);
    u32x4 praw[PARTNER ? CHUNKS_PER_THREAD : 1];
    if (PARTNER) {
        sagebwd_load_chunks<FULL>(praw, a.partner + batch * a.pb + head * a.ph + col, a.pn, row0 + trow, a.n);
        float* z = a.zero_rows + (bh * a.n + row0) * HEAD_DIM;
        #pragma unroll
        for (int j = 0; j < ZERO_VECS; ++j) {
            const int v = tid + j * THREADS;
            if (FULL || row0 + v / (HEAD_DIM / 4) < a.n) {
                *reinterpret_cast<float4*>(z + 4 * v) = make_float4(0.f, 0.f, 0.f, 0.f);
            }
        }
    }
    float kmean[8];
    if (MEAN != 0) {
        const int heads = gridDim.y;
        sage_kmean_table(s.kmean, a.ksum + ((i64)batch * (heads / a.group) + head / a.group) * HEAD_DIM, a.nk);
        __syncthreads();
        #pragma unroll
        for (int e = 0; e < 8; ++e) kmean[e] = s.kmean[col + e];
    }
    // Pass 1: the block's absmax (and Q's shift, dO's delta).
    u32 mx = 0;   // |x| bits of FP32 (K), or of two 16-bit elements (the input's own magnitudes)
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
        const int row = row0 + trow + i * ROWS_PER_PASS;
        const bool valid = FULL || row < a.n;
        float x[8];
        sage_unpack(x, raw[i], valid);
        if (MEAN == 1) {
            if (valid) {
                #pragma unroll
                for (int e = 0; e < 8; ++e) x[e] = __fsub_rn(x[e], kmean[e]);
            }
            #pragma unroll
            for (int e = 0; e < 8; ++e) mx = max(mx, (u32)sage_abs_bits(x[e]));
        } else if (valid) {
            // 16-bit floats order by magnitude as unsigned integers once the sign is cleared (NaN above
            // infinity above every finite value), as FP32 does: the pairwise max of the raw halves.
            const u32 w[4] = {raw[i].x, raw[i].y, raw[i].z, raw[i].w};
            #pragma unroll
            for (int e = 0; e < 4; ++e) mx = __vmaxu2(mx, w[e] & 0x7fff7fffu);
        }
        if (MEAN == 2 || PARTNER) {
            float y[8];
            if (PARTNER) sage_unpack(y, praw[i], valid);
            float dot = 0.f;
            #pragma unroll
            for (int e = 0; e < 8; ++e) dot = fmaf(x[e], MEAN == 2 ? kmean[e] : y[e], dot);
            dot = sagebwd_row_sum(dot);
            if (tid % CHUNKS_PER_ROW == 0 && valid) (PARTNER ? a.delta : a.shift_out)[bh * a.n + row] = dot;
        }
    }
    if (MEAN != 1) mx = __float_as_uint(sage_to_float((u16)max(mx & 0xffffu, mx >> 16)));
    mx = __reduce_max_sync(0xffffffffu, mx);
    if (tid % 32 == 0) s.warp_max[tid / 32] = mx;
    __syncthreads();
    #pragma unroll
    for (int w = 0; w < THREADS / 32; ++w) mx = max(mx, s.warp_max[w]);
    float scale, inv;
    sage_int8_scale((int)mx, scale, inv);
    if (tid == 0) a.scale_out[bh * gridDim.x + blockIdx.x] = scale;
    // Pass 2: the codes, from the raw chunks again (cheaper than keeping 8 floats per chunk live).
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
        const int r = trow + i * ROWS_PER_PASS;
        const bool valid = FULL || row0 + r < a.n;
        sage_opaque(raw[i]);
        float x[8];
        sage_unpack(x, raw[i], valid);
        if (MEAN == 1 && valid) {
            #pragma unroll
            for (int e = 0; e < 8; ++e) x[e] = __fsub_rn(x[e], kmean[e]);
        }
        const uint2 codes = sage_int8x8(x, inv);
        if (a.out8 != nullptr && valid) *reinterpret_cast<uint2*>(a.out8 + (bh * a.n + row0 + r) * HEAD_DIM + col) = codes;
        s.codes[r * CODE_WORDS + col / 4] = codes.x;
        s.codes[r * CODE_WORDS + col / 4 + 1] = codes.y;
    }
    if (a.out8t == nullptr) return;
    __syncthreads();
    // Transposed: a thread writes positions 4 pg .. 4 pg + 3 of channels 4 cg .. 4 cg + 3 per pass, the
    // 16 threads of a position run covering one channel's 64 bytes.
    const int pg = tid % POS_GROUPS;
    const int* perm = SAGEBWD_PERM[a.order];
    int token[4];
    #pragma unroll
    for (int e = 0; e < 4; ++e) {
        const int pos = 4 * pg + e;
        token[e] = pos / PERM_PERIOD * PERM_PERIOD + perm[pos % PERM_PERIOD];
    }
    const i64 pitch = a.n_pad;
    const int cg0 = tid / POS_GROUPS;
    unsigned char* dst = a.out8t + (bh * HEAD_DIM + 4 * cg0) * pitch + row0 + 4 * pg;
    #pragma unroll
    for (int j = 0; j < T_PASSES; ++j) {
        const int cg = cg0 + j * (THREADS / POS_GROUPS);
        u32 w[4], out[4];
        #pragma unroll
        for (int e = 0; e < 4; ++e) w[e] = s.codes[token[e] * CODE_WORDS + cg];
        sagebwd_transpose4x4(w, out);
        #pragma unroll
        for (int c = 0; c < 4; ++c) *reinterpret_cast<u32*>(dst + c * pitch) = out[c];
        dst += 4 * (THREADS / POS_GROUPS) * pitch;
    }
}

template <int MEAN, bool PARTNER>
__device__ __forceinline__ void sagebwd_quant_variant(const SagebwdQuantArgs& a, SagebwdQuantSmem& s) {
    if ((int)(blockIdx.x + 1) * BLOCK <= a.n) sagebwd_quant_block<MEAN, true, PARTNER>(a, s);
    else sagebwd_quant_block<MEAN, false, PARTNER>(a, s);
}

extern "C" __global__ void __launch_bounds__(THREADS)
sagebwd_quant(const u16* __restrict__ src, i64 sb, i64 sh, i64 sn, int n, int group,
              const float* __restrict__ ksum, int nk, int mean_mode, signed char* __restrict__ out8,
              unsigned char* __restrict__ out8t, int order, float* __restrict__ scale_out,
              float* __restrict__ shift_out, int n_pad, const u16* __restrict__ partner, i64 pb, i64 ph, i64 pn,
              float* __restrict__ delta, float* __restrict__ zero_rows) {
    __shared__ __align__(16) SagebwdQuantSmem s;
    const SagebwdQuantArgs a{src, sb, sh, sn, n, group, ksum, nk, out8, out8t, order, scale_out, shift_out, n_pad,
                             partner, pb, ph, pn, delta, zero_rows};
    if (partner != nullptr) sagebwd_quant_variant<0, true>(a, s);
    else if (mean_mode == 1) sagebwd_quant_variant<1, false>(a, s);
    else if (mean_mode == 2) sagebwd_quant_variant<2, false>(a, s);
    else sagebwd_quant_variant<0, false>(a, s);
}
