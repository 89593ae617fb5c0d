package dev.cpt4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * eval / generate / tokenize / bench generate on LLaMA-family directories (the golden fixtures of
 * tools/golden/make_llama_golden.py with a small WordPiece vocab.txt beside them), and the family's bad-input lines.
 */
class LlamaCommandsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path GOLDEN = Path.of("src/test/resources/golden/llama");
    static final String TEXT = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。床前明月光，疑是地上霜。举头望明月，低头思故乡。";
    @TempDir
    Path tmp;
    @RegisterExtension
    final CliCapture cli = new CliCapture();

    private List<String> ok(String... args) {
        return cli.ok(args);
    }

    private String fails(String... args) {
        return cli.fails(args);
    }

    /** A copy of fixture {@code name} with a WordPiece vocab.txt of {@code size} tokens (every character of TEXT). */
    Path model(String name, int size) throws IOException {
        Path d = Files.createDirectories(tmp.resolve(name + "-" + size));
        try (var files = Files.list(GOLDEN.resolve(name))) {
            for (Path f : files.toList()) {
                String n = f.getFileName().toString();
                if (n.equals("config.json") || n.startsWith("model")) Files.copy(f, d.resolve(n));
            }
        }
        List<String> vocab = new ArrayList<>(List.of("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"));
        TEXT.codePoints().mapToObj(Character::toString).distinct().forEach(vocab::add);
        for (int i = 0; vocab.size() < size; i++) vocab.add("tok" + i);
        Files.write(d.resolve("vocab.txt"), vocab.subList(0, size), StandardCharsets.UTF_8);
        return d;
    }

    Path text() throws IOException {
        return Files.writeString(tmp.resolve("text.txt"), (TEXT + "\n").repeat(3), StandardCharsets.UTF_8);
    }

    @Test
    void evalAndGreedyGenerateRunOnEveryFamily() throws Exception {
        for (String name : List.of("llama_untied_llama3_bias", "qwen2_tied_yarn", "qwen3_headdim_qknorm", "mistral_onekv_bf16")) {
            Path m = model(name, 60);
            JsonNode ev = JSON.readTree(ok("eval", "--model", m.toString(), "--text-file", text().toString(),
                    "--block-size", "9", "--batch-size", "2", "--threads", "2", "--json").getLast());
            double loss = ev.get("loss").asDouble();
            assertThat(loss).as(name).isBetween(1.0, 20.0);
            assertThat(ev.get("perplexity").asDouble()).isCloseTo(Math.exp(loss), org.assertj.core.api.Assertions.within(1e-6 * Math.exp(loss)));

            JsonNode gen = JSON.readTree(ok("generate", "--model", m.toString(), "--prompt", "春眠不觉", "--do-sample",
                    "false", "--max-new-tokens", "7", "--min-new-tokens", "7", "--threads", "1", "--json").getLast());
            int[] ids = JSON.convertValue(gen.get("ids"), int[].class);
            // the command's greedy ids are the family decoder's on the same prompt
            Tokenizer tok = Tokenizer.load(m);
            int[] prompt = tok.encode("春眠不觉", false);
            HfCheckpoints.ModelDir md = HfCheckpoints.loadModelDir(m);
            ModelConfig c = md.config();
            try (Parallel par = new Parallel(1)) {
                StepModel dec = c.family().decoder(c, md.params(), md.layout(), 1, prompt.length + 7, par);
                float[] lg = dec.prefill(prompt, 1);
                List<Integer> want = new ArrayList<>();
                for (int i = 0; i < 7; i++) {
                    int best = 0;
                    for (int j = 1; j < c.vocabSize(); j++) if (lg[j] > lg[best]) best = j;
                    want.add(best);
                    lg = dec.next(new int[] {best}, new boolean[] {true});
                }
                List<Integer> got = new ArrayList<>();
                for (int i = ids.length - 7; i < ids.length; i++) got.add(ids[i]);
                assertThat(got).as(name).isEqualTo(want);
            }
        }
    }

    @Test
    void compareAndEvalWithAPeftAdapterOnALlamaBase() throws Exception {
        Path m = model("llama_untied_llama3_bias", 60);
        Path adapter = Path.of("src/test/resources/golden/peft_llama/llama_untied_llama3_bias");
        Path text = text(), prompts = Files.writeString(tmp.resolve("prompts.txt"), "春眠\n明月\n");
        double base = JSON.readTree(ok("eval", "--model", m.toString(), "--text-file", text.toString(), "--block-size", "9",
                "--json").getLast()).get("perplexity").asDouble();
        double tuned = JSON.readTree(ok("eval", "--model", m.toString(), "--adapter", adapter.toString(), "--text-file",
                text.toString(), "--block-size", "9", "--json").getLast()).get("perplexity").asDouble();
        assertThat(tuned).isNotCloseTo(base, org.assertj.core.data.Percentage.withPercentage(0.1));
        Path report = tmp.resolve("report");
        String stdout = String.join("\n", ok("compare", "--model", m.toString(), "--adapter", adapter.toString(),
                "--text-file", text.toString(), "--block-size", "9", "--prompts", prompts.toString(),
                "--num-return-sequences", "2", "--max-new-tokens", "5", "--output", report.toString(), "--threads", "2"));
        var mt = java.util.regex.Pattern.compile("base ([0-9.]+) -> base \\+ adapter ([0-9.]+)").matcher(stdout);
        assertThat(mt.find()).as(stdout).isTrue();
        assertThat(Double.parseDouble(mt.group(1))).isCloseTo(base, org.assertj.core.data.Percentage.withPercentage(0.01));
        assertThat(Double.parseDouble(mt.group(2))).isCloseTo(tuned, org.assertj.core.data.Percentage.withPercentage(0.01));
        assertThat(Files.readString(report.resolve("report.md"))).contains("春眠").contains("明月");
    }

    @Test
    void tokenizeAndBenchGenerateTakeALlamaDirectory() throws Exception {
        Path m = model("qwen3_headdim_qknorm", 60);
        assertThat(ok("tokenize", "--tokenizer", m.toString(), "--input", text().toString())).isNotEmpty();
        JsonNode b = JSON.readTree(ok("bench", "generate", "--config", m.resolve("config.json").toString(), "--prompt-tokens",
                "4", "--max-new-tokens", "6", "--num-return-sequences", "2", "--threads", "1", "--json").getLast());
        assertThat(b.get("new_tokens").asInt()).isEqualTo(12);
    }

    @Test
    void benchLoadReadsPerTensorAndEvaluates() throws Exception {
        Path m = model("mistral_onekv_bf16", 60);
        JsonNode b = JSON.readTree(ok("bench", "load", "--model", m.toString(), "--block", "12", "--max-new-tokens", "3",
                "--threads", "1", "--json").getLast());
        HfCheckpoints.ModelDir md = HfCheckpoints.loadModelDir(m);
        assertThat(b.get("parameters").asLong()).isEqualTo(md.layout().size());
        // matrices as bf16 (2 bytes), norms fp32 (4 bytes)
        assertThat(b.get("weight_bytes").asLong()).isBetween(2L * md.layout().size(), 4L * md.layout().size() - 1);
        assertThat(b.get("loss").asDouble()).isBetween(1.0, 20.0);
        assertThat(fails("bench", "load", "--model", m.toString(), "--block", "1")).contains("--block must be at least 2");
    }

    @Test
    void badInputIsOneLine() throws Exception {
        // a tokenizer larger than the embedding
        Path big = model("qwen3_headdim_qknorm", 200);
        assertThat(fails("eval", "--model", big.toString(), "--text-file", text().toString(), "--block-size", "9"))
                .contains("200 ids").contains("127 embedding rows");
        // heads that do not divide, an unsupported rope type, a missing shard
        Path heads = model("llama_untied_llama3_bias", 60);
        edit(heads, o -> o.put("num_key_value_heads", 3));
        assertThat(fails("eval", "--model", heads.toString(), "--text-file", text().toString(), "--block-size", "9"))
                .contains("config.json").contains("num_key_value_heads (3)");
        Path rope = model("qwen2_tied_yarn", 60);
        edit(rope, o -> ((ObjectNode) o.get("rope_scaling")).put("rope_type", "longrope"));
        assertThat(fails("eval", "--model", rope.toString(), "--text-file", text().toString(), "--block-size", "9"))
                .contains("rope type \"longrope\" is not supported").contains("yarn").contains("llama3");
        Path shard = model("mistral_onekv_bf16", 60);
        Files.delete(shard.resolve("model-00002-of-00003.safetensors"));
        assertThat(fails("eval", "--model", shard.toString(), "--text-file", text().toString(), "--block-size", "9"))
                .contains("model-00002-of-00003.safetensors");
        Path type = model("qwen3_headdim_qknorm", 60);
        edit(type, o -> o.put("model_type", "gemma"));
        assertThat(fails("eval", "--model", type.toString(), "--text-file", text().toString(), "--block-size", "9"))
                .contains("unsupported model_type \"gemma\"").contains("qwen3");
    }

    static void edit(Path dir, java.util.function.Consumer<ObjectNode> f) throws IOException {
        ObjectNode o = (ObjectNode) JSON.readTree(dir.resolve("config.json").toFile());
        f.accept(o);
        Files.writeString(dir.resolve("config.json"), o.toPrettyString());
    }
}
