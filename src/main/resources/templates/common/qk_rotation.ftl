<#-- The int8-fp8 quantizers' Q/K rotation (docs/int8-fp8-quantization.md, "Q/K rotation";
     spec/Int8Fp8Layout.ROTATE_QK): a row x of HEAD_DIM channels becomes H diag(sigma) x, H block-diagonal
     of ROTATION_BLOCK x ROTATION_BLOCK unnormalised Sylvester Hadamard matrices. A row is held by
     CHUNKS_PER_ROW consecutive lanes, lane `chunk` holding channels 8 * chunk .. 8 * chunk + 7.
     Needs HEAD_DIM and CHUNKS_PER_ROW. -->
constexpr bool SAGE2_ROTATE_QK = ${rotateQk?c};
constexpr int ROTATION_BLOCK = ${rotationBlock};   // channels per Hadamard block
static_assert(ROTATION_BLOCK >= 8 && HEAD_DIM % ROTATION_BLOCK == 0, "a Hadamard block spans whole lanes");
// Bit c % 32 of word c / 32: channel c is negated before the butterflies (Int8Fp8Layout's signs).
constexpr u32 SAGE2_ROTATION_SIGNS[HEAD_DIM / 32] = {<#list rotationSigns as w>${w}<#sep>, </#sep></#list>};

// The sign bits of a lane's 8 channels (bit e: channel 8 * chunk + e), once per thread.
__device__ __forceinline__ u32 sage2_rotation_signs(int chunk) {
    u32 word = 0u;
    #pragma unroll
    for (int w = 0; w < HEAD_DIM / 32; ++w) word = w == chunk / 4 ? SAGE2_ROTATION_SIGNS[w] : word;
    return (word >> (8 * (chunk % 4))) & 0xffu;
}

// x <- H diag(sigma) x: signs, then the butterflies with spans 1, 2, 4 inside the lane and 8 ..
// ROTATION_BLOCK / 2 across lanes (none for blocks of 8), in that order; each pair (a, b), a the lower
// channel, becomes (a + b, a - b) rounded to nearest, exactly as Sage2Reference.rotate does it.
// With blocks wider than 8 every lane of the warp must call it (shuffles).
__device__ __forceinline__ void sage2_rotate(float (&x)[8], int chunk, u32 signs) {
    if (!SAGE2_ROTATE_QK) return;
    #pragma unroll
    for (int e = 0; e < 8; ++e) x[e] = __uint_as_float(__float_as_uint(x[e]) ^ (((signs >> e) & 1u) << 31));
    #pragma unroll
    for (int span = 1; span < 8; span *= 2) {
        #pragma unroll
        for (int e = 0; e < 8; ++e) {
            if ((e & span) == 0) {
                const float a = x[e], b = x[e + span];
                x[e] = __fadd_rn(a, b);
                x[e + span] = __fsub_rn(a, b);
            }
        }
    }
    #pragma unroll
    for (int span = 1; span < ROTATION_BLOCK / 8; span *= 2) {
        const bool upper = (chunk & span) != 0;
        #pragma unroll
        for (int e = 0; e < 8; ++e) {
            const float other = __shfl_xor_sync(0xffffffffu, x[e], span);
            x[e] = upper ? __fsub_rn(other, x[e]) : __fadd_rn(x[e], other);
        }
    }
}

// Q's stored scale times this: R R^T = ROTATION_BLOCK I (a power of two, so the product is exact).
constexpr float SAGE2_ROTATION_UNSCALE = SAGE2_ROTATE_QK ? 1.f / ROTATION_BLOCK : 1.f;
