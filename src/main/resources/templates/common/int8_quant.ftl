<#-- INT8 quantizer helpers shared by the quantizer modules (int8-fp8 and SageBwd): raw 16-byte loads
     of 16-bit rows, the INT8 scale and code rules of docs/int8-fp8-quantization.md, and the kmean
     table. Needs HEAD_DIM, THREADS, CHUNKS_PER_ROW and SAGE_INT8_MAX from the module. -->
// The raw 16 bytes of chunk `c` (row c / CHUNKS_PER_ROW, columns 8 * (c % CHUNKS_PER_ROW)..). Rows at
// or past n load row n - 1 instead (n >= 1; sage_unpack zeroes them), so loads are unconditional
// and a thread issues all of its loads before it uses any (ncu: the quantizers were waiting on one
// load at a time).
__device__ __forceinline__ u32x4 sage_load_raw(const u16* __restrict__ src, i64 sn, int row0, int n, int c) {
    const int row = min(row0 + c / CHUNKS_PER_ROW, n - 1);
    return *reinterpret_cast<const u32x4*>(src + (i64)row * sn + (c % CHUNKS_PER_ROW) * 8);
}

// A raw chunk as 8 floats, or zeros when `valid` is false.
__device__ __forceinline__ void sage_unpack(float (&x)[8], const u32x4& v, bool valid) {
    const u32 w[4] = {v.x, v.y, v.z, v.w};
    #pragma unroll
    for (int e = 0; e < 4; ++e) {
        x[2 * e] = valid ? sage_to_float((u16)(w[e] & 0xffffu)) : 0.f;
        x[2 * e + 1] = valid ? sage_to_float((u16)(w[e] >> 16)) : 0.f;
    }
}

// Hides a raw chunk from common-subexpression elimination, so a second pass recomputes its floats
// from these 16 bytes instead of keeping the first pass's live (ptxas did for the rotated K chunks of
// sage2_quant_k: 96 registers against 72).
__device__ __forceinline__ void sage_opaque(u32x4& v) {
    asm volatile("" : "+r"(v.x), "+r"(v.y), "+r"(v.z), "+r"(v.w));
}

// Whether chunk `c` of a tile starting at row0 lies in a row before n.
__device__ __forceinline__ bool sage_chunk_valid(int row0, int n, int c) { return row0 + c / CHUNKS_PER_ROW < n; }

// |x| as ordered int bits: atomicMax over them is a float max where NaN and Inf win.
__device__ __forceinline__ int sage_abs_bits(float x) { return __float_as_int(fabsf(x)); }

// scale and 1/scale of an INT8 group from its abs-max bits (doc: zero -> 0/0, non-finite -> NaN/0).
__device__ __forceinline__ void sage_int8_scale(int amax_bits, float& scale, float& inv) {
    const float amax = __int_as_float(amax_bits);
    if (amax_bits >= 0x7f800000) { scale = __int_as_float(0x7fc00000); inv = 0.f; }
    else if (amax_bits == 0) { scale = 0.f; inv = 0.f; }
    else { scale = __fdiv_rn(amax, (float)SAGE_INT8_MAX); inv = fminf(__fdiv_rn((float)SAGE_INT8_MAX, amax), SAGE_FLT_MAX); }
}

// x * inv, or 0 for a group whose scale is 0 or NaN (inv == 0): its codes are 0, NaN inputs included.
__device__ __forceinline__ float sage_scaled(float x, float inv) { return inv == 0.f ? 0.f : __fmul_rn(x, inv); }

// Four INT8 codes: the exact product x * inv rounded once, ties to even (docs), by one FMA each:
// fma(x, inv, 1.5 * 2^23) holds the integer in its low bits and the code's two's complement in its
// low byte (|x * inv| <= 127, no clamp needed); byte_perm gathers the four low bytes. A group with
// inv == 0 (scale 0 or NaN) gets codes 0 whatever its values.
__device__ __forceinline__ u32 sage_int8x4(const float (&x)[8], int off, float inv) {
    u32 b[4];
    #pragma unroll
    for (int e = 0; e < 4; ++e) b[e] = __float_as_uint(__fmaf_rn(x[off + e], inv, SAGE_ROUND_MAGIC));
    const u32 codes = __byte_perm(__byte_perm(b[0], b[1], 0x0040), __byte_perm(b[2], b[3], 0x0040), 0x5410);
    return inv == 0.f ? 0u : codes;  // a select, not a branch per word
}
// A chunk's eight INT8 codes, in channel order (one 8-byte store).
__device__ __forceinline__ uint2 sage_int8x8(const float (&x)[8], float inv) {
    return make_uint2(sage_int8x4(x, 0, inv), sage_int8x4(x, 4, inv));
}

// kmean = ksum / nk per channel into shared memory, one division per channel per block (0 when
// nk = 0); the caller syncs before reading it.
__device__ __forceinline__ void sage_kmean_table(float* s_kmean, const float* __restrict__ ksum, int nk) {
    for (int ch = threadIdx.x; ch < HEAD_DIM; ch += THREADS) s_kmean[ch] = nk > 0 ? __fdiv_rn(ksum[ch], (float)nk) : 0.f;
}
