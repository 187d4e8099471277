<#include "../common/header.ftl">
<#-- Quantizers of the NVFP4 mode (SageAttention3), exactly as docs/nvfp4-quantization.md specifies
     and dev.sagejit.reference.Nvfp4Reference emulates: one module of six kernels for one input type
     (${elemPtx}) and head dim (${headDim}). Inputs are [B, H, N, D] with any element strides (D
     contiguous). Sums that the document fixes the order of (K and Q means, dS, qshift) are sequential
     in that order, one thread per output, with separate multiply and add (no FMA contraction), so
     every output is bit-identical to the emulation.
       1. nvfp4_kmean:   kmean[b, hk, c] = (sum over tokens in order) / Nk.
       2. nvfp4_qmean:   qmean[b, h, g, c] over the rows of each QMEAN_ROWS group.
       3. nvfp4_quant_q: codes and E4M3 scales of Q - qmean per 16 channels; qshift = Q . kmean.
       4. nvfp4_quant_k: codes of K - kmean per 16 channels, written to the token's stored row
                         (the K permutation inside every PERMUTE_GROUP rows); padding rows 0.
       5. nvfp4_quant_v: V^T blocked along tokens: per (channel, 16 tokens) codes and scale.
       6. nvfp4_delta_s: dS[b, h, g, r] = qmean[g] . (K[token(r)] - kmean), 0 for padding rows. -->
<#include "../common/types.ftl">
<#include "../common/ptx.ftl">
<#include "../common/fp8.ftl">
<#include "../common/fp4.ftl">
<#include "../common/nvfp4_layout.ftl">

constexpr int HEAD_DIM = ${headDim};
constexpr int BLOCKS_PER_ROW = HEAD_DIM / SAGE_FP4_BLOCK;
constexpr int ROWS_PER_CTA = ${threads} / BLOCKS_PER_ROW;  // rows one quantizer block handles
constexpr int THREADS = ${threads};

// The 16 values of channel block `blk` of row `row` (a [N, D] slice with row stride sn), minus `mean`
// (null: none), as the document's FP32 subtraction.
__device__ __forceinline__ void nvfp4_load_block(float (&x)[SAGE_FP4_BLOCK], const u16* __restrict__ src, i64 sn,
                                                 int row, int blk, const float* __restrict__ mean) {
    const u32x4* p = reinterpret_cast<const u32x4*>(src + (i64)row * sn + blk * SAGE_FP4_BLOCK);
    #pragma unroll
    for (int h = 0; h < SAGE_FP4_BLOCK / 8; ++h) {
        const u32x4 v = p[h];
        const u32 w[4] = {v.x, v.y, v.z, v.w};
        #pragma unroll
        for (int e = 0; e < 4; ++e) {
            x[8 * h + 2 * e] = sage_to_float((u16)(w[e] & 0xffffu));
            x[8 * h + 2 * e + 1] = sage_to_float((u16)(w[e] >> 16));
        }
    }
    if (mean != nullptr) {
        #pragma unroll
        for (int i = 0; i < SAGE_FP4_BLOCK; ++i) x[i] = __fsub_rn(x[i], mean[blk * SAGE_FP4_BLOCK + i]);
    }
}

// grid (1, Hkv, B), HEAD_DIM threads: one channel each, tokens summed in order.
extern "C" __global__ void __launch_bounds__(HEAD_DIM)
nvfp4_kmean(const u16* __restrict__ k, i64 k_sb, i64 k_sh, i64 k_sn, int nk, float* __restrict__ kmean) {
    const int c = threadIdx.x, head = blockIdx.y, batch = blockIdx.z;
    const u16* kp = k + batch * k_sb + head * k_sh + c;
    float sum = 0.f;
    for (int n = 0; n < nk; ++n) sum = __fadd_rn(sum, sage_to_float(kp[(i64)n * k_sn]));
    kmean[((i64)batch * gridDim.y + head) * HEAD_DIM + c] = nk > 0 ? __fdiv_rn(sum, (float)nk) : 0.f;
}

// grid (QG, Hq, B), HEAD_DIM threads: one channel of one row group each, rows summed in order.
extern "C" __global__ void __launch_bounds__(HEAD_DIM)
nvfp4_qmean(const u16* __restrict__ q, i64 q_sb, i64 q_sh, i64 q_sn, int nq, float* __restrict__ qmean) {
    const int c = threadIdx.x, g = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
    const u16* qp = q + batch * q_sb + head * q_sh + c;
    const int first = g * QMEAN_ROWS, last = min(nq, first + QMEAN_ROWS);
    float sum = 0.f;
    for (int n = first; n < last; ++n) sum = __fadd_rn(sum, sage_to_float(qp[(i64)n * q_sn]));
    qmean[(((i64)batch * gridDim.y + head) * gridDim.x + g) * HEAD_DIM + c] = __fdiv_rn(sum, (float)(last - first));
}

