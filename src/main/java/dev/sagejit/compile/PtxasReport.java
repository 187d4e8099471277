package dev.sagejit.compile;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Resources ptxas reported for one kernel, parsed from the NVRTC program log of a CUBIN build
 * ({@code --ptxas-options=-v}). A section of that log reads:
 *
 * <pre>
 * ptxas info    : Compiling entry function 'k' for 'sm_90a'
 * ptxas info    : Function properties for k
 * ptxas         .     400 bytes stack frame, 828 bytes spill stores, 896 bytes spill loads
 * ptxas info    : Used 32 registers, used 1 barriers, 400 bytes cumulative stack size, 16384 bytes smem
 * </pre>
 *
 * Older ptxas versions also print {@code N bytes cmem[0]} on the "Used" line.
 *
 * @param registers       32-bit registers per thread
 * @param spillStoreBytes bytes of register spill stores
 * @param spillLoadBytes  bytes of register spill loads
 * @param sharedBytes     static shared memory per block
 * @param stackFrameBytes local-memory stack frame per thread
 * @param constantBytes   bank-0 constant memory (0 when ptxas does not print it)
 */
public record PtxasReport(int registers, int spillStoreBytes, int spillLoadBytes, int sharedBytes,
        int stackFrameBytes, int constantBytes) {

    /** What a log without a ptxas report (PTX output, or no {@code -v}) parses to. */
    public static final PtxasReport NONE = new PtxasReport(0, 0, 0, 0, 0, 0);

    private static final Pattern SECTION = Pattern.compile("Compiling entry function '([^']+)'");
    private static final Pattern REGISTERS = Pattern.compile("Used (\\d+) registers");
    private static final Pattern STACK = Pattern.compile("(\\d+) bytes stack frame");
    private static final Pattern SPILL_STORES = Pattern.compile("(\\d+) bytes spill stores");
    private static final Pattern SPILL_LOADS = Pattern.compile("(\\d+) bytes spill loads");
    private static final Pattern SMEM = Pattern.compile("(\\d+) bytes smem");
    private static final Pattern CMEM = Pattern.compile("(\\d+) bytes cmem\\[0\\]");

    /**
     * Parses the report of {@code entry} from an NVRTC log. When the log names no section for
     * {@code entry} (e.g. a single-kernel log whose name was mangled), the first section is used;
     * a log without any ptxas report gives {@link #NONE}.
     */
    public static PtxasReport parse(String log, String entry) {
        if (log == null || log.isEmpty()) {
            return NONE;
        }
        String section = section(log, entry);
        if (!REGISTERS.matcher(section).find()) {
            return NONE;
        }
        return new PtxasReport(first(REGISTERS, section), first(SPILL_STORES, section),
                first(SPILL_LOADS, section), first(SMEM, section), first(STACK, section),
                first(CMEM, section));
    }

    private static String section(String log, String entry) {
        Matcher m = SECTION.matcher(log);
        int firstStart = -1;
        while (m.find()) {
            if (firstStart < 0) {
                firstStart = m.start();
            }
            if (m.group(1).equals(entry)) {
                int start = m.start();
                int end = m.find() ? m.start() : log.length();
                return log.substring(start, end);
            }
        }
        if (firstStart < 0) {
            return log;
        }
        Matcher next = SECTION.matcher(log);
        next.find(firstStart);
        int end = next.find() ? next.start() : log.length();
        return log.substring(firstStart, end);
    }

    private static int first(Pattern p, String text) {
        Matcher m = p.matcher(text);
        return m.find() ? Integer.parseInt(m.group(1)) : 0;
    }

    /**
     * The ptxas notice that it serialized a kernel's wgmma instructions (C7509-C7515, e.g. registers
     * of an in-flight wgmma touched by other instructions), or empty. Such a kernel is correct but
     * loses the asynchronous tensor-core pipeline; the compile command treats it as a failure.
     */
    public static java.util.Optional<String> wgmmaSerialization(String log) {
        return log == null ? java.util.Optional.empty()
                : log.lines().filter(l -> l.contains("wgmma.mma_async instructions are serialized")).map(String::strip)
                        .findFirst();
    }

    /** True when ptxas had to spill registers to local memory. */
    public boolean spills() {
        return spillStoreBytes > 0 || spillLoadBytes > 0;
    }

    /** One line for logs and tables, e.g. {@code 96 regs, 0 spill, 32768 B smem}. */
    public String summary() {
        return registers + " regs, " + spillStoreBytes + " spill, " + sharedBytes + " B smem";
    }
}
