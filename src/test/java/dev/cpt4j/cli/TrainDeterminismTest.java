package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Model;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.train.Checkpoints;
import dev.cpt4j.train.MetricsLog;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * What docs/LIMITS.md promises about reproducibility, issue 12 item 7. Resuming a LoRA run on a 2-layer GPT-2 (dropout 0.1 in the model, LoRA dropout 0.05) from any of
 * its checkpoints — early, in the middle, just before, exactly at and just after an epoch boundary — ends with the
 * uninterrupted run's bytes: the final adapter, the last checkpoint's weights and AdamW moments, and every logged
 * loss, learning rate, grad norm and eval loss ({@code metrics.jsonl} without its timings, {@code log_history}).
 * Also: two uninterrupted runs agree; a resume in a fresh interpreted JVM ({@code -Xint}) agrees (no number depends
 * on the JIT tier); gradient accumulation 2 on 2 threads, and the thread count itself changes nothing; full
 * fine-tuning with active clipping on a wider model is the same interpreted or C2-compiled, on 1, 2 or 3 threads. What is not promised, shown: another SIMD width (AVX2's 8 float lanes vs 4) gives other numbers.
 *
 * <p>The corpus of {@link TrainEndToEndTest#corpus} gives 60 training blocks of 16 tokens: with 4 blocks per step an
 * epoch is exactly 15 steps, so checkpoint-15 is at the boundary (the cursor at block 60 of 60 of epoch 0).
 */
class TrainDeterminismTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** TrainEndToEndTest's tiny GPT-2 folder (vocab.txt of 48 tokens), but with dropout 0.1 on embeddings, attention, residuals. */
    static Path modelWithDropout(Path dir) throws IOException {
        return modelWithDropout(dir, 32, 16, 2);
    }

    /** The same with {@code positions}, width C and NH heads (2 layers). */
    static Path modelWithDropout(Path dir, int positions, int C, int NH) throws IOException {
        TrainEndToEndTest.tinyModel(dir, 48);                   // the vocabulary; the weights are replaced below
        Gpt2Config cfg = new Gpt2Config(48, positions, C, 2, NH, 4 * C, "gelu_new", 1e-5f, 0.02f, 0.1f, 0.1f, 0.1f,
                true, true, false);
        try (Parallel par = new Parallel(1)) {
            Gpt2Model m = new Gpt2Model(cfg, new Gemm(par), par, 1, 1, false);
            m.initRandom(3);
            HfCheckpoints.save(dir, cfg, m.layout(), m.params(), DType.F32);
        }
        return dir;
    }

    private static String[] args(Path model, Path data, Path cache, Path out, int steps, int batch, int accumulation,
                                 int threads) {
        String[] a = TrainEndToEndTest.seedArgs(model, data, cache, out);
        a = TrainEndToEndTest.with(a, "--max_steps", Integer.toString(steps));
        a = TrainEndToEndTest.with(a, "--per_device_train_batch_size", Integer.toString(batch));
        a = TrainEndToEndTest.with(a, "--gradient_accumulation_steps", Integer.toString(accumulation));
        a = TrainEndToEndTest.with(a, "--threads", Integer.toString(threads));
        a = TrainEndToEndTest.with(a, "--save_steps", "1");           // a checkpoint of every step to resume from
        a = TrainEndToEndTest.with(a, "--save_total_limit", "0");
        a = TrainEndToEndTest.with(a, "--logging_steps", "3");        // not a divisor of most resume points
        a = TrainEndToEndTest.with(a, "--eval_steps", "5");
        a = TrainEndToEndTest.with(a, "--trainable", "c_attn,c_fc");
        return a;
    }

    private static void train(String[] args) {
        TrainEndToEndTest.Run r = TrainEndToEndTest.run(args);
        assertThat(r.code()).as(r.err()).isZero();
    }

    /** A run killed after checkpoint-k: a fresh output folder holding checkpoint-k and the metrics file of the whole run. */
    private static Path killedAfter(Path straight, int k, Path dir) throws IOException {
        Files.createDirectories(dir);
        Path from = straight.resolve("checkpoint-" + k), to = dir.resolve("checkpoint-" + k);
        try (var files = Files.walk(from)) {
            for (Path p : files.toList()) Files.copy(p, to.resolve(from.relativize(p).toString()));
        }
        Files.copy(straight.resolve(MetricsLog.FILE), dir.resolve(MetricsLog.FILE));  // later lines are the lost steps'
        return dir;
    }

    private static String[] resuming(String[] args, Path out) {
        return TrainEndToEndTest.with(TrainEndToEndTest.with(args, "--output_dir", out.toString()),
                "--resume_from_checkpoint", "true");
    }

    /** Everything a run produced that must not depend on where it was resumed: equal bytes, equal numbers. */
    static void assertSameRun(Path expected, Path actual, int lastStep, String what) throws IOException {
        Path ce = expected.resolve("checkpoint-" + lastStep), ca = actual.resolve("checkpoint-" + lastStep);
        String last = Files.exists(expected.resolve(PeftAdapters.SAFETENSORS)) ? PeftAdapters.SAFETENSORS : HfCheckpoints.SAFETENSORS;
        assertThat(sameBytes(expected.resolve(last), actual.resolve(last)))
                .as(what + ": the final " + last + ", largest |Δ| " + largestDifference(expected, actual, last)).isTrue();
        for (String f : List.of(Checkpoints.WEIGHTS, Checkpoints.OPTIMIZER))
            assertThat(sameBytes(ce.resolve(f), ca.resolve(f))).as(what + ": checkpoint-" + lastStep + "/" + f).isTrue();
        assertThat(logged(actual)).as(what + ": metrics.jsonl").containsExactlyElementsOf(logged(expected));
        assertThat(history(ca)).as(what + ": log_history").isEqualTo(history(ce));
        JsonNode se = JSON.readTree(ce.resolve(Checkpoints.STATE).toFile()), sa = JSON.readTree(ca.resolve(Checkpoints.STATE).toFile());
        for (String k : List.of("optimizer_step", "data_cursor", "log_window"))
            assertThat(sa.get(k)).as(what + ": " + k).isEqualTo(se.get(k));
    }

    private static boolean sameBytes(Path a, Path b) throws IOException {
        return java.util.Arrays.equals(Files.readAllBytes(a), Files.readAllBytes(b));
    }

    /** metrics.jsonl without the timings (tokens_per_s, elapsed_s), one JSON text per line. */
    static List<String> logged(Path out) {
        List<String> lines = new ArrayList<>();
        for (JsonNode j : MetricsLog.read(out.resolve(MetricsLog.FILE))) {
            ObjectNode o = j.deepCopy();
            o.remove(List.of("tokens_per_s", "elapsed_s"));
            lines.add(o.toString());
        }
        return lines;
    }

    private static JsonNode history(Path checkpoint) throws IOException {
        return JSON.readTree(checkpoint.resolve(Checkpoints.TRAINER_STATE).toFile()).get("log_history");
    }

    /** The largest difference between the tensors of two safetensors files of the same names and shapes. */
    private static double largestDifference(Path a, Path b, String file) {
        double max = 0;
        try (Safetensors fa = Safetensors.open(a.resolve(file)); Safetensors fb = Safetensors.open(b.resolve(file))) {
            for (String name : fa.names()) {
                int n = (int) fa.info(name).numel();
                float[] x = new float[n], y = new float[n];
                fa.readFloats(name, x, 0);
                fb.readFloats(name, y, 0);
                for (int i = 0; i < x.length; i++) max = Math.max(max, Math.abs((double) x[i] - y[i]));
            }
        }
        return max;
    }

    @Test
    @Timeout(600)
    void resumingFromAnyCheckpointReproducesTheUninterruptedRunBitForBit(@TempDir Path tmp) throws Exception {
        Path model = modelWithDropout(tmp.resolve("model"));
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        Path cache = tmp.resolve("cache"), straight = tmp.resolve("straight");
        int steps = 20;
        String[] args = args(model, data, cache, straight, steps, 4, 1, 1);
        train(args);
        assertThat(JSON.readTree(straight.resolve("checkpoint-15").resolve(Checkpoints.STATE).toFile()).get("data_cursor"))
                .as("checkpoint-15 is exactly at the end of epoch 0")
                .isEqualTo(JSON.readTree("{\"epoch\":0,\"position\":60,\"train_blocks\":60}"));
        assertThat(logged(straight)).filteredOn(l -> l.contains("\"loss\"")).hasSize(8);   // steps 1, 3, 6, …, 18, 20

        Path again = tmp.resolve("again");
        train(TrainEndToEndTest.with(args, "--output_dir", again.toString()));
        assertSameRun(straight, again, steps, "a second uninterrupted run");

        for (int k : new int[] {2, 10, 14, 15, 16}) {           // early, middle, before/at/after the epoch boundary
            Path resumed = killedAfter(straight, k, tmp.resolve("from-" + k));
            train(resuming(args, resumed));
            assertSameRun(straight, resumed, steps, "resumed from checkpoint-" + k);
        }

        // a fresh JVM that only interprets (the symptom: a resumed process runs its first steps at lower JIT
        // tiers than the long-running uninterrupted one)
        Path interpreted = killedAfter(straight, 18, tmp.resolve("xint"));
        Path log = tmp.resolve("xint.log");
        Process p = TrainSignalsTest.start(log, List.of("-Xint"), resuming(args, interpreted));
        try {
            assertThat(p.waitFor(300, TimeUnit.SECONDS)).as("the -Xint resume ends").isTrue();
        } finally {
            p.destroyForcibly();
        }
        assertThat(p.exitValue()).as(() -> readQuietly(log)).isZero();
        assertSameRun(straight, interpreted, steps, "resumed from checkpoint-18 in a -Xint JVM");
    }

    /** Item 7 with gradient accumulation 2 on 2 threads; and the same run on 1 thread, or resumed on 1 thread, is the same. */
    @Test
    @Timeout(600)
    void accumulationAndThreadsResumeBitForBitAndTheThreadCountChangesNothing(@TempDir Path tmp) throws Exception {
        Path model = modelWithDropout(tmp.resolve("model"));
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        Path cache = tmp.resolve("cache"), straight = tmp.resolve("straight");
        int steps = 18;
        String[] args = args(model, data, cache, straight, steps, 2, 2, 2);    // 4 blocks per step: epoch = 15 steps
        train(args);
        assertThat(JSON.readTree(straight.resolve("checkpoint-15").resolve(Checkpoints.STATE).toFile()).get("data_cursor"))
                .isEqualTo(JSON.readTree("{\"epoch\":0,\"position\":60,\"train_blocks\":60}"));
        for (int k : new int[] {4, 15, 16}) {
            Path resumed = killedAfter(straight, k, tmp.resolve("from-" + k));
            train(resuming(args, resumed));
            assertSameRun(straight, resumed, steps, "2 threads, accumulation 2, resumed from checkpoint-" + k);
        }

        // the thread count does not enter the numbers: one thread, from the start or resuming a 2-thread checkpoint
        Path serial = tmp.resolve("serial");
        train(TrainEndToEndTest.with(TrainEndToEndTest.with(args, "--output_dir", serial.toString()), "--threads", "1"));
        assertSameRun(straight, serial, steps, "the same run on 1 thread");
        Path mixed = killedAfter(straight, 8, tmp.resolve("mixed"));
        TrainEndToEndTest.Run r = TrainEndToEndTest.run(TrainEndToEndTest.with(resuming(args, mixed), "--threads", "3"));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("the checkpoint was written with --threads 2; this run uses 3");
        assertSameRun(straight, mixed, steps, "checkpoint-8 of 2 threads resumed on 3");
    }

    /** A full fine-tuning run of the wider model: every tensor trains, so clipping and AdamW cover 107k floats. */
    private static String[] fullArgs(Path model, Path data, Path cache, Path out, int steps, int threads) {
        return ("train --model_name_or_path " + model + " --dataset_dir " + data + " --data_cache_dir " + cache
                + " --output_dir " + out + " --block_size 64 --per_device_train_batch_size 4 --max_steps " + steps
                + " --learning_rate 2e-3 --lr_scheduler_type cosine --warmup_steps 1 --max_grad_norm 1.0 --seed 5"
                + " --logging_steps 1 --save_steps 3 --save_total_limit 0 --do_eval --eval_steps 3 --threads " + threads)
                .split(" ");
    }

    /**
     * Full fine-tuning (C = 64, 4 heads, 15 blocks of 64 tokens: an epoch is 3.75 steps) with the gradient clipped:
     * the same bits on 2 threads, on 1 thread, resumed from checkpoint-3, and in a fresh JVM on 3 threads that
     * compiles with C2 after 100 calls ({@code -XX:-TieredCompilation -XX:CompileThreshold=100}) — where this JVM ran
     * most of these steps interpreted or C1-compiled, whose Vector API runs each operation's Java definition lane by
     * lane. With the kernels as they were before {@code reduceLanes(ADD)} was removed, that JVM logged other grad
     * norms from step 4 on (1.3084954845 vs 1.3084954555 at step 5) and wrote other weights.
     */
    @Test
    @Timeout(600)
    void fullFineTuningIsTheSameOnAnyThreadCountAndJitTier(@TempDir Path tmp) throws Exception {
        Path model = modelWithDropout(tmp.resolve("model"), 64, 64, 4);
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        Path cache = tmp.resolve("cache"), straight = tmp.resolve("straight");
        int steps = 6;
        train(fullArgs(model, data, cache, straight, steps, 2));
        assertThat(MetricsLog.read(straight.resolve(MetricsLog.FILE)).get(0).get("grad_norm").asDouble())
                .as("step 1 is clipped").isGreaterThan(1.0);
        Path serial = tmp.resolve("serial");
        train(fullArgs(model, data, cache, serial, steps, 1));
        assertSameRun(straight, serial, steps, "the same run on 1 thread");
        Path resumed = killedAfter(straight, 3, tmp.resolve("from-3"));
        train(resuming(fullArgs(model, data, cache, resumed, steps, 2), resumed));
        assertSameRun(straight, resumed, steps, "resumed from checkpoint-3");

        Path c2 = tmp.resolve("c2"), log = tmp.resolve("c2.log");
        Process p = TrainSignalsTest.start(log, List.of("-XX:-TieredCompilation", "-XX:CompileThreshold=100"),
                fullArgs(model, data, cache, c2, steps, 3));
        try {
            assertThat(p.waitFor(300, TimeUnit.SECONDS)).as("the C2 run ends").isTrue();
        } finally {
            p.destroyForcibly();
        }
        assertThat(p.exitValue()).as(() -> readQuietly(log)).isZero();
        assertSameRun(straight, c2, steps, "a fresh JVM compiling with C2 early, 3 threads");
    }

    /**
     * Not promised, and shown here: the SIMD width enters the numbers (lane-wise partial sums of norms, means and
     * dot products are summed across the lanes at the end), so the same run with 4 float lanes (SSE width,
     * {@code -XX:MaxVectorSize=16}) and with 8 (AVX2, {@code -XX:MaxVectorSize=32}) logs other grad norms; an
     * AVX-512 machine (16 lanes) differs from an AVX2 one in the same way. Needs an x86-64 CPU with AVX2.
     */
    @Test
    @Timeout(600)
    void theVectorWidthChangesTheNumbers(@TempDir Path tmp) throws Exception {
        Path model = modelWithDropout(tmp.resolve("model"), 64, 64, 4);
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        Path cache = tmp.resolve("cache");
        train(fullArgs(model, data, cache, tmp.resolve("warm"), 1, 1));         // prepares the data cache here
        List<List<String>> norms = new ArrayList<>();
        for (int bytes : new int[] {16, 32}) {
            Path out = tmp.resolve("width-" + bytes), log = tmp.resolve("width-" + bytes + ".log");
            Process p = TrainSignalsTest.start(log, List.of("-XX:MaxVectorSize=" + bytes), fullArgs(model, data, cache, out, 2, 1));
            try {
                assertThat(p.waitFor(300, TimeUnit.SECONDS)).isTrue();
            } finally {
                p.destroyForcibly();
            }
            assertThat(p.exitValue()).as(() -> readQuietly(log)).isZero();
            norms.add(MetricsLog.read(out.resolve(MetricsLog.FILE)).stream().filter(j -> j.has("grad_norm"))
                    .map(j -> j.get("grad_norm").asText()).toList());
        }
        assertThat(norms.get(0)).hasSize(2);
        assertThat(norms.get(0)).as("grad norms with 4 and with 8 float lanes").isNotEqualTo(norms.get(1));
    }

    private static String readQuietly(Path f) {
        try {
            return Files.readString(f, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }
}
