<#include "../../common/header.ftl">
<#-- FlashAttention-2 backward with mma.sync (BF16/FP16 in, FP32 accumulate), the 16-bit baseline of
     SageBwd (issue 5): three entries of one module.
     - ${entry}_prep: D = rowsum(dO * O) per query row, and the row's FP32 dQ accumulator zeroed.
     - ${entry}: one block per (key block of BLOCK_N, kv head, batch); each of its 4 warps owns 16 keys
       and keeps their dK and dV in registers while the block walks the query blocks (and, with GQA,
       the query heads of the group) that see them. Per query block: S^T = K Q^T, P^T = exp(S^T - LSE),
       dV += P^T dO, dP^T = V dO^T, dS^T = P^T (dP^T - D), dK += dS^T Q; dS^T goes through shared memory
       so each warp can add 16 query rows of dQ = dS K into the FP32 accumulator (red.global.add).
     - ${entry}_dq: dQ = scale * accumulator, in the input's type and layout.
     The warp products are the forward's (warp_gemm_mma.ftl) with the roles of Q and K swapped. -->
<#include "../../common/types.ftl">
<#include "../../common/ptx.ftl">
<#include "../../common/mma_f16.ftl">
<#include "../../common/smem_tile.ftl">
<#include "../fwd/warp_gemm_mma.ftl">

constexpr int BLOCK_M = ${blockM};         // query rows per step
constexpr int BLOCK_N = ${blockN};         // keys per block: 16 per warp
constexpr int THREADS = ${threads};
constexpr int HEAD_DIM = ${headDim};
constexpr int Q_TILES = BLOCK_M / 8;       // n8 tiles of S^T (query columns)
constexpr int D_TILES = ${headDimTiles};
constexpr int K_STEPS = ${headDimSteps};
constexpr bool CAUSAL = ${causal?c};
constexpr u32 TILE_BYTES = ${tileBytes};   // a [64][HEAD_DIM] 16-bit tile
constexpr u32 DS_ROW_BYTES = ${dsRowBytes};  // dS^T: [BLOCK_N keys][BLOCK_M queries] 16-bit
static_assert(BLOCK_M == BLOCK_N && BLOCK_N == 16 * (THREADS / 32), "a warp owns 16 keys; tiles are square");

__device__ __forceinline__ u32 bwd_ds_offset(int key, int chunk) {
    return (u32)(key * DS_ROW_BYTES + ((chunk ^ (key & 7)) << 4));
}

// D = rowsum(dO * O) of one query row per warp; the row's dQ accumulator starts at 0.
extern "C" __global__ void __launch_bounds__(THREADS)
${entry}_prep(const u16* __restrict__ o, const u16* __restrict__ d_o, float* __restrict__ delta,
              float* __restrict__ dq_acc, i64 o_sb, i64 o_sh, i64 o_sn, i64 g_sb, i64 g_sh, i64 g_sn, int nq) {
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int row = blockIdx.x * (THREADS / 32) + warp;
    const int head = blockIdx.y, batch = blockIdx.z;
    if (row >= nq) return;
    const u16* orow = o + batch * o_sb + head * o_sh + row * o_sn;
    const u16* grow = d_o + batch * g_sb + head * g_sh + row * g_sn;
    const i64 r = ((i64)batch * gridDim.y + head) * nq + row;
    float sum = 0.f;
    for (int c = lane; c < HEAD_DIM; c += 32) {
        sum += sage_to_float(orow[c]) * sage_to_float(grow[c]);
        dq_acc[r * HEAD_DIM + c] = 0.f;
    }
    #pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (lane == 0) delta[r] = sum;
}

// dQ = scale * accumulator, DQ_ELEMS elements of one row per thread: two 16-byte loads, one 16-byte
// store (dQ's rows are 16-byte aligned, as every tensor's).
constexpr int DQ_ELEMS = ${dqElems};
static_assert(DQ_ELEMS == 8 && HEAD_DIM % DQ_ELEMS == 0, "a thread converts two float4 of one row");
extern "C" __global__ void __launch_bounds__(THREADS)
${entry}_dq(const float* __restrict__ dq_acc, u16* __restrict__ dq, i64 q_sb, i64 q_sh, i64 q_sn, int nq,
            float scale) {
    const int head = blockIdx.y, batch = blockIdx.z;
    const i64 idx = ((i64)blockIdx.x * THREADS + threadIdx.x) * DQ_ELEMS;
    if (idx >= (i64)nq * HEAD_DIM) return;
    const int row = (int)(idx / HEAD_DIM), c = (int)(idx % HEAD_DIM);
    const float4* src = reinterpret_cast<const float4*>(dq_acc + ((i64)batch * gridDim.y + head) * nq * HEAD_DIM + idx);
    const float4 a = src[0], b = src[1];
    *reinterpret_cast<u32x4*>(dq + batch * q_sb + head * q_sh + row * q_sn + c) =
        u32x4{sage_pack2(a.x * scale, a.y * scale), sage_pack2(a.z * scale, a.w * scale),
              sage_pack2(b.x * scale, b.y * scale), sage_pack2(b.z * scale, b.w * scale)};
}

