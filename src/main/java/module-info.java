/**
 * sagejit: quantized attention (SageAttention2/3) with CUDA kernels generated, compiled and cached
 * at run time. Applications see only the API packages: {@link dev.sagejit.api} (the {@link
 * dev.sagejit.api.SageAttention} facade and its options and tensors), {@link dev.sagejit.runtime}
 * (GPUs, streams and device memory), {@link dev.sagejit.interop} (DLPack, safetensors, .npy) and
 * {@link dev.sagejit.reference} (the FP64 CPU reference). Code generation, compilation, tuning,
 * benchmarks and the CLI stay inside the module. Run with {@code
 * --enable-native-access=dev.sagejit,jcuda} (sagejit calls the CUDA driver and NVRTC through the FFM
 * API; JCuda loads its native libraries).
 */
@SuppressWarnings("requires-automatic") // JCuda and FreeMarker ship no module descriptor
module dev.sagejit {
    requires jcuda;
    requires freemarker;
    requires info.picocli;
    requires com.fasterxml.jackson.databind;
    requires org.slf4j;

    exports dev.sagejit.api;
    exports dev.sagejit.interop;
    exports dev.sagejit.reference;
    exports dev.sagejit.runtime;

    // picocli sets the annotated option fields of the commands reflectively.
    opens dev.sagejit.cli to info.picocli;
}
