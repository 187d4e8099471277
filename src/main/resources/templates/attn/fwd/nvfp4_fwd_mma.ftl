<#include "../../common/header.ftl">
<#-- NVFP4 attention (SageAttention3) for sm_120a with the block-scaled FP4 MMA, or its exact
     emulation elsewhere (sm_90a: the same kernel with each FP4 MMA done as dequantized 16-bit MMAs,
     fp4_mma_emulated.ftl). The block-scaled FP4 MMA
     (mma.sync m16n8k64 kind::mxf4nvf4 block_scale scale_vec::4X, MMA-FACTS D), over the operands of
     docs/nvfp4-quantization.md (quant/nvfp4_quant.ftl): S = dS + Q4 K4^T with E4M3 scales per 16
     channels, online softmax, two-level P (per-row factor 2688, E4M3 scale per 16 key tokens) packed
     to FP4 in registers (the K permutation makes a thread's S columns the tokens its P fragment
     needs), and O += P4 V4^T with V's per-16-token scales, accumulated directly in FP32. A block of 4
     warps owns BLOCK_M = 64 query rows (16 per warp) and walks the keys in blocks of BLOCK_N = 64 (one
     k64 step of the P V MMA). Operands are read straight from global memory (they are 4-bit and
     L2-resident at these block sizes); compile-verified here (no sm_120a GPU), checked for OMMA in
     its SASS by Nvfp4SassTest. -->
<#include "../../common/types.ftl">
<#include "../../common/ptx.ftl">
<#include "../../common/fp8.ftl">
<#include "../../common/fp4.ftl">
<#include "../../common/nvfp4_layout.ftl">
<#include "store_o_direct.ftl">

constexpr int HEAD_DIM = ${headDim};
constexpr int BLOCK_M = ${blockM};
constexpr int BLOCK_N = ${blockN};
constexpr int MMA_K = 64;                       // k of the m16n8k64 FP4 MMA
constexpr int K_GROUPS = MMA_K / 32;            // 32-value groups of one k64 step (A register pairs)
static_assert(BLOCK_N == MMA_K, "P of one key block is the A operand of exactly one k64 P V step");
constexpr int K_STEPS = HEAD_DIM / MMA_K;       // k64 steps of Q K^T
constexpr int N_TILES = BLOCK_N / 8;            // n8 tiles of S per key block
constexpr int D_TILES = HEAD_DIM / 8;           // n8 tiles of O
constexpr float LOG2_P_ROW = ${log2PRow}f;      // log2(2688): the row maximum of P maps to 448 * 6
constexpr float LOG2_P_BLOCK = ${log2PBlock}f;  // log2(448): P's block scales
constexpr bool CAUSAL = ${causal?c};
constexpr bool WRITE_LSE = ${lse?c};
// K's stored rows are permuted inside every PERMUTE_GROUP (the document's default, Nvfp4Attention
// requires it): a thread's S columns are then the tokens 8t..8t+7 its P fragment needs.

<#if emulated>
<#include "../../common/mma_f16.ftl">
<#include "../../common/fp4_mma_emulated.ftl">
<#else>
<#include "../../common/fp4_mma_native.ftl">
</#if>

__device__ __forceinline__ u32 nvfp4_ld32(const unsigned char* p) { return *reinterpret_cast<const u32*>(p); }

