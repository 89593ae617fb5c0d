package dev.cpt4j.cli;

import static dev.cpt4j.cli.TrainEndToEndTest.corpus;
import static dev.cpt4j.cli.TrainEndToEndTest.run;
import static dev.cpt4j.cli.TrainEndToEndTest.seedArgs;
import static dev.cpt4j.cli.TrainEndToEndTest.tinyModel;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.io.TfEventsReader;
import dev.cpt4j.train.MetricsLog;
import dev.cpt4j.train.Progress;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 14, end to end on the tiny GPT-2 folder of {@link TrainEndToEndTest}: plain log lines when stderr is not a
 * terminal, TensorBoard event files matching metrics.jsonl, {@code --peft_path} continuing an adapter from its own
 * function with a fresh optimizer, flags pasted from HF / Chinese-LLaMA-Alpaca, a hub id.
 */
class WorkflowTest {
    @BeforeEach
    void plainLines() {
        System.setProperty(Progress.TERMINAL_PROPERTY, "false");    // what the launcher says under nohup or > file
    }

    @AfterEach
    void clear() {
        System.clearProperty(Progress.TERMINAL_PROPERTY);
    }

    private static String[] args(String[] base, String... extra) {
        List<String> l = new ArrayList<>(List.of(base));
        l.addAll(List.of(extra));
        return l.toArray(String[]::new);
    }

    @Test
    void logLinesTensorBoardAndPeftPathContinuation(@TempDir Path tmp) throws IOException {
        Path model = tinyModel(tmp.resolve("model"), 40);
        Path data = corpus(tmp.resolve("data"));
        Path a = tmp.resolve("a");
        TrainEndToEndTest.Run r = run(args(seedArgs(model, data, tmp.resolve("cache"), a), "--report_to", "tensorboard",
                "--run_name", "first", "--load_in_kbits", "16", "--save_safetensors", "--eval_strategy", "steps"));
        assertThat(r.code()).as(r.err()).isZero();

        // item 1: one plain line per logging step, per evaluation and per save, each on its own line
        String err = r.err();
        assertThat(err).doesNotContain("\r");
        List<String> lines = err.lines().toList();
        assertThat(lines).filteredOn(l -> l.matches("step \\d+/6  loss .* lr .* grad norm .* tok/s  elapsed .*  ETA .*"))
                .extracting(l -> l.substring(0, l.indexOf('/'))).containsExactly("step 1", "step 2", "step 4", "step 6");
        assertThat(lines).filteredOn(l -> l.matches("step \\d/6: eval loss .*, perplexity .*")).hasSize(3);
        assertThat(lines).filteredOn(l -> l.matches("step \\d/6: saved .*checkpoint-\\d")).hasSize(3);
        assertThat(err).contains("--load_in_kbits 16: cpt4j does not quantize").contains("--save_safetensors: cpt4j always");

        // item 4: the event file holds what metrics.jsonl holds, under transformers' tags
        List<JsonNode> metrics = MetricsLog.read(a.resolve(MetricsLog.FILE));
        List<Path> files = TfEventsReader.files(a.resolve("runs"));
        assertThat(files).singleElement().satisfies(f -> assertThat(f.getParent()).isEqualTo(a.resolve("runs/first")));
        List<TfEventsReader.Event> events = TfEventsReader.read(files.get(0));
        assertThat(events.get(0).fileVersion()).isEqualTo("brain.Event:2");
        for (JsonNode m : metrics) {
            boolean train = m.has("loss");
            TfEventsReader.Event e = events.stream()
                    .filter(x -> x.step() == m.get("step").asLong() && x.scalars().containsKey(train ? "train/loss" : "eval/loss"))
                    .findFirst().orElseThrow();
            if (train) {
                assertThat(e.scalars().get("train/loss")).isEqualTo((float) m.get("loss").asDouble());
                assertThat(e.scalars().get("train/learning_rate")).isEqualTo((float) m.get("lr").asDouble());
                assertThat(e.scalars().get("train/grad_norm")).isEqualTo((float) m.get("grad_norm").asDouble());
                assertThat(e.scalars()).containsKey("train/tokens_per_second");
            } else {
                assertThat(e.scalars().get("eval/loss")).isEqualTo((float) m.get("eval_loss").asDouble());
                assertThat(e.scalars().get("eval/perplexity")).isEqualTo((float) m.get("eval_ppl").asDouble());
            }
        }
        double finalEval = metrics.stream().filter(m -> m.has("eval_loss") && m.get("step").asLong() == 6).findFirst()
                .orElseThrow().get("eval_loss").asDouble();

        // item 3: --peft_path starts from the adapter: step 0's eval loss is the adapter's; AdamW starts fresh, so the
        // first update moves every LoRA weight by ±lr (Adam's first step is lr·g/|g|)
        Path b = tmp.resolve("b");
        TrainEndToEndTest.Run rb = run(args(seedArgs(model, data, tmp.resolve("cache"), b), "--peft_path", a.toString(),
                "--max_steps", "1", "--eval_on_start", "--lr_scheduler_type", "constant", "--weight_decay", "0",
                "--lora_rank", "16", "--report_to", "none"));   // repeated flags: the last value counts
        assertThat(rb.code()).as(rb.err()).isZero();
        assertThat(rb.err()).contains("continuing the adapter in " + a).contains("LoRA r=4, alpha 16")
                .contains("not the --lora_rank");
        assertThat(b.resolve("runs")).doesNotExist();
        List<JsonNode> mb = MetricsLog.read(b.resolve(MetricsLog.FILE));
        JsonNode start = mb.stream().filter(m -> m.has("eval_loss")).findFirst().orElseThrow();
        assertThat(start.get("step").asLong()).isZero();
        assertThat(start.get("eval_loss").asDouble()).isCloseTo(finalEval, org.assertj.core.data.Offset.offset(1e-6 * finalEval));
        double lr = 2e-3;
        assertThat(shareMovedByLr(PeftAdapters.read(a), PeftAdapters.read(b), lr)).as("fresh AdamW").isGreaterThan(0.9);

        // --resume_from_checkpoint continues the same run instead: the moments carry over, the step is not ±lr
        Path c = tmp.resolve("c");
        copyTree(a, c);
        TrainEndToEndTest.Run rc = run(args(seedArgs(model, data, tmp.resolve("cache"), c), "--resume_from_checkpoint",
                c.resolve("checkpoint-6").toString(), "--max_steps", "7", "--lr_scheduler_type", "constant",
                "--weight_decay", "0"));
        assertThat(rc.code()).as(rc.err()).isZero();
        assertThat(shareMovedByLr(PeftAdapters.read(a), PeftAdapters.read(c), lr)).as("resumed AdamW").isLessThan(0.5);
    }

