package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamilies;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tokenizer.Tokenizer;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Chinese-LLaMA recipe end to end on a tiny llama whose 6000-row vocabulary is a LLaMA-style SentencePiece
 * {@code tokenizer.model} (src/test/resources/tokenizer/spm-bpe.model): part 1 {@code tokenizer extend} writes an
 * extended tokenizer.model + tokenizer.json; part 2 {@code train} mean-resizes the embeddings to it and trains the
 * new rows (in full with {@code --modules_to_save}, or only the new rows with {@code --trainable_token_indices new});
 * {@code eval}, {@code generate} and {@code merge} then work with the extended tokenizer, and the merged folder's
 * config, weights and tokenizer files agree.
 */
class ChineseLlamaRecipeTest {
    static final ObjectMapper JSON = new ObjectMapper();
    static final int V = 6000, C = 32;

    static List<String> corpusLines() throws IOException {
        try (InputStream in = ChineseLlamaRecipeTest.class.getResourceAsStream("/tokenizer/parity-corpus.txt")) {
            return Arrays.asList(new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n"));
        }
    }

    /** A tiny random llama (2 layers, 32 wide, untied) with the LLaMA-style tokenizer.model beside it. */
    static Path tinyLlama(Path dir) throws IOException {
        Files.createDirectories(dir);
        ObjectNode cfg = (ObjectNode) JSON.readTree(Path.of("src/test/resources/golden/llama/llama_untied_llama3_bias/config.json").toFile());
        cfg.put("vocab_size", V).put("bos_token_id", 1).put("eos_token_id", 2);
        ModelConfig c = ModelFamilies.readConfig(cfg, "test");
        ParamLayout layout = c.family().layout(c);
        float[] p = new float[layout.size()];
        SplittableRandom r = new SplittableRandom(11);
        for (ParamLayout.View v : layout.views()) {
            boolean norm = v.name().contains("norm");
            for (int i = v.offset(); i < v.offset() + v.size(); i++) p[i] = norm ? 1f : (float) (r.nextGaussian() * 0.05);
        }
        HfCheckpoints.save(dir, c, layout, p, DType.F32, cfg);
        try (InputStream in = ChineseLlamaRecipeTest.class.getResourceAsStream("/tokenizer/spm-bpe.model")) {
            Files.copy(in, dir.resolve("tokenizer.model"));
        }
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_bos_token\": true, \"add_eos_token\": false}");
        return dir;
    }

    static LlamaTrainTest.Run ok(String... args) {
        LlamaTrainTest.Run r = LlamaTrainTest.run(args);
        assertThat(r.code()).as(String.join(" ", args) + "\n" + r.err()).isZero();
        return r;
    }

    static double loss(LlamaTrainTest.Run r) throws IOException {
        return JSON.readTree(r.out().strip().lines().reduce((x, y) -> y).orElseThrow()).get("loss").asDouble();
    }

