package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.data.TextBlocks;
import dev.cpt4j.generate.LoadedModel;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code eval --neat_packing} and {@code compare --general_eval_file} on the tiny WordPiece GPT-2 of the generate
 * fixtures: the packed loss is the loss of every document piece scored alone by the KV-cache decoder, weighted by its
 * predictions; compare reports the general-domain text before and after.
 */
class NeatPackingEvalTest {
    @TempDir
    Path tmp;
    @RegisterExtension
    final CliCapture cli = new CliCapture();

    private List<String> ok(String... args) {
        return cli.ok(args);
    }

    @Test
    void packedEvalIsEachDocumentPieceAlone() throws Exception {
        Path model = InferenceCommandsTest.golden("tiny_wp"), text = InferenceCommandsTest.golden("tiny_wp/text.txt");
        int T = 16;
        JsonNode packed = new ObjectMapper().readTree(ok("eval", "--model", model.toString(), "--text-file", text.toString(),
                "--block-size", "" + T, "--batch-size", "3", "--threads", "2", "--json", "--neat_packing").getLast());
        JsonNode plain = new ObjectMapper().readTree(ok("eval", "--model", model.toString(), "--text-file", text.toString(),
                "--block-size", "" + T, "--batch-size", "3", "--threads", "2", "--json").getLast());
        assertThat(packed.get("blocks").asInt()).isEqualTo(plain.get("blocks").asInt());

        LoadedModel m = LoadedModel.load(model, null);
        TextBlocks.Text t = TextBlocks.tokenizeDocuments(m.tokenizer(), text, "--text-file");
        int blocks = t.ids().length / T;
        int[] starts = TextBlocks.docStarts(t.docLengths(), blocks, T);
        double sum = 0;
        long n = 0;
        try (Parallel par = new Parallel(1)) {
            StepModel dec = m.decoder(1, T, par);
            for (int b = 0; b < blocks; b++)
                for (int s = 0; s < T; ) {
                    int e = s + 1;
                    while (e < T && starts[b * T + e] == s) e++;
                    if (e - s >= 2) {
                        sum += dec.sequenceLoss(Arrays.copyOfRange(t.ids(), b * T + s, b * T + e)) * (e - s - 1);
                        n += e - s - 1;
                    }
                    s = e;
                }
        }
        assertThat(n).as("some predictions are dropped at document ends").isLessThan((long) blocks * (T - 1));
        assertThat(packed.get("loss").asDouble()).isCloseTo(sum / n, within(1e-4));
        assertThat(packed.get("loss").asDouble()).isNotCloseTo(plain.get("loss").asDouble(), within(1e-3));
    }

    @Test
    void compareReportsTheGeneralDomainBeforeAndAfter() throws Exception {
        Path prompts = Files.writeString(tmp.resolve("prompts.txt"), "明月\n");
        Path general = Files.writeString(tmp.resolve("general.txt"), "床前明月光，疑是地上霜。\n举头望明月，低头思故乡。\n"
                + "白日依山尽，黄河入海流。\n欲穷千里目，更上一层楼。\n");
        Path report = tmp.resolve("report");
        String stdout = String.join("\n", ok("compare", "--model", InferenceCommandsTest.golden("tiny_wp").toString(),
                "--adapter", InferenceCommandsTest.golden("tiny_wp_adapter").toString(), "--text-file",
                InferenceCommandsTest.golden("tiny_wp/text.txt").toString(), "--block-size", "8", "--prompts",
                prompts.toString(), "--num-return-sequences", "1", "--max-new-tokens", "4", "--output", report.toString(),
                "--threads", "2", "--general_eval_file", general.toString(), "--neat_packing"));
        var g = java.util.regex.Pattern.compile("general-domain perplexity on (\\d+) blocks \\(.*general.txt\\): base ([0-9.]+) -> base \\+ adapter ([0-9.]+)")
                .matcher(stdout);
        assertThat(g.find()).as(stdout).isTrue();
        assertThat(Double.parseDouble(g.group(2))).isPositive();
        assertThat(Double.parseDouble(g.group(2))).isNotEqualTo(Double.parseDouble(g.group(3)));
        assertThat(Files.readString(report.resolve("report.md"))).contains("general-domain perplexity");
        assertThat(Files.readString(report.resolve("report.html"))).contains("general-domain perplexity");
    }
}
