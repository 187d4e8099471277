package dev.sagejit.compile;

import java.nio.file.Path;

/**
 * What the kernel cache holds.
 *
 * @param entries    compiled kernels stored (on disk, or in memory when the disk cache is off)
 * @param totalBytes bytes the disk entries take (0 when the disk cache is off)
 * @param location   folder of the disk entries
 */
public record CacheReport(int entries, long totalBytes, Path location) {
}
