<#include "../common/header.ftl">
<#-- Quantizer of SageBwd (docs/sagebwd.md): one kernel for every operand. Each block of THREADS
     threads turns BLOCK rows of one (head, batch) of a [B, H, N, D] 16-bit tensor (${elemPtx}, any
     strides, D contiguous) into INT8 with one scale (s = absmax / 127, code = rint(x * 127 / absmax)),
     optionally:
       - mean_mode 1 (K): x = K - kmean first (kmean = ksum / nk of the row's head);
       - mean_mode 2 (Q): shift[row] = Q . kmean of the row's kv head (the LSE's smoothing term);
       - out8: the codes row-major [B, H, N, D];
       - out8t: the codes transposed per head [B, H, D, NPad], positions ordered by `order`
         (0: PERM_COLUMNS, 1: PERM_ROWS of spec/SageBwdLayout.java), rows past N as code 0. -->
<#include "../common/types.ftl">
<#include "../common/ptx.ftl">

constexpr int HEAD_DIM = ${headDim};
constexpr int THREADS = ${threads};
constexpr int BLOCK = ${block};
constexpr int SAGE_INT8_MAX = ${int8Max};
constexpr int PERM_PERIOD = ${permPeriod};
constexpr int CHUNKS_PER_ROW = HEAD_DIM / 8;
constexpr int CHUNKS_PER_THREAD = BLOCK * CHUNKS_PER_ROW / THREADS;
constexpr int CODE_PITCH = HEAD_DIM + 8;   // shared code rows: 8-byte stores stay aligned, rows 2 banks apart
constexpr int WORDS_T = HEAD_DIM * BLOCK / 4;  // 4-position words of the transposed block
static_assert(BLOCK * CHUNKS_PER_ROW % THREADS == 0 && THREADS % CHUNKS_PER_ROW == 0, "chunk map");

<#include "../common/int8_quant.ftl">

__device__ __constant__ int SAGEBWD_PERM[2][PERM_PERIOD] = {
    {<#list permColumns as p>${p}<#sep>, </#sep></#list>},
    {<#list permRows as p>${p}<#sep>, </#sep></#list>}};

extern "C" __global__ void __launch_bounds__(THREADS)
sagebwd_quant(const u16* __restrict__ src, i64 sb, i64 sh, i64 sn, int n, int group,
              const float* __restrict__ ksum, int nk, int mean_mode, signed char* __restrict__ out8,
              unsigned char* __restrict__ out8t, int order, float* __restrict__ scale_out,
              float* __restrict__ shift_out, int n_pad) {
    __shared__ float s_kmean[HEAD_DIM];
    __shared__ int s_max;
    __shared__ float s_inv;
    __shared__ __align__(16) unsigned char s_codes[BLOCK * CODE_PITCH];
    const int head = blockIdx.y, batch = blockIdx.z, row0 = blockIdx.x * BLOCK;
    const int heads = gridDim.y;
    const i64 bh = (i64)batch * heads + head;
    if (mean_mode != 0) {
        sage_kmean_table(s_kmean, ksum + ((i64)batch * (heads / group) + head / group) * HEAD_DIM, nk);
    }
    if (threadIdx.x == 0) s_max = 0;
    __syncthreads();
    const u16* p = src + batch * sb + head * sh;
    const int col = (threadIdx.x % CHUNKS_PER_ROW) * 8;
    float kmean[8];
    #pragma unroll
    for (int e = 0; e < 8; ++e) kmean[e] = mean_mode != 0 ? s_kmean[col + e] : 0.f;
    u32x4 raw[CHUNKS_PER_THREAD];
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) raw[i] = sage_load_raw(p, sn, row0, n, threadIdx.x + i * THREADS);
    int mx = 0;
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
        const int c = threadIdx.x + i * THREADS;
        const bool valid = sage_chunk_valid(row0, n, c);
        float x[8];
        sage_unpack(x, raw[i], valid);
        float dot = 0.f;
        #pragma unroll
        for (int e = 0; e < 8; ++e) {
            if (mean_mode == 1 && valid) x[e] = __fsub_rn(x[e], kmean[e]);
            dot = fmaf(x[e], kmean[e], dot);
            mx = max(mx, sage_abs_bits(x[e]));
        }
        if (mean_mode == 2) {
            // The CHUNKS_PER_ROW lanes of one row are adjacent: reduce the row's dot among them.
            #pragma unroll
            for (int off = CHUNKS_PER_ROW / 2; off > 0; off /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, off);
            if (threadIdx.x % CHUNKS_PER_ROW == 0 && valid) shift_out[bh * n + row0 + c / CHUNKS_PER_ROW] = dot;
        }
    }
    #pragma unroll
    for (int off = 16; off > 0; off >>= 1) mx = max(mx, __shfl_xor_sync(0xffffffffu, mx, off));
    if (threadIdx.x % 32 == 0) atomicMax(&s_max, mx);
    __syncthreads();
    if (threadIdx.x == 0) {
        float scale, inv;
        sage_int8_scale(s_max, scale, inv);
        s_inv = inv;
        scale_out[bh * gridDim.x + blockIdx.x] = scale;
    }
    __syncthreads();
    const float inv = s_inv;
    #pragma unroll
    for (int i = 0; i < CHUNKS_PER_THREAD; ++i) {
        const int c = threadIdx.x + i * THREADS;
        const int r = c / CHUNKS_PER_ROW;
        const bool valid = sage_chunk_valid(row0, n, c);
        float x[8];
        sage_unpack(x, raw[i], valid);
        #pragma unroll
        for (int e = 0; e < 8; ++e) if (mean_mode == 1 && valid) x[e] = __fsub_rn(x[e], kmean[e]);
        const uint2 codes = sage_int8x8(x, inv);
        if (out8 != nullptr && valid) *reinterpret_cast<uint2*>(out8 + (bh * n + row0 + r) * HEAD_DIM + col) = codes;
        if (out8t != nullptr) *reinterpret_cast<uint2*>(s_codes + r * CODE_PITCH + col) = codes;
    }
    if (out8t == nullptr) return;
    __syncthreads();
    // Transposed: word w is channel w / (BLOCK / 4), positions 4 (w % (BLOCK / 4)) .. +3.
    const int* perm = SAGEBWD_PERM[order];
    unsigned char* dst = out8t + bh * HEAD_DIM * n_pad + row0;
    for (int w = threadIdx.x; w < WORDS_T; w += THREADS) {
        const int ch = w / (BLOCK / 4);
        const int pos = 4 * (w % (BLOCK / 4));
        u32 word = 0;
        #pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int token = (pos + e) / PERM_PERIOD * PERM_PERIOD + perm[(pos + e) % PERM_PERIOD];
            word |= (u32)s_codes[token * CODE_PITCH + ch] << (8 * e);
        }
        *reinterpret_cast<u32*>(dst + (i64)ch * n_pad + pos) = word;
    }
}
