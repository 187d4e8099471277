<#-- Header-free scalar and vector types: NVRTC has no <cstdint> or cuda_bf16.h built in. -->
typedef unsigned int u32;
typedef unsigned short u16;
typedef long long i64;
typedef unsigned long long u64;
struct __align__(16) u32x4 { u32 x, y, z, w; };
#define SAGE_NEG_INF __int_as_float(0xff800000)
#define SAGE_LN2 0.69314718055994530942f
#define SAGE_LOG2E 1.44269504088896340736f
#define SAGE_FLT_MAX 3.40282347e38f
// 1.5 * 2^23: a float of magnitude below 2^22 added to it leaves the integer rounded to nearest even
// in the low mantissa bits (the sum's bits are SAGE_ROUND_MAGIC_BITS + that integer).
#define SAGE_ROUND_MAGIC 12582912.f
#define SAGE_ROUND_MAGIC_BITS 0x4B400000
// The smallest normal float: stands in for a score scale of 0 (rows past the end), so masked keys
// (-inf) stay -inf and not NaN.
#define SAGE_TINY 1.17549435e-38f
