package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Model;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A batch too big for the heap: {@code train} refuses it before allocating, with the estimate, the heap size and the
 * ways out; and an {@link OutOfMemoryError} anywhere in a command ends with one line, exit 1, no stack trace.
 */
class OutOfMemoryTest {
    @Test
    void trainRefusesABatchTheHeapCannotHold(@TempDir Path tmp) throws Exception {
        Path model = TrainEndToEndTest.tinyModel(tmp.resolve("model"), 48);
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        long heap = Runtime.getRuntime().maxMemory();
        // the same tiny model (48 rows, 32 positions, 16 wide, 2 layers, 2 heads), block 16, checkpointing: a batch
        // whose activations alone exceed this JVM's heap, whatever -Xmx it runs with
        Gpt2Config cfg = Gpt2Config.of(48, 32, 16, 2, 2);
        long perBlock = (Gpt2Model.activationBytes(cfg, 2000, 16, true) - Gpt2Model.activationBytes(cfg, 1000, 16, true)) / 1000;
        int batch = Math.toIntExact(heap / perBlock + 1);
        List<String> args = new ArrayList<>(List.of(TrainEndToEndTest.seedArgs(model, data, tmp.resolve("cache"), tmp.resolve("out"))));
        args.set(args.indexOf("--per_device_train_batch_size") + 1, Integer.toString(batch));
        TrainEndToEndTest.Run r = TrainEndToEndTest.run(args.toArray(String[]::new));
        assertThat(r.code()).as(r.err()).isEqualTo(2);
        String line = r.err().lines().filter(l -> l.contains("Java heap")).findFirst().orElse(r.err());
        assertThat(line).startsWith("cpt4j: a batch of " + batch + " × 16 tokens needs at least")
                .contains("MiB (activations").contains("Java heap's " + String.format(java.util.Locale.ROOT, "%,d MiB", (heap + (1 << 20) - 1) >> 20))
                .contains("CPT4J_JAVA_OPTS=-Xmx").contains("--per_device_train_batch_size");
        assertThat(r.err()).doesNotContain("OutOfMemoryError").doesNotContain("\tat ");
        assertThat(tmp.resolve("cache")).doesNotExist(); // refused before any work
    }

    @Test
    void anOutOfMemoryErrorIsOneLine(@TempDir Path tmp) throws Exception {
        Path cfg = Files.writeString(tmp.resolve("config.json"), "{\"model_type\":\"gpt2\",\"vocab_size\":50,"
                + "\"n_positions\":16,\"n_embd\":16,\"n_layer\":2,\"n_head\":2}");
        // 1,000,000 sequences' KV cache (~2 GB) in a 64 MiB heap
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx64m", "-cp", System.getProperty("java.class.path"),
                Main.class.getName(), "bench", "generate", "--config", cfg.toString(), "--prompt-tokens", "4",
                "--max-new-tokens", "4", "--num-return-sequences", "1000000", "--threads", "1"));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(false).start();
        String out, err;
        try (var o = p.getInputStream(); var e = p.getErrorStream()) {
            out = new String(o.readAllBytes());
            err = new String(e.readAllBytes());
        }
        assertThat(p.waitFor(2, TimeUnit.MINUTES)).isTrue();
        List<String> lines = err.lines().filter(l -> !l.startsWith("WARNING: Using incubator modules")).toList();
        assertThat(p.exitValue()).as(err + out).isEqualTo(1);
        assertThat(lines).as(err).hasSize(1);
        assertThat(lines.get(0)).startsWith("cpt4j: out of memory: the Java heap (at most ").contains("CPT4J_JAVA_OPTS=-Xmx");
    }
}
