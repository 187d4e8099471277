package dev.sagejit.tune;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sagejit.util.Knobs;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Set;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tuned tile configs of one device, persisted as one JSON file per device under
 * {@code <cacheDir>/tuning} and shared by every thread and process using that folder.
 *
 * <p>The file, named by {@link DeviceFingerprint#fileName()}, holds
 * <pre>{@code
 * { "format": 1,
 *   "fingerprint": { "gpu_name": ..., "arch": ..., "sm_count": ..., "driver_version": ...,
 *                    "nvrtc_version": ..., "generator_version": ... },
 *   "records": [ { "spec": ..., "bucket": ..., "tiles": ..., "median_ms": ..., "tops": ...,
 *                  "default_median_ms": ... (optional), "measured_at": ..., "run": ...,
 *                  "driver_version": ..., "nvrtc_version": ..., "generator_version": ... }, ... ] }
 * }</pre>
 * The document's fingerprint is that of its last writer; each record keeps the driver, NVRTC and
 * generator versions it was measured under. A record whose versions differ from this database's
 * fingerprint is stale: {@link #lookup} ignores it (with a one-time INFO notice) but it stays in
 * the file until a new measurement for its spec and bucket replaces it.
 *
 * <p>{@link #lookup} is meant for every launch: it answers from memory and looks at the file at
 * most once per {@code recheck} interval (one {@code stat}), re-reading it only when its identity,
 * size or modification time changed. {@link #record} reads, merges and rewrites the file under an
 * exclusive lock on the sibling {@code <file>.lock} (threads of one JVM also queue on a monitor,
 * since file locks are per process), writing a temp file in the same folder and renaming it over
 * the old one, so readers never see a half-written file and no writer loses another's records.
 *
 * <p>A file that is not valid JSON, has another format version, or was tuned on another device is
 * reported once with a warning and ignored; lookups never throw because of it. The next
 * {@link #record} keeps it as {@code <file>.bak} and starts a fresh file.
 */
public final class TuningDatabase {
    private static final Logger LOG = LoggerFactory.getLogger(TuningDatabase.class);
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** The document format this class reads and writes. */
    public static final int FORMAT = 1;
    /** Default time between two checks of the file for changes by other processes. */
    public static final Duration DEFAULT_RECHECK = Duration.ofMillis(500);

    /** FileChannel locks are per process; threads of this JVM also queue on one monitor per lock file. */
    private static final Map<Path, Object> JVM_LOCKS = new ConcurrentHashMap<>();
    /** Problems and notices already logged in this process (file + text), so each is logged once. */
    private static final Set<String> REPORTED = ConcurrentHashMap.newKeySet();

    private final Path dir;
    private final Path file;
    private final Path lockFile;
    private final Path backup;
    private final DeviceFingerprint fingerprint;
    private final long recheckNanos;

    private volatile Snapshot snapshot = Snapshot.EMPTY;
    private volatile long nextCheckNanos;

    /**
     * A database in {@code <knobs.cacheDir()>/tuning} for the given device, checking for other
     * processes' writes every {@link #DEFAULT_RECHECK}.
     */
    public TuningDatabase(Knobs knobs, DeviceFingerprint fingerprint) {
        this(defaultDir(knobs), fingerprint, DEFAULT_RECHECK);
    }

    /** A database in {@code dir} for the given device, checking for changes every {@link #DEFAULT_RECHECK}. */
    public TuningDatabase(Path dir, DeviceFingerprint fingerprint) {
        this(dir, fingerprint, DEFAULT_RECHECK);
    }

    /**
     * A database in {@code dir} for the given device.
     *
     * @param recheck how long {@link #lookup} trusts its in-memory copy before looking at the file
     *                again; {@link Duration#ZERO} looks (one {@code stat}) on every call
     */
    public TuningDatabase(Path dir, DeviceFingerprint fingerprint, Duration recheck) {
        this.dir = Objects.requireNonNull(dir, "dir");
        this.fingerprint = Objects.requireNonNull(fingerprint, "fingerprint");
        if (recheck.isNegative()) {
            throw new IllegalArgumentException("recheck interval must not be negative, got " + recheck);
        }
        this.recheckNanos = recheck.toNanos();
        this.file = dir.resolve(fingerprint.fileName());
        this.lockFile = dir.resolve(fingerprint.fileName() + ".lock");
        this.backup = dir.resolve(fingerprint.fileName() + ".bak");
        this.nextCheckNanos = System.nanoTime();
    }

    /** The default folder of tuning files: {@code <knobs.cacheDir()>/tuning}. */
    public static Path defaultDir(Knobs knobs) {
        return knobs.cacheDir().resolve("tuning");
    }

    /** The JSON file of this device (it may not exist yet). */
    public Path file() {
        return file;
    }

    /** The device and software this database serves. */
    public DeviceFingerprint fingerprint() {
        return fingerprint;
    }

    /**
     * The best current config for a spec and bucket, if one was recorded under this fingerprint's
     * driver, NVRTC and generator versions. Never throws for an unreadable or foreign file.
     *
     * @param specKey {@code KernelSpec.key()}
     * @param bucket  {@link ShapeBucket#key()}
     */
    public Optional<TunedConfig> lookup(String specKey, String bucket) {
        Objects.requireNonNull(specKey, "specKey");
        Objects.requireNonNull(bucket, "bucket");
        return Optional.ofNullable(fresh().current.get(new Key(specKey, bucket)));
    }

    /** {@link #lookup(String, String)} with a bucket value. */
    public Optional<TunedConfig> lookup(String specKey, ShapeBucket bucket) {
        return lookup(specKey, bucket.key());
    }

    /** Every current (not stale) record, ordered by spec then bucket. */
    public List<TunedConfig> records() {
        return fresh().sorted;
    }

    /**
     * Why the file is being ignored (unreadable, another format, another device), if it is; empty
     * when it is fine or absent.
     */
    public Optional<String> problem() {
        return Optional.ofNullable(fresh().problem);
    }

    /** {@link #record(TunedConfig, boolean)} without force: keeps a faster existing record. */
    public boolean record(TunedConfig config) {
        return record(config, false);
    }

    /**
     * Stores a measurement. It replaces the record for the same spec and bucket when that one is
     * slower, stale (measured under other versions), or {@code force} is set; otherwise the file is
     * left as it is. An unreadable or foreign file is kept as {@code <file>.bak} and replaced by a
     * fresh one.
     *
     * @return whether {@code config} is now the record for its spec and bucket
     * @throws UncheckedIOException when the folder or file cannot be written; the message names it
     */
    public boolean record(TunedConfig config, boolean force) {
        Objects.requireNonNull(config, "config");
        try {
            Files.createDirectories(dir);
            Path lockPath = lockFile.toAbsolutePath().normalize();
            synchronized (JVM_LOCKS.computeIfAbsent(lockPath, p -> new Object())) {
                try (FileChannel ch = FileChannel.open(lockPath, StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
                    FileLock lock = ch.lock();
                    try {
                        return recordLocked(config, force);
                    } finally {
                        lock.release();
                    }
                }
            }
        } catch (IOException e) {
            throw new UncheckedIOException("could not record the tuned config for " + config.specKey() + " "
                    + config.bucket() + " in " + file + " (" + e + "); check that the folder is writable, or set"
                    + " SAGEJIT_CACHE_DIR to another cache folder", e);
        }
    }

    private boolean recordLocked(TunedConfig config, boolean force) throws IOException {
        FileState state = stat();
        Document doc;
        if (state == FileState.ABSENT) {
            doc = Document.EMPTY;
        } else {
            try {
                doc = parse(Files.readAllBytes(file));
            } catch (NoSuchFileException e) {
                doc = Document.EMPTY;
            } catch (Unusable e) {
                Files.copy(file, backup, StandardCopyOption.REPLACE_EXISTING);
                LOG.warn("tuning database {} {}; kept it as {} and starting a fresh file", file, e.getMessage(),
                        backup);
                doc = Document.EMPTY;
            }
        }
        var records = new ArrayList<Stored>(doc.records.size() + 1);
        Stored incoming = new Stored(config, fingerprint.driverVersion(), fingerprint.nvrtcVersion(),
                fingerprint.generatorVersion());
        boolean replaced = false;
        boolean kept = false;
        for (Stored s : doc.records) {
            if (!s.key().equals(incoming.key())) {
                records.add(s);
            } else if (force || !s.currentFor(fingerprint) || config.medianMs() < s.config.medianMs()) {
                replaced = true; // one record per spec and bucket: drop this one
            } else {
                records.add(s);
                kept = true;
            }
        }
        if (kept) {
            LOG.debug("{} {}: keeping the recorded config, which is at least as fast as {} ({} ms)",
                    config.specKey(), config.bucket(), config.tiles(), config.medianMs());
            install(state, doc);
            return false;
        }
        records.add(incoming);
        records.sort(Comparator.comparing(Stored::key));
        Document updated = new Document(fingerprint, List.copyOf(records));
        write(updated);
        LOG.debug("{} {}: recorded {} at {} ms{}", config.specKey(), config.bucket(), config.tiles(),
                config.medianMs(), replaced ? ", replacing the previous record" : "");
        install(stat(), updated);
        return true;
    }

    private void write(Document doc) throws IOException {
        byte[] bytes = JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(toJson(doc));
        Path tmp = dir.resolve("." + file.getFileName() + "." + UUID.randomUUID() + ".tmp");
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.CREATE_NEW, StandardOpenOption.WRITE)) {
                ByteBuffer buf = ByteBuffer.wrap(bytes);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            try {
                Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING);
            }
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The snapshot to answer from: the current one, re-read first when the file changed. */
    private Snapshot fresh() {
        Snapshot s = snapshot;
        long now = System.nanoTime();
        if (recheckNanos > 0 && now - nextCheckNanos < 0) {
            return s;
        }
        nextCheckNanos = now + recheckNanos;
        FileState state;
        try {
            state = stat();
        } catch (IOException e) {
            reportOnce(Level.WARN, "could not be inspected (" + e + "); its tuned configs are ignored."
                    + " Check the folder's permissions, or delete the file");
            return s;
        }
        return state.equals(s.state) ? s : reload();
    }

    /** Re-reads the file (one thread at a time) unless another thread already did. */
    private synchronized Snapshot reload() {
        FileState state = FileState.ABSENT;
        try {
            state = stat(); // before reading: a write after this is noticed by the next check
            if (state.equals(snapshot.state)) {
                return snapshot;
            }
            if (state == FileState.ABSENT) {
                return install(state, Document.EMPTY);
            }
            return install(state, parse(Files.readAllBytes(file)));
        } catch (NoSuchFileException e) {
            return install(FileState.ABSENT, Document.EMPTY);
        } catch (Unusable e) {
            reportOnce(Level.WARN, e.getMessage(), e.getMessage() + "; its tuned configs are ignored. Re-tune to"
                    + " replace it (the next record() keeps it as " + backup.getFileName() + "), or delete it");
            Snapshot bad = new Snapshot(state, Map.of(), List.of(), e.getMessage());
            snapshot = bad;
            return bad;
        } catch (IOException e) {
            reportOnce(Level.WARN, "could not be read (" + e + "); its tuned configs are ignored."
                    + " Check the file's permissions, or delete it");
            return snapshot;
        }
    }

    private synchronized Snapshot install(FileState state, Document doc) {
        var current = new LinkedHashMap<Key, TunedConfig>();
        int stale = 0;
        for (Stored s : doc.records) {
            if (s.currentFor(fingerprint)) {
                current.put(s.key(), s.config);
            } else {
                stale++;
            }
        }
        if (stale > 0) {
            reportOnce(Level.INFO, "stale " + fingerprint.describeSoftware(), "holds " + stale
                    + " tuned config(s) measured under another driver, NVRTC or generator version than now ("
                    + fingerprint.describeSoftware() + "); they are ignored until re-tuned");
        }
        var sorted = current.values().stream()
                .sorted(Comparator.comparing(TunedConfig::specKey).thenComparing(TunedConfig::bucket)).toList();
        Snapshot s = new Snapshot(state, Map.copyOf(current), sorted, null);
        snapshot = s;
        return s;
    }

    private enum Level { WARN, INFO }

    private void reportOnce(Level level, String what) {
        reportOnce(level, what, what);
    }

    /** Logs {@code what} unless something with the same {@code onceKey} was logged for this file. */
    private void reportOnce(Level level, String onceKey, String what) {
        if (REPORTED.add(file.toAbsolutePath() + "\n" + onceKey)) {
            if (level == Level.WARN) {
                LOG.warn("tuning database {} {}", file, what);
            } else {
                LOG.info("tuning database {} {}", file, what);
            }
        }
    }

    private FileState stat() throws IOException {
        try {
            BasicFileAttributes a = Files.readAttributes(file, BasicFileAttributes.class);
            return new FileState(a.fileKey(), a.lastModifiedTime().to(TimeUnit.NANOSECONDS), a.size());
        } catch (NoSuchFileException e) {
            return FileState.ABSENT;
        }
    }

    // ---- document <-> JSON ----

    private Document parse(byte[] bytes) throws Unusable {
        if (bytes.length == 0) {
            throw new Unusable("is empty");
        }
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new Unusable("is not valid JSON (" + e.getOriginalMessage() + ")");
        } catch (IOException e) {
            throw new Unusable("is not valid JSON (" + e.getMessage() + ")");
        }
        if (root == null || !root.isObject()) {
            throw new Unusable("is not a JSON object");
        }
        JsonNode format = root.get("format");
        if (format == null || !format.canConvertToInt()) {
            throw new Unusable("has no format number");
        }
        if (format.asInt() != FORMAT) {
            throw new Unusable("has format " + format.asInt() + ", but this sagejit reads format " + FORMAT);
        }
        DeviceFingerprint writer;
        try {
            writer = fingerprintFrom(root.get("fingerprint"));
        } catch (RuntimeException e) {
            throw new Unusable("has no usable fingerprint (" + e.getMessage() + ")");
        }
        if (!writer.sameDevice(fingerprint)) {
            throw new Unusable("was tuned on " + writer.describeDevice() + ", not on this "
                    + fingerprint.describeDevice() + " (copied from another machine?)");
        }
        JsonNode array = root.get("records");
        if (array == null || !array.isArray()) {
            throw new Unusable("has no records array");
        }
        var records = new ArrayList<Stored>(array.size());
        int i = 0;
        for (JsonNode r : array) {
            try {
                records.add(storedFrom(r));
            } catch (RuntimeException e) {
                reportOnce(Level.WARN, "has an unusable record #" + i + " (" + e.getMessage() + "); it is ignored"
                        + " and dropped by the next record()");
            }
            i++;
        }
        return new Document(writer, List.copyOf(records));
    }

    private static DeviceFingerprint fingerprintFrom(JsonNode f) {
        if (f == null || !f.isObject()) {
            throw new IllegalArgumentException("fingerprint is not an object");
        }
        return new DeviceFingerprint(text(f, "gpu_name"), text(f, "arch"), integer(f, "sm_count"),
                integer(f, "driver_version"), text(f, "nvrtc_version"), text(f, "generator_version"));
    }

    private static Stored storedFrom(JsonNode r) {
        if (!r.isObject()) {
            throw new IllegalArgumentException("record is not an object");
        }
        JsonNode dflt = r.get("default_median_ms");
        OptionalDouble defaultMs = dflt == null || dflt.isNull() ? OptionalDouble.empty()
                : OptionalDouble.of(number(r, "default_median_ms"));
        var config = new TunedConfig(text(r, "spec"), text(r, "bucket"), text(r, "tiles"), number(r, "median_ms"),
                number(r, "tops"), text(r, "measured_at"), text(r, "run"), defaultMs);
        return new Stored(config, integer(r, "driver_version"), text(r, "nvrtc_version"),
                text(r, "generator_version"));
    }

    private static String text(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException("'" + field + "' is missing or not a string");
        }
        return v.textValue();
    }

    private static int integer(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt()) {
            throw new IllegalArgumentException("'" + field + "' is missing or not an integer");
        }
        return v.intValue();
    }

    private static double number(JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isNumber()) {
            throw new IllegalArgumentException("'" + field + "' is missing or not a number");
        }
        return v.doubleValue();
    }

    private static ObjectNode toJson(Document doc) {
        ObjectNode root = JSON.createObjectNode();
        root.put("format", FORMAT);
        ObjectNode f = root.putObject("fingerprint");
        DeviceFingerprint fp = doc.writer;
        f.put("gpu_name", fp.gpuName());
        f.put("arch", fp.arch());
        f.put("sm_count", fp.smCount());
        f.put("driver_version", fp.driverVersion());
        f.put("nvrtc_version", fp.nvrtcVersion());
        f.put("generator_version", fp.generatorVersion());
        ArrayNode records = root.putArray("records");
        for (Stored s : doc.records) {
            TunedConfig c = s.config;
            ObjectNode r = records.addObject();
            r.put("spec", c.specKey());
            r.put("bucket", c.bucket());
            r.put("tiles", c.tiles());
            r.put("median_ms", c.medianMs());
            c.defaultMedianMs().ifPresent(d -> r.put("default_median_ms", d));
            r.put("tops", c.tops());
            r.put("measured_at", c.measuredAt());
            r.put("run", c.run());
            r.put("driver_version", s.driverVersion);
            r.put("nvrtc_version", s.nvrtcVersion);
            r.put("generator_version", s.generatorVersion);
        }
        return root;
    }

    // ---- values ----

    /** Identity of the file as last seen: inode (where the OS has one), modification time, size. */
    private record FileState(Object fileKey, long modifiedNanos, long size) {
        static final FileState ABSENT = new FileState(null, -1, -1);
    }

    /** What {@link #lookup} answers from. */
    private record Snapshot(FileState state, Map<Key, TunedConfig> current, List<TunedConfig> sorted,
            String problem) {
        static final Snapshot EMPTY = new Snapshot(new FileState("never read", -2, -2), Map.of(), List.of(), null);
    }

    private record Key(String spec, String bucket) implements Comparable<Key> {
        @Override
        public int compareTo(Key o) {
            int c = spec.compareTo(o.spec);
            return c != 0 ? c : bucket.compareTo(o.bucket);
        }
    }

    /** A record as stored: the config and the software versions it was measured under. */
    private record Stored(TunedConfig config, int driverVersion, String nvrtcVersion, String generatorVersion) {
        Key key() {
            return new Key(config.specKey(), config.bucket());
        }

        boolean currentFor(DeviceFingerprint fp) {
            return fp.sameSoftware(driverVersion, nvrtcVersion, generatorVersion);
        }
    }

    /** A parsed file: its last writer's fingerprint and its usable records. */
    private record Document(DeviceFingerprint writer, List<Stored> records) {
        static final Document EMPTY = new Document(null, List.of());
    }

    /** The whole file cannot be used; the message completes "tuning database FILE ...". */
    private static final class Unusable extends Exception {
        Unusable(String message) {
            super(message, null, false, false);
        }
    }
}
