import dev.sagejit.api.AttentionOptions;
import dev.sagejit.api.HostQkv;
import dev.sagejit.api.HostResult;
import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.api.SageAttention;
import dev.sagejit.api.SageException;
import dev.sagejit.interop.Safetensors;
import dev.sagejit.reference.AttentionProblem;
import dev.sagejit.reference.CpuAttention;
import dev.sagejit.reference.HostTensor;
import dev.sagejit.reference.Inputs;
import dev.sagejit.reference.Metrics;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.Map;

/**
 * A pipeline's use of sagejit: Q, K, V from a safetensors file (tensors "q", "k", "v", [B, H, N, D],
 * BF16/F16/F32), attention in two precision modes, and each mode's error against FP64 and time.
 * The file is created with Gaussian inputs (B1 H8 N2048 D128) if it does not exist.
 *
 *   java --enable-native-access=ALL-UNNAMED -cp "target/sagejit-0.1.0-SNAPSHOT.jar:target/lib/*" \
 *       examples/SafetensorsAttention.java qkv.safetensors [bf16,int8-fp8]
 *
 * Exit codes: 0 done, 1 a mode's output is not finite, 2 no GPU (or other setup problem).
 */
public final class SafetensorsAttention {
    public static void main(String[] args) throws Exception {
        Path file = Path.of(args.length > 0 ? args[0] : "qkv.safetensors");
        String[] modes = (args.length > 1 ? args[1] : "bf16,int8-fp8").split(",");
        if (!Files.exists(file)) {
            var p = AttentionProblem.mha(1, 8, 2048, 128, false);
            var in = Inputs.generate(Inputs.GAUSSIAN, p, Layout.BHSD, 7);
            long[] shape = {1, 8, 2048, 128};
            Safetensors.write(file, Map.of(
                    "q", Safetensors.Tensor.ofHalfs("q", "BF16", shape, in.q().data()),
                    "k", Safetensors.Tensor.ofHalfs("k", "BF16", shape, in.k().data()),
                    "v", Safetensors.Tensor.ofHalfs("v", "BF16", shape, in.v().data())), Map.of());
            System.out.println("wrote " + file + " (Gaussian Q, K, V, B1 H8 N2048 D128, BF16)");
        }
        var tensors = Safetensors.read(file);
        long[] qs = tensors.get("q").shape(), ks = tensors.get("k").shape();
        int b = (int) qs[0], hq = (int) qs[1], nq = (int) qs[2], d = (int) qs[3], hkv = (int) ks[1], nk = (int) ks[2];
        float[] q = tensors.get("q").toFloats(), k = tensors.get("k").toFloats(), v = tensors.get("v").toFloats();
        System.out.printf(Locale.ROOT, "%s: q [%d, %d, %d, %d], k/v [%d, %d, %d, %d]%n", file, b, hq, nq, d, b, hkv, nk, d);

        SageAttention sage;
        try {
            sage = SageAttention.open();
        } catch (SageException.Unsupported e) {
            System.out.println("cannot run attention here: " + e.getMessage());
            System.exit(2);
            return;
        }
        try (sage) {
            var p = new AttentionProblem(b, hq, hkv, nq, nk, d, false);
            var input = new HostQkv(Layout.BHSD, b, hq, hkv, nq, nk, d, q, k, v);
            int status = 0;
            for (String mode : modes) {
                var opts = AttentionOptions.builder().precision(Precision.parse(mode)).build();
                var t = opts.precision().inputType();
                sage.forward(opts, input); // first call: compile or load the kernels
                long start = System.nanoTime();
                HostResult out = sage.forward(opts, input);
                double ms = (System.nanoTime() - start) / 1e6;
                // The FP64 reference on the inputs as the mode sees them (rounded to its 16-bit type).
                var rows = CpuAttention.sampleRows(p, 64);
                var ref = CpuAttention.forwardRows(p, new HostTensor(q, b, hq, nq, d, Layout.BHSD).roundTo(t),
                        new HostTensor(k, b, hkv, nk, d, Layout.BHSD).roundTo(t),
                        new HostTensor(v, b, hkv, nk, d, Layout.BHSD).roundTo(t), rows);
                var e = Metrics.output(new HostTensor(out.o(), b, hq, nq, d, Layout.BHSD), ref, p);
                System.out.printf(Locale.ROOT, "%-14s cosine %.5f  rel L1 %.4f  (%d rows vs FP64)  %.2f ms per call"
                        + " (host copies included)%n", mode, e.cosine(), e.relL1(), rows.length, ms);
                status |= e.finite() ? 0 : 1;
            }
            System.exit(status);
        }
    }
}