    private static void copyTree(Path from, Path to) throws IOException {
        try (var s = Files.walk(from)) {
            for (Path p : s.toList()) Files.copy(p, to.resolve(from.relativize(p).toString()));
        }
    }

    /** The share of LoRA weights that one step moved by lr within 1 %. */
    private static double shareMovedByLr(PeftAdapters.Adapter before, PeftAdapters.Adapter after, double lr) {
        long n = 0, moved = 0;
        for (var e : before.tensors().entrySet()) {
            if (!e.getKey().contains(".lora_")) continue;
            float[] x = e.getValue().data(), y = after.tensors().get(e.getKey()).data();
            for (int i = 0; i < x.length; i++, n++) if (Math.abs(Math.abs(y[i] - x[i]) - lr) < 0.01 * lr) moved++;
        }
        assertThat(n).isPositive();
        return (double) moved / n;
    }

    @Test
    void pastedHfAndAlpacaFlagsMapToOptionsOrToOneLineEach() {
        String base = "--model_name_or_path m --dataset_dir d --output_dir o --lora_rank 8 --save_steps 100 ";
        dev.cpt4j.train.TrainOptions o = DemoCommand.parseTrainFlags(List.of((base + "--evaluation_strategy steps "
                + "--eval_steps 50 --max_train_samples 1000 --max_eval_samples 20 --report_to tensorboard --run_name r "
                + "--load_best_model_at_end --metric_for_best_model loss --greater_is_better False --peft_path ad "
                + "--eval_on_start --logging_steps 7 --logging_steps 9").split(" ")));
        assertThat(o.doEval()).isTrue();
        assertThat(o.evalSteps()).isEqualTo(50);
        assertThat(o.maxTrainSamples()).isEqualTo(1000);
        assertThat(o.maxEvalSamples()).isEqualTo(20);
        assertThat(o.tensorboard()).isTrue();
        assertThat(o.runName()).isEqualTo("r");
        assertThat(o.loadBestModelAtEnd()).isTrue();
        assertThat(o.peftPath()).isEqualTo(Path.of("ad"));
        assertThat(o.evalOnStart()).isTrue();
        assertThat(o.loggingSteps()).as("the last of a repeated flag").isEqualTo(9);

        dev.cpt4j.train.TrainOptions no = DemoCommand.parseTrainFlags(List.of((base + "--do_eval --eval_strategy no "
                + "--report_to none --trainable c_attn --trainable c_fc").split(" ")));
        assertThat(no.doEval()).isTrue();
        assertThat(no.evalSteps()).as("only at the end").isZero();
        assertThat(no.tensorboard()).isFalse();
        assertThat(no.trainable()).as("the last list, as argparse").containsExactly("c_fc");
        assertThat(DemoCommand.parseTrainFlags(List.of(base.split(" "))).validationSplit())
                .isEqualTo(dev.cpt4j.data.PrepareOptions.DEFAULT_VALIDATION_FRACTION);

        TrainCommand cmd = new TrainCommand();
        new picocli.CommandLine(cmd).parseArgs((base + "--load_in_kbits 4 --flash_attn --report_to wandb "
                + "--optim adamw_torch --use_cpu --dataloader_num_workers 4 --streaming --trust_remote_code True").split(" "));
        cmd.options();
        List<String> notes = cmd.notes();
        assertThat(notes).hasSize(8).allSatisfy(n -> assertThat(n).doesNotContain("\n"));
        assertThat(notes).anySatisfy(n -> assertThat(n).startsWith("--report_to wandb").contains("not available"));
        for (String bad : List.of("--optim sgd", "--metric_for_best_model accuracy", "--eval_strategy epoch",
                "--load_in_kbits 3", "--full_finetuning"))
            org.assertj.core.api.Assertions.assertThatThrownBy(() -> DemoCommand.parseTrainFlags(List.of((base + bad).split(" "))))
                    .as(bad).isInstanceOf(dev.cpt4j.UserError.class).hasMessageContaining(bad.split(" ")[0]);
    }

