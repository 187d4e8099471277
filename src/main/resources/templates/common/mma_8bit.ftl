<#-- 8-bit mma.sync (m16n8k32): INT8 with exact INT32 accumulation (sm_80+) and FP8 E4M3 with FP32
     accumulation (sm_89+). Fragments per warp (g = lane / 4, t = lane % 4): A register r holds row
     g + 8 (r & 1), bytes 16 (r >> 1) + 4t..+3 of K; B register r holds column g, bytes 16r + 4t..+3;
     C/D the (g, 2t) pairs of rows g and g + 8, as for the 16-bit m16n8k16. -->
__device__ __forceinline__ void sage_mma_s8(int (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9},"
                 " {%0, %1, %2, %3};\n"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void sage_mma_e4m3(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9},"
                 " {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Byte offset of 16-byte chunk `chunk` of row `row` in a swizzled tile of ROW_BYTES-byte rows (128
// or 64): the 8 rows an ldmatrix reads at one logical chunk land in 8 different bank groups.
template <int ROW_BYTES>
__device__ __forceinline__ u32 sage_swz(int row, int chunk) {
    return ROW_BYTES == 128 ? (u32)(row * 128 + ((chunk ^ (row & 7)) << 4))
                            : (u32)(row * ROW_BYTES + ((chunk ^ ((row >> 1) & 3)) << 4));
}

// Copies rows [row0, row0 + ROWS) of a [n][ROW_BYTES] byte matrix (row pitch `pitch` bytes) into a
// swizzled tile with 16-byte cp.async; rows at or past n are zero-filled.
template <int ROWS, int ROW_BYTES, int THREADS>
__device__ __forceinline__ void sage_load_tile8(u32 tile, const unsigned char* __restrict__ src, i64 pitch, int row0,
                                                int n, int tid) {
    constexpr int CHUNKS = ROW_BYTES / 16;
    #pragma unroll
    for (int it = 0; it < (ROWS * CHUNKS + THREADS - 1) / THREADS; ++it) {
        const int idx = tid + it * THREADS;
        if (ROWS * CHUNKS % THREADS != 0 && idx >= ROWS * CHUNKS) break;
        const int r = idx / CHUNKS;
        const int c = idx % CHUNKS;
        const bool valid = row0 + r < n;
        const unsigned char* p = valid ? src + (i64)(row0 + r) * pitch + c * 16 : src;
        sage_cp_async16(tile + sage_swz<ROW_BYTES>(r, c), p, valid);
    }
}

// Copies byte columns [col0, col0 + COL_BYTES) of the ROWS rows of a row-major byte matrix (row
// pitch `pitch`, valid columns < ncols, a multiple of 16) into a swizzled [ROWS][COL_BYTES] tile;
// chunks at or past ncols are zero-filled. Used for V^T blocks of keys.
template <int ROWS, int COL_BYTES, int THREADS>
__device__ __forceinline__ void sage_load_cols8(u32 tile, const unsigned char* __restrict__ src, i64 pitch, int col0,
                                                int ncols, int tid) {
    constexpr int CHUNKS = COL_BYTES / 16;
    #pragma unroll
    for (int it = 0; it < (ROWS * CHUNKS + THREADS - 1) / THREADS; ++it) {
        const int idx = tid + it * THREADS;
        if (ROWS * CHUNKS % THREADS != 0 && idx >= ROWS * CHUNKS) break;
        const int r = idx / CHUNKS;
        const int c = idx % CHUNKS;
        const bool valid = col0 + c * 16 < ncols;
        const unsigned char* p = valid ? src + (i64)r * pitch + col0 + c * 16 : src;
        sage_cp_async16(tile + sage_swz<COL_BYTES>(r, c), p, valid);
    }
}
