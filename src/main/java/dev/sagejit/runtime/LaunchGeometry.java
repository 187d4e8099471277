package dev.sagejit.runtime;

import dev.sagejit.api.SageException;

/**
 * Grid, block and dynamic shared memory of one launch, checked against CUDA's hardware limits (all
 * architectures sagejit targets share them) when constructed.
 *
 * @param gridX            blocks in x, 1 .. 2^31 - 1
 * @param gridY            blocks in y, 1 .. 65535
 * @param gridZ            blocks in z, 1 .. 65535
 * @param blockX           threads in x, 1 .. 1024
 * @param blockY           threads in y, 1 .. 1024
 * @param blockZ           threads in z, 1 .. 64
 * @param dynamicSmemBytes dynamic shared memory per block, >= 0
 */
public record LaunchGeometry(int gridX, int gridY, int gridZ, int blockX, int blockY, int blockZ,
        int dynamicSmemBytes) {

    public static final int MAX_GRID_YZ = 65535;
    public static final int MAX_THREADS_PER_BLOCK = 1024;
    public static final int MAX_BLOCK_Z = 64;

    public LaunchGeometry {
        require(gridX >= 1, "gridX must be >= 1, got " + gridX);
        require(gridY >= 1 && gridY <= MAX_GRID_YZ, "gridY must be in 1.." + MAX_GRID_YZ + ", got " + gridY
                + " (fold the excess into gridX)");
        require(gridZ >= 1 && gridZ <= MAX_GRID_YZ, "gridZ must be in 1.." + MAX_GRID_YZ + ", got " + gridZ
                + " (fold the excess into gridX)");
        require(blockX >= 1 && blockX <= MAX_THREADS_PER_BLOCK, "blockX must be in 1..1024, got " + blockX);
        require(blockY >= 1 && blockY <= MAX_THREADS_PER_BLOCK, "blockY must be in 1..1024, got " + blockY);
        require(blockZ >= 1 && blockZ <= MAX_BLOCK_Z, "blockZ must be in 1..64, got " + blockZ);
        long threads = (long) blockX * blockY * blockZ;
        require(threads <= MAX_THREADS_PER_BLOCK, "a block may have at most 1024 threads, got " + blockX + " x "
                + blockY + " x " + blockZ + " = " + threads);
        require(dynamicSmemBytes >= 0, "dynamic shared memory must be >= 0, got " + dynamicSmemBytes);
    }

    /** A 1-D launch: {@code blocks} blocks of {@code threads} threads. */
    public static LaunchGeometry linear(int blocks, int threads, int dynamicSmemBytes) {
        return new LaunchGeometry(blocks, 1, 1, threads, 1, 1, dynamicSmemBytes);
    }

    /** A 1-D launch with enough blocks of {@code threads} threads to cover {@code n} items. */
    public static LaunchGeometry cover(long n, int threads) {
        require(n >= 1, "need at least one item to cover, got " + n);
        require(threads >= 1, "threads must be >= 1, got " + threads);
        long blocks = (n + threads - 1) / threads;
        require(blocks <= Integer.MAX_VALUE, n + " items in blocks of " + threads + " need " + blocks
                + " blocks, more than gridX allows");
        return linear((int) blocks, threads, 0);
    }

    /** A copy with another dynamic shared memory size. */
    public LaunchGeometry withDynamicSmem(int bytes) {
        return new LaunchGeometry(gridX, gridY, gridZ, blockX, blockY, blockZ, bytes);
    }

    public int threadsPerBlock() {
        return blockX * blockY * blockZ;
    }

    public long blocks() {
        return (long) gridX * gridY * gridZ;
    }

    private static void require(boolean ok, String message) {
        if (!ok) {
            throw new SageException.InvalidInput("invalid launch geometry: " + message);
        }
    }

    @Override
    public String toString() {
        return "grid(" + gridX + "," + gridY + "," + gridZ + ") block(" + blockX + "," + blockY + "," + blockZ
                + ") smem " + dynamicSmemBytes;
    }
}
