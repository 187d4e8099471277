package dev.sagejit.compile;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.Comparator;
import java.util.Map;
import java.util.Optional;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;
import java.util.stream.Stream;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The on-disk half of {@link KernelCache}. One folder per entry under {@code <root>/kernels},
 * named {@code <name>_<arch>-<16 hex of digest>}, holding the image, {@code source.cu} and
 * {@code manifest.json}. Entries are written into a temp folder beside it, manifest last, then
 * renamed atomically; a reader trusts an entry only if its manifest parses and the image hash
 * matches. Builds of one key are serialised across processes by {@code <root>/locks/<digest>.lock}.
 */
final class DiskStore {
    private static final Logger LOG = LoggerFactory.getLogger(DiskStore.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int FORMAT = 1;
    /** FileChannel locks are per process; threads of this JVM also queue on one monitor per lock file. */
    private static final Map<Path, Object> JVM_LOCKS = new ConcurrentHashMap<>();

    private final Path kernels;
    private final Path locks;

    DiskStore(Path root) {
        this.kernels = root.resolve("kernels");
        this.locks = root.resolve("locks");
    }

    Path location() {
        return kernels;
    }

    /** Looks the key up, and on a miss builds it under the key's file lock, looking again first. */
    CompiledKernel getOrBuild(CacheKey key, KernelSource source, CompileOptions options,
            Supplier<CompiledKernel> build) throws IOException {
        Path dir = entryDir(key, source, options);
        Optional<CompiledKernel> hit = read(dir, key, source, options);
        if (hit.isPresent()) {
            return hit.get();
        }
        Files.createDirectories(locks);
        Path lockFile = locks.resolve(key.digest() + ".lock").toAbsolutePath();
        synchronized (JVM_LOCKS.computeIfAbsent(lockFile, p -> new Object())) {
            try (FileChannel ch = FileChannel.open(lockFile, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
                FileLock lock = ch.lock();
                try {
                    hit = read(dir, key, source, options); // another process may have built it meanwhile
                    if (hit.isPresent()) {
                        return hit.get();
                    }
                    CompiledKernel built = build.get();
                    write(dir, key, source, built);
                    return built;
                } finally {
                    lock.release();
                }
            }
        }
    }

    /** The folder of {@code key}: readable name plus the first 16 hex digits of its digest. */
    Path entryDir(CacheKey key, KernelSource source, CompileOptions options) {
        String stem = source.fileStem();
        String arch = options.arch().id();
        String readable = stem.endsWith(arch) ? stem : stem + "_" + arch;
        return kernels.resolve(readable + "-" + key.digest().substring(0, 16));
    }

    private Optional<CompiledKernel> read(Path dir, CacheKey key, KernelSource source, CompileOptions options) {
        Path manifestFile = dir.resolve("manifest.json");
        if (!Files.isDirectory(dir)) {
            return Optional.empty();
        }
        try {
            JsonNode m = JSON.readTree(manifestFile.toFile());
            if (m == null || !m.isObject() || !key.digest().equals(m.path("digest").asText())) {
                throw new IOException("manifest is missing, unreadable or for another key");
            }
            byte[] image = Files.readAllBytes(dir.resolve(options.output().fileName()));
            if (image.length != m.path("image_bytes").asLong(-1)
                    || !CacheKey.sha256(image).equals(m.path("image_sha256").asText())) {
                throw new IOException("image is " + image.length + " bytes and does not match its manifest hash");
            }
            JsonNode r = m.path("ptxas");
            var report = new PtxasReport(r.path("registers").asInt(), r.path("spill_store_bytes").asInt(),
                    r.path("spill_load_bytes").asInt(), r.path("shared_bytes").asInt(),
                    r.path("stack_frame_bytes").asInt(), r.path("constant_bytes").asInt());
            return Optional.of(new CompiledKernel(source.name(), source.entry(), options.arch(), options.output(),
                    image, report, m.path("log").asText(""), m.path("backend").asText(),
                    m.path("nvrtc_version").asText(), Duration.ofNanos(m.path("compile_nanos").asLong()), true));
        } catch (IOException | RuntimeException e) {
            LOG.warn("kernel cache entry {} is corrupt ({}); deleting it and recompiling", dir, e.getMessage());
            deleteTree(dir);
            return Optional.empty();
        }
    }

    private void write(Path dir, CacheKey key, KernelSource source, CompiledKernel k) {
        Path tmp = dir.resolveSibling(".tmp-" + dir.getFileName() + "-" + UUID.randomUUID());
        try {
            Files.createDirectories(tmp);
            Files.write(tmp.resolve(k.output().fileName()), k.image());
            Files.writeString(tmp.resolve("source.cu"), source.code(), StandardCharsets.UTF_8);
            JSON.writerWithDefaultPrettyPrinter().writeValue(tmp.resolve("manifest.json").toFile(),
                    manifest(key, source, k)); // last: an entry without it is never trusted
            try {
                Files.move(tmp, dir, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
                LOG.debug("{} was written by another process first; keeping theirs", dir);
                deleteTree(tmp);
            }
        } catch (AtomicMoveNotSupportedException e) {
            LOG.warn("cache folder {} cannot rename atomically; not caching {} on disk", kernels, source.name());
            deleteTree(tmp);
        } catch (IOException | RuntimeException e) {
            LOG.warn("could not write kernel cache entry {} ({}); continuing without it", dir, e.toString());
            deleteTree(tmp);
        }
    }

    private static ObjectNode manifest(CacheKey key, KernelSource source, CompiledKernel k) {
        ObjectNode m = JSON.createObjectNode();
        m.put("format", FORMAT);
        m.put("digest", key.digest());
        ObjectNode parts = m.putObject("key");
        key.parts().forEach(parts::put);
        m.put("name", k.name());
        m.put("entry", k.entry());
        m.put("arch", k.arch().name());
        m.put("output", k.output().name());
        m.put("image_file", k.output().fileName());
        m.put("image_bytes", k.image().length);
        m.put("image_sha256", CacheKey.sha256(k.image()));
        m.put("source_bytes", source.code().getBytes(StandardCharsets.UTF_8).length);
        ObjectNode r = m.putObject("ptxas");
        r.put("registers", k.report().registers());
        r.put("spill_store_bytes", k.report().spillStoreBytes());
        r.put("spill_load_bytes", k.report().spillLoadBytes());
        r.put("shared_bytes", k.report().sharedBytes());
        r.put("stack_frame_bytes", k.report().stackFrameBytes());
        r.put("constant_bytes", k.report().constantBytes());
        m.put("backend", k.backend());
        m.put("nvrtc_version", k.nvrtcVersion());
        m.put("compile_nanos", k.compileTime().toNanos());
        m.put("log", k.log());
        return m;
    }

    /** Entry folders (not temp folders) currently on disk. */
    private Stream<Path> entries() throws IOException {
        if (!Files.isDirectory(kernels)) {
            return Stream.empty();
        }
        try (var s = Files.list(kernels)) {
            return s.filter(Files::isDirectory).filter(p -> !p.getFileName().toString().startsWith(".tmp-"))
                    .toList().stream();
        }
    }

    CacheReport report() throws IOException {
        var list = entries().toList();
        long bytes = 0;
        for (Path dir : list) {
            try (var files = Files.walk(dir)) {
                bytes += files.filter(Files::isRegularFile).mapToLong(p -> p.toFile().length()).sum();
            }
        }
        return new CacheReport(list.size(), bytes, kernels);
    }

    int clear() throws IOException {
        var list = entries().toList();
        list.forEach(DiskStore::deleteTree);
        return list.size();
    }

    static void deleteTree(Path dir) {
        if (!Files.exists(dir)) {
            return;
        }
        try (var s = Files.walk(dir)) {
            s.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            LOG.warn("could not delete {}: {}", dir, e.toString());
        }
    }
}
