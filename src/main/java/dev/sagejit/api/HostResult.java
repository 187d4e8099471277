package dev.sagejit.api;

/**
 * Output of a host-array attention call: O in the input's layout and, when asked for, the FP32
 * log-sum-exp [B, H_q, N_q] (natural log; -inf for a row that sees no key).
 */
public record HostResult(float[] o, float[] lse) {
}
