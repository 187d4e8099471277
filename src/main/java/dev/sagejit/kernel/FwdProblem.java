package dev.sagejit.kernel;

import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.DeviceTensor;
import dev.sagejit.api.SageException.InvalidInput;
import dev.sagejit.api.SageException.Unsupported;

/**
 * One forward attention call on device tensors, validated on construction so that nothing invalid
 * is ever launched: shapes agree, dtypes match the precision, H_q is a multiple of H_kv, strides and
 * addresses allow 16-byte vector access, sizes fit the launch grid.
 *
 * @param options    what to compute
 * @param q          [B, H_q, N_q, D]
 * @param k          [B, H_kv, N_k, D]
 * @param v          [B, H_kv, N_k, D]
 * @param o          [B, H_q, N_q, D], written
 * @param lseAddress device address of an FP32 [B, H_q, N_q] buffer, or 0 when options.lse() is false
 */
public record FwdProblem(AttentionOptions options, DeviceTensor q, DeviceTensor k, DeviceTensor v, DeviceTensor o,
        long lseAddress) {
    /** CUDA's limit on gridDim.y and gridDim.z, which carry heads and batch. */
    static final int MAX_GRID_YZ = 65535;

    public FwdProblem {
        // The type every tensor must share: q's when the precision takes it (AUTO takes BF16 and FP16).
        var t = q != null && options.precision().accepts(q.dtype()) ? q.dtype() : options.precision().inputType();
        check(q, "q", t);
        check(k, "k", t);
        check(v, "v", t);
        check(o, "o", t);
        if (q.headDim() != 64 && q.headDim() != 128) {
            throw new Unsupported("head dim " + q.headDim() + " is not supported; use 64 or 128 (pad larger heads"
                    + " or split them)");
        }
        if (k.headDim() != q.headDim() || v.headDim() != q.headDim() || o.headDim() != q.headDim()) {
            throw new InvalidInput("head dims differ: q " + q.headDim() + ", k " + k.headDim() + ", v " + v.headDim()
                    + ", o " + o.headDim());
        }
        if (k.batch() != q.batch() || v.batch() != q.batch() || o.batch() != q.batch()) {
            throw new InvalidInput("batch sizes differ: q " + q.batch() + ", k " + k.batch() + ", v " + v.batch()
                    + ", o " + o.batch());
        }
        if (v.heads() != k.heads() || v.seq() != k.seq()) {
            throw new InvalidInput("k and v must have the same heads and length: k " + k.heads() + "x" + k.seq()
                    + ", v " + v.heads() + "x" + v.seq());
        }
        if (o.heads() != q.heads() || o.seq() != q.seq()) {
            throw new InvalidInput("o must be shaped like q: q " + q.heads() + "x" + q.seq() + ", o " + o.heads()
                    + "x" + o.seq());
        }
        if (k.heads() == 0 || q.heads() % k.heads() != 0) {
            throw new InvalidInput("H_q (" + q.heads() + ") must be a positive multiple of H_kv (" + k.heads()
                    + ") for grouped-query attention");
        }
        if (q.heads() > MAX_GRID_YZ || q.batch() > MAX_GRID_YZ) {
            throw new Unsupported("batch " + q.batch() + " and H_q " + q.heads() + " must each be at most "
                    + MAX_GRID_YZ + "; split the call");
        }
        if (options.lse() && lseAddress == 0 && q.seq() > 0) {
            throw new InvalidInput("options ask for LSE but no LSE buffer was given");
        }
        if (lseAddress % 4 != 0) {
            throw new InvalidInput("LSE buffer address 0x" + Long.toHexString(lseAddress) + " is not 4-byte aligned");
        }
    }

    private static void check(DeviceTensor x, String name, dev.sagejit.api.DType want) {
        if (x == null) {
            throw new InvalidInput(name + " is null");
        }
        if (x.dtype() != want) {
            throw new InvalidInput(name + " is " + x.dtype() + " but the precision needs " + want
                    + " (q, k, v and o share one dtype)");
        }
        if (x.address() == 0 && x.extentBytes() > 0) {
            throw new InvalidInput(name + " has a null device address");
        }
        if (x.address() % 16 != 0) {
            throw new InvalidInput(name + " address 0x" + Long.toHexString(x.address())
                    + " is not 16-byte aligned; sagejit loads rows with 16-byte vector copies");
        }
        for (int i = 0; i < 3; i++) {
            long s = x.strides()[i];
            if (s < 0 || s % 8 != 0) {
                throw new InvalidInput(name + " stride " + java.util.Arrays.toString(x.strides()) + " must be"
                        + " non-negative multiples of 8 elements (16 bytes); make the tensor contiguous");
            }
        }
        if (x.seqStride() < x.headDim() && x.seq() > 1) {
            throw new InvalidInput(name + " rows overlap: sequence stride " + x.seqStride() + " < head dim "
                    + x.headDim());
        }
    }

    /** Bytes of the FP32 LSE buffer [B, H_q, N_q] of a call with query tensor {@code q}. */
    public static long lseBytes(DeviceTensor q) {
        return (long) Float.BYTES * q.batch() * q.heads() * q.seq();
    }

    /** This problem with {@link dev.sagejit.api.Precision#AUTO} resolved for {@code arch} (else itself). */
    public FwdProblem resolved(dev.sagejit.spec.Arch arch) {
        var p = options.precision();
        return p == dev.sagejit.api.Precision.AUTO
                ? new FwdProblem(options.withPrecision(arch.resolve(p, q.dtype())), q, k, v, o, lseAddress) : this;
    }

    public int batch() {
        return q.batch();
    }

    public int heads() {
        return q.heads();
    }

    public int group() {
        return q.heads() / k.heads();
    }

    /** FLOPs of the two matmuls, 4 B H Nq Nk D, halved when causal (the convention of SPEC.md section 5). */
    public double flops() {
        double f = 4.0 * q.batch() * q.heads() * q.seq() * (double) k.seq() * q.headDim();
        return options.causal() ? f / 2 : f;
    }
}
