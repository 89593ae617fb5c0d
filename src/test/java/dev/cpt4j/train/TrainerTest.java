package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.UserError;
import dev.cpt4j.tensor.Parallel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainerTest {
    static final int V = 11, T = 9;
    private final PrintStream quiet = new PrintStream(new ByteArrayOutputStream());

    static TrainOptions opts(Path out, int maxSteps, int saveSteps, int limit, String resume, boolean overwrite) {
        return new TrainOptions(Path.of("model"), null, null, Path.of("data"), null, 0.05, T, 1, 0,
                4, 3, 2, maxSteps, 3.0, 1234, 5e-2, 1e-2, 0.01, 0.9, 0.999, 1e-8, 1.0,
                LrSchedule.Type.COSINE, 0, 0.2, 0, 8, 0, null, null, false, false, false,
                TrainOptions.BaseDtype.FP32, 2, true, true, 4, saveSteps, limit, out, overwrite, resume, 1);
    }

    private Trainer.Result run(TrainOptions o, ToyBigram m) {
        try (Parallel par = Parallel.serial()) {
            return Trainer.run(o, m, new ToyData(V, T, 50, 5), par, Progress.NONE, quiet);
        }
    }

    @Test
    void trainsLogsPlotsAndRotatesCheckpoints(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        ToyBigram m = new ToyBigram(V, 1);
        float[] frozenBefore = java.util.Arrays.copyOf(m.params, 5);
        double before = Trainer.evaluate(m, new ToyData(V, T, 50, 5), 3);
        Trainer.Result r = run(opts(out, 12, 3, 2, null, false), m);
        assertThat(r.steps()).isEqualTo(12);
        assertThat(r.lastEvalLoss()).isLessThan(before);                      // it learns
        assertThat(java.util.Arrays.copyOf(m.params, 5)).containsExactly(frozenBefore); // frozen untouched
        assertThat(Checkpoints.list(out)).extracting(p -> p.getFileName().toString())
                .containsExactly("checkpoint-9", "checkpoint-12");           // --save_total_limit 2
        List<JsonNode> lines = MetricsLog.read(out.resolve(MetricsLog.FILE));
        assertThat(lines).filteredOn(j -> j.has("loss")).extracting(j -> j.get("step").asLong())
                .containsExactly(1L, 2L, 4L, 6L, 8L, 10L, 12L);              // logging_first_step + every 2
        assertThat(lines).filteredOn(j -> j.has("eval_loss")).extracting(j -> j.get("step").asLong())
                .containsExactly(4L, 8L, 12L);
        JsonNode first = lines.get(0);
        for (String k : List.of("step", "loss", "lr", "grad_norm", "tokens_per_s", "elapsed_s")) assertThat(first.has(k)).isTrue();
        assertThat(first.get("lr").asDouble()).isZero();                      // warm-up starts at 0, as HF
        var img = ImageIO.read(out.resolve(Trainer.PLOT).toFile());
        assertThat(img.getWidth()).isEqualTo(900);
        JsonNode hf = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out.resolve("checkpoint-12/trainer_state.json").toFile());
        assertThat(hf.get("global_step").asInt()).isEqualTo(12);
        assertThat(hf.get("log_history").size()).isEqualTo(10);
    }

    /** A run killed after checkpoint-6 and resumed with "true" ends with exactly the uninterrupted run's weights. */
    @Test
    void resumeAfterCrashEqualsUninterruptedRun(@TempDir Path tmp) {
        ToyBigram straight = new ToyBigram(V, 2);
        run(opts(tmp.resolve("a"), 10, 3, 0, null, false), straight);

        Path b = tmp.resolve("b");
        ToyBigram crashed = new ToyBigram(V, 2);
        crashed.crashAtCall = 2 * 7 + 1;  // during step 8 (2 micro-batches per step)
        assertThatThrownBy(() -> run(opts(b, 10, 3, 0, null, false), crashed)).hasMessageContaining("simulated kill");
        assertThat(Checkpoints.latest(b).getFileName().toString()).isEqualTo("checkpoint-6");

        ToyBigram resumed = new ToyBigram(V, 2);   // fresh process: base weights from the "model", rest from checkpoint
        java.util.Arrays.fill(resumed.params, 5, resumed.params.length, 123f); // trainable views must come from the checkpoint
        Trainer.Result r = run(opts(b, 10, 3, 0, "true", false), resumed);
        assertThat(r.steps()).isEqualTo(10);
        assertThat(resumed.params).containsExactly(straight.params);
        // the log holds each step once
        assertThat(MetricsLog.read(b.resolve(MetricsLog.FILE))).filteredOn(j -> j.has("loss"))
                .extracting(j -> j.get("step").asLong()).containsExactly(1L, 2L, 4L, 6L, 8L, 10L);
    }

    @Test
    void nanLossStopsNamingTheStepAndKeepsLastCheckpoint(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        ToyBigram m = new ToyBigram(V, 3);
        m.nanAtCall = 2 * 4 + 1;          // first micro-batch of step 5
        assertThatThrownBy(() -> run(opts(out, 10, 3, 0, null, false), m))
                .isInstanceOf(UserError.class).hasMessageContaining("NaN at step 5")
                .hasMessageContaining("checkpoint-3");
        assertThat(Checkpoints.list(out)).extracting(p -> p.getFileName().toString()).containsExactly("checkpoint-3");
        assertThat(Files.exists(out.resolve(Trainer.PLOT))).isTrue();   // the curve up to the failure
    }

    @Test
    void refusesBlockBeyondContext(@TempDir Path tmp) {
        ToyBigram m = new ToyBigram(V, 1);
        try (Parallel par = Parallel.serial()) {
            assertThatThrownBy(() -> Trainer.run(opts(tmp, 3, 0, 0, null, false), m, new ToyData(V, 65, 50, 0), par,
                    Progress.NONE, quiet)).isInstanceOf(UserError.class).hasMessageContaining("--block_size 65");
        }
    }

    @Test
    void dropoutSeedsDifferPerStepAndMicroBatch() {
        assertThat(Trainer.dropoutSeed(1, 1, 0)).isNotEqualTo(Trainer.dropoutSeed(1, 2, 0))
                .isNotEqualTo(Trainer.dropoutSeed(1, 1, 1)).isNotEqualTo(Trainer.dropoutSeed(2, 1, 0))
                .isEqualTo(Trainer.dropoutSeed(1, 1, 0));
    }
}