    @Test
    void nearMissFlagGetsASuggestionAndAHubIdGetsTheDownloadLine(@TempDir Path tmp) throws IOException {
        TrainEndToEndTest.Run r = run("train", "--model_name_or_path", "m", "--dataset_dir", "d", "--output_dir", "o",
                "--lora_rnak", "8");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).isEqualTo("cpt4j: unknown option --lora_rnak; did you mean --lora_rank? (see: cpt4j train --help)");
        assertThat(run("train", "--max_stpes", "3").err()).contains("did you mean --max_steps?");
        assertThat(run("train", "--zzzzzz", "3").err()).contains("unknown option --zzzzzz").doesNotContain("did you mean");

        String id = "IDEA-CCNL/Wenzhong2.0-GPT2-110M-BertTokenizer-chinese";
        Path out = tmp.resolve("out");
        TrainEndToEndTest.Run hub = run("train", "--model_name_or_path", id, "--dataset_dir", tmp.toString(),
                "--output_dir", out.toString());
        assertThat(hub.code()).isEqualTo(2);
        assertThat(hub.err()).contains("cpt4j reads local folders only")
                .contains("huggingface-cli download " + id + " --local-dir Wenzhong2.0-GPT2-110M-BertTokenizer-chinese");
        assertThat(out).doesNotExist();
        Files.writeString(tmp.resolve("a.txt"), "一行\n");
        TrainEndToEndTest.Run prep = run("prepare", "--tokenizer", id, "--dataset_dir", tmp.toString(), "--block_size", "8",
                "--output", tmp.resolve("cache").toString());
        assertThat(prep.err()).contains("huggingface-cli download " + id);
    }
}
