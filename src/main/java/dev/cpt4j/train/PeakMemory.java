package dev.cpt4j.train;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** The process's peak resident set size (Linux {@code VmHWM}), which training and the benchmarks report. */
public final class PeakMemory {
    private PeakMemory() {}

    /** Peak resident set size of this process in MiB, or NaN where {@code /proc/self/status} is unavailable. */
    public static double rssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
        return Double.NaN;
    }
}
