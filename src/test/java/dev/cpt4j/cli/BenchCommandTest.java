package dev.cpt4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class BenchCommandTest {
    record Run(int code, String out, String err) {}

    static Run run(String... args) {
        PrintStream o = System.out, e = System.err;
        ByteArrayOutputStream bo = new ByteArrayOutputStream(), be = new ByteArrayOutputStream();
        System.setOut(new PrintStream(bo, true));
        System.setErr(new PrintStream(be, true));
        try {
            int code = Main.execute(args);
            return new Run(code, bo.toString(), be.toString());
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
    }

    @Test
    void trainBenchPrintsJson(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("config.json");
        // aliases hidden_size / num_hidden_layers / num_attention_heads / max_position_embeddings
        Files.writeString(cfg, "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"max_position_embeddings\":16,\"hidden_size\":24,"
                + "\"num_hidden_layers\":2,\"num_attention_heads\":3,\"n_inner\":null,\"activation_function\":\"gelu_fast\"}");
        Run r = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--steps", "2",
                "--warmup", "1", "--gradient_checkpointing", "--threads", "2", "--json");
        assertThat(r.code()).as(r.err()).isZero();
        String[] lines = r.out().strip().split("\n");
        JsonNode j = new ObjectMapper().readTree(lines[lines.length - 1]);
        assertThat(j.get("tokens_per_s").asDouble()).isPositive();
        assertThat(j.get("peak_rss_mb").asDouble()).isPositive();
        assertThat(j.get("gflops").asDouble()).isPositive();
        assertThat(j.get("mfu").asDouble()).isPositive();
        assertThat(j.get("backend").asText()).isIn("java", "native");
        assertThat(j.get("tile").asText()).matches("(8|12)x(8|16|32)");
    }

    @Test
    void trainBenchWithNeatPacking(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\":\"llama\",\"vocab_size\":50,\"max_position_embeddings\":32,\"hidden_size\":16,"
                + "\"intermediate_size\":24,\"num_hidden_layers\":1,\"num_attention_heads\":4,\"num_key_value_heads\":2}");
        Run r = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "24", "--steps", "1",
                "--warmup", "0", "--threads", "1", "--neat_packing", "5");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("neat packing (documents of 5 tokens on average)").contains("tokens/s");
        Run bad = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--neat_packing", "-1");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err()).contains("--neat_packing takes the mean document length");
    }

    @Test
    void backendFlagChoosesTheGemm(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_positions\":16,\"n_embd\":24,\"n_layer\":2,\"n_head\":3}");
        String before = System.getProperty(dev.cpt4j.tensor.cpu.Backend.PROPERTY);
        try {
            for (String b : new String[] {"java", "native"}) {
                Run r = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--steps", "1",
                        "--warmup", "0", "--threads", "2", "--backend", b, "--json");
                assertThat(r.code()).as(r.err()).isZero();
                String[] lines = r.out().strip().split("\n");
                assertThat(new ObjectMapper().readTree(lines[lines.length - 1]).get("backend").asText()).isEqualTo(b);
            }
            Run bad = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--backend", "cuda");
            assertThat(bad.code()).isEqualTo(2);
            assertThat(bad.err().strip()).isEqualTo("cpt4j: --backend: unknown backend 'cuda'; use auto, java or native");
        } finally {
            if (before == null) System.clearProperty(dev.cpt4j.tensor.cpu.Backend.PROPERTY);
            else System.setProperty(dev.cpt4j.tensor.cpu.Backend.PROPERTY, before);
        }
    }

    /** In a JVM where OpenBLAS cannot load (pointed at a missing file): native is one line and exit 2, auto falls back. */
    @Test
    void backendNativeWithoutTheLibraryIsOneLine(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_positions\":16,\"n_embd\":24,\"n_layer\":2,\"n_head\":3}");
        for (String backend : new String[] {"native", "auto"}) {
            java.util.List<String> cmd = java.util.List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Dcpt4j.openblas=" + dir.resolve("missing.so"), "-cp",
                    System.getProperty("java.class.path"), Main.class.getName(), "bench", "train", "--config", cfg.toString(),
                    "--batch", "1", "--block", "4", "--steps", "1", "--warmup", "0", "--threads", "1", "--backend", backend, "--json");
            Process p = new ProcessBuilder(cmd).start();
            String out, err;
            try (var o = p.getInputStream(); var e = p.getErrorStream()) {
                out = new String(o.readAllBytes());
                err = new String(e.readAllBytes());
            }
            assertThat(p.waitFor(2, java.util.concurrent.TimeUnit.MINUTES)).isTrue();
            java.util.List<String> lines = err.lines().filter(l -> !l.startsWith("WARNING")).toList();
            if (backend.equals("native")) {
                assertThat(p.exitValue()).as(err + out).isEqualTo(2);
                assertThat(lines).as(err).hasSize(1);
                assertThat(lines.getFirst()).startsWith("cpt4j: --backend native: the native library (OpenBLAS) did not load")
                        .contains("missing.so").endsWith("use --backend java (or auto)");
            } else {
                assertThat(p.exitValue()).as(err + out).isZero();
                assertThat(out).contains("\"backend\":\"java\"");
            }
        }
    }

    @Test
    void trainBenchWithTheRecipesLoraFlags(@TempDir Path dir) throws Exception {
        Path cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_positions\":16,\"n_embd\":24,"
                + "\"n_layer\":2,\"n_head\":3}");
        Run r = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--steps", "2",
                "--warmup", "1", "--threads", "1", "--lora_rank", "8", "--lora-alpha", "32", "--trainable", "c_attn",
                "--modules_to_save", "transformer.wte,lm_head", "--lora_dropout", "0.05");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.out()).contains("LoRA r=8").contains("[attn.c_attn] + [transformer.wte, lm_head]").contains("tokens/s");
        Run bad = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--lora_rank", "4",
                "--trainable", "q_proj");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err()).contains("--trainable");
        Run bf16 = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--steps", "1",
                "--warmup", "0", "--threads", "1", "--lora_rank", "4", "--modules_to_save", "transformer.wte,lm_head",
                "--base_dtype", "bf16");
        assertThat(bf16.code()).as(bf16.err()).isZero();
        assertThat(bf16.out()).contains("base in bf16").contains("tokens/s");
        Run fullBf16 = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--base_dtype", "bf16");
        assertThat(fullBf16.code()).isEqualTo(2);
        assertThat(fullBf16.err()).contains("--base_dtype bf16 needs --lora_rank");
    }

    @Test
    void trainBenchRunsLlamaFamilyConfigs() throws Exception {
        for (String d : new String[] {"llama_untied_llama3_bias", "qwen2_tied_yarn", "qwen3_headdim_qknorm", "mistral_sliding_window"}) {
            Path cfg = Path.of("src/test/resources/golden/llama", d, "config.json");
            Run r = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "16", "--steps", "2",
                    "--warmup", "1", "--threads", "2", "--json");
            assertThat(r.code()).as(d + ": " + r.err()).isZero();
            String[] lines = r.out().strip().split("\n");
            JsonNode j = new ObjectMapper().readTree(lines[lines.length - 1]);
            assertThat(j.get("tokens_per_s").asDouble()).as(d).isPositive();
            assertThat(j.get("gflops").asDouble()).as(d).isPositive();
            assertThat(j.get("mfu").asDouble()).as(d).isPositive();
        }
        Path cfg = Path.of("src/test/resources/golden/llama/qwen2_tied_yarn/config.json");
        Run text = run("bench", "train", "--config", cfg.toString(), "--batch", "1", "--block", "8", "--steps", "1",
                "--warmup", "0", "--threads", "1", "--gradient_checkpointing");
        assertThat(text.code()).as(text.err()).isZero();
        assertThat(text.out()).contains("2 layers, 40 wide, 4 heads, vocab 181").contains("tokens/s").contains("MFU");
        Run lora = run("bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--steps", "1",
                "--warmup", "1", "--threads", "1", "--lora_rank", "4", "--lora_alpha", "16", "--trainable", "all-linear",
                "--modules_to_save", "embed_tokens,lm_head", "--base_dtype", "bf16", "--gradient_checkpointing", "--use_rslora");
        assertThat(lora.code()).as(lora.err()).isZero();
        assertThat(lora.out()).contains("LoRA r=4").contains("self_attn.q_proj").contains("mlp.down_proj")
                .contains("[model.embed_tokens, lm_head]").contains("base in bf16").contains("tokens/s");
        Run defaults = run("bench", "train", "--config", cfg.toString(), "--batch", "1", "--block", "8", "--steps", "1",
                "--warmup", "0", "--threads", "1", "--lora_rank", "2");
        assertThat(defaults.code()).as(defaults.err()).isZero();
        assertThat(defaults.out()).as("peft's default targets for qwen2").contains("[self_attn.q_proj, self_attn.v_proj]");
        Run wrong = run("bench", "train", "--config", cfg.toString(), "--batch", "1", "--block", "8", "--lora_rank", "2",
                "--trainable", "c_attn");
        assertThat(wrong.code()).isEqualTo(2);
        assertThat(wrong.err()).contains("--trainable 'c_attn'").contains("q_proj, k_proj");
        Run tooLong = run("bench", "train", "--config", cfg.toString(), "--batch", "1", "--block", "4096");
        assertThat(tooLong.code()).isEqualTo(2);
        assertThat(tooLong.err()).contains("--block 4096").contains("256");
    }

    @Test
    void badInputIsOneLineAndExit2(@TempDir Path dir) throws Exception {
        Run missing = run("bench", "train", "--config", dir.resolve("nope.json").toString(), "--batch", "1", "--block", "4");
        assertThat(missing.code()).isEqualTo(2);
        assertThat(missing.err()).contains("not found").doesNotContain("Exception");
        Path bad = dir.resolve("bad.json");
        Files.writeString(bad, "{\"n_embd\": 10, \"n_head\": 3,");
        Run invalid = run("bench", "train", "--config", bad.toString(), "--batch", "1", "--block", "4");
        assertThat(invalid.code()).isEqualTo(2);
        assertThat(invalid.err().strip().lines().count()).isEqualTo(1);
        Files.writeString(bad, "{\"n_embd\": 10, \"n_head\": 3}");
        Run shape = run("bench", "train", "--config", bad.toString(), "--batch", "1", "--block", "4");
        assertThat(shape.code()).isEqualTo(2);
        assertThat(shape.err()).contains("n_embd");
    }
}
