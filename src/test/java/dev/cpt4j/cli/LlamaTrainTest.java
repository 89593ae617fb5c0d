package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.PeftAdapters;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code cpt4j train} end to end on LLaMA-family folders (the golden fixtures of tools/golden/make_llama_golden.py
 * with a small WordPiece vocab.txt): LoRA on all seven projections with rsLoRA, dropout, gradient checkpointing and
 * a bf16 base, {@code embed_tokens} and {@code lm_head} trained in full (untied copies on tied Qwen2, whose config
 * vocabulary of 181 rows stays larger than the 60-token tokenizer), the peft adapter, resume from the last
 * surviving checkpoint (what a kill -9 after it leaves) to the same final adapter bit for bit, {@code eval
 * --adapter} on the result; full fine-tuning writes an HF folder; a projection the model lacks is one line.
 */
class LlamaTrainTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final Path GOLDEN = Path.of("src/test/resources/golden/llama");
    static final String TEXT = "春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。床前明月光，疑是地上霜。举头望明月，低头思故乡。";

    static Path model(Path tmp, String name, int size) throws IOException {
        Path d = Files.createDirectories(tmp.resolve(name));
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

    static Path data(Path tmp) throws IOException {
        Path d = Files.createDirectories(tmp.resolve("data"));
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 24; i++) lines.add(TEXT.substring(i % 10, 10 + (i * 7) % 30));
        Files.write(d.resolve("poems.txt"), lines, StandardCharsets.UTF_8);
        return d;
    }

    record Run(int code, String out, String err) {}

    static Run run(String... args) {
        PrintStream o = System.out, e = System.err;
        ByteArrayOutputStream bo = new ByteArrayOutputStream(), be = new ByteArrayOutputStream();
        System.setOut(new PrintStream(bo, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(be, true, StandardCharsets.UTF_8));
        try {
            return new Run(Main.execute(args), bo.toString(StandardCharsets.UTF_8), be.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
    }

    static String[] loraArgs(Path m, Path data, Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--model_name_or_path", m.toString(), "--dataset_dir", data.toString(),
                "--data_cache_dir", out.resolveSibling(out.getFileName() + "-cache").toString(), "--output_dir", out.toString(),
                "--block_size", "8", "--per_device_train_batch_size", "2", "--max_steps", "6", "--save_steps", "2",
                "--save_total_limit", "2", "--learning_rate", "2e-3", "--lora_rank", "4", "--lora_alpha", "8",
                "--use_rslora", "--lora_dropout", "0.1", "--trainable", "all-linear", "--modules_to_save",
                "embed_tokens,lm_head", "--gradient_checkpointing", "--base_dtype", "bf16", "--threads", "2", "--seed", "7"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    @Test
    void loraOnAllSevenProjectionsTrainsResumesAndEvaluates(@TempDir Path tmp) throws IOException {
        Path data = data(tmp);
        for (String name : List.of("llama_untied_llama3_bias", "qwen2_tied_yarn")) {
            Path m = model(tmp, name, 60), out = tmp.resolve(name + "-out");
            Run r = run(loraArgs(m, data, out));
            assertThat(r.code()).as(r.err()).isZero();
            assertThat(r.err()).contains("LoRA r=4 on [self_attn.q_proj, self_attn.k_proj, self_attn.v_proj, self_attn.o_proj, "
                    + "mlp.gate_proj, mlp.up_proj, mlp.down_proj]").doesNotContain("resized");
            if (name.startsWith("qwen2")) assertThat(r.err()).contains("two separate copies");
            PeftAdapters.Adapter a = PeftAdapters.read(out);
            assertThat(a.config().fanInFanOut()).isFalse();
            assertThat(a.config().useRslora()).isTrue();
            assertThat(a.config().targetModules()).containsExactlyInAnyOrder("q_proj", "k_proj", "v_proj", "o_proj",
                    "gate_proj", "up_proj", "down_proj");
            int V = HfCheckpoints.readModelConfig(m).vocabSize();
            assertThat(a.tensors().get("base_model.model.model.embed_tokens.weight").shape()[0]).as("config rows kept").isEqualTo(V);
            assertThat(a.tensors()).containsKey("base_model.model.lm_head.weight")
                    .containsKey("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
            assertThat(a.tensors().get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").data())
                    .as("B moved away from zero").isNotEqualTo(new float[a.tensors().get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight").data().length]);
            byte[] uninterrupted = Files.readAllBytes(out.resolve("adapter_model.safetensors"));

            dev.cpt4j.io.AtomicFiles.deleteTree(out.resolve("checkpoint-6"));
            Run resumed = run(loraArgs(m, data, out, "--resume_from_checkpoint", "true"));
            assertThat(resumed.code()).as(resumed.err()).isZero();
            assertThat(resumed.err()).contains("resumed from");
            assertThat(Files.readAllBytes(out.resolve("adapter_model.safetensors"))).as(name).isEqualTo(uninterrupted);

            Path text = Files.writeString(tmp.resolve("eval.txt"), TEXT + "\n", StandardCharsets.UTF_8);
            Run base = run("eval", "--model", m.toString(), "--text-file", text.toString(), "--block-size", "8", "--threads", "2", "--json");
            Run tuned = run("eval", "--model", m.toString(), "--adapter", out.toString(), "--text-file", text.toString(),
                    "--block-size", "8", "--threads", "2", "--json");
            assertThat(tuned.code()).as(tuned.err()).isZero();
            double lb = JSON.readTree(base.out().strip().lines().reduce((x, y) -> y).orElseThrow()).get("loss").asDouble();
            double lt = JSON.readTree(tuned.out().strip().lines().reduce((x, y) -> y).orElseThrow()).get("loss").asDouble();
            assertThat(lt).as(name + ": the adapter learned the poems").isLessThan(lb);
        }
    }

    /**
     * {@code --ensure_weight_tying} on tied Qwen2: one trained embedding serves as the head; the adapter says so in
     * peft's key, and merge keeps the checkpoint tied with the adapter's loss.
     */
    @Test
    void ensureWeightTyingKeepsTiedQwen2TiedThroughMerge(@TempDir Path tmp) throws IOException {
        Path data = data(tmp), m = model(tmp, "qwen2_tied_yarn", 60), out = tmp.resolve("tied");
        Run r = run("train", "--model_name_or_path", m.toString(), "--dataset_dir", data.toString(), "--output_dir", out.toString(),
                "--block_size", "8", "--per_device_train_batch_size", "2", "--max_steps", "3", "--save_steps", "0",
                "--learning_rate", "5e-3", "--lora_rank", "4", "--lora_alpha", "8", "--trainable", "q_proj,v_proj",
                "--modules_to_save", "embed_tokens,lm_head", "--ensure_weight_tying", "--threads", "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).doesNotContain("two separate copies");
        PeftAdapters.Adapter a = PeftAdapters.read(out);
        assertThat(a.config().extra().path("ensure_weight_tying").asBoolean()).isTrue();
        assertThat(a.tensors()).containsKey("base_model.model.model.embed_tokens.weight");
        if (a.tensors().containsKey("base_model.model.lm_head.weight"))
            assertThat(a.tensors().get("base_model.model.lm_head.weight").data())
                    .isEqualTo(a.tensors().get("base_model.model.model.embed_tokens.weight").data());
        Path merged = tmp.resolve("merged");
        Run mr = run("merge", "--model", m.toString(), "--adapter", out.toString(), "--output", merged.toString());
        assertThat(mr.code()).as(mr.err()).isZero();
        JsonNode cfg = JSON.readTree(merged.resolve("config.json").toFile());
        assertThat(cfg.path("tie_word_embeddings").asBoolean()).isTrue();
        Path text = Files.writeString(tmp.resolve("eval.txt"), TEXT + "\n", StandardCharsets.UTF_8);
        Run withAdapter = run("eval", "--model", m.toString(), "--adapter", out.toString(), "--text-file", text.toString(),
                "--block-size", "8", "--threads", "2", "--json");
        Run mergedEval = run("eval", "--model", merged.toString(), "--text-file", text.toString(), "--block-size", "8",
                "--threads", "2", "--json");
        double la = JSON.readTree(withAdapter.out().strip().lines().reduce((x, y) -> y).orElseThrow()).get("loss").asDouble();
        double lm = JSON.readTree(mergedEval.out().strip().lines().reduce((x, y) -> y).orElseThrow()).get("loss").asDouble();
        assertThat(lm).isCloseTo(la, org.assertj.core.api.Assertions.within(1e-4 * la));
    }

    /**
     * A real {@code kill -9} of a training process in the middle of a run (checkpoint every step, killed after step
     * 3 or later, maybe mid-write), then {@code --resume_from_checkpoint true}: the same final adapter, bit for bit, as
     * the uninterrupted run.
     */
    @Test
    @org.junit.jupiter.api.Timeout(300)
    void resumeAfterKillNineIsBitIdentical(@TempDir Path tmp) throws Exception {
        Path data = data(tmp), m = model(tmp, "qwen2_tied_yarn", 60);
        String[] extra = {"--max_steps", "60", "--save_steps", "1", "--logging_steps", "1", "--threads", "1"};
        Path ref = tmp.resolve("ref"), out = tmp.resolve("killed");
        Run r = run(killArgs(m, data, ref, extra));
        assertThat(r.code()).as(r.err()).isZero();

        String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED", "-Xmx512m", "-cp", cp, Main.class.getName()));
        cmd.addAll(List.of(killArgs(m, data, out, extra)));
        Path log = tmp.resolve("killed.log");
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        try {
            Pattern step = Pattern.compile("\\{\"step\":(\\d+),\"loss\"");
            long deadline = System.nanoTime() + 120_000_000_000L, last = -1;
            while (last < 3 && System.nanoTime() < deadline) {
                assertThat(p.isAlive()).as(() -> read(log)).isTrue();
                Path f = out.resolve("metrics.jsonl");
                if (Files.exists(f)) {
                    Matcher mm = step.matcher(Files.readString(f));
                    while (mm.find()) last = Long.parseLong(mm.group(1));
                }
                Thread.sleep(20);
            }
            assertThat(last).as(() -> read(log)).isGreaterThanOrEqualTo(3);
            p.destroyForcibly();
            assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
        } finally {
            p.destroyForcibly();
        }
        assertThat(p.exitValue()).isEqualTo(137);
        assertThat(out.resolve("adapter_model.safetensors")).as("killed before the end").doesNotExist();
        Run resumed = run(TrainEndToEndTest.with(killArgs(m, data, out, extra), "--resume_from_checkpoint", "true"));
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.err()).contains("resumed from");
        assertThat(Files.readAllBytes(out.resolve("adapter_model.safetensors")))
                .isEqualTo(Files.readAllBytes(ref.resolve("adapter_model.safetensors")));
    }

    private static String[] killArgs(Path m, Path data, Path out, String... flagValues) {
        String[] a = loraArgs(m, data, out);
        for (int i = 0; i < flagValues.length; i += 2) a = TrainEndToEndTest.with(a, flagValues[i], flagValues[i + 1]);
        return a;
    }

    private static String read(Path f) {
        try {
            return Files.readString(f, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    @Test
    void fullFineTuningWritesAnHfFolderAndBadTargetsAreOneLine(@TempDir Path tmp) throws IOException {
        Path data = data(tmp), m = model(tmp, "qwen3_headdim_qknorm", 60), out = tmp.resolve("full");
        Run r = run("train", "--model_name_or_path", m.toString(), "--dataset_dir", data.toString(), "--output_dir",
                out.toString(), "--block_size", "8", "--per_device_train_batch_size", "2", "--max_steps", "2",
                "--save_steps", "0", "--threads", "2");
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(r.err()).contains("full fine-tuning");
        HfCheckpoints.ModelDir back = HfCheckpoints.loadModelDir(out);
        assertThat(back.config().modelType()).isEqualTo("qwen3");
        assertThat(back.config().vocabSize()).isEqualTo(HfCheckpoints.readModelConfig(m).vocabSize());

        // a tokenizer larger than the embedding: transformers' mean resizing of embed_tokens and the untied lm_head
        Path big = model(tmp, "llama_untied_llama3_bias", 140), grown = tmp.resolve("grown");
        Run g = run("train", "--model_name_or_path", big.toString(), "--dataset_dir", data.toString(), "--output_dir",
                grown.toString(), "--block_size", "8", "--per_device_train_batch_size", "2", "--max_steps", "1",
                "--save_steps", "0", "--threads", "2", "--lora_rank", "2", "--trainable", "q_proj");
        assertThat(g.code()).as(g.err()).isZero();
        assertThat(g.err()).contains("resized the embeddings from 131 to 140")
                .contains("neither model.embed_tokens nor lm_head is trained").contains("--modules_to_save model.embed_tokens,lm_head");
        Run gf = run("train", "--model_name_or_path", big.toString(), "--dataset_dir", data.toString(), "--output_dir",
                tmp.resolve("grown-full").toString(), "--block_size", "8", "--per_device_train_batch_size", "2",
                "--max_steps", "1", "--save_steps", "0", "--threads", "2");
        assertThat(gf.code()).as(gf.err()).isZero();
        assertThat(HfCheckpoints.loadModelDir(tmp.resolve("grown-full")).config().vocabSize()).isEqualTo(140);

        // --trainable_token_indices new: only the 9 added rows train; the adapter holds just them, eval applies them
        Path tokOut = tmp.resolve("tokens");
        Run tk = run("train", "--model_name_or_path", big.toString(), "--dataset_dir", data.toString(), "--output_dir",
                tokOut.toString(), "--block_size", "8", "--per_device_train_batch_size", "2", "--max_steps", "2",
                "--save_steps", "0", "--threads", "2", "--lora_rank", "2", "--trainable", "q_proj,v_proj",
                "--trainable_token_indices", "new");
        assertThat(tk.code()).as(tk.err()).isZero();
        assertThat(tk.err()).doesNotContain("warning");
        PeftAdapters.Adapter ta = PeftAdapters.read(tokOut);
        assertThat(ta.tensors().get("base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta").shape())
                .containsExactly(9, 32);
        assertThat(ta.tensors().get("base_model.model.lm_head.token_adapter.trainable_tokens_delta").shape()).containsExactly(9, 32);
        assertThat(ta.tensors().keySet()).noneMatch(k -> k.endsWith("embed_tokens.weight"));
        assertThat(ta.config().extra().get("trainable_token_indices").get("embed_tokens").size()).isEqualTo(9);
        Path text = Files.writeString(tmp.resolve("eval.txt"), TEXT + "\n", StandardCharsets.UTF_8);
        Run ev = run("eval", "--model", big.toString(), "--adapter", tokOut.toString(), "--text-file", text.toString(),
                "--block-size", "8", "--threads", "2", "--json");
        assertThat(ev.code()).as(ev.err()).isZero();
        for (String[] wrong : new String[][] {{"500", "beyond the vocabulary of 140 rows"}, {"3,x", "comma list of token ids"},
                {"3,3", "listed twice"}}) {
            Run w = run("train", "--model_name_or_path", big.toString(), "--dataset_dir", data.toString(), "--output_dir",
                    tmp.resolve("w").toString(), "--block_size", "8", "--lora_rank", "2", "--trainable_token_indices", wrong[0]);
            assertThat(w.code()).isEqualTo(2);
            assertThat(w.err().strip().lines().count()).as(w.err()).isEqualTo(1);
            assertThat(w.err()).contains("--trainable_token_indices").contains(wrong[1]);
        }
        Run noNew = run("train", "--model_name_or_path", m.toString(), "--dataset_dir", data.toString(), "--output_dir",
                tmp.resolve("w").toString(), "--block_size", "8", "--lora_rank", "2", "--trainable_token_indices", "new");
        assertThat(noNew.code()).isEqualTo(2);
        assertThat(noNew.err()).contains("adds no rows");
        Run both = run("train", "--model_name_or_path", big.toString(), "--dataset_dir", data.toString(), "--output_dir",
                tmp.resolve("w").toString(), "--block_size", "8", "--lora_rank", "2", "--trainable_token_indices", "new",
                "--modules_to_save", "embed_tokens");
        assertThat(both.code()).isEqualTo(2);
        assertThat(both.err()).contains("give one of the two");
        assertThat(tmp.resolve("w")).doesNotExist();

        // a tokenizer whose eos token the config contradicts: one line before anything is prepared
        Path clash = model(tmp.resolve("clash"), "qwen3_headdim_qknorm", 60);
        var cj = (com.fasterxml.jackson.databind.node.ObjectNode) JSON.readTree(clash.resolve("config.json").toFile());
        cj.put("eos_token_id", 2);
        Files.writeString(clash.resolve("config.json"), cj.toPrettyString());
        Files.writeString(clash.resolve("tokenizer_config.json"), "{\"eos_token\": \"[SEP]\"}");
        Run sp = run("train", "--model_name_or_path", clash.toString(), "--dataset_dir", data.toString(), "--output_dir",
                tmp.resolve("sp").toString(), "--block_size", "8", "--max_steps", "1", "--threads", "1");
        assertThat(sp.code()).isEqualTo(2);
        assertThat(sp.err().strip().lines().count()).as(sp.err()).isEqualTo(1);
        assertThat(sp.err()).contains("eos_token_id 2").contains("'[SEP]' as id 3");
        assertThat(tmp.resolve("sp")).doesNotExist();
        cj.put("eos_token_id", 3);
        Files.writeString(clash.resolve("config.json"), cj.toPrettyString());
        Run agrees = run("train", "--model_name_or_path", clash.toString(), "--dataset_dir", data.toString(), "--output_dir",
                tmp.resolve("sp").toString(), "--block_size", "8", "--max_steps", "1", "--save_steps", "0", "--threads", "1");
        assertThat(agrees.code()).as(agrees.err()).isZero();

        Run bad = run("train", "--model_name_or_path", m.toString(), "--dataset_dir", data.toString(), "--output_dir",
                tmp.resolve("bad").toString(), "--block_size", "8", "--lora_rank", "4", "--trainable", "c_attn", "--threads", "1");
        assertThat(bad.code()).isEqualTo(2);
        assertThat(bad.err().strip().lines().count()).as(bad.err()).isEqualTo(1);
        assertThat(bad.err()).contains("--trainable 'c_attn'").contains("q_proj, k_proj");
        assertThat(tmp.resolve("bad")).doesNotExist();
    }
}
