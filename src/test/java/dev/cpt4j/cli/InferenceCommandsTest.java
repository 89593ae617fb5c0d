package dev.cpt4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

/**
 * eval / generate / merge end to end on the tiny WordPiece GPT-2 and its peft adapter; expected numbers from
 * golden/generate/tiny_wp/eval.json (tools/golden/make_generate_golden.py).
 */
class InferenceCommandsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    Path tmp;
    private final ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
    private PrintStream oldOut, oldErr;
    JsonNode golden;

    @BeforeEach
    void capture() throws Exception {
        oldOut = System.out;
        oldErr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        golden = JSON.readTree(golden("tiny_wp/eval.json").toFile());
    }

    @AfterEach
    void restore() {
        System.setOut(oldOut);
        System.setErr(oldErr);
    }

    static Path golden(String rel) throws URISyntaxException {
        return Path.of(InferenceCommandsTest.class.getResource("/golden/generate/" + rel).toURI());
    }

    private List<String> ok(String... args) {
        int code = Main.execute(args);
        assertThat(code).as(err.toString(StandardCharsets.UTF_8)).isZero();
        List<String> lines = out.toString(StandardCharsets.UTF_8).lines().toList();
        out.reset();
        return lines;
    }

    private String fails(String... args) {
        int code = Main.execute(args);
        String msg = err.toString(StandardCharsets.UTF_8).strip();
        err.reset();
        assertThat(code).as(msg).isEqualTo(2);
        assertThat(msg.lines().count()).as(msg).isEqualTo(1);
        return msg;
    }

    private JsonNode evalJson(Path model, Path adapter) throws Exception {
        List<String> args = new java.util.ArrayList<>(List.of("eval", "--model", model.toString(), "--text-file",
                golden("tiny_wp/text.txt").toString(), "--block-size", "16", "--batch-size", "3", "--threads", "2", "--json"));
        if (adapter != null) args.addAll(List.of("--adapter", adapter.toString()));
        List<String> lines = ok(args.toArray(String[]::new));
        return JSON.readTree(lines.getLast());
    }

    @Test
    void evalMatchesTransformersWithAndWithoutAdapter() throws Exception {
        JsonNode base = evalJson(golden("tiny_wp"), null);
        assertThat(base.get("loss").asDouble()).isCloseTo(golden.get("base_loss").asDouble(), within(1e-4));
        assertThat(base.get("perplexity").asDouble()).isCloseTo(Math.exp(base.get("loss").asDouble()), within(1e-6));
        assertThat(base.get("blocks").asInt()).isEqualTo(golden.get("blocks").asInt());
        assertThat(base.get("tokens").asInt()).isEqualTo(16 * golden.get("blocks").asInt());
        JsonNode lora = evalJson(golden("tiny_wp"), golden("tiny_wp_adapter"));
        assertThat(lora.get("loss").asDouble()).isCloseTo(golden.get("adapter_loss").asDouble(), within(1e-4));
    }

    /** An adapter that ships its own tokenizer gives the merged model that tokenizer only: no stale base vocab.txt. */
    @Test
    void mergedCheckpointTakesTheAdaptersTokenizerWhole() throws Exception {
        Path adapter = Files.createDirectories(tmp.resolve("adapter-with-tokenizer"));
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors"))
            Files.copy(golden("tiny_wp_adapter/" + f), adapter.resolve(f));
        String tokJson = "{\"version\": \"1.0\", \"model\": {\"type\": \"WordPiece\"}}";
        Files.writeString(adapter.resolve("tokenizer.json"), tokJson);
        Path merged = tmp.resolve("merged-tok");
        ok("merge", "--model", golden("tiny_wp").toString(), "--adapter", adapter.toString(), "--output", merged.toString());
        assertThat(merged.resolve("tokenizer.json")).hasContent(tokJson);
        assertThat(merged.resolve("vocab.txt")).doesNotExist();
    }

    @Test
    void mergedCheckpointEvaluatesLikeTheAdapter() throws Exception {
        Path merged = tmp.resolve("merged");
        ok("merge", "--model", golden("tiny_wp").toString(), "--adapter", golden("tiny_wp_adapter").toString(),
                "--output", merged.toString());
        assertThat(merged.resolve("model.safetensors")).isRegularFile();
        assertThat(merged.resolve("vocab.txt")).hasSameTextualContentAs(golden("tiny_wp/vocab.txt"));
        JsonNode cfg = JSON.readTree(merged.resolve("config.json").toFile());
        assertThat(cfg.get("vocab_size").asInt()).isEqualTo(66);
        assertThat(cfg.get("tie_word_embeddings").asBoolean()).isFalse();
        double viaAdapter = evalJson(golden("tiny_wp"), golden("tiny_wp_adapter")).get("loss").asDouble();
        double viaMerged = evalJson(merged, null).get("loss").asDouble();
        assertThat(viaMerged).isEqualTo(viaAdapter);
        // an output directory holding other files is refused, nothing touched
        Path busy = Files.createDirectories(tmp.resolve("busy"));
        Files.writeString(busy.resolve("notes.txt"), "mine");
        assertThat(fails("merge", "--model", golden("tiny_wp").toString(), "--adapter", golden("tiny_wp_adapter").toString(),
                "--output", busy.toString())).contains("--output").contains("not empty");
        assertThat(busy.resolve("notes.txt")).hasContent("mine");
        assertThat(Files.list(busy).count()).isEqualTo(1);
    }

    @Test
    void generateGreedyJsonMatchesTransformers() throws Exception {
        for (String adapter : new String[] {null, "tiny_wp_adapter"}) {
            int[] want = ints(golden.get(adapter == null ? "base_greedy" : "adapter_greedy"));
            List<String> args = new java.util.ArrayList<>(List.of("generate", "--model", golden("tiny_wp").toString(),
                    "--prompt", golden.get("prompt_text").asText(), "--max-new-tokens", "" + want.length,
                    "--min-new-tokens", "" + want.length, "--json", "--threads", "2"));
            if (adapter != null) args.addAll(List.of("--adapter", golden(adapter).toString()));
            List<String> lines = ok(args.toArray(String[]::new));
            assertThat(lines).hasSize(1);
            JsonNode j = JSON.readTree(lines.getFirst());
            assertThat(ints(j.get("ids"))).containsExactly(want);
            String text = j.get("text").asText();
            assertThat(text).startsWith(golden.get("prompt_text").asText()).doesNotContain("[CLS]", "[SEP]", "[PAD]");
            assertThat(text).doesNotContainPattern("\\p{IsHan} \\p{IsHan}");
        }
    }

    @Test
    void generateStreamsOneSequence() throws Exception {
        List<String> lines = ok("generate", "--model", golden("tiny_wp").toString(), "--adapter",
                golden("tiny_wp_adapter").toString(), "--prompt", "春眠不觉", "--do-sample", "true", "--top-p", "0.9",
                "--max-new-tokens", "20", "--seed", "7");
        assertThat(String.join("\n", lines)).startsWith("春眠不觉").doesNotContain("[SEP]", "[PAD]", "[CLS]");
    }

    @Test
    void badInputIsOneLine() throws Exception {
        String m = golden("tiny_wp").toString(), text = golden("tiny_wp/text.txt").toString();
        assertThat(fails("eval", "--model", m, "--text-file", text, "--block-size", "97")).contains("exceeds the model's context of 96 positions");
        assertThat(fails("eval", "--model", tmp.resolve("none").toString(), "--text-file", text, "--block-size", "8"))
                .contains("--model");
        Path empty = Files.writeString(tmp.resolve("empty.txt"), "\n\n");
        assertThat(fails("eval", "--model", m, "--text-file", empty.toString(), "--block-size", "8")).contains("no text");
        String longPrompt = "春".repeat(96);
        assertThat(fails("generate", "--model", m, "--prompt", longPrompt)).contains("context");
        // an adapter made for a base with a vocabulary of 66 and this base has 97 tokens
        Path other = Files.createDirectories(tmp.resolve("other"));
        for (String f : new String[] {"config.json", "model.safetensors"})
            Files.copy(golden("tiny_tied/" + f), other.resolve(f));
        Files.copy(golden("tiny_wp/vocab.txt"), other.resolve("vocab.txt"));
        assertThat(fails("eval", "--model", other.toString(), "--adapter", golden("tiny_wp_adapter").toString(),
                "--text-file", text, "--block-size", "16")).contains("was made for a base with").contains("this base");
        assertThat(fails("generate", "--model", other.toString(), "--adapter", golden("tiny_wp_adapter").toString(),
                "--prompt", "春")).contains("was made for a base with");
    }

    @Test
    void anAdapterWhoseConfigRankDisagreesWithItsTensorsIsRefused() throws Exception {
        // peft refuses r = 2 in adapter_config.json over the rank-4 tensors of tiny_wp_adapter; so must cpt4j
        Path bad = Files.createDirectories(tmp.resolve("bad_rank"));
        for (String f : new String[] {"adapter_config.json", "adapter_model.safetensors"})
            Files.copy(golden("tiny_wp_adapter/" + f), bad.resolve(f));
        Path cfg = bad.resolve("adapter_config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"r\": 4,", "\"r\": 2,"));
        assertThat(Files.readString(cfg)).contains("\"r\": 2,");
        String m = golden("tiny_wp").toString();
        assertThat(fails("generate", "--model", m, "--adapter", bad.toString(), "--prompt", "春"))
                .contains("lora_A.weight has shape [4, ").contains("r = 2").contains("adapter_config.json");
        assertThat(fails("merge", "--model", m, "--adapter", bad.toString(), "--output", tmp.resolve("merged").toString()))
                .contains("r = 2");
        assertThat(tmp.resolve("merged")).doesNotExist();
    }

    @Test
    void compareWritesReportWithBothPerplexities() throws Exception {
        Path prompts = Files.writeString(tmp.resolve("prompts.txt"), "春眠不觉\n\n明月\n");
        Path report = tmp.resolve("report");
        List<String> lines = ok("compare", "--model", golden("tiny_wp").toString(), "--adapter",
                golden("tiny_wp_adapter").toString(), "--text-file", golden("tiny_wp/text.txt").toString(),
                "--block-size", "16", "--prompts", prompts.toString(), "--num-return-sequences", "2",
                "--max-new-tokens", "8", "--output", report.toString(), "--threads", "2");
        String stdout = String.join("\n", lines);
        var m = java.util.regex.Pattern.compile("base ([0-9.]+) -> base \\+ adapter ([0-9.]+)").matcher(stdout);
        assertThat(m.find()).as(stdout).isTrue();
        // perplexity = exp(loss): a loss within 1e-4 gives a perplexity within 1e-4 relative
        assertThat(Double.parseDouble(m.group(1))).isCloseTo(Math.exp(golden.get("base_loss").asDouble()),
                org.assertj.core.data.Percentage.withPercentage(0.01));
        assertThat(Double.parseDouble(m.group(2))).isCloseTo(Math.exp(golden.get("adapter_loss").asDouble()),
                org.assertj.core.data.Percentage.withPercentage(0.01));
        String md = Files.readString(report.resolve("report.md"));
        assertThat(md).contains("春眠不觉").contains("明月").doesNotContain("[SEP]", "[PAD]");
        assertThat(report.resolve("report.html")).isRegularFile();

        // the same on a prepared store's validation blocks
        Path corpus = Files.createDirectories(tmp.resolve("corpus"));
        Files.copy(golden("tiny_wp/text.txt"), corpus.resolve("a.txt"));
        Path store = tmp.resolve("store");
        ok("prepare", "--tokenizer", golden("tiny_wp").toString(), "--dataset_dir", corpus.toString(), "--block_size", "16",
                "--output", store.toString(), "--validation_split_percentage", "0.3", "--no-progress");
        List<String> viaData = ok("compare", "--model", golden("tiny_wp").toString(), "--adapter",
                golden("tiny_wp_adapter").toString(), "--data", store.toString(), "--prompts", prompts.toString(),
                "--num-return-sequences", "1", "--max-new-tokens", "4", "--output", tmp.resolve("r2").toString());
        assertThat(String.join("\n", viaData)).contains("validation split").contains("perplexity on ");
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }
}
