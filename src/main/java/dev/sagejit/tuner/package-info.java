/**
 * Programmatic tile tuning: {@link dev.sagejit.tuner.Tuner} enumerates a spec's tile candidates,
 * prunes those that cannot work, compiles the rest in parallel, checks each against the FP64
 * reference, times them and records the fastest correct one in the tuning database
 * ({@link dev.sagejit.tune.TuningDatabase}) that the runtime consults on every call. A
 * {@link dev.sagejit.tuner.Lab} is what the tuner asks of a GPU ({@link dev.sagejit.tuner.GpuLab}
 * on a real one); tests pass their own.
 */
package dev.sagejit.tuner;
