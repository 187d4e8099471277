package dev.sagejit.cli;

import dev.sagejit.api.Layout;
import dev.sagejit.api.Precision;
import dev.sagejit.bench.BenchCase;
import java.util.List;
import picocli.CommandLine.Option;

/** The case grid of {@code bench} and {@code tune} (mixed in): shapes, masks and layout; precisions are each command's. */
final class CaseGrid {
    @Option(names = "--shapes", split = ",", defaultValue = "4x32x4096x128",
            description = "BxHxNxD or BxHqxHkvxNqxNkxD, comma-separated (default ${DEFAULT-VALUE}).")
    List<String> shapes;

    @Option(names = "--causal", defaultValue = "both", description = "0, 1 or both (default ${DEFAULT-VALUE}).")
    String causal;

    @Option(names = "--layout", defaultValue = "bhsd", description = "bhsd or bshd (default ${DEFAULT-VALUE}).")
    Layout layout;

    /** Every case of shapes x masks x precisions. */
    List<BenchCase> cases(List<Precision> precisions) {
        return BenchCase.grid(shapes, Converters.causalMasks(causal), precisions, layout);
    }
}
