<#-- A shared-memory tile of ROWS x HEAD_DIM 16-bit elements, rows of ROW_CHUNKS 16-byte chunks.
     Chunk c of row r sits at chunk (c ^ (r % 8)): ldmatrix reads 8 rows of one logical chunk from
     8 different bank groups, and 16-byte cp.async writes of one row stay contiguous. -->
__device__ __forceinline__ u32 sage_tile_offset(int row, int chunk) {
    return (u32)(row * ${rowBytes} + ((chunk ^ (row & 7)) << 4));
}

// Copies rows [row0, row0 + ROWS) of a [n, HEAD_DIM] global matrix with row stride `stride`
// (elements) into a swizzled tile; rows at or past n are zero-filled.
template <int ROWS>
__device__ __forceinline__ void sage_load_tile(u32 tile, const u16* __restrict__ src, i64 stride,
                                               int row0, int n, int tid) {
    #pragma unroll
    for (int it = 0; it < ROWS * ${rowChunks} / ${threads}; ++it) {
        const int idx = tid + it * ${threads};
        const int r = idx / ${rowChunks};
        const int c = idx % ${rowChunks};
        const bool valid = row0 + r < n;
        const u16* p = valid ? src + (i64)(row0 + r) * stride + c * 8 : src;
        sage_cp_async16(tile + sage_tile_offset(r, c), p, valid);
    }
}
