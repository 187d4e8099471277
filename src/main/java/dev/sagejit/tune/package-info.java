/**
 * The storage half of the autotuner: the best tile config measured for each kernel spec and shape
 * bucket on one device, persisted per device under {@code <cacheDir>/tuning}.
 *
 * <p>{@link dev.sagejit.tune.TuningDatabase} holds the records; {@link dev.sagejit.tune.DeviceFingerprint}
 * names the device a file belongs to and decides which records are stale; {@link
 * dev.sagejit.tune.ShapeBucket} maps a problem size to the bucket a tuned config is filed under.
 */
package dev.sagejit.tune;
