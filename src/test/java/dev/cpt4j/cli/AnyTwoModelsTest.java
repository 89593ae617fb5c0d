package dev.cpt4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * eval, generate and compare on the folders training writes: a full fine-tune and a LoRA run of the tiny WordPiece
 * GPT-2 (golden/generate/tiny_wp), trained here on text where "gpt" is always followed by the continuation piece
 * "##2", each with checkpoint-10 and checkpoint-20. Compare takes any two of them; eval and generate take a checkpoint
 * folder as a model or an adapter; a completion joins "##2" to its word instead of showing "##".
 */
class AnyTwoModelsTest {
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir
    static Path shared;
    static Path base, full, lora, text, prompts;

    @TempDir
    Path tmp;
    @RegisterExtension
    final CliCapture cli = new CliCapture();

    @BeforeAll
    static void train() throws Exception {
        base = Path.of(AnyTwoModelsTest.class.getResource("/golden/generate/tiny_wp").toURI());
        Path corpus = Files.createDirectories(shared.resolve("corpus"));
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 40; i++) lines.add(i % 2 == 0 ? "gpt2 gpt2 gpt2 春眠不觉晓。" : "gpt2 明月光，gpt2 gpt2。");
        Files.write(corpus.resolve("a.txt"), lines, StandardCharsets.UTF_8);
        text = corpus.resolve("a.txt");
        prompts = Files.writeString(shared.resolve("prompts.txt"), "gpt\n春眠\n");
        full = shared.resolve("full");
        lora = shared.resolve("lora");
        for (Path o : List.of(full, lora)) {
            List<String> args = new ArrayList<>(List.of("train", "--model_name_or_path", base.toString(),
                    "--tokenizer_name_or_path", base.toString(), "--dataset_dir", corpus.toString(),
                    "--data_cache_dir", shared.resolve("cache").toString(), "--block_size", "16",
                    "--per_device_train_batch_size", "4", "--max_steps", "20", "--learning_rate", "1e-2",
                    "--save_steps", "10", "--logging_steps", "10", "--seed", "3", "--threads", "2",
                    "--validation_split_percentage", "0.1", "--output_dir", o.toString()));
            if (o == lora)
                args.addAll(List.of("--lora_rank", "4", "--lora_alpha", "16", "--trainable", "c_attn",
                        "--modules_to_save", "transformer.wte,lm_head"));
            PrintStream oldErr = System.err;
            ByteArrayOutputStream log = new ByteArrayOutputStream();
            System.setErr(new PrintStream(log, true, StandardCharsets.UTF_8));
            int code;
            try {
                code = Main.execute(args.toArray(String[]::new));
            } finally {
                System.setErr(oldErr);
            }
            assertThat(code).as(log.toString(StandardCharsets.UTF_8)).isZero();
            assertThat(o.resolve("checkpoint-10")).isDirectory();
            assertThat(o.resolve("checkpoint-20")).isDirectory();
        }
    }

    private List<String> ok(String... args) {
        return cli.ok(args);
    }

    private String fails(String... args) {
        return cli.fails(args);
    }

    private double evalLoss(String... modelArgs) throws IOException {
        List<String> args = new ArrayList<>(List.of("eval", "--text-file", text.toString(), "--block-size", "16",
                "--threads", "2", "--json"));
        args.addAll(List.of(modelArgs));
        return JSON.readTree(ok(args.toArray(String[]::new)).getLast()).get("loss").asDouble();
    }

    /** The two perplexities on compare's stdout line, with the column headings. */
    private record Line(String before, double pplBefore, String after, double pplAfter) {}

    private Line compare(Path report, String... modelArgs) {
        List<String> args = new ArrayList<>(List.of("compare", "--text-file", text.toString(), "--block-size", "16",
                "--prompts", prompts.toString(), "--num-return-sequences", "2", "--max-new-tokens", "6",
                "--threads", "2", "--output", report.toString()));
        args.addAll(List.of(modelArgs));
        String stdout = String.join("\n", ok(args.toArray(String[]::new)));
        Matcher m = Pattern.compile("\\): (.+) ([0-9.]+) -> (.+) ([0-9.]+) \\(").matcher(stdout);
        assertThat(m.find()).as(stdout).isTrue();
        return new Line(m.group(1), Double.parseDouble(m.group(2)), m.group(3), Double.parseDouble(m.group(4)));
    }

    @Test
    void generateJoinsAContinuationPieceToItsWord() throws Exception {
        int piece = Files.readAllLines(base.resolve("vocab.txt")).indexOf("##2");
        for (String[] model : List.of(new String[] {"--model", full.toString()},
                new String[] {"--model", full.resolve("checkpoint-20").toString()},
                new String[] {"--model", base.toString(), "--adapter", lora.resolve("checkpoint-20").toString()})) {
            List<String> args = new ArrayList<>(List.of("generate", "--prompt", "gpt", "--max-new-tokens", "3",
                    "--json", "--threads", "2"));
            args.addAll(List.of(model));
            JsonNode j = JSON.readTree(ok(args.toArray(String[]::new)).getFirst());
            // the trained model continues "gpt" with "##2": the case this test is about
            assertThat(j.get("ids").get(0).asInt()).as(j.toString()).isEqualTo(piece);
            assertThat(j.get("completion").asText()).as(j.toString()).startsWith("2").doesNotContain("##");
            assertThat(j.get("text").asText()).startsWith("gpt2").doesNotContain("##");
        }
    }

    @Test
    void evalAndGenerateTakeCheckpointFolders() throws Exception {
        Path ck = lora.resolve("checkpoint-10");
        double viaAdapter = evalLoss("--model", base.toString(), "--adapter", ck.toString());
        // a LoRA checkpoint alone as --model brings its base (adapter_config.json's base_model_name_or_path)
        assertThat(evalLoss("--model", ck.toString())).isEqualTo(viaAdapter);
        assertThat(evalLoss("--model", full.resolve("checkpoint-20").toString())).isEqualTo(evalLoss("--model", full.toString()));
        assertThat(evalLoss("--model", full.resolve("checkpoint-10").toString()))
                .isNotEqualTo(evalLoss("--model", full.resolve("checkpoint-20").toString()));
        assertThat(ok("generate", "--model", ck.toString(), "--prompt", "春眠", "--max-new-tokens", "4").getFirst())
                .startsWith("春眠");
    }

    @Test
    void compareBaseWithAFullFineTune() throws Exception {
        Path report = tmp.resolve("r");
        Line l = compare(report, "--base-model", base.toString(), "--model", full.toString());
        assertThat(l.before()).isEqualTo("tiny_wp");
        assertThat(l.after()).isEqualTo("full");
        assertThat(Math.log(l.pplBefore())).isCloseTo(evalLoss("--model", base.toString()), org.assertj.core.data.Offset.offset(1e-4));
        assertThat(Math.log(l.pplAfter())).isCloseTo(evalLoss("--model", full.toString()), org.assertj.core.data.Offset.offset(1e-4));
        assertThat(l.pplAfter()).isLessThan(l.pplBefore());
        String md = Files.readString(report.resolve("report.md"));
        assertThat(md).contains("# cpt4j compare: tiny\\_wp vs. full").contains("| # | tiny\\_wp | full |")
                .contains("> gpt").doesNotContain("##2");
        // the fine-tune continues "gpt" with the piece "##2": its samples start with "2", joined to the prompt's word
        assertThat(md).containsPattern("\\| 1 \\| [^|]* \\| 2[^|]* \\|");
        assertThat(Files.readString(report.resolve("report.html"))).contains("<th>tiny_wp</th><th>full</th>").doesNotContain("##2");
    }

    @Test
    void compareTwoCheckpoints() throws Exception {
        Line lo = compare(tmp.resolve("lora"), "--model", base.toString(), "--base-adapter",
                lora.resolve("checkpoint-10").toString(), "--adapter", lora.resolve("checkpoint-20").toString());
        assertThat(lo.before()).isEqualTo("checkpoint-10");
        assertThat(lo.after()).isEqualTo("checkpoint-20");
        assertThat(Math.log(lo.pplBefore())).isCloseTo(evalLoss("--model", base.toString(), "--adapter",
                lora.resolve("checkpoint-10").toString()), org.assertj.core.data.Offset.offset(1e-4));
        assertThat(Math.log(lo.pplAfter())).isCloseTo(evalLoss("--model", base.toString(), "--adapter",
                lora.resolve("checkpoint-20").toString()), org.assertj.core.data.Offset.offset(1e-4));

        Line fu = compare(tmp.resolve("full"), "--base-model", full.resolve("checkpoint-10").toString(),
                "--model", full.resolve("checkpoint-20").toString());
        assertThat(Math.log(fu.pplBefore())).isCloseTo(evalLoss("--model", full.resolve("checkpoint-10").toString()),
                org.assertj.core.data.Offset.offset(1e-4));
        assertThat(Math.log(fu.pplAfter())).isCloseTo(evalLoss("--model", full.toString()), org.assertj.core.data.Offset.offset(1e-4));

        // adapter vs. adapter of two runs: same folder names are told apart
        Line two = compare(tmp.resolve("two"), "--model", base.toString(), "--base-adapter", lora.toString(),
                "--adapter", lora.resolve("checkpoint-10").toString());
        assertThat(two.before()).isEqualTo("lora");
        // the classic form keeps its headings
        Line classic = compare(tmp.resolve("classic"), "--model", base.toString(), "--adapter", lora.toString());
        assertThat(classic.before()).isEqualTo("base");
        assertThat(classic.after()).isEqualTo("base + adapter");
    }

    @Test
    void wrongFoldersAreOneLine() throws Exception {
        String t = text.toString(), p = prompts.toString();
        assertThat(fails("eval", "--model", base.toString(), "--adapter", full.toString(), "--text-file", t))
                .contains("--adapter " + full + " holds a full model").contains("pass it as --model");
        Path unfinished = Files.createDirectories(tmp.resolve("unfinished/checkpoint-5"));
        Files.writeString(unfinished.resolve("x"), "");
        assertThat(fails("generate", "--model", unfinished.getParent().toString(), "--prompt", "春"))
                .contains("holds training checkpoints (checkpoint-5)").contains("give one of the checkpoint folders");
        assertThat(fails("compare", "--model", base.toString(), "--text-file", t, "--prompts", p))
                .contains("nothing to compare").contains("--base-model");
        assertThat(fails("compare", "--model", full.toString(), "--base-model", full.toString(), "--text-file", t,
                "--prompts", p)).contains("both sides");
        assertThat(fails("eval", "--model", lora.toString(), "--adapter", lora.toString(), "--text-file", t))
                .contains("is a LoRA adapter").contains("give the base model as --model");
    }
}
