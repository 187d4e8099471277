package dev.sagejit.cli;

import dev.sagejit.api.Precision;
import dev.sagejit.spec.Arch;
import dev.sagejit.spec.TileConfig;
import picocli.CommandLine;
import picocli.CommandLine.ITypeConverter;

/** Option converters: each turns a parse failure into picocli's usage error (exit 2). */
final class Converters {
    private Converters() {
    }

    /** Runs a parser, turning its IllegalArgumentException into a usage error with the same message. */
    static <T> T guard(java.util.function.Supplier<T> parse) {
        try {
            return parse.get();
        } catch (IllegalArgumentException e) {
            throw new CommandLine.TypeConversionException(e.getMessage());
        }
    }

    static final class PrecisionConverter implements ITypeConverter<Precision> {
        @Override
        public Precision convert(String value) {
            return guard(() -> Precision.parse(value));
        }
    }

    static final class ArchConverter implements ITypeConverter<Arch> {
        @Override
        public Arch convert(String value) {
            return guard(() -> Arch.parse(value));
        }
    }

    /** Validates a tile key such as {@code m128n64w4s2} and keeps it as text. */
    static final class TilesConverter implements ITypeConverter<String> {
        @Override
        public String convert(String value) {
            return guard(() -> TileConfig.parse(value).key());
        }
    }

    /** The masks a {@code --causal} value asks for: 0 (non-causal), 1 (causal) or both. */
    static java.util.List<Boolean> causalMasks(String causal) {
        return switch (causal) {
            case "0", "false" -> java.util.List.of(false);
            case "1", "true" -> java.util.List.of(true);
            case "both" -> java.util.List.of(false, true);
            default -> throw new IllegalArgumentException("--causal must be 0, 1 or both, got '" + causal + "'");
        };
    }
}
