package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.train.MetricsLog;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cpt4j train} with the continued-pretraining data options on the tiny GPT-2 of {@link TrainEndToEndTest}:
 * {@code --neat_packing}, mixing sources with {@code --interleave_probs} (tokens per source in metrics.jsonl, the
 * shares in the log, resume bit for bit), {@code --general_eval_file} at every evaluation, and the bad-input lines.
 */
class DataMixingTrainTest {
    static Path smallCorpus(Path dir, int lines, long seed) throws IOException {
        Files.createDirectories(dir);
        List<String> out = new ArrayList<>();
        java.util.SplittableRandom r = new java.util.SplittableRandom(seed);
        String chars = TrainEndToEndTest.CHARS;
        for (int i = 0; i < lines; i++) {
            StringBuilder sb = new StringBuilder();
            int n = 3 + r.nextInt(8);
            for (int k = 0; k < n; k++) sb.appendCodePoint(chars.codePointAt(r.nextInt(chars.length())));
            out.add(sb.append("。").toString());
        }
        Files.write(dir.resolve("text.txt"), out, StandardCharsets.UTF_8);
        return dir;
    }

    @Test
    void neatPackingWithGeneralEvalTrainsAndLogsBoth(@TempDir Path tmp) throws IOException {
        Path model = TrainEndToEndTest.tinyModel(tmp.resolve("model"), 48);
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        Path general = smallCorpus(tmp.resolve("general"), 30, 9).resolve("text.txt");
        Path out = tmp.resolve("out");
        TrainEndToEndTest.Run r = TrainEndToEndTest.run(TrainEndToEndTest.seedArgs(model, data, tmp.resolve("cache"), out,
                "--neat_packing", "--general_eval_file", general.toString()));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("neat packing").contains("general-domain held-out text").contains("general text (");
        List<JsonNode> evals = MetricsLog.read(out.resolve(MetricsLog.FILE)).stream().filter(n -> n.has("eval_loss")).toList();
        assertThat(evals).hasSize(3);  // steps 2, 4, 6
        for (JsonNode e : evals) {
            assertThat(e.path("general_eval_loss").asDouble()).isPositive();
            assertThat(e.path("general_eval_ppl").asDouble()).isCloseTo(Math.exp(e.path("general_eval_loss").asDouble()),
                    org.assertj.core.api.Assertions.within(1e-6));
        }
        // the same run without the flag trains on other numbers (documents now see each other)
        Path plain = tmp.resolve("plain");
        TrainEndToEndTest.Run p = TrainEndToEndTest.run(TrainEndToEndTest.seedArgs(model, data, tmp.resolve("cache"), plain));
        assertThat(p.code()).as(p.err()).isZero();
        double packedLoss = lastLoss(out), plainLoss = lastLoss(plain);
        assertThat(packedLoss).isNotEqualTo(plainLoss);
    }

    static double lastLoss(Path out) {
        List<JsonNode> train = MetricsLog.read(out.resolve(MetricsLog.FILE)).stream().filter(n -> n.has("loss")).toList();
        return train.getLast().path("loss").asDouble();
    }

