package dev.sagejit.cli;

import dev.sagejit.api.Layout;
import dev.sagejit.api.SageException;
import dev.sagejit.interop.Npy;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Q, K and V for {@code run} (and dO for {@code run --backward}): generated from a shape and an input
 * family, or read from .npy files.
 */
record RunInputs(AttentionProblem problem, Layout layout, HostTensor q, HostTensor k, HostTensor v) {

    /** Random inputs of {@code family} for a {@code BxHxNxD} or {@code BxHqxHkvxNqxNkxD} shape. */
    static RunInputs generate(String shape, String family, long seed, Layout layout, boolean causal, double scale) {
        var p = AttentionProblem.parse(shape, causal, scale);
        var qkv = Inputs.generate(family, p, layout, seed);
        return new RunInputs(p, layout, qkv.q(), qkv.k(), qkv.v());
    }

    /** Inputs read from .npy files of float32/float16/float64, 4-d in {@code layout} order. */
    static RunInputs read(Path qFile, Path kFile, Path vFile, Layout layout, boolean causal, double scale) {
        HostTensor q = tensor("--q", qFile, layout);
        HostTensor k = tensor("--k", kFile, layout);
        HostTensor v = tensor("--v", vFile, layout);
        if (k.batch() != q.batch() || !Arrays.equals(k.shape(), v.shape()) || k.headDim() != q.headDim()) {
            throw new SageException.InvalidInput("shapes do not fit attention: q " + Arrays.toString(q.shape())
                    + ", k " + Arrays.toString(k.shape()) + ", v " + Arrays.toString(v.shape()) + " in " + layout
                    + " order; k and v must match, and share batch and head dim with q (check --layout)");
        }
        var p = new AttentionProblem(q.batch(), q.heads(), k.heads(), q.seq(), k.seq(), q.headDim(), causal, scale);
        return new RunInputs(p, layout, q, k, v);
    }

    /**
     * The upstream gradient dO of {@code run --backward}: read from {@code file} (shaped like Q, in
     * this layout), or Gaussian from {@code seed + 1} when there is no file.
     */
    HostTensor gradient(Path file, long seed) {
        if (file == null) {
            return Inputs.gradient(problem, layout, seed + 1);
        }
        HostTensor dO = tensor("--do", file, layout);
        if (!Arrays.equals(dO.shape(), q.shape())) {
            throw new SageException.InvalidInput("--do " + file + " has shape " + Arrays.toString(dO.shape())
                    + "; dO must be shaped like Q, " + Arrays.toString(q.shape()) + " in " + layout + " order");
        }
        return dO;
    }

    private static HostTensor tensor(String option, Path file, Layout layout) {
        Npy.NpyArray a;
        try {
            a = Npy.read(file);
        } catch (IOException e) {
            throw new SageException.InvalidInput(option + " " + file + " could not be read: " + e.getMessage());
        }
        long[] s = a.shape();
        if (s.length != 4) {
            throw new SageException.InvalidInput(option + " " + file + " has shape " + Arrays.toString(s)
                    + "; expected 4 dimensions (" + (layout == Layout.BHSD ? "B, H, N, D" : "B, N, H, D") + ")");
        }
        if (!a.dtype().equals("<f4") && !a.dtype().equals("<f2") && !a.dtype().equals("<f8")) {
            throw new SageException.InvalidInput(option + " " + file + " holds " + a.dtype()
                    + "; save it as float32 or float16 (numpy: x.astype(np.float32))");
        }
        int b = (int) s[0];
        int h = (int) (layout == Layout.BHSD ? s[1] : s[2]);
        int n = (int) (layout == Layout.BHSD ? s[2] : s[1]);
        return new HostTensor(a.asFloats(), b, h, n, (int) s[3], layout);
    }
}