extern "C" __global__ void __launch_bounds__(4 * 32)
${entry}(const unsigned char* __restrict__ q4, const unsigned char* __restrict__ qscale,
         const unsigned char* __restrict__ k4, const unsigned char* __restrict__ kscale,
         const unsigned char* __restrict__ v4t, const unsigned char* __restrict__ vscale,
         const float* __restrict__ delta_s, const float* __restrict__ q_shift, u16* __restrict__ o,
         float* __restrict__ lse, i64 o_sb, i64 o_sh, i64 o_sn, int nq, int nk, int nk_pad, int group, int q_groups,
         float scale_log2) {
    const int head = blockIdx.y, batch = blockIdx.z, hq = gridDim.y, kv_head = head / group;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32, g = lane >> 2, t = lane & 3;
    const int row0 = blockIdx.x * BLOCK_M, warp_row = warp * 16;
    const int rows[2] = {row0 + warp_row + g, row0 + warp_row + g + 8};
    const i64 bhq = (i64)batch * hq + head, bhk = (i64)batch * (hq / group) + kv_head;

    // Q fragments and their row scales for every k64 step (rows past nq read as 0).
    u32 qa[K_STEPS][4], qsf[K_STEPS];
    #pragma unroll
    for (int ks = 0; ks < K_STEPS; ++ks) {
        #pragma unroll
        for (int r = 0; r < 4; ++r) {
            const int row = rows[r & 1];
            qa[ks][r] = row < nq ? nvfp4_ld32(q4 + (bhq * nq + row) * (HEAD_DIM / 2) + 32 * ks + 16 * (r >> 1) + 4 * t) : 0u;
        }
        const int srow = rows[t & 1];
        qsf[ks] = t < 2 && srow < nq ? nvfp4_ld32(qscale + (bhq * nq + srow) * (HEAD_DIM / 16) + 4 * ks) : 0u;
    }
    const float* ds_row = delta_s + (bhq * q_groups + row0 / QMEAN_ROWS) * nk_pad;

    float acc_o[1][D_TILES][4];
    float m_run[1][2] = {{SAGE_NEG_INF, SAGE_NEG_INF}};
    float l_run[1][2] = {{0.f, 0.f}};
    #pragma unroll
    for (int dt = 0; dt < D_TILES; ++dt) acc_o[0][dt][0] = acc_o[0][dt][1] = acc_o[0][dt][2] = acc_o[0][dt][3] = 0.f;

    const int n_end = CAUSAL ? min(nk, row0 + BLOCK_M + nk - nq) : nk;
    const int n_blocks = n_end > 0 ? (n_end + BLOCK_N - 1) / BLOCK_N : 0;
    for (int j = 0; j < n_blocks; ++j) {
        const int key0 = j * BLOCK_N;
        // S = dS (the C operand of the first MMA) + Q4 K4^T.
        float s[N_TILES][4];
        #pragma unroll
        for (int nt = 0; nt < N_TILES; ++nt) {
            const float2 ds = *reinterpret_cast<const float2*>(ds_row + key0 + nt * 8 + 2 * t);
            s[nt][0] = s[nt][2] = ds.x;
            s[nt][1] = s[nt][3] = ds.y;
        }
        #pragma unroll
        for (int ks = 0; ks < K_STEPS; ++ks) {
            #pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) {
                const unsigned char* krow = k4 + (bhk * nk_pad + key0 + nt * 8 + g) * (HEAD_DIM / 2) + 32 * ks + 4 * t;
                const u32 ksf = t == 0 ? nvfp4_ld32(kscale + (bhk * nk_pad + key0 + nt * 8 + g) * (HEAD_DIM / 16) + 4 * ks)
                                       : 0u;
                sage_mma_fp4(s[nt], qa[ks], nvfp4_ld32(krow), nvfp4_ld32(krow + 16), qsf[ks], ksf);
            }
        }
        // Log2 domain, masked keys (past Nk or, causal, after the row's diagonal) at -inf.
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            const int limit = CAUSAL ? min(nk, rows[h] + nk - nq + 1) : nk;
            #pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) {
                #pragma unroll
                for (int e = 0; e < 2; ++e) {
                    const bool visible = nvfp4_k_token(key0, nt * 8 + 2 * t + e) < limit;
                    s[nt][2 * h + e] = visible ? s[nt][2 * h + e] * scale_log2 : SAGE_NEG_INF;
                }
            }
        }
        // Online softmax and two-level P: P2 = exp2(x - m + log2 2688); per 16 tokens (this thread's
        // 8 and its partner's, lane t ^ 1) sP = E4M3(exp2(chunk max - m + log2 448)), codes e2m1(P2 / sP).
        u32 pa[4], sc[2][2];
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            float mx = SAGE_NEG_INF;
            #pragma unroll
            for (int nt = 0; nt < N_TILES; ++nt) mx = fmaxf(mx, fmaxf(s[nt][2 * h], s[nt][2 * h + 1]));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
            const float m_new = fmaxf(m_run[0][h], mx);
            const float m_base = m_new == SAGE_NEG_INF ? 0.f : m_new;
            const float alpha = sage_exp2(m_run[0][h] - m_base);
            m_run[0][h] = m_new;
            #pragma unroll
            for (int dt = 0; dt < D_TILES; ++dt) {
                acc_o[0][dt][2 * h] *= alpha;
                acc_o[0][dt][2 * h + 1] *= alpha;
            }
            float sum = 0.f;
            #pragma unroll
            for (int grp = 0; grp < K_GROUPS; ++grp) {  // the 32-token groups of the block
                float cm = SAGE_NEG_INF;
                #pragma unroll
                for (int q = 0; q < 4; ++q) cm = fmaxf(cm, fmaxf(s[4 * grp + q][2 * h], s[4 * grp + q][2 * h + 1]));
                cm = fmaxf(cm, __shfl_xor_sync(0xffffffffu, cm, 1));
                sc[h][grp] = sage_e4m3(sage_exp2(cm - m_base + LOG2_P_BLOCK));
                const float sp = sage_e4m3_value(sc[h][grp]);
                u32 word = 0u;
                #pragma unroll
                for (int q = 0; q < 4; ++q) {  // tokens 8t + 2q, 8t + 2q + 1
                    const float p0 = sage_exp2(s[4 * grp + q][2 * h] - m_base + LOG2_P_ROW);
                    const float p1 = sage_exp2(s[4 * grp + q][2 * h + 1] - m_base + LOG2_P_ROW);
                    sum += p0 + p1;
                    const u32 byte = sp == 0.f ? 0u : sage_e2m1x2(__fdiv_rn(p0, sp), __fdiv_rn(p1, sp));
                    word |= byte << (8 * q);
                }
                pa[2 * grp + h] = word;  // A register r: row g + 8(r & 1), tokens 32(r >> 1) + 8t ..
            }
            l_run[0][h] = l_run[0][h] * alpha + sum;
        }
        // P's row scales: lane 4g gathers row g's four chunk scales, lane 4g + 1 row g + 8's (chunk
        // 2 * grp + t / 2 of the block comes from lanes t and t ^ 1; t ^ 2 holds the other half).
        u32 psf[2];
        #pragma unroll
        for (int h = 0; h < 2; ++h) {
            const u32 other0 = __shfl_xor_sync(0xffffffffu, sc[h][0], 2);
            const u32 other1 = __shfl_xor_sync(0xffffffffu, sc[h][1], 2);
            psf[h] = (t < 2) ? (sc[h][0] | (other0 << 8) | (sc[h][1] << 16) | (other1 << 24)) : 0u;
        }
        const u32 p_sf = (t & 1) ? psf[1] : psf[0];
        // O += P4 V4^T: V^T row = channel, its tokens 32r + 8t .. of the block in register r.
        #pragma unroll
        for (int dt = 0; dt < D_TILES; ++dt) {
            const i64 ch = bhk * HEAD_DIM + dt * 8 + g;
            const unsigned char* vrow = v4t + ch * (nk_pad / 2) + key0 / 2 + 4 * t;
            const u32 vsf = t == 0 ? nvfp4_ld32(vscale + ch * (nk_pad / 16) + key0 / 16) : 0u;
            sage_mma_fp4(acc_o[0][dt], pa, nvfp4_ld32(vrow), nvfp4_ld32(vrow + 16), p_sf, vsf);
        }
    }
    // LSE gets back the K-smoothing shift and loses P's 2688 (log2 domain), then O / l is stored.
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const float shift = rows[h] < nq ? q_shift[bhq * nq + rows[h]] : 0.f;
        m_run[0][h] += shift * scale_log2 - LOG2_P_ROW;
    }
    u16* o_ptr = o + batch * o_sb + head * o_sh;
    sage_store_o_direct<1, D_TILES>(acc_o, m_run, l_run, o_ptr, o_sn, lse + bhq * nq + row0, row0, warp_row, nq,
                                    lane, WRITE_LSE);
}
