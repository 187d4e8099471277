<#-- FP8 E4M3 packing (sm_89+): four floats to one register of four E4M3 bytes, byte 0 lowest,
     rounded to nearest even and saturated to +-448 (cvt.rn.satfinite; NaN stays NaN). -->
__device__ __forceinline__ u32 sage_fp8x4(float b0, float b1, float b2, float b3) {
    u32 r;
    asm("{\n .reg .b16 lo, hi;\n"
        " cvt.rn.satfinite.e4m3x2.f32 lo, %2, %1;\n"
        " cvt.rn.satfinite.e4m3x2.f32 hi, %4, %3;\n"
        " mov.b32 %0, {lo, hi};\n}\n"
        : "=r"(r) : "f"(b0), "f"(b1), "f"(b2), "f"(b3));
    return r;
}

// E4M3 code of one float (the same rounding; the low byte of the e4m3x2 pair).
__device__ __forceinline__ u32 sage_e4m3(float x) {
    unsigned short r;
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;\n" : "=h"(r) : "f"(0.f), "f"(x));
    return r & 0xFFu;
}
