<#-- NVFP4 block quantization in software, bit for bit as docs/nvfp4-quantization.md specifies and
     dev.sagejit.reference.Nvfp4Reference emulates (every architecture: sm_90a has no e2m1 cvt).
     Needs fp8.ftl (sage_e4m3). -->
constexpr float SAGE_E2M1_MAX = ${e2m1Max?c}.0f;  // the largest E2M1 magnitude
constexpr int SAGE_FP4_BLOCK = ${blockSize};  // values per scale (1 x 16 blocks, E4M3 scales)
constexpr unsigned SAGE_E4M3_NAN = ${e4m3Nan}u;   // the scale code of a block with NaN or Inf

// E2M1 code of x (not NaN): round to nearest, ties to the even code, saturating at +-6, sign kept
// for results that round to zero. The magnitude index counts the midpoints x passes; at a midpoint
// it moves up only from an odd index (the even code wins the tie).
__device__ __forceinline__ u32 sage_e2m1(float x) {
    const float a = fabsf(x);
    const float mid[7] = {0.25f, 0.75f, 1.25f, 1.75f, 2.5f, 3.5f, 5.f};
    u32 m = 0;
    #pragma unroll
    for (int i = 0; i < 7; ++i) m += (a > mid[i] || (a == mid[i] && (i & 1))) ? 1u : 0u;
    return ((__float_as_uint(x) >> 31) << 3) | m;
}

// The value of an E4M3 code (not NaN): subnormals m * 2^-9, normals (1 + m/8) * 2^(e - 7).
__device__ __forceinline__ float sage_e4m3_value(u32 code) {
    const u32 e = (code >> 3) & 0xFu, m = code & 7u;
    const float v = e == 0 ? (float)m * 0.001953125f : __uint_as_float(((e + 120u) << 23) | (m << 20));
    return (code & 0x80u) ? -v : v;
}

// One block of SAGE_FP4_BLOCK values: its scale code and the 4-bit codes packed low nibble first
// (element 2i in bits 8i..8i+3). amax NaN or infinite: scale 0x7F (NaN) and codes 0; a scale that
// decodes to 0 gives codes 0. Divisions are IEEE (div.rn), as the document requires.
__device__ __forceinline__ u64 sage_fp4_block(const float (&x)[SAGE_FP4_BLOCK], u32& scale_code) {
    float amax = 0.f;
    bool finite = true;
    #pragma unroll
    for (int i = 0; i < SAGE_FP4_BLOCK; ++i) {
        amax = fmaxf(amax, fabsf(x[i]));
        finite = finite && fabsf(x[i]) <= SAGE_FLT_MAX;  // false for NaN and infinities
    }
    if (!finite) {
        scale_code = SAGE_E4M3_NAN;
        return 0ull;
    }
    scale_code = sage_e4m3(__fdiv_rn(amax, SAGE_E2M1_MAX));
    const float s = sage_e4m3_value(scale_code);
    if (s == 0.f) return 0ull;
    u64 packed = 0ull;
    #pragma unroll
    for (int i = 0; i < SAGE_FP4_BLOCK; ++i) packed |= (u64)sage_e2m1(__fdiv_rn(x[i], s)) << (4 * i);
    return packed;
}