extern "C" __global__ void __launch_bounds__(THREADS, 1)
${entry}(const u16* __restrict__ q, const u16* __restrict__ k, const u16* __restrict__ v,
         const u16* __restrict__ d_o, const float* __restrict__ lse, const float* __restrict__ delta,
         float* __restrict__ dq_acc, u16* __restrict__ dk, u16* __restrict__ dv,
         i64 q_sb, i64 q_sh, i64 q_sn, i64 k_sb, i64 k_sh, i64 k_sn, i64 v_sb, i64 v_sh, i64 v_sn,
         i64 g_sb, i64 g_sh, i64 g_sn, i64 dk_sb, i64 dk_sh, i64 dk_sn, i64 dv_sb, i64 dv_sh, i64 dv_sn,
         int nq, int nk, int hq, int group, float scale, float scale_log2) {
    extern __shared__ __align__(128) unsigned char smem[];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int g = lane >> 2, t = lane & 3;
    const int key0 = blockIdx.x * BLOCK_N;
    const int kv_head = blockIdx.y, batch = blockIdx.z;
    const int warp_key = warp * 16;

    const u32 sK = sage_smem_addr(smem);
    const u32 sV = sK + TILE_BYTES;
    const u32 sQ = sV + TILE_BYTES;
    const u32 sG = sQ + TILE_BYTES;
    const u32 sDS = sG + TILE_BYTES;
    float* s_lse = reinterpret_cast<float*>(smem + 4 * TILE_BYTES + BLOCK_N * DS_ROW_BYTES);
    float* s_delta = s_lse + BLOCK_M;

    sage_load_tile<BLOCK_N>(sK, k + batch * k_sb + kv_head * k_sh, k_sn, key0, nk, tid);
    sage_load_tile<BLOCK_N>(sV, v + batch * v_sb + kv_head * v_sh, v_sn, key0, nk, tid);
    sage_cp_async_commit();

    float acc_dk[1][D_TILES][4], acc_dv[1][D_TILES][4];
    #pragma unroll
    for (int dt = 0; dt < D_TILES; ++dt) {
        #pragma unroll
        for (int e = 0; e < 4; ++e) acc_dk[0][dt][e] = acc_dv[0][dt][e] = 0.f;
    }
    // Queries that see any key of this block: causal masks are bottom-right aligned (key j is
    // visible to query i when j <= i + nk - nq).
    const int q_first = CAUSAL ? max(0, key0 - (nk - nq)) / BLOCK_M * BLOCK_M : 0;
    u32 unused[1][K_STEPS][4];

    for (int head = kv_head * group; head < (kv_head + 1) * group; ++head) {
        const u16* q_ptr = q + batch * q_sb + head * q_sh;
        const u16* g_ptr = d_o + batch * g_sb + head * g_sh;
        const i64 row_base = ((i64)batch * hq + head) * nq;
        for (int q0 = q_first; q0 < nq; q0 += BLOCK_M) {
            __syncthreads();  // the previous step is done with sQ, sG, sDS and the row vectors
            sage_load_tile<BLOCK_M>(sQ, q_ptr, q_sn, q0, nq, tid);
            sage_load_tile<BLOCK_M>(sG, g_ptr, g_sn, q0, nq, tid);
            sage_cp_async_commit();
            for (int i = tid; i < BLOCK_M; i += THREADS) {
                const bool in = q0 + i < nq;
                s_lse[i] = in ? lse[row_base + q0 + i] * SAGE_LOG2E : 0.f;
                s_delta[i] = in ? delta[row_base + q0 + i] : 0.f;
            }
            sage_cp_async_wait<0>();
            __syncthreads();

            // S^T = K_w Q^T (the forward's Q K^T with the tiles' roles swapped), then P^T.
            float p[1][Q_TILES][4];
            sage_gemm_qk<1, Q_TILES, K_STEPS, false>(p, unused, sK, warp_key, sQ, lane);
            #pragma unroll
            for (int nt = 0; nt < Q_TILES; ++nt) {
                #pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int key = key0 + warp_key + g + 8 * (e >> 1);
                    const int qi = nt * 8 + 2 * t + (e & 1);
                    const bool visible = key < nk && q0 + qi < nq && (!CAUSAL || key <= q0 + qi + nk - nq);
                    p[0][nt][e] = visible ? sage_exp2(p[0][nt][e] * scale_log2 - s_lse[qi]) : 0.f;
                }
            }
            // dV_w += P^T dO (P^T from registers, dO transposed from shared memory, as P V forward).
            sage_gemm_pv<1, Q_TILES, D_TILES>(acc_dv, p, sG, lane);
            // dP^T = V_w dO^T, then dS^T = P^T (dP^T - D).
            float ds[1][Q_TILES][4];
            sage_gemm_qk<1, Q_TILES, K_STEPS, false>(ds, unused, sV, warp_key, sG, lane);
            #pragma unroll
            for (int nt = 0; nt < Q_TILES; ++nt) {
                #pragma unroll
                for (int e = 0; e < 4; ++e) {
                    ds[0][nt][e] = p[0][nt][e] * (ds[0][nt][e] - s_delta[nt * 8 + 2 * t + (e & 1)]);
                }
            }
            // dK_w += dS^T Q.
            sage_gemm_pv<1, Q_TILES, D_TILES>(acc_dk, ds, sQ, lane);
            // dS^T to shared memory in 16 bits (what the dK product used), rows = this warp's keys.
            #pragma unroll
            for (int nt = 0; nt < Q_TILES; ++nt) {
                #pragma unroll
                for (int h = 0; h < 2; ++h) {
                    const int key = warp_key + g + 8 * h;
                    const u32 addr = sDS + bwd_ds_offset(key, nt) + 4 * t;
                    asm volatile("st.shared.b32 [%0], %1;\n" :: "r"(addr), "r"(sage_pack2(ds[0][nt][2 * h], ds[0][nt][2 * h + 1]))
                                 : "memory");
                }
            }
            __syncthreads();
            // dQ rows q0 + warp_key .. + 15 += dS K: A = dS (transposed loads of dS^T), B = K (transposed).
            float acc_dq[D_TILES][4];
            #pragma unroll
            for (int dt = 0; dt < D_TILES; ++dt) acc_dq[dt][0] = acc_dq[dt][1] = acc_dq[dt][2] = acc_dq[dt][3] = 0.f;
            #pragma unroll
            for (int kk = 0; kk < BLOCK_N / 16; ++kk) {
                u32 a[4];
                const int key = kk * 16 + (lane & 7) + ((lane >> 4) & 1) * 8;
                sage_ldmatrix_x4_trans(a, sDS + bwd_ds_offset(key, warp_key / 8 + ((lane >> 3) & 1)));
                #pragma unroll
                for (int dp = 0; dp < D_TILES / 2; ++dp) {
                    u32 b[4];
                    const int r = kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8;
                    sage_ldmatrix_x4_trans(b, sK + sage_tile_offset(r, dp * 2 + (lane >> 4)));
                    sage_mma16816(acc_dq[2 * dp], a, b[0], b[1]);
                    sage_mma16816(acc_dq[2 * dp + 1], a, b[2], b[3]);
                }
            }
            #pragma unroll
            for (int h = 0; h < 2; ++h) {
                const int row = q0 + warp_key + g + 8 * h;
                if (row < nq) {
                    float* dst = dq_acc + (row_base + row) * HEAD_DIM + 2 * t;
                    #pragma unroll
                    for (int dt = 0; dt < D_TILES; ++dt) {
                        sage_red_add(dst + 8 * dt, acc_dq[dt][2 * h]);
                        sage_red_add(dst + 8 * dt + 1, acc_dq[dt][2 * h + 1]);
                    }
                }
            }
        }
    }
    // dK (times the softmax scale) and dV of this warp's 16 keys.
    #pragma unroll
    for (int h = 0; h < 2; ++h) {
        const int key = key0 + warp_key + g + 8 * h;
        if (key < nk) {
            u16* dk_row = dk + batch * dk_sb + kv_head * dk_sh + key * dk_sn + 2 * t;
            u16* dv_row = dv + batch * dv_sb + kv_head * dv_sh + key * dv_sn + 2 * t;
            #pragma unroll
            for (int dt = 0; dt < D_TILES; ++dt) {
                *reinterpret_cast<u32*>(dk_row + 8 * dt) = sage_pack2(acc_dk[0][dt][2 * h] * scale, acc_dk[0][dt][2 * h + 1] * scale);
                *reinterpret_cast<u32*>(dv_row + 8 * dt) = sage_pack2(acc_dv[0][dt][2 * h], acc_dv[0][dt][2 * h + 1]);
            }
        }
    }
}
