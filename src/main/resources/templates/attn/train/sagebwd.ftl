<#include "../../common/header.ftl">
<#-- SageBwd (docs/sagebwd.md): 8-bit attention for training, one module per element type
     (${elemPtx}), head dim and mask, over the operands of quant/sagebwd_quant.ftl (every INT8 block
     and the P and dS tiles are BLOCK x BLOCK):
     - ${entry}_fwd: O and the LSE from INT8 Q K^T and INT8 P~ V (P~ per row per key block): on
       wgmma where the arch has it (sagebwd_fwd_wgmma.ftl), else on mma.sync (sagebwd_fwd.ftl);
     - ${entry}_bwd: dK and dV of a key block, and its share of dQ, from S recomputed in INT8,
       dV += P^T dO (INT8), dP = dO V^T (16-bit), dK += dS^T Q and dQ += dS K (INT8): on wgmma
       where the arch has it (sagebwd_bwd_wgmma.ftl), else on mma.sync (sagebwd_bwd.ftl).
     The 16-bit backward module's _prep (D = rowsum(dO * O)) and _dq kernels run around _bwd. -->
<#include "../../common/types.ftl">
<#include "../../common/ptx.ftl">
<#include "../../common/mma_8bit.ftl">
<#include "../../common/mma_f16.ftl">
<#include "../../common/smem_tile.ftl">
<#include "../../common/mask.ftl">
<#include "../fwd/warp_gemm_mma.ftl">
<#include "../fwd/store_o_direct.ftl">
<#if wgmmaForward || wgmmaBackward>
<#include "../../common/wgmma.ftl">
</#if>
<#if wgmmaForward || wgmmaBackward>
<#include "../../common/tma.ftl">
</#if>

constexpr int HEAD_DIM = ${headDim};
constexpr int BLOCK = ${block};                 // quantization block, forward key block, P and dS tile
constexpr int FWD_BLOCK_M = ${fwdBlockM};       // query rows per forward block, 16 per warp
constexpr int FWD_THREADS = FWD_BLOCK_M / 16 * 32;
constexpr int BWD_KEYS = ${bwdKeys};            // keys per backward block: 16 per warp
constexpr int BWD_THREADS = ${threads};
constexpr int BWD_WARPS = BWD_THREADS / 32;
constexpr int BWD_TILES = BWD_KEYS / BLOCK;     // P and dS tiles (and K scale blocks) per step
constexpr int N_TILES = BLOCK / 8;              // n8 tiles of a block's columns
constexpr int D_TILES = HEAD_DIM / 8;
constexpr int QK_STEPS = HEAD_DIM / 32;         // INT8 k32 steps over the head dim
constexpr int F16_STEPS = HEAD_DIM / 16;        // 16-bit k16 steps over the head dim
constexpr int T_STEPS = BLOCK / 32;             // INT8 k32 steps over a block's tokens
constexpr u32 INT8_TILE = BLOCK * HEAD_DIM;     // bytes of [BLOCK][D] or [D][BLOCK] INT8 codes
constexpr u32 F16_ROW = HEAD_DIM * ${elemBytes};  // bytes of one 16-bit row
constexpr float INT8_MAX = ${int8Max}.f;
constexpr bool CAUSAL = ${causal?c};
<#if settleFolds??>
// Folds of INT32 sums (forward key blocks, backward steps) between settlements of an FP32 accumulator's
// magic-number bias (sagebwd_magic).
constexpr int SETTLE_FOLDS = ${settleFolds};
</#if>
static_assert(BWD_KEYS == 16 * BWD_WARPS && BWD_KEYS % BLOCK == 0 && BLOCK % 32 == 0 && FWD_BLOCK_M % BLOCK == 0,
              "tile map");

<#include "sagebwd_frag.ftl">
<#include "sagebwd_softmax.ftl">
<#if wgmmaForward>
<#include "sagebwd_fwd_wgmma.ftl">
<#else>
<#include "sagebwd_fwd.ftl">
</#if>
<#if wgmmaBackward>
<#include "sagebwd_bwd_wgmma.ftl">
<#else>
<#include "sagebwd_bwd.ftl">
</#if>
