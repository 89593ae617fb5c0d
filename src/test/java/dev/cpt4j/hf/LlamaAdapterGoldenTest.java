package dev.cpt4j.hf;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.cli.Main;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Json;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.model.CausalLm;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/**
 * PEFT LoRA adapters on the LLaMA family against peft 0.21, on the fixtures of
 * tools/golden/make_peft_llama_golden.py (bases: golden/llama/<name>/ of make_llama_golden.py):
 * {@code AdapterMerge.load} then the family's engine reproduces the PeftModel's logits (LoRA unmerged) and
 * {@code merge_and_unload()}'s within 1e-5 relative (of max(1, |ref|)) — llama with LoRA on all seven projections
 * and biases; tied qwen2 with a vocabulary resized 181 → 184, modules_to_save embed_tokens + lm_head (untied by the
 * merge) and rsLoRA. The {@code merge} command's output reloads to the same logits; {@code "all-linear"} and the
 * compact modules_to_save form load the same; corrupted adapters fail with one line; PeftExport writes peft's keys
 * and config for a LLaMA and round-trips through AdapterMerge.
 */
class LlamaAdapterGoldenTest {
    static final Path BASES = Path.of("src/test/resources/golden/llama");
    static final Path ADAPTERS = Path.of("src/test/resources/golden/peft_llama");
    static final List<String> TARGETS = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
    static final double TOL = 1e-5;

    @TempDir
    Path tmp;

    /** The engine's logits of {@code m} on {@code ids} (B, T). */
    static float[] logits(HfCheckpoints.ModelDir m, int[] ids, int B, int T) {
        ModelConfig cfg = m.config();
        try (Parallel par = new Parallel(2)) {
            CausalLm model = cfg.family().newModel(cfg, new Gemm(par), par, B, T, false);
            assertThat(model.layout().size()).isEqualTo(m.layout().size());
            System.arraycopy(m.params(), 0, model.params(), 0, m.params().length);
            float[] out = new float[B * T * cfg.vocabSize()];
            model.logits(ids, B, T, out);
            return out;
        }
    }

