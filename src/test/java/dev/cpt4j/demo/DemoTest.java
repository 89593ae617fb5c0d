package dev.cpt4j.demo;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.cli.Main;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.model.Gpt2Model;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The demo end to end on a tiny random base with the real 21,128-token WordPiece tokenizer and the bundled excerpt. */
class DemoTest {
    @Test
    void demoTrainsTheAdapterAndLowersHeldOutPerplexity(@TempDir Path dir) throws Exception {
        Path base = tinyBase(dir.resolve("base"));
        Path out = dir.resolve("demo");
        ByteArrayOutputStream so = new ByteArrayOutputStream(), se = new ByteArrayOutputStream();
        PrintStream o = System.out, e = System.err;
        int code;
        try {
            System.setOut(new PrintStream(so, true, StandardCharsets.UTF_8));
            System.setErr(new PrintStream(se, true, StandardCharsets.UTF_8));
            code = Main.execute("demo", "--base-model", base.toString(), "--output", out.toString(), "--max-steps", "6",
                    "--excerpt", "--threads", "2", "--json");
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
        String stdout = so.toString(StandardCharsets.UTF_8);
        assertThat(code).as(se.toString(StandardCharsets.UTF_8)).isZero();
        String[] lines = stdout.strip().split("\n");
        JsonNode j = new ObjectMapper().readTree(lines[lines.length - 1]);
        assertThat(j.get("steps").asInt()).isEqualTo(6);
        double before = j.get("perplexity_before").asDouble(), after = j.get("perplexity_after").asDouble();
        assertThat(after).isLessThan(before);
        assertThat(j.get("perplexity_change").asDouble()).isCloseTo(after / before - 1, org.assertj.core.data.Offset.offset(1e-3));
        // forgetting: the Tang shi of the base's own domain, measured before and after
        assertThat(j.get("general_perplexity_before").asDouble()).isPositive();
        assertThat(j.get("general_perplexity_after").asDouble()).isPositive()
                .isNotEqualTo(j.get("general_perplexity_before").asDouble());
        assertThat(j.get("general_blocks").asInt()).isPositive();
        assertThat(stdout).contains("forgetting:");
        assertThat(Files.readString(out.resolve("report/report.md"))).contains("general-domain perplexity");
        assertThat(out.resolve("adapter/adapter_config.json")).exists();
        assertThat(out.resolve("adapter/adapter_model.safetensors")).exists();
        assertThat(out.resolve("report/report.html")).exists();
        assertThat(stdout).contains("明月几时有").doesNotContain("[PAD]").doesNotContain("[SEP]");

        // a second run reuses its own output directory; a foreign non-empty one is refused and left alone
        Path foreign = Files.createDirectories(dir.resolve("foreign"));
        Files.writeString(foreign.resolve("mine.txt"), "user data");
        int refused;
        try {
            System.setErr(new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8));
            refused = Main.execute("demo", "--base-model", base.toString(), "--output", foreign.toString(), "--excerpt");
        } finally {
            System.setErr(e);
        }
        assertThat(refused).isEqualTo(2);
        assertThat(Files.readString(foreign.resolve("mine.txt"))).isEqualTo("user data");
        assertThat(Files.list(foreign).count()).isEqualTo(1);
    }

    /** A random 1-layer GPT-2 with the bert-base-chinese-compatible WordPiece (21,128 tokens). */
    static Path tinyBase(Path dir) throws Exception {
        Files.createDirectories(dir);
        Gpt2Config cfg = Gpt2Config.of(21128, 256, 16, 1, 2);
        try (Parallel par = new Parallel(1)) {
            Gpt2Model m = new Gpt2Model(cfg, new Gemm(par), par, 1, 8, false);
            m.initRandom(7);
            HfCheckpoints.save(dir, cfg, Gpt2Layout.of(cfg), m.params(), DType.F32);
        }
        try (InputStream in = DemoTest.class.getClassLoader().getResourceAsStream("bge-small-zh-v1.5-q-tokenizer.json")) {
            Files.copy(in, dir.resolve("tokenizer.json"));
        }
        return dir;
    }
}
