package dev.cpt4j.data;

import java.nio.file.Path;
import java.util.List;

/**
 * Runs {@link Prepare} in a JVM of its own (started by {@link PrepareMemoryTest} with a small -Xmx) and prints the
 * token count and the peak heap used.
 */
public final class PrepareMemoryProbe {
    public static void main(String[] args) {
        PrepareOptions o = PrepareOptions.of(List.of(Path.of(args[0])), Path.of(args[1]), 512).withWorkers(2);
        try (TokenStore s = Prepare.run(o, new CodePointTokenizer(30_000), m -> {})) {
            long peak = 0;
            for (var pool : java.lang.management.ManagementFactory.getMemoryPoolMXBeans()) {
                if (pool.getType() == java.lang.management.MemoryType.HEAP) peak += pool.getPeakUsage().getUsed();
            }
            System.out.println("tokens=" + s.manifest().counts().tokens() + " peakHeapBytes=" + peak);
        }
    }
}
