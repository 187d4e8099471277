package dev.sagejit.codegen;

/**
 * Version of the code generator. Part of every cache key and every generated file's header: bump it
 * whenever a template or the model it is rendered from changes meaning, so stale kernels are never
 * reused.
 */
public final class GeneratorVersion {
    public static final String VALUE = "0.1.0";

    private GeneratorVersion() {
    }
}
