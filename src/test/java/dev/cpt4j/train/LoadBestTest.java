package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.UserError;
import dev.cpt4j.tensor.Parallel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 14 item 2: --load_best_model_at_end, as transformers' with metric_for_best_model loss. */
class LoadBestTest {
    private static TrainOptions opts(Path out, double lr, int limit) {
        return TrainerTest.opts(out, 12, 2, limit, null, false).toBuilder().evalSteps(2).learningRate(lr)
                .embeddingLearningRate(lr).lrSchedulerType(LrSchedule.Type.CONSTANT).warmupRatio(0).loadBestModelAtEnd(true)
                .build();
    }

    @Test
    void theCheckpointWithTheLowestEvalLossIsKeptAndBecomesTheFinalModel(@TempDir Path tmp) {
        Path out = tmp.resolve("out");
        ToyBigram m = new ToyBigram(TrainerTest.V, 3);
        ByteArrayOutputStream log = new ByteArrayOutputStream();
        try (Parallel par = Parallel.serial()) {
            Trainer.run(opts(out, 3.0, 1), m, new ToyData(TrainerTest.V, TrainerTest.T, 50, 5), par, Progress.NONE,
                    new PrintStream(log, true, StandardCharsets.UTF_8));
        }
        List<JsonNode> evals = MetricsLog.read(out.resolve(MetricsLog.FILE)).stream().filter(j -> j.has("eval_loss")).toList();
        JsonNode best = evals.stream().min(Comparator.comparingDouble(j -> j.get("eval_loss").asDouble())).orElseThrow();
        long bestStep = best.get("step").asLong();
        assertThat(bestStep).as("a large constant lr overshoots: the best is not the last step").isLessThan(12);
        // --save_total_limit 1 keeps the best and the latest
        assertThat(Checkpoints.list(out)).extracting(p -> p.getFileName().toString())
                .containsExactly("checkpoint-" + bestStep, "checkpoint-12");
        assertThat(log.toString(StandardCharsets.UTF_8)).contains("loaded the best checkpoint")
                .contains("checkpoint-" + bestStep);
        ToyBigram fromBest = new ToyBigram(TrainerTest.V, 3);
        Checkpoints.load(out.resolve("checkpoint-" + bestStep), fromBest.layout(), fromBest.params(),
                AdamW.forModel(fromBest, 1e-3, 1e-3, 0, 0.9, 0.999, 1e-8));
        assertThat(m.params()).as("the model left for the export is the best checkpoint's").containsExactly(fromBest.params());
    }

    @Test
    void needsAnEvaluationAtEverySave() {
        assertThatThrownBy(() -> TrainerTest.opts(Path.of("o"), 12, 3, 0, null, false).toBuilder().evalSteps(2)
                .loadBestModelAtEnd(true).build()).isInstanceOf(UserError.class).hasMessageContaining("multiple of --eval_steps");
        assertThatThrownBy(() -> TrainerTest.opts(Path.of("o"), 12, 2, 0, null, false).toBuilder().doEval(false)
                .loadBestModelAtEnd(true).build()).isInstanceOf(UserError.class).hasMessageContaining("--do_eval");
    }
}