// grid (ceil(Nq / ROWS_PER_CTA), Hq, B): a thread per 16-channel block; the row's first thread also
// writes qshift (channels in order). qmean is null without Q smoothing.
extern "C" __global__ void __launch_bounds__(THREADS)
nvfp4_quant_q(const u16* __restrict__ q, i64 q_sb, i64 q_sh, i64 q_sn, int nq, int group, int q_groups,
              const float* __restrict__ qmean, const float* __restrict__ kmean, unsigned char* __restrict__ q4,
              unsigned char* __restrict__ qscale, float* __restrict__ qshift) {
    const int head = blockIdx.y, batch = blockIdx.z;
    const int row = blockIdx.x * ROWS_PER_CTA + threadIdx.x / BLOCKS_PER_ROW;
    const int blk = threadIdx.x % BLOCKS_PER_ROW;
    if (row >= nq) return;
    const u16* qp = q + batch * q_sb + head * q_sh;
    const i64 bh = (i64)batch * gridDim.y + head;
    const float* mean = qmean == nullptr ? nullptr : qmean + (bh * q_groups + row / QMEAN_ROWS) * HEAD_DIM;
    float x[SAGE_FP4_BLOCK];
    nvfp4_load_block(x, qp, q_sn, row, blk, mean);
    u32 scale;
    const u64 codes = sage_fp4_block(x, scale);
    const i64 r = bh * nq + row;
    *reinterpret_cast<u64*>(q4 + r * (HEAD_DIM / 2) + blk * (SAGE_FP4_BLOCK / 2)) = codes;
    qscale[r * BLOCKS_PER_ROW + blk] = (unsigned char)scale;
    if (blk == 0) {
        const float* km = kmean + ((i64)batch * (gridDim.y / group) + head / group) * HEAD_DIM;
        const u16* src = qp + (i64)row * q_sn;
        float shift = 0.f;
        for (int c = 0; c < HEAD_DIM; ++c) shift = __fadd_rn(shift, __fmul_rn(sage_to_float(src[c]), km[c]));
        qshift[r] = shift;
    }
}

// grid (NkPad / ROWS_PER_CTA, Hkv, B): a thread per 16-channel block of a stored row.
extern "C" __global__ void __launch_bounds__(THREADS)
nvfp4_quant_k(const u16* __restrict__ k, i64 k_sb, i64 k_sh, i64 k_sn, int nk, int nk_pad, int permute,
              const float* __restrict__ kmean, unsigned char* __restrict__ k4, unsigned char* __restrict__ kscale) {
    const int head = blockIdx.y, batch = blockIdx.z;
    const int row = blockIdx.x * ROWS_PER_CTA + threadIdx.x / BLOCKS_PER_ROW;
    const int blk = threadIdx.x % BLOCKS_PER_ROW;
    if (row >= nk_pad) return;
    const i64 bh = (i64)batch * gridDim.y + head;
    const int token = permute != 0 ? nvfp4_k_token(0, row) : row;
    u64 codes = 0ull;
    u32 scale = 0u;  // padding rows: codes 0, scale byte 0
    if (token < nk) {
        float x[SAGE_FP4_BLOCK];
        nvfp4_load_block(x, k + batch * k_sb + head * k_sh, k_sn, token, blk, kmean + bh * HEAD_DIM);
        codes = sage_fp4_block(x, scale);
    }
    const i64 r = bh * nk_pad + row;
    *reinterpret_cast<u64*>(k4 + r * (HEAD_DIM / 2) + blk * (SAGE_FP4_BLOCK / 2)) = codes;
    kscale[r * BLOCKS_PER_ROW + blk] = (unsigned char)scale;
}

// grid (NkPad / 16, Hkv, B), HEAD_DIM threads: channel c's 16 tokens of one chunk (threads of a
// warp read neighbouring channels of the same token).
extern "C" __global__ void __launch_bounds__(HEAD_DIM)
nvfp4_quant_v(const u16* __restrict__ v, i64 v_sb, i64 v_sh, i64 v_sn, int nk, int nk_pad,
              unsigned char* __restrict__ v4t, unsigned char* __restrict__ vscale) {
    const int c = threadIdx.x, chunk = blockIdx.x, head = blockIdx.y, batch = blockIdx.z;
    const u16* vp = v + batch * v_sb + head * v_sh + c;
    float x[SAGE_FP4_BLOCK];
    #pragma unroll
    for (int i = 0; i < SAGE_FP4_BLOCK; ++i) {
        const int n = chunk * SAGE_FP4_BLOCK + i;
        x[i] = n < nk ? sage_to_float(vp[(i64)n * v_sn]) : 0.f;
    }
    u32 scale;
    const u64 codes = sage_fp4_block(x, scale);
    const i64 ch = ((i64)batch * gridDim.y + head) * HEAD_DIM + c;
    *reinterpret_cast<u64*>(v4t + ch * (nk_pad / 2) + chunk * (SAGE_FP4_BLOCK / 2)) = codes;
    vscale[ch * (nk_pad / SAGE_FP4_BLOCK) + chunk] = (unsigned char)scale;
}

// grid (ceil(NkPad / THREADS), QG, B * Hq): a thread per stored K row r of one Q group; channels in
// order, (K - kmean) then the product then the sum, each rounded (no FMA).
extern "C" __global__ void __launch_bounds__(THREADS)
nvfp4_delta_s(const u16* __restrict__ k, i64 k_sb, i64 k_sh, i64 k_sn, int nk, int nk_pad, int permute, int hq,
              int group, const float* __restrict__ qmean, const float* __restrict__ kmean,
              float* __restrict__ delta_s) {
    const int r = blockIdx.x * THREADS + threadIdx.x, g = blockIdx.y;
    const int batch = blockIdx.z / hq, head = blockIdx.z % hq, kv_head = head / group;
    if (r >= nk_pad) return;
    const i64 bhq = (i64)batch * hq + head;
    const int token = permute != 0 ? nvfp4_k_token(0, r) : r;
    float ds = 0.f;
    if (token < nk) {
        const float* qm = qmean + (bhq * gridDim.y + g) * HEAD_DIM;
        const float* km = kmean + ((i64)batch * (hq / group) + kv_head) * HEAD_DIM;
        const u16* src = k + batch * k_sb + kv_head * k_sh + (i64)token * k_sn;
        for (int c = 0; c < HEAD_DIM; ++c) {
            ds = __fadd_rn(ds, __fmul_rn(qm[c], __fsub_rn(sage_to_float(src[c]), km[c])));
        }
    }
    delta_s[(bhq * gridDim.y + g) * nk_pad + r] = ds;
}