    static double maxRel(float[] got, float[] ref) {
        assertThat(got).hasSameSizeAs(ref);
        double worst = 0;
        for (int i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i] - ref[i]) / Math.max(1.0, Math.abs(ref[i])));
        return worst;
    }

    record Expected(int[] ids, int B, int T, float[] logits, float[] merged) {}

    static Expected expected(String name) {
        try (Safetensors e = Safetensors.open(ADAPTERS.resolve(name).resolve("expected.safetensors"))) {
            long[] s = e.info("input_ids").shape();
            MemorySegment seg = e.raw("input_ids");
            int[] ids = new int[(int) (seg.byteSize() / 4)];
            for (int i = 0; i < ids.length; i++) ids[i] = seg.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), i);
            return new Expected(ids, (int) s[0], (int) s[1], e.readFloats("logits"), e.readFloats("merged_logits"));
        }
    }

    /** Loads base + adapter and checks the logits against peft's; returns the merged model. */
    static HfCheckpoints.ModelDir checkAgainstPeft(String name, Path adapterDir, String what) {
        Expected e = expected(name);
        HfCheckpoints.ModelDir m = AdapterMerge.load(BASES.resolve(name), adapterDir);
        float[] ours = logits(m, e.ids(), e.B(), e.T());
        double vsPeft = maxRel(ours, e.logits()), vsMerged = maxRel(ours, e.merged());
        System.out.printf("[peft-llama %s %s] logits max rel diff vs PeftModel %.3g, vs merge_and_unload %.3g%n",
                name, what, vsPeft, vsMerged);
        assertThat(vsPeft).as("%s %s: vs PeftModel", name, what).isLessThanOrEqualTo(TOL);
        assertThat(vsMerged).as("%s %s: vs merge_and_unload", name, what).isLessThanOrEqualTo(TOL);
        return m;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_untied_llama3_bias", "qwen2_tied_yarn"})
    void mergedAdapterMatchesPeft(String name) {
        HfCheckpoints.ModelDir m = checkAgainstPeft(name, ADAPTERS.resolve(name), "load");
        HfCheckpoints.ModelDir base = HfCheckpoints.loadModelDir(BASES.resolve(name));
        if (name.startsWith("qwen2")) {
            assertThat(base.config().tieWordEmbeddings()).isTrue();
            assertThat(m.config().vocabSize()).isEqualTo(184);           // resized 181 -> 184 automatically
            assertThat(m.config().tieWordEmbeddings()).isFalse();        // embed_tokens and lm_head saved apart
        } else assertThat(m.config()).isEqualTo(base.config());
        // the adapter really changes the model: the base's logits are far from peft's
        Expected e = expected(name);
        if (base.config().vocabSize() == m.config().vocabSize())
            assertThat(maxRel(logits(base, e.ids(), e.B(), e.T()), e.logits())).isGreaterThan(0.1);
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama_untied_llama3_bias", "qwen2_tied_yarn"})
    void mergeCommandWritesACheckpointThatReloads(String name) {
        Path out = tmp.resolve("merged");
        int code = quietly(() -> Main.execute("merge", "--model", BASES.resolve(name).toString(), "--adapter",
                ADAPTERS.resolve(name).toString(), "--output", out.toString()), null);
        assertThat(code).isZero();
        HfCheckpoints.ModelDir reloaded = HfCheckpoints.loadModelDir(out);
        ObjectNode cfg = Json.readObject(out.resolve("config.json"));
        assertThat(cfg.get("model_type").asText()).isEqualTo(name.substring(0, name.indexOf('_')));
        Expected e = expected(name);
        assertThat(cfg.get("vocab_size").asInt()).isEqualTo(e.logits().length / (e.B() * e.T()));
        assertThat(cfg.get("tie_word_embeddings").asBoolean()).isFalse();
        HfCheckpoints.ModelDir inMemory = AdapterMerge.load(BASES.resolve(name), ADAPTERS.resolve(name));
        assertThat(reloaded.config()).isEqualTo(inMemory.config());
        assertThat(reloaded.params()).containsExactly(inMemory.params());
        double d = maxRel(logits(reloaded, e.ids(), e.B(), e.T()), e.merged());
        System.out.printf("[peft-llama %s merge CLI] reloaded logits max rel diff vs merge_and_unload %.3g%n", name, d);
        assertThat(d).isLessThanOrEqualTo(TOL);
    }

    @Test
    void allLinearAndTheCompactSavedFormLoadTheSame() throws IOException {
        for (String name : List.of("llama_untied_llama3_bias", "qwen2_tied_yarn")) {
            Path d = copyAdapter(name, name + "_all_linear");
            ObjectNode c = Json.readObject(d.resolve(PeftAdapters.CONFIG));
            c.put("target_modules", "all-linear");
            Json.writeAtomic(d.resolve(PeftAdapters.CONFIG), c);
            if (name.startsWith("qwen2")) {
                // without peft's duplicate modules_to_save / original_module tensors (save_embedding_layers=False)
                Map<String, PeftAdapters.Tensor> t = PeftAdapters.readTensors(d);
                assertThat(t.keySet()).contains("base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight")
                        .noneMatch(k -> k.contains("modules_to_save") || k.contains("original_module"));
                Files.delete(d.resolve(PeftAdapters.SAFETENSORS));
                PeftAdapters.write(d, PeftAdapters.readConfig(d.resolve(PeftAdapters.CONFIG)), t, DType.F32);
            }
            HfCheckpoints.ModelDir a = checkAgainstPeft(name, d, "all-linear");
            assertThat(a.params()).containsExactly(AdapterMerge.load(BASES.resolve(name), ADAPTERS.resolve(name)).params());
        }
    }

    @Test
    void corruptedAdaptersFailWithOneLine() throws IOException {
        String name = "llama_untied_llama3_bias";
        // r in the config is not the tensors' rank
        Path rank = copyAdapter(name, "rank");
        editConfig(rank, c -> c.put("r", 3));
        assertOneLine(rank, name, "rank");
        // a target the LLaMA family does not have
        Path target = copyAdapter(name, "target");
        editConfig(target, c -> c.putArray("target_modules").add("q_proj").add("c_attn"));
        assertOneLine(target, name, "c_attn");
        // LoRA tensors for a module the LLaMA family does not have
        Path key = copyAdapter(name, "key");
        Map<String, PeftAdapters.Tensor> t = new LinkedHashMap<>(PeftAdapters.readTensors(key));
        t.put("base_model.model.model.layers.0.self_attn.qkv_proj.lora_A.weight", t.get(PeftAdapters.loraKey("model.layers.0.self_attn.q_proj", 'A')));
        t.put("base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight", t.get(PeftAdapters.loraKey("model.layers.0.self_attn.q_proj", 'B')));
        PeftAdapters.write(key, PeftAdapters.readConfig(key.resolve(PeftAdapters.CONFIG)), t, DType.F32);
        assertOneLine(key, name, "qkv_proj");
        // a full-tensor key that is no module_to_save
        Path saved = copyAdapter(name, "saved");
        t = new LinkedHashMap<>(PeftAdapters.readTensors(saved));
        t.put("base_model.model.model.layers.0.mlp.gate_proj.weight", t.get(PeftAdapters.loraKey("model.layers.0.mlp.gate_proj", 'B')));
        PeftAdapters.write(saved, PeftAdapters.readConfig(saved.resolve(PeftAdapters.CONFIG)), t, DType.F32);
        assertOneLine(saved, name, "gate_proj.weight");
        // the qwen2 adapter on the llama base: other widths and vocabulary
        assertOneLine(ADAPTERS.resolve("qwen2_tied_yarn"), name, "was made for a base with");
        // and through the CLI: exit code 2, one line on stderr
        String[] err = new String[1];
        int code = quietly(() -> Main.execute("merge", "--model", BASES.resolve(name).toString(), "--adapter",
                rank.toString(), "--output", tmp.resolve("never").toString()), err);
        assertThat(code).isEqualTo(2);
        assertThat(err[0].strip().lines().count()).as(err[0]).isEqualTo(1);
        assertThat(tmp.resolve("never")).doesNotExist();
    }

    /** PeftExport of a LLaMA: peft's keys and config, and the file merges back to peft's logits. */
    @Test
    void peftExportOfALlamaRoundTrips() throws IOException {
        String name = "llama_untied_llama3_bias";
        HfCheckpoints.ModelDir base = HfCheckpoints.loadModelDir(BASES.resolve(name));
        ModelConfig cfg = base.config();
        Map<String, PeftAdapters.Tensor> golden = PeftAdapters.readTensors(ADAPTERS.resolve(name));
        // a training layout: the model's views, then A [r, in] and B [out, r] per adapted module (named as peft's keys)
        ParamLayout layout = cfg.family().layout(cfg);
        for (ModelFamily.LoraTarget t : cfg.family().loraTargets(cfg))
            if (t.layer() >= 0) {
                layout.add(t.module() + ".lora_A.weight", 4, t.in());
                layout.add(t.module() + ".lora_B.weight", t.out(), 4);
            }
        float[] params = new float[layout.size()];
        System.arraycopy(base.params(), 0, params, 0, base.params().length);
        for (var e : golden.entrySet()) {
            ParamLayout.View v = layout.get(e.getKey().substring(PeftAdapters.PREFIX.length()));
            assertThat(v.shape()).containsExactly(e.getValue().shape());
            System.arraycopy(e.getValue().data(), 0, params, v.offset(), v.size());
        }
        Path out = System.getProperty("cpt4j.peftLlamaOut") != null ? Path.of(System.getProperty("cpt4j.peftLlamaOut"))
                : tmp.resolve("exported");
        PeftExport.writeAdapter(out, cfg, layout, params, 4, 8, 0.0, false, TARGETS, List.of(), "golden/llama/" + name);
        PeftAdapters.Adapter back = PeftAdapters.read(out);
        assertThat(back.config().fanInFanOut()).isFalse();
        assertThat(back.config().targetModules()).containsExactlyElementsOf(TARGETS);
        assertThat(back.config().modulesToSave()).isEmpty();
        assertThat(back.tensors().keySet()).containsExactlyInAnyOrderElementsOf(golden.keySet());
        for (var e : golden.entrySet()) assertThat(back.tensors().get(e.getKey()).data()).as(e.getKey()).containsExactly(e.getValue().data());
        HfCheckpoints.ModelDir m = checkAgainstPeft(name, out, "PeftExport");
        // tools/golden/make_peft_llama_golden.py --check-java-output llama_untied_llama3_bias DIR (and DIR_saved) loads
        // these in peft (-Dcpt4j.peftLlamaOut=DIR keeps them)
        Expected e = expected(name);
        writeLogits(out, m, e);

        // modules_to_save: full copies under peft's names, replacing the base tensors on merge
        Path withSaved = out.resolveSibling(out.getFileName() + "_saved");
        ParamLayout.View emb = layout.get(cfg.family().tokenEmbedding());
        for (int i = 0; i < emb.size(); i++) params[emb.offset() + i] += 0.01f * (i % 7 - 3);
        PeftExport.writeAdapter(withSaved, cfg, layout, params, 4, 8, 0.0, false, List.of("self_attn.q_proj", "v_proj"),
                List.of("embed_tokens", "lm_head"), null);
        back = PeftAdapters.read(withSaved);
        assertThat(back.config().targetModules()).containsExactly("q_proj", "v_proj");
        assertThat(back.config().modulesToSave()).containsExactly("embed_tokens", "lm_head");
        assertThat(back.tensors()).containsKeys("base_model.model.model.embed_tokens.weight", "base_model.model.lm_head.weight",
                "base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight").hasSize(2 * 2 * 2 + 2);
        HfCheckpoints.ModelDir merged = AdapterMerge.load(BASES.resolve(name), withSaved);
        int off = merged.layout().get(cfg.family().tokenEmbedding()).offset();
        for (int i = 0; i < emb.size(); i++) assertThat(merged.params()[off + i]).isEqualTo(params[emb.offset() + i]);
        writeLogits(withSaved, merged, e);
    }

    private static void writeLogits(Path dir, HfCheckpoints.ModelDir m, Expected e) {
        Safetensors.write(dir.resolve("cpt4j_logits.safetensors"), List.of(Safetensors.FloatTensor.of("logits",
                new int[] {e.B(), e.T(), m.config().vocabSize()}, logits(m, e.ids(), e.B(), e.T()), 0)), Map.of("format", "pt"), DType.F32);
    }

    // ------------------------------------------------------------ helpers

    private Path copyAdapter(String name, String as) throws IOException {
        Path d = Files.createDirectories(tmp.resolve(as));
        for (String f : List.of(PeftAdapters.CONFIG, PeftAdapters.SAFETENSORS))
            Files.copy(ADAPTERS.resolve(name).resolve(f), d.resolve(f));
        return d;
    }

    private static void editConfig(Path dir, Consumer<ObjectNode> edit) {
        ObjectNode c = Json.readObject(dir.resolve(PeftAdapters.CONFIG));
        edit.accept(c);
        Json.writeAtomic(dir.resolve(PeftAdapters.CONFIG), c);
    }

    private static void assertOneLine(Path adapter, String base, String contains) {
        assertThatThrownBy(() -> AdapterMerge.load(BASES.resolve(base), adapter))
                .isInstanceOf(UserError.class)
                .hasMessageContaining(contains)
                .satisfies(e -> assertThat(e.getMessage().lines().count()).as(e.getMessage()).isEqualTo(1))
                .satisfies(e -> System.out.println("[peft-llama corrupted] " + e.getMessage()));
    }

    /** Runs {@code cli} with stdout/stderr captured; stderr goes to {@code err[0]} when given. */
    private static int quietly(java.util.function.IntSupplier cli, String[] err) {
        PrintStream oldOut = System.out, oldErr = System.err;
        ByteArrayOutputStream o = new ByteArrayOutputStream(), e = new ByteArrayOutputStream();
        System.setOut(new PrintStream(o, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(e, true, StandardCharsets.UTF_8));
        try {
            return cli.getAsInt();
        } finally {
            System.setOut(oldOut);
            System.setErr(oldErr);
            if (err != null) err[0] = e.toString(StandardCharsets.UTF_8);
        }
    }
}
