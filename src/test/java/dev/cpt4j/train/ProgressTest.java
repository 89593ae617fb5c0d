package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.io.TfEventsReader;
import dev.cpt4j.tensor.Parallel;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 14 item 1: progress for files and terminals, elapsed time across a resume; item 4: TensorBoard on resume. */
class ProgressTest {
    private final PrintStream quiet = new PrintStream(new ByteArrayOutputStream());

    @Test
    void terminalOrLinesIsDecidedByTheOverrideThenTheLauncher() {
        assertThat(Progress.terminal("lines", "true")).isFalse();
        assertThat(Progress.terminal("bar", "false")).isTrue();
        assertThat(Progress.terminal(null, "false")).isFalse();
        assertThat(Progress.terminal(" ", "true")).isTrue();
        assertThat(Progress.terminal("LINES", null)).isFalse();
    }

    @Test
    void logLineSaysStepLossLrGradNormThroughputElapsedAndEta() {
        String l = new Progress.Log(40, 2500, 4.12345, 1.95e-4, 0.5123, 1484.4, 100.2, 6120).line();
        assertThat(l).isEqualTo("step 40/2500  loss 4.1235  lr 1.95e-04  grad norm 0.512  1484 tok/s  elapsed 1m40s  ETA 1h42m");
        assertThat(new Progress.Log(1, 10, 1, 1, 1, 1, 5, Double.NaN).line()).endsWith("elapsed 5s  ETA ?");
    }

    @Test
    void barMessagesLandOnTheirOwnLines() throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (Progress p = Progress.console(new PrintStream(buf, true, StandardCharsets.UTF_8))) {
            p.start(0, 10);
            p.step(3, 2.5, 1.5e-4, 0.75, 1234);
            Thread.sleep(700);                                        // the bar's thread draws it
            p.message("step 3/10: eval loss 2.6");
            p.step(4, 2.4, 1.5e-4, 0.75, 1234);
            p.message("step 4/10: saved out/checkpoint-4");
        }
        String s = buf.toString(StandardCharsets.UTF_8);
        // every message is a whole line: after a line start (the bar's line is blanked first), ended by a newline
        for (String m : List.of("step 3/10: eval loss 2.6", "step 4/10: saved out/checkpoint-4")) {
            int i = s.indexOf(m);
            assertThat(i).isPositive();
            assertThat(s.charAt(i - 1)).isIn('\r', '\n');
            assertThat(s.charAt(i + m.length())).isEqualTo('\n');
        }
        assertThat(s).contains("3/10").contains("loss 2.5000");
    }

    @Test
    void linesModePrintsEachLogEvalAndSaveAsAWholeLine(@TempDir Path tmp) {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (Parallel par = Parallel.serial()) {
            Trainer.run(TrainerTest.opts(tmp.resolve("out"), 8, 4, 0, null, false), new ToyBigram(TrainerTest.V, 1),
                    new ToyData(TrainerTest.V, TrainerTest.T, 50, 5), par,
                    Progress.lines(new PrintStream(buf, true, StandardCharsets.UTF_8)), quiet);
        }
        List<String> lines = buf.toString(StandardCharsets.UTF_8).lines().toList();
        assertThat(lines).allSatisfy(l -> assertThat(l).startsWith("step ").doesNotContain("\r"));
        assertThat(lines).extracting(l -> l.replaceAll("  loss.*", " LOG").replaceAll(": eval.*", ": EVAL")
                .replaceAll(": saved.*", ": SAVED")).containsExactly("step 1/8 LOG", "step 2/8 LOG", "step 4/8 LOG",
                "step 4/8: EVAL", "step 4/8: SAVED", "step 6/8 LOG", "step 8/8 LOG", "step 8/8: EVAL", "step 8/8: SAVED");
    }

    /** elapsed_s goes on from the checkpoint's; TensorBoard drops the lost steps (SessionLog START after the checkpoint). */
    @Test
    void elapsedAndTensorBoardContinueAcrossAResume(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        TrainOptions o = TrainerTest.opts(out, 8, 4, 0, null, false).toBuilder().tensorboard(true).build();
        try (Parallel par = Parallel.serial()) {
            Trainer.run(o, new ToyBigram(TrainerTest.V, 1), new ToyData(TrainerTest.V, TrainerTest.T, 50, 5), par,
                    Progress.NONE, quiet);
        }
        // pretend the first 4 steps took 1000 s (the manifest is not among the files it checksums)
        Path state = out.resolve("checkpoint-4").resolve(Checkpoints.STATE);
        ObjectMapper json = new ObjectMapper();
        ObjectNode st = (ObjectNode) json.readTree(state.toFile());
        assertThat(st.get("elapsed_s").asDouble()).isPositive();
        st.put("elapsed_s", 1000.0);
        Files.writeString(state, json.writeValueAsString(st));
        try (Parallel par = Parallel.serial()) {
            Trainer.run(o.toBuilder().resumeFromCheckpoint(out.resolve("checkpoint-4").toString()).build(),
                    new ToyBigram(TrainerTest.V, 1), new ToyData(TrainerTest.V, TrainerTest.T, 50, 5), par, Progress.NONE, quiet);
        }
        List<JsonNode> m = MetricsLog.read(out.resolve(MetricsLog.FILE));
        JsonNode step6 = m.stream().filter(j -> j.has("loss") && j.get("step").asLong() == 6).findFirst().orElseThrow();
        assertThat(step6.get("elapsed_s").asDouble()).isBetween(1000.0, 1060.0);
        assertThat(Checkpoints.load(out.resolve("checkpoint-8"), new ToyBigram(TrainerTest.V, 1).layout(),
                new ToyBigram(TrainerTest.V, 1).params(), AdamW.forModel(new ToyBigram(TrainerTest.V, 1), 1e-3, 1e-3, 0, 0.9, 0.999, 1e-8))
                .elapsedS()).isBetween(1000.0, 1060.0);

        List<Path> files = TfEventsReader.files(out.resolve(TensorBoardLog.RUNS));
        assertThat(files).hasSize(2);
        assertThat(files.get(0).getParent()).as("the resumed run goes on in the same run folder").isEqualTo(files.get(1).getParent());
        List<TfEventsReader.Event> second = files.stream().map(f -> {
            try {
                return TfEventsReader.read(f);
            } catch (java.io.IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        }).filter(ev -> ev.stream().anyMatch(x -> x.sessionStatus() == 1)).findFirst().orElseThrow();
        assertThat(second.get(1).sessionStatus()).isEqualTo(1);
        assertThat(second.get(1).step()).isEqualTo(5);
        assertThat(second.stream().filter(x -> x.scalars().containsKey("train/loss")).map(TfEventsReader.Event::step))
                .containsExactly(6L, 8L);
    }
}
