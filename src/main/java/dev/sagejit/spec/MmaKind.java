package dev.sagejit.spec;

/** Tensor-core instruction families a kernel may be built from. */
public enum MmaKind {
    /** mma.sync m16n8k16 with BF16/FP16 operands and FP32 accumulation (sm_80+). */
    MMA_SYNC_F16,
    /** mma.sync m16n8k32 with INT8 operands (sm_80+). */
    MMA_SYNC_INT8,
    /** mma.sync m16n8k32 with FP8 E4M3/E5M2 operands (sm_89+). */
    MMA_SYNC_FP8,
    /** wgmma.mma_async, warpgroup-wide, operands from shared memory (sm_90a only). */
    WGMMA,
    /** mma.sync m16n8k64 block-scaled NVFP4/MXFP4 (sm_120a). */
    MMA_BLOCK_SCALE_FP4
}