    @Test
    void mixingRecordsTokensPerSourceAndResumesBitForBit(@TempDir Path tmp) throws IOException {
        Path model = TrainEndToEndTest.tinyModel(tmp.resolve("model"), 48);
        Path domain = TrainEndToEndTest.corpus(tmp.resolve("domain"));
        Path replay = smallCorpus(tmp.resolve("replay"), 25, 4);
        Path both = Path.of(domain + "," + replay);
        Path out = tmp.resolve("out");
        TrainEndToEndTest.Run r = TrainEndToEndTest.run(TrainEndToEndTest.seedArgs(model, both, tmp.resolve("cache"), out,
                "--interleave_probs", "0.75,0.25", "--neat_packing"));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("source 1 of 2: " + domain).contains("source 2 of 2: " + replay)
                .contains("of the tokens so far");
        List<JsonNode> train = MetricsLog.read(out.resolve(MetricsLog.FILE)).stream().filter(n -> n.has("loss")).toList();
        JsonNode last = train.getLast().path("tokens_by_source");
        long a = last.path(domain.toString()).asLong(), b = last.path(replay.toString()).asLong();
        assertThat(a + b).as("every block of 6 steps × 4 blocks × 16 tokens").isEqualTo(6 * 4 * 16);
        assertThat(a).isGreaterThan(b);
        assertThat(Files.list(tmp.resolve("cache")).map(p -> p.getFileName().toString()).toList())
                .as("one prepared store per source").hasSize(2).allMatch(n -> n.startsWith("source-"));
        byte[] uninterrupted = Files.readAllBytes(out.resolve("adapter_model.safetensors"));
        String metrics = Files.readString(out.resolve(MetricsLog.FILE));

        dev.cpt4j.io.AtomicFiles.deleteTree(out.resolve("checkpoint-6"));
        TrainEndToEndTest.Run resumed = TrainEndToEndTest.run(TrainEndToEndTest.seedArgs(model, both, tmp.resolve("cache"),
                out, "--interleave_probs", "0.75,0.25", "--neat_packing", "--resume_from_checkpoint", "true"));
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.err()).contains("resumed from").contains("using prepared data");
        assertThat(Files.readAllBytes(out.resolve("adapter_model.safetensors"))).isEqualTo(uninterrupted);
        assertThat(lines(Files.readString(out.resolve(MetricsLog.FILE)), "tokens_by_source"))
                .isEqualTo(lines(metrics, "tokens_by_source"));
    }

    static List<String> lines(String metrics, String key) {
        return metrics.lines().filter(l -> l.contains(key))
                .map(l -> l.replaceAll("\"(tokens_per_s|elapsed_s)\":[^,}]*", "")).toList();
    }

    @Test
    void badProbabilitiesAreOneLineErrors(@TempDir Path tmp) throws IOException {
        Path model = TrainEndToEndTest.tinyModel(tmp.resolve("model"), 48);
        Path a = TrainEndToEndTest.corpus(tmp.resolve("a")), b = smallCorpus(tmp.resolve("b"), 10, 1);
        Path both = Path.of(a + "," + b);
        String[][] cases = {
                {"0.5,0.3,0.2", "gives 3 probabilities for 2 sources"},
                {"1.25,-0.25", "is negative"},
                {"0.6,0.3", "sum to 0.9"},
        };
        for (String[] c : cases) {
            TrainEndToEndTest.Run r = TrainEndToEndTest.run(TrainEndToEndTest.seedArgs(model, both, tmp.resolve("cache"),
                    tmp.resolve("out"), "--interleave_probs", c[0]));
            assertThat(r.code()).as(c[0]).isEqualTo(2);
            assertThat(r.err()).contains(c[1]).doesNotContain("Exception").doesNotContain("\tat ");
        }
        TrainEndToEndTest.Run one = TrainEndToEndTest.run(TrainEndToEndTest.seedArgs(model, a, tmp.resolve("cache"),
                tmp.resolve("out"), "--interleave_probs", "1"));
        assertThat(one.code()).isEqualTo(2);
        assertThat(one.err()).contains("--interleave_probs mixes several sources");
        Files.createDirectories(tmp.resolve("empty"));
        Files.writeString(tmp.resolve("empty/blank.txt"), "\n\n");
        TrainEndToEndTest.Run empty = TrainEndToEndTest.run(TrainEndToEndTest.seedArgs(model, Path.of(a + "," + tmp.resolve("empty")),
                tmp.resolve("cache2"), tmp.resolve("out"), "--interleave_probs", "0.5,0.5"));
        assertThat(empty.code()).isEqualTo(2);
        assertThat(empty.err()).contains(tmp.resolve("empty").toString()).doesNotContain("\tat ");
    }
}
