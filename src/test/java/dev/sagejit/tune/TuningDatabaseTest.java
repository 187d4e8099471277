package dev.sagejit.tune;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.sagejit.util.Knobs;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalDouble;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TuningDatabaseTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String SPEC = "fwd_int8fp8_d128_causal_lse_sm90a";
    private static final String BUCKET = "q4096_k4096_bh128";
    static final DeviceFingerprint H200 =
            new DeviceFingerprint("NVIDIA H200", "sm90a", 132, 12080, "12.8", "0.1.0");

    @TempDir
    Path dir;

    private TuningDatabase db() {
        return db(H200);
    }

    private TuningDatabase db(DeviceFingerprint fp) {
        return new TuningDatabase(dir, fp, Duration.ZERO);
    }

    private static TunedConfig config(String spec, String bucket, String tiles, double ms) {
        return new TunedConfig(spec, bucket, tiles, ms, 400.0 / ms, "2025-06-01T12:00:00Z", "run-1");
    }

    @Test
    void roundTripAcrossInstances() throws Exception {
        var tuned = new TunedConfig(SPEC, BUCKET, "wgm128n128w8s2", 1.25, 410.5, "2025-06-01T12:00:00Z",
                "2025-06-01T11:59:00Z", OptionalDouble.of(1.5));
        assertTrue(db().record(tuned));

        var other = db();
        assertEquals(Optional.of(tuned), other.lookup(SPEC, BUCKET));
        assertEquals(List.of(tuned), other.records());
        assertEquals(1.2, other.lookup(SPEC, ShapeBucket.of(8, 16, 4000, 4096)).orElseThrow().speedup()
                .getAsDouble(), 1e-9);
        assertEquals(Optional.empty(), other.lookup(SPEC, "q8192_k8192_bh128"));
        assertEquals(Optional.empty(), other.lookup("fwd_bf16_d128_sm90a", BUCKET));
        assertEquals(Optional.empty(), other.problem());

        JsonNode doc = JSON.readTree(other.file().toFile());
        assertEquals(1, doc.get("format").asInt());
        assertEquals("NVIDIA H200", doc.path("fingerprint").path("gpu_name").asText());
        assertEquals(12080, doc.path("fingerprint").path("driver_version").asInt());
        assertEquals("wgm128n128w8s2", doc.path("records").get(0).path("tiles").asText());
        assertEquals(1.5, doc.path("records").get(0).path("default_median_ms").asDouble());
        assertEquals(dir.resolve("nvidia-h200_sm90a_132sm.json"), other.file());
    }

    @Test
    void defaultFolderIsUnderTheCacheDir() {
        var props = new Properties();
        props.setProperty("user.home", dir.toString());
        Knobs knobs = Knobs.from(Map.of("SAGEJIT_CACHE_DIR", dir.resolve("cache").toString()), props);
        assertEquals(dir.resolve("cache/tuning/nvidia-h200_sm90a_132sm.json"), new TuningDatabase(knobs, H200).file());
    }

    @Test
    void betterReplacesWorseAndWorseDoesNotUnlessForced() {
        var db = db();
        assertTrue(db.record(config(SPEC, BUCKET, "m128n64w4s2", 2.0)));
        assertTrue(db.record(config(SPEC, BUCKET, "wgm128n128w8s2", 1.0)));
        assertEquals("wgm128n128w8s2", db.lookup(SPEC, BUCKET).orElseThrow().tiles());

        assertFalse(db.record(config(SPEC, BUCKET, "m64n64w4s2", 1.5)));
        assertFalse(db.record(config(SPEC, BUCKET, "m64n64w4s2", 1.0)), "a tie keeps the existing record");
        assertEquals("wgm128n128w8s2", db().lookup(SPEC, BUCKET).orElseThrow().tiles());

        assertTrue(db.record(config(SPEC, BUCKET, "m64n64w4s2", 1.5), true));
        assertEquals("m64n64w4s2", db().lookup(SPEC, BUCKET).orElseThrow().tiles());
        assertEquals(1, db().records().size(), "one record per spec and bucket");
    }

    @Test
    void bucketsRoundUpToPowersOfTwo() {
        assertEquals("q4096_k4096_bh128", ShapeBucket.keyOf(8, 16, 4096, 4096));
        assertEquals("q4096_k4096_bh128", ShapeBucket.keyOf(4, 30, 3000, 2049));
        assertEquals("q128_k128_bh1", ShapeBucket.keyOf(1, 1, 1, 100));
        assertEquals("q256_k128_bh2", ShapeBucket.keyOf(1, 2, 129, 128));
        assertEquals("q1024_k8192_bh8", ShapeBucket.keyOf(1, 5, 1000, 5000));
        assertEquals("q128_k128_bh4", ShapeBucket.keyOf(1, 4, 2, 0), "empty keys: the smallest bucket");
        assertEquals(new ShapeBucket(4096, 4096, 128), ShapeBucket.parse("q4096_k4096_bh128"));
        assertThrows(IllegalArgumentException.class, () -> ShapeBucket.parse("q4000_k4096_bh128"));
        assertThrows(IllegalArgumentException.class, () -> ShapeBucket.parse("4096x4096"));
        assertThrows(IllegalArgumentException.class, () -> ShapeBucket.of(0, 1, 128, 128));
        assertThrows(IllegalArgumentException.class, () -> ShapeBucket.of(1 << 16, 1 << 16, 128, 128));
        assertThrows(IllegalArgumentException.class, () -> config(SPEC, "q100_k128_bh1", "m128n64w4s2", 1));
        assertThrows(IllegalArgumentException.class, () -> config(SPEC, BUCKET, "m100n64w4s2", 1));
        assertThrows(IllegalArgumentException.class, () -> config(SPEC, BUCKET, "m128n64w4s2", Double.NaN));
    }

    @Test
    void lookupSeesAnotherInstancesWrite() {
        var reader = db();
        assertEquals(Optional.empty(), reader.lookup(SPEC, BUCKET));
        db().record(config(SPEC, BUCKET, "m128n64w4s2", 2.0));
        assertEquals("m128n64w4s2", reader.lookup(SPEC, BUCKET).orElseThrow().tiles());
        db().record(config(SPEC, BUCKET, "wgm128n128w8s2", 1.0));
        assertEquals("wgm128n128w8s2", reader.lookup(SPEC, BUCKET).orElseThrow().tiles());
    }

    @Test
    void throttledLookupAnswersFromMemoryUntilTheIntervalPasses() throws Exception {
        var reader = new TuningDatabase(dir, H200, Duration.ofSeconds(1));
        assertEquals(Optional.empty(), reader.lookup(SPEC, BUCKET));
        db().record(config(SPEC, BUCKET, "m128n64w4s2", 2.0));
        assertEquals(Optional.empty(), reader.lookup(SPEC, BUCKET), "within the interval: no stat");
        Thread.sleep(1100);
        assertTrue(reader.lookup(SPEC, BUCKET).isPresent());
    }

    @Test
    void concurrentWritersInSeparateInstancesLoseNothing() throws Exception {
        int threads = 8;
        int perThread = 12;
        var start = new CountDownLatch(1);
        try (var pool = Executors.newFixedThreadPool(threads)) {
            var futures = new ArrayList<Future<?>>();
            for (int t = 0; t < threads; t++) {
                int id = t;
                futures.add(pool.submit(() -> {
                    var db = db(); // an instance per thread, as separate processes would have
                    start.await();
                    for (int i = 0; i < perThread; i++) {
                        db.record(config("fwd_bf16_d128_sm90a", new ShapeBucket(128 << i, 128, 1 << id).key(),
                                "m128n64w4s2", 1.0 + id + i));
                        db.lookup(SPEC, BUCKET);
                    }
                    return null;
                }));
            }
            start.countDown();
            for (var f : futures) {
                f.get();
            }
        }
        var all = db().records();
        assertEquals(threads * perThread, all.size());
        Set<String> buckets = new HashSet<>();
        all.forEach(c -> buckets.add(c.bucket()));
        assertEquals(threads * perThread, buckets.size());
        try (var s = Files.list(dir)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().endsWith(".tmp")), "no temp files left");
        }
    }

    @Test
    void concurrentWriterProcessesLoseNothing() throws Exception {
        String javaBin = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        int processes = 3;
        int perProcess = 15;
        var children = new ArrayList<Process>();
        for (int p = 0; p < processes; p++) {
            children.add(new ProcessBuilder(javaBin, "-cp", System.getProperty("java.class.path"),
                    TuningWriterMain.class.getName(), dir.toString(), Integer.toString(p), Integer.toString(perProcess))
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start());
        }
        for (var child : children) {
            assertTrue(child.waitFor(60, TimeUnit.SECONDS), "writer process hung");
            assertEquals(0, child.exitValue());
        }
        assertEquals(processes * perProcess, db().records().size());
    }

    @Test
    void oneInstanceSharedByThreads() throws Exception {
        var db = db();
        try (var pool = Executors.newFixedThreadPool(8)) {
            var futures = new ArrayList<Future<?>>();
            for (int t = 0; t < 8; t++) {
                int id = t;
                futures.add(pool.submit(() -> db.record(config(SPEC, new ShapeBucket(128, 128, 1 << id).key(),
                        "m128n64w4s2", 1.0))));
            }
            for (var f : futures) {
                f.get();
            }
        }
        assertEquals(8, db.records().size());
        assertEquals(8, db().records().size());
    }

    @Test
    void garbageFileIsIgnoredThenReplacedKeepingABackup() throws Exception {
        var db = db();
        Files.createDirectories(dir);
        byte[] garbage = {(byte) 0xff, 0x00, 0x13, 'x', (byte) 0x80};
        Files.write(db.file(), garbage);

        assertEquals(Optional.empty(), db.lookup(SPEC, BUCKET));
        assertEquals(List.of(), db.records());
        assertTrue(db.problem().orElseThrow().contains("not valid JSON"), db.problem().toString());

        assertTrue(db.record(config(SPEC, BUCKET, "m128n64w4s2", 2.0)));
        assertEquals(Optional.empty(), db.problem());
        assertTrue(db().lookup(SPEC, BUCKET).isPresent());
        Path bak = dir.resolve(db.file().getFileName() + ".bak");
        assertTrue(java.util.Arrays.equals(garbage, Files.readAllBytes(bak)));
    }

    @Test
    void truncatedJsonIsIgnoredThenReplacedKeepingABackup() throws Exception {
        db().record(config(SPEC, BUCKET, "m128n64w4s2", 2.0));
        var db = db();
        String whole = Files.readString(db.file());
        String cut = whole.substring(0, whole.length() / 2);
        Files.writeString(db.file(), cut);

        assertEquals(Optional.empty(), db.lookup(SPEC, BUCKET));
        assertTrue(db.problem().isPresent());
        assertTrue(db.record(config(SPEC, "q128_k128_bh1", "m128n64w4s2", 1.0)));
        assertEquals(cut, Files.readString(dir.resolve(db.file().getFileName() + ".bak")));
        assertEquals(1, db().records().size(), "the fresh file holds only the new record");
    }

    @Test
    void emptyFileAndTrailingGarbageAreUnusable() throws Exception {
        var db = db();
        Files.createDirectories(dir);
        Files.writeString(db.file(), "");
        assertEquals(Optional.empty(), db.lookup(SPEC, BUCKET));
        assertTrue(db.problem().isPresent());

        db.record(config(SPEC, BUCKET, "m128n64w4s2", 2.0));
        Files.writeString(db.file(), Files.readString(db.file()) + "}{");
        assertEquals(Optional.empty(), db.lookup(SPEC, BUCKET));
        assertTrue(db.problem().isPresent());
    }

    @Test
    void otherFormatVersionIsIgnored() throws Exception {
        db().record(config(SPEC, BUCKET, "m128n64w4s2", 2.0));
        var db = db();
        ObjectNode doc = (ObjectNode) JSON.readTree(db.file().toFile());
        doc.put("format", 2);
        JSON.writeValue(db.file().toFile(), doc);
        assertEquals(Optional.empty(), db.lookup(SPEC, BUCKET));
        assertTrue(db.problem().orElseThrow().contains("format 2"), db.problem().toString());
        assertTrue(db.record(config(SPEC, BUCKET, "m128n64w4s2", 3.0)), "a fresh file takes any record");
        assertTrue(Files.exists(dir.resolve(db.file().getFileName() + ".bak")));
    }

    @Test
    void fileOfAnotherGpuIsIgnored() throws Exception {
        var other = new DeviceFingerprint("NVIDIA H100 80GB HBM3", "sm90a", 132, 12080, "12.8", "0.1.0");
        db(other).record(config(SPEC, BUCKET, "m128n64w4s2", 2.0));
        var db = db();
        Files.copy(db(other).file(), db.file()); // e.g. copied from another machine and renamed
        assertEquals(Optional.empty(), db.lookup(SPEC, BUCKET));
        assertTrue(db.problem().orElseThrow().contains("NVIDIA H100"), db.problem().toString());
        assertEquals(1, db(other).records().size(), "the other GPU's own file is untouched");
        assertNotEquals(db(other).file(), db.file());
    }

    @Test
    void staleRecordsAreIgnoredButKeptUntilReplaced() throws Exception {
        var oldGenerator = new DeviceFingerprint("NVIDIA H200", "sm90a", 132, 12080, "12.8", "0.0.9");
        var oldDriver = new DeviceFingerprint("NVIDIA H200", "sm90a", 132, 12040, "12.8", "0.1.0");
        db(oldGenerator).record(config(SPEC, BUCKET, "m128n64w4s2", 1.0));
        db(oldDriver).record(config(SPEC, "q128_k128_bh1", "m128n64w4s2", 1.0));

        var db = db();
        assertEquals(db(oldGenerator).file(), db.file(), "versions are not part of the file name");
        assertEquals(Optional.empty(), db.lookup(SPEC, BUCKET));
        assertEquals(Optional.empty(), db.lookup(SPEC, "q128_k128_bh1"));
        assertEquals(List.of(), db.records());
        assertEquals(Optional.empty(), db.problem(), "stale records are not a problem with the file");
        assertTrue(db(oldDriver).lookup(SPEC, "q128_k128_bh1").isPresent());

        // a slower current measurement still replaces a stale one; the other stale record stays
        assertTrue(db.record(config(SPEC, BUCKET, "wgm128n128w8s2", 5.0)));
        assertEquals("wgm128n128w8s2", db.lookup(SPEC, BUCKET).orElseThrow().tiles());
        JsonNode records = JSON.readTree(db.file().toFile()).get("records");
        assertEquals(2, records.size());
        assertTrue(db(oldDriver).lookup(SPEC, "q128_k128_bh1").isPresent());
    }

    @Test
    void unusableRecordIsSkippedAndTheRestServed() throws Exception {
        var db = db();
        db.record(config(SPEC, BUCKET, "m128n64w4s2", 1.0));
        ObjectNode doc = (ObjectNode) JSON.readTree(db.file().toFile());
        ObjectNode bad = doc.withArray("records").addObject();
        bad.put("spec", SPEC);
        bad.put("bucket", "q128_k128_bh1");
        bad.put("tiles", "not-a-tile");
        JSON.writeValue(db.file().toFile(), doc);
        var reader = db();
        assertTrue(reader.lookup(SPEC, BUCKET).isPresent());
        assertEquals(1, reader.records().size());
        assertEquals(Optional.empty(), reader.problem());
    }

    @Test
    void fileNamesAreFilesystemSafeAndDistinct() {
        var names = new HashSet<String>();
        for (String gpu : List.of("NVIDIA H200", "NVIDIA H200 NVL", "NVIDIA A100-SXM4-80GB", "GPU/../../etc/passwd",
                "Ünïcödé GPU ☃", "☃☃☃", "  spaced   out  ", "a".repeat(300), "a".repeat(301),
                "GPU\\with:odd*chars?", "..", "NVIDIA/H200")) {
            String name = new DeviceFingerprint(gpu, "sm90a", 132, 1, "12.8", "0.1.0").fileName();
            assertTrue(name.matches("[a-z0-9][a-z0-9_-]*\\.json"), name);
            assertTrue(name.length() < 100, name);
            assertTrue(names.add(name), "two GPUs share " + name);
        }
        assertEquals("nvidia-h200_sm90a_132sm.json", H200.fileName());
        assertEquals("nvidia-a100-sxm4-80gb_sm90a_132sm.json",
                new DeviceFingerprint("NVIDIA A100-SXM4-80GB", "sm90a", 132, 1, "1", "1").fileName());
        assertTrue(new DeviceFingerprint("Ünïcödé GPU", "sm90a", 132, 1, "1", "1").fileName()
                .startsWith("unicode-gpu-"));
    }

    @Test
    void oddGpuNameRoundTrips() {
        var odd = new DeviceFingerprint("Weird/GPU ☃ \"quoted\"", "sm120a", 84, 13000, "13.0", "0.1.0");
        db(odd).record(config("fwd_bf16_d64_sm120a", BUCKET, "m128n64w4s2", 1.0));
        assertTrue(db(odd).lookup("fwd_bf16_d64_sm120a", BUCKET).isPresent());
        assertEquals(dir, db(odd).file().getParent());
    }

    @Test
    void writeFailureSaysWhatToDo() throws Exception {
        Path notADir = dir.resolve("plain-file");
        Files.writeString(notADir, "x", StandardCharsets.UTF_8);
        var db = new TuningDatabase(notADir.resolve("tuning"), H200, Duration.ZERO);
        var e = assertThrows(java.io.UncheckedIOException.class,
                () -> db.record(config(SPEC, BUCKET, "m128n64w4s2", 1.0)));
        assertTrue(e.getMessage().contains("SAGEJIT_CACHE_DIR"), e.getMessage());
        assertEquals(Optional.empty(), db.lookup(SPEC, BUCKET));
    }
}
