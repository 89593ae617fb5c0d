package dev.cpt4j.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Memory stays bounded: a corpus four times the heap is prepared by a JVM started with -Xmx16m. */
class PrepareMemoryTest {
    @TempDir
    Path tmp;

    @Test
    void preparesACorpusFourTimesTheHeap() throws Exception {
        Path dir = tmp.resolve("corpus");
        Files.createDirectories(dir);
        long chars = writeCorpus(dir.resolve("big.txt"), 64L << 20);
        assertThat(Files.size(dir.resolve("big.txt"))).isGreaterThanOrEqualTo(64L << 20);

        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        Process p = new ProcessBuilder(List.of(java, "-Xmx16m", "-XX:+UseSerialGC",
                "-cp", System.getProperty("java.class.path"),
                PrepareMemoryProbe.class.getName(), dir.toString(), tmp.resolve("out").toString()))
                .redirectErrorStream(true).start();
        String output = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor()).as(output).isZero();
        // Each line: 1 + its characters + 1 ids.
        assertThat(output).contains("tokens=" + chars);
    }

    /** Writes lines of CJK text (3 UTF-8 bytes a character) until the file reaches {@code bytes}; returns the token count. */
    private static long writeCorpus(Path file, long bytes) throws IOException {
        StringBuilder line = new StringBuilder();
        long tokens = 0, size = 0;
        int k = 0;
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            while (size < bytes) {
                line.setLength(0);
                int n = 20 + (k % 90);
                for (int i = 0; i < n; i++) line.append((char) (0x4E00 + (k * 31 + i * 7) % 20000));
                w.write(line.toString());
                w.write('\n');
                size += 3L * n + 1;
                tokens += n + 2;
                k++;
            }
        }
        return tokens;
    }
}
