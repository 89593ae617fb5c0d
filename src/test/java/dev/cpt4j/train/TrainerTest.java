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
        return TrainOptions.builder().modelNameOrPath(Path.of("model")).datasetDir(Path.of("data"))
                .validationSplit(0.05).blockSize(T).threads(1).perDeviceTrainBatchSize(4).perDeviceEvalBatchSize(3)
                .gradientAccumulationSteps(2).maxSteps(maxSteps).seed(1234).learningRate(5e-2)
                .embeddingLearningRate(1e-2).weightDecay(0.01).lrSchedulerType(LrSchedule.Type.COSINE).warmupRatio(0.2)
                .loggingSteps(2).loggingFirstStep(true).doEval(true).evalSteps(4).saveSteps(saveSteps)
                .saveTotalLimit(limit).outputDir(out).overwriteOutputDir(overwrite).resumeFromCheckpoint(resume).build();
    }

    private Trainer.Result run(TrainOptions o, ToyBigram m) {
        return run(o, m, Trainer.Hooks.NONE);
    }

    private Trainer.Result run(TrainOptions o, ToyBigram m, Trainer.Hooks hooks) {
        try (Parallel par = Parallel.serial()) {
            return Trainer.run(o, m, new ToyData(V, T, 50, 5), par, Progress.NONE, quiet, hooks);
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

    /** Issue 12 item 4: the NaN stop names the newest sound checkpoint, not a newer one whose weights exploded. */
    @Test
    void nanStopDoesNotRecommendACheckpointWithExplodedWeights(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        ToyBigram m = new ToyBigram(V, 3);
        m.explodeAtCall = 2 * 4 + 1;      // weights ×50 in step 5: finite, but checkpoint-6 holds exploded weights
        m.nanAtCall = 2 * 7 + 1;          // step 8
        assertThatThrownBy(() -> run(opts(out, 10, 3, 0, null, false), m))
                .isInstanceOf(UserError.class).hasMessageContaining("NaN at step 8")
                .hasMessageContaining("the last good checkpoint is " + out.resolve("checkpoint-3"))
                .hasMessageContaining("not " + out.resolve("checkpoint-6") + ": its loss");
        assertThat(Checkpoints.healthOf(out.resolve("checkpoint-6")).sound()).isFalse();
        assertThat(Checkpoints.healthOf(out.resolve("checkpoint-6")).explosion()).contains("first step's");
        assertThat(Checkpoints.healthOf(out.resolve("checkpoint-3")).sound()).isTrue();
    }

    /** Issue 12 item 4: weights that became NaN in an update with a finite loss are not written as a checkpoint. */
    @Test
    void nonFiniteWeightsAreNeverCheckpointed(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        ToyBigram m = new ToyBigram(V, 3);
        m.poisonAtCall = 2 * 6;           // last micro-batch of step 6: loss and gradients finite, one weight NaN
        assertThatThrownBy(() -> run(opts(out, 10, 3, 0, null, false), m))
                .isInstanceOf(UserError.class).hasMessageContaining("weight transformer.wte.weight holds NaN")
                .hasMessageContaining("checkpoint-6 was not written")
                .hasMessageContaining("the last good checkpoint is " + out.resolve("checkpoint-3"));
        assertThat(Checkpoints.list(out)).containsExactly(out.resolve("checkpoint-3"));
    }

    /** Issue 12 item 3: a full disk during a checkpoint is the error seen, not the loss plot that failed after it. */
    @Test
    void diskFullDuringACheckpointIsNotMaskedByTheLossPlot(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        Files.createDirectories(out.resolve(Trainer.PLOT).resolve("x"));    // loss.png cannot be replaced either
        ToyBigram m = new ToyBigram(V, 3);
        FullDisk disk = new FullDisk(Checkpoints.OPTIMIZER, 64);
        // the first save (step 3) fits; from step 6 on the disk is full
        Trainer.Hooks hooks = new Trainer.Hooks(Checkpoints.Extra.NONE, null,
                (dst, ch) -> dst.getParent().getFileName().toString().startsWith(".tmp-checkpoint-6") ? disk.wrap(dst, ch) : ch);
        assertThatThrownBy(() -> run(opts(out, 10, 3, 0, null, true), m, hooks))
                .isInstanceOf(UserError.class)
                .hasMessageContaining("cannot write " + out.resolve("checkpoint-6").resolve(Checkpoints.OPTIMIZER)
                        + " (No space left on device)")
                .hasMessageContaining("the previous checkpoint " + out.resolve("checkpoint-3") + " is intact")
                .satisfies(e -> assertThat(e.getSuppressed()).singleElement()
                        .satisfies(p -> assertThat(p.getMessage()).contains(Trainer.PLOT)));
        try (var all = Files.list(out)) {
            assertThat(all.map(p -> p.getFileName().toString())).noneMatch(n -> n.startsWith(".tmp"));
        }
        assertThat(Checkpoints.list(out)).containsExactly(out.resolve("checkpoint-3"));
    }

    /** Issue 12 item 2: resuming from the last step's checkpoint trains nothing and returns, so the caller exports. */
    @Test
    void resumingACompletedRunOnlyFinishesIt(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        ToyBigram m = new ToyBigram(V, 2);
        run(opts(out, 6, 3, 0, null, false), m);
        ToyBigram again = new ToyBigram(V, 2);
        Trainer.Result r = run(opts(out, 6, 3, 0, "true", false), again);
        assertThat(r.steps()).isEqualTo(6);
        assertThat(r.lastCheckpoint()).isEqualTo(out.resolve("checkpoint-6"));
        assertThat(again.calls).isZero();
        assertThat(again.params).containsExactly(m.params);                 // restored, ready to export
        assertThatThrownBy(() -> run(opts(out, 5, 3, 0, "true", false), new ToyBigram(V, 2)))
                .hasMessageContaining("already at step 6 of 5");
    }

    /** Issue 12 item 1: a second run on a locked output folder fails at once; the lock goes with its holder. */
    @Test
    void aSecondRunOnTheSameOutputDirFailsAtOnce(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        try (var held = Trainer.lockOutputDir(out)) {
            ToyBigram m = new ToyBigram(V, 2);
            assertThatThrownBy(() -> run(opts(out, 4, 2, 0, null, false), m))
                    .isInstanceOf(UserError.class).hasMessageContaining("--output_dir " + out + " is in use by another "
                            + "'cpt4j train' (pid " + ProcessHandle.current().pid());
            assertThat(m.calls).isZero();
            assertThat(out.resolve(MetricsLog.FILE)).doesNotExist();
        }
        assertThat(run(opts(out, 4, 2, 0, null, false), new ToyBigram(V, 2)).steps()).isEqualTo(4);
    }

    /** Issue 12 item 8: a stop request ends the run at a step boundary with a checkpoint of that step; resume is exact. */
    @Test
    void aStopRequestEndsAtAStepBoundaryWithACheckpoint(@TempDir Path tmp) {
        ToyBigram straight = new ToyBigram(V, 2);
        run(opts(tmp.resolve("a"), 10, 3, 0, null, false), straight);

        Path b = tmp.resolve("b");
        Interruption stop = new Interruption();
        ToyBigram stopped = new ToyBigram(V, 2);
        stopped.onCall = c -> { if (c == 2 * 4 + 2) stop.request(); };   // during step 5, between its micro-batches
        Trainer.Hooks hooks = new Trainer.Hooks(Checkpoints.Extra.NONE, stop, dev.cpt4j.io.AtomicFiles.Channels.DIRECT);
        assertThatThrownBy(() -> run(opts(b, 10, 3, 0, null, false), stopped, hooks))
                .isInstanceOf(Trainer.Interrupted.class)
                .hasMessage("interrupted at step 5; the last checkpoint is " + b.resolve("checkpoint-5")
                        + "; resume with --resume_from_checkpoint true");
        assertThat(stopped.calls).isEqualTo(10);                           // step 5 finished, step 6 never began
        assertThat(stop.training()).isFalse();
        assertThat(Checkpoints.list(b)).containsExactly(b.resolve("checkpoint-3"), b.resolve("checkpoint-5"));

        ToyBigram resumed = new ToyBigram(V, 2);
        run(opts(b, 10, 3, 0, "true", false), resumed);
        assertThat(resumed.params).containsExactly(straight.params);
        // checkpoint-5 lies between the logs of steps 4 and 6: step 6 logs the mean of steps 5 and 6, as uninterrupted
        assertThat(losses(b)).containsExactlyElementsOf(losses(tmp.resolve("a")));
    }

    /** The logged training records without their timings. */
    private static List<String> losses(Path out) {
        return MetricsLog.read(out.resolve(MetricsLog.FILE)).stream().filter(j -> j.has("loss"))
                .map(j -> j.get("step") + " " + j.get("loss") + " " + j.get("lr") + " " + j.get("grad_norm")).toList();
    }
}
