package dev.sagejit.codegen;

/** Version of the code generator; part of every kernel cache key, so bumping it invalidates the cache. */
public final class GeneratorVersion {
    public static final String VALUE = "0.1.0";

    private GeneratorVersion() {
    }
}