    @Test
    void extendTrainEvalGenerateMerge(@TempDir Path tmp) throws Exception {
        List<String> lines = corpusLines();
        Path model = tinyLlama(tmp.resolve("llama"));
        Path zh = Files.createDirectories(tmp.resolve("zh"));
        Files.writeString(zh.resolve("a.txt"), String.join("\n", lines.subList(0, 1500)) + "\n");
        Path data = Files.createDirectories(tmp.resolve("data"));
        Files.writeString(data.resolve("poems.txt"), String.join("\n", lines.subList(0, 300)) + "\n");
        Path eval = Files.writeString(tmp.resolve("eval.txt"), String.join("\n", lines.subList(300, 340)) + "\n");

        // part 1: the extended tokenizer ships tokenizer.model + tokenizer.json + the base's tokenizer_config.json
        Path tok = tmp.resolve("zh-tokenizer");
        LlamaTrainTest.Run ext = ok("tokenizer", "extend", "--base", model.toString(), "--corpus", zh.toString(), "--add", "200",
                "--output", tok.toString());
        assertThat(ext.out()).contains("tokenizer.model").contains("6000 -> ");
        for (String f : List.of("tokenizer.json", "tokenizer.model", "tokenizer_config.json")) assertThat(tok.resolve(f)).exists();
        int n = Tokenizer.load(tok).vocabSize();
        assertThat(n).isGreaterThan(V);

        // part 2a: LoRA + embed_tokens/lm_head in full: mean-resized to the tokenizer, every row saved
        Path full = tmp.resolve("full");
        LlamaTrainTest.Run tf = ok(args(model, tok, data, full, "--lora_rank", "4", "--lora_alpha", "8", "--trainable", "all-linear",
                "--modules_to_save", "embed_tokens,lm_head"));
        assertThat(tf.err()).contains("resized the embeddings from " + V + " to " + n);
        PeftAdapters.Adapter a = PeftAdapters.read(full);
        assertThat(a.tensors().get("base_model.model.model.embed_tokens.weight").shape()).containsExactly(n, C);
        assertThat(a.tensors().get("base_model.model.lm_head.weight").shape()).containsExactly(n, C);
        assertThat(Tokenizer.load(full).vocabSize()).as("the adapter carries the extended tokenizer").isEqualTo(n);
        assertThat(full.resolve("tokenizer.model")).exists();

        // part 2b: only the new rows train; the adapter holds just them
        Path rows = tmp.resolve("rows");
        ok(args(model, tok, data, rows, "--lora_rank", "4", "--lora_alpha", "8", "--trainable", "q_proj,v_proj",
                "--trainable_token_indices", "new"));
        PeftAdapters.Adapter ra = PeftAdapters.read(rows);
        assertThat(ra.tensors().get("base_model.model.model.embed_tokens.token_adapter.trainable_tokens_delta").shape())
                .containsExactly(n - V, C);
        assertThat(ra.tensors().keySet()).noneMatch(k -> k.endsWith("embed_tokens.weight"));
        assertThat(Files.size(rows.resolve("adapter_model.safetensors"))).isLessThan(Files.size(full.resolve("adapter_model.safetensors")) / 4);

        // eval and generate with each adapter (the extended tokenizer comes from the adapter's folder)
        String[] evalArgs = {"--text-file", eval.toString(), "--block-size", "16", "--threads", "2", "--json"};
        double lf = loss(ok(cat(new String[] {"eval", "--model", model.toString(), "--adapter", full.toString()}, evalArgs)));
        double lr = loss(ok(cat(new String[] {"eval", "--model", model.toString(), "--adapter", rows.toString()}, evalArgs)));
        assertThat(lf).isBetween(1.0, 20.0);
        assertThat(lr).isBetween(1.0, 20.0);
        for (Path ad : List.of(full, rows)) {
            JsonNode g = JSON.readTree(ok("generate", "--model", model.toString(), "--adapter", ad.toString(), "--prompt", "床前明月光",
                    "--do-sample", "false", "--max-new-tokens", "6", "--min-new-tokens", "6", "--threads", "1", "--json").out().strip().lines().reduce((x, y) -> y).orElseThrow());
            assertThat(g.get("ids").size()).isGreaterThanOrEqualTo(6);
            for (JsonNode id : g.get("ids")) assertThat(id.asInt()).isBetween(0, n - 1);
        }

        // merge: config vocab_size, weights and tokenizer files agree; transformers-style folder evaluates like the adapter
        for (Path ad : List.of(full, rows)) {
            Path merged = tmp.resolve(ad.getFileName() + "-merged");
            ok("merge", "--model", model.toString(), "--adapter", ad.toString(), "--output", merged.toString());
            HfCheckpoints.ModelDir md = HfCheckpoints.loadModelDir(merged);
            assertThat(md.config().vocabSize()).isEqualTo(n);
            assertThat(md.layout().get("model.embed_tokens.weight").shape()[0]).isEqualTo(n);
            assertThat(Tokenizer.load(merged).vocabSize()).isEqualTo(n);
            assertThat(merged.resolve("tokenizer.model")).exists();
            assertThat(merged.resolve("vocab.txt")).doesNotExist();
            if (ad == rows) {   // trainable tokens: the base's 6000 rows come back untouched, the new rows trained
                HfCheckpoints.ModelDir base = HfCheckpoints.loadModelDir(model);
                int e0 = md.layout().get("model.embed_tokens.weight").offset(), b0 = base.layout().get("model.embed_tokens.weight").offset();
                assertThat(Arrays.copyOfRange(md.params(), e0, e0 + V * C)).isEqualTo(Arrays.copyOfRange(base.params(), b0, b0 + V * C));
                // every new row starts as the old rows' mean (VocabResize); the ones the data uses moved away from it
                float[] mean = new float[C];
                double[] acc = new double[C];
                for (int v = 0; v < V; v++) for (int c = 0; c < C; c++) acc[c] += base.params()[b0 + v * C + c];
                for (int c = 0; c < C; c++) mean[c] = (float) (acc[c] / V);
                int moved = 0;
                for (int v = V; v < n; v++) {
                    float[] row = Arrays.copyOfRange(md.params(), e0 + v * C, e0 + (v + 1) * C);
                    boolean same = true;
                    for (int c = 0; c < C; c++) same &= Math.abs(row[c] - mean[c]) < 1e-6f;
                    if (!same) moved++;
                }
                assertThat(moved).as("new rows trained away from the mean").isPositive().isLessThanOrEqualTo(n - V);
            }
            double lm = loss(ok(cat(new String[] {"eval", "--model", merged.toString()}, evalArgs)));
            assertThat(lm).as(ad.getFileName().toString()).isCloseTo(ad == full ? lf : lr, within(1e-4 * lm));
            ok("generate", "--model", merged.toString(), "--prompt", "床前明月光", "--max-new-tokens", "4", "--threads", "1");
        }
    }

    static String[] args(Path model, Path tok, Path data, Path out, String... extra) {
        return cat(new String[] {"train", "--model_name_or_path", model.toString(), "--tokenizer_name_or_path", tok.toString(),
                "--dataset_dir", data.toString(), "--data_cache_dir", out + "-cache", "--output_dir", out.toString(),
                "--block_size", "16", "--per_device_train_batch_size", "2", "--max_steps", "4", "--save_steps", "0",
                "--learning_rate", "5e-3", "--threads", "2", "--seed", "3"}, extra);
    }

    static String[] cat(String[] a, String... b) {
        String[] r = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, r, a.length, b.length);
        return r;
    }
}
