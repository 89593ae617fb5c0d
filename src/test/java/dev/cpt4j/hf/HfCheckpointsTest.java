package dev.cpt4j.hf;

import static dev.cpt4j.io.Fixtures.golden;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Fixtures;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.tensor.ParamLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfCheckpointsTest {
    @TempDir Path tmp;

    /** tiny_params.f32: the flat parameters of tiny/ in Gpt2Layout order, written by tools/golden/make_io_fixtures.py. */
    private static float[] tinyParams() throws Exception {
        return Fixtures.f32("tiny_params.f32");
    }

    @Test
    void loadsEveryFormatOfTheSameModelIdentically() throws Exception {
        float[] want = tinyParams();
        for (String dir : List.of("tiny", "tiny_sharded", "tiny_bin", "tiny_bin_gpt2model")) {
            HfCheckpoints.ModelDir m = HfCheckpoints.loadModelDir(golden(dir));
            assertThat(((dev.cpt4j.model.Gpt2Config) m.config()).nInner()).isEqualTo(12);
            assertThat(m.layout().size()).isEqualTo(want.length);
            assertThat(m.params()).as(dir).containsExactly(want);
        }
    }

    @Test
    void halfPrecisionCheckpointsLoadAsTheirRoundedValues() throws Exception {
        float[] want = tinyParams();
        float[] f16 = HfCheckpoints.loadModelDir(golden("tiny_f16")).params();
        float[] bf16 = HfCheckpoints.loadModelDir(golden("tiny_bf16")).params();
        for (int i = 0; i < want.length; i++) {
            assertThat(f16[i]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(want[i])));
            assertThat(bf16[i]).isEqualTo(DType.bf16ToFloat(DType.floatToBf16(want[i])));
        }
    }

    @Test
    void untiedHeadIsLoaded() throws Exception {
        HfCheckpoints.ModelDir m = HfCheckpoints.loadModelDir(golden("tiny_untied"));
        assertThat(m.layout().has(Gpt2Layout.LM_HEAD)).isTrue();
        assertThat(m.params()).containsExactly(Fixtures.f32("tiny_untied_params.f32"));
    }

    @Test
    void saveLoadRoundTripAndTheBytesTransformersWasCheckedOn() throws Exception {
        // java_saved/ and java_saved_f16/ were written by this code (tools/golden/SaveTinyModel.java) and loaded by
        // transformers with identical parameters and logits (make_io_fixtures.py --java). We must still write them.
        HfCheckpoints.ModelDir m = HfCheckpoints.loadModelDir(golden("tiny"));
        var base = HfCheckpoints.readConfigJson(golden("tiny"));
        Path out = tmp.resolve("saved");
        HfCheckpoints.save(out, m.config(), m.layout(), m.params(), DType.F32, base);
        HfCheckpoints.ModelDir again = HfCheckpoints.loadModelDir(out);
        assertThat(again.config()).isEqualTo(m.config());
        assertThat(again.params()).containsExactly(m.params());
        for (String f : List.of("model.safetensors", "config.json"))
            assertThat(Files.readAllBytes(out.resolve(f))).as(f).isEqualTo(Files.readAllBytes(golden("java_saved/" + f)));
        // and the F32 file is byte-identical to what transformers itself saved
        assertThat(Files.readAllBytes(out.resolve("model.safetensors"))).isEqualTo(Files.readAllBytes(golden("tiny/model.safetensors")));
        Path out16 = tmp.resolve("saved16");
        HfCheckpoints.save(out16, m.config(), m.layout(), m.params(), DType.F16, base);
        for (String f : List.of("model.safetensors", "config.json"))
            assertThat(Files.readAllBytes(out16.resolve(f))).as(f).isEqualTo(Files.readAllBytes(golden("java_saved_f16/" + f)));
        try (var files = Files.list(out)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactlyInAnyOrder("model.safetensors", "config.json");
        }
    }

    @Test
    void tiedSaveHasNoHeadUntiedSaveHasOne() throws Exception {
        Gpt2Config tied = Gpt2Config.of(7, 4, 4, 1, 2);
        for (Gpt2Config c : List.of(tied, tied.withTiedEmbeddings(false))) {
            ParamLayout l = Gpt2Layout.of(c);
            float[] p = new float[l.size()];
            for (int i = 0; i < p.length; i++) p[i] = i * 0.25f - 3;
            Path d = tmp.resolve("t" + c.tieWordEmbeddings());
            HfCheckpoints.save(d, c, l, p, DType.F32);
            try (Safetensors st = Safetensors.open(d.resolve("model.safetensors"))) {
                assertThat(st.names().contains("lm_head.weight")).isEqualTo(!c.tieWordEmbeddings());
                assertThat(st.metadata()).isEqualTo(Map.of("format", "pt"));
            }
            HfCheckpoints.ModelDir m = HfCheckpoints.loadModelDir(d);
            assertThat(m.config()).isEqualTo(c);
            assertThat(m.params()).containsExactly(p);
        }
    }

    @Test
    void mismatchesAreListedInOneError() throws Exception {
        Path file = golden("tiny/model.safetensors");
        Gpt2Config tiny = (Gpt2Config) HfConfigs.read(golden("tiny/config.json"));
        // vocab 62: wte has the wrong shape
        Gpt2Config v62 = tiny.withVocabSize(62);
        assertThatThrownBy(() -> load(v62)).isInstanceOf(UserError.class)
                .hasMessageStartingWith(file + ": checkpoint does not match its GPT-2 config; wrong shape (1): transformer.wte.weight is [61, 8], expected [62, 8]")
                .hasMessageEndingWith("use the config.json that belongs to these weights").hasMessageNotContaining("\n");
        // 3 layers: the 12 tensors of layer 2 are missing (listed up to 8, then counted)
        Gpt2Config l3 = new Gpt2Config(61, 16, 8, 3, 2, 12, "gelu_fast", 1e-5f, 0.02f, 0, 0, 0, true, true, false);
        assertThatThrownBy(() -> load(l3))
                .hasMessageContaining("missing (12): transformer.h.2.ln_1.weight [8], transformer.h.2.ln_1.bias [8], transformer.h.2.attn.c_attn.weight [8, 24]")
                .hasMessageContaining(", ... and 4 more");
        // 1 layer: layer 1's tensors are unexpected
        Gpt2Config l1 = new Gpt2Config(61, 16, 8, 1, 2, 12, "gelu_fast", 1e-5f, 0.02f, 0, 0, 0, true, true, false);
        assertThatThrownBy(() -> load(l1)).hasMessageContaining("unexpected (12): transformer.h.1.");
        // untied config on a tied checkpoint: lm_head missing
        assertThatThrownBy(() -> load(tiny.withTiedEmbeddings(false))).hasMessageContaining("missing (1): lm_head.weight [61, 8]");
    }

    @Test
    void aStoredHeadThatDiffersFromWteNeedsAnUntiedConfig() throws Exception {
        Path d = tmp.resolve("m");
        Files.createDirectories(d);
        Files.copy(golden("tiny_untied/model.safetensors"), d.resolve("model.safetensors"));
        Files.copy(golden("tiny/config.json"), d.resolve("config.json"));  // tied
        assertThatThrownBy(() -> HfCheckpoints.loadModelDir(d)).isInstanceOf(UserError.class)
                .hasMessage(d.resolve("model.safetensors") + ": lm_head.weight differs from transformer.wte.weight but config.json"
                        + " ties them (tie_word_embeddings true); set \"tie_word_embeddings\": false in config.json to load an untied head");
    }

    @Test
    void badDirectoriesAndFiles() throws Exception {
        Path none = tmp.resolve("none");
        assertThatThrownBy(() -> HfCheckpoints.loadModelDir(none)).hasMessage(none + ": model directory does not exist; check the path");
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        assertThatThrownBy(() -> HfCheckpoints.loadModelDir(empty)).hasMessageContaining(empty + ": no config.json");
        Files.copy(golden("tiny/config.json"), empty.resolve("config.json"));
        assertThatThrownBy(() -> HfCheckpoints.loadModelDir(empty)).hasMessage(empty + ": no model weights found (looked for model.safetensors,"
                + " model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json); point --model at a Hugging Face model directory");
        Path trunc = dirWith("trunc", "bad/truncated.safetensors", "model.safetensors");
        assertThatThrownBy(() -> HfCheckpoints.loadModelDir(trunc)).hasMessageContaining("the file is truncated");
        Path evil = dirWith("evil", "bad/malicious.bin", "pytorch_model.bin");
        assertThatThrownBy(() -> HfCheckpoints.loadModelDir(evil))
                .hasMessageStartingWith(evil.resolve("pytorch_model.bin") + " (archive/data.pkl): refusing to load: the pickle references the Python global 'posix.system'");
        Path badJson = dirWith("badjson", "tiny/model.safetensors", "model.safetensors");
        Files.writeString(badJson.resolve("config.json"), "{\"n_embd\": 8,,}");
        assertThatThrownBy(() -> HfCheckpoints.loadModelDir(badJson)).hasMessageStartingWith(badJson.resolve("config.json") + ": invalid JSON at line 1");
    }

    @Test
    void safetensorsIsPreferredOverBin() throws Exception {
        Path d = dirWith("both", "tiny/model.safetensors", "model.safetensors");
        Files.copy(golden("bad/malicious.bin"), d.resolve("pytorch_model.bin"));
        assertThat(HfCheckpoints.loadModelDir(d).params()).containsExactly(tinyParams());
    }

    @Test
    void shardedTorchBinThroughItsIndex() throws Exception {
        Path d = dirWith("binsharded", "tiny_bin/pytorch_model.bin", "pytorch_model-00001-of-00001.bin");
        StringBuilder wm = new StringBuilder("{\"metadata\": {}, \"weight_map\": {");
        try (var z = dev.cpt4j.io.TorchZip.open(d.resolve("pytorch_model-00001-of-00001.bin"))) {
            for (String n : z.names()) wm.append('"').append(n).append("\": \"pytorch_model-00001-of-00001.bin\",");
        }
        wm.setLength(wm.length() - 1);
        Files.writeString(d.resolve("pytorch_model.bin.index.json"), wm + "}}");
        assertThat(HfCheckpoints.loadModelDir(d).params()).containsExactly(tinyParams());
    }

    @Test
    void canonicalNames() {
        assertThat(new dev.cpt4j.model.Gpt2Family().canonicalName("wte.weight")).isEqualTo("transformer.wte.weight");
        assertThat(new dev.cpt4j.model.Gpt2Family().canonicalName("transformer.h.0.ln_1.bias")).isEqualTo("transformer.h.0.ln_1.bias");
        assertThat(new dev.cpt4j.model.Gpt2Family().canonicalName("lm_head.weight")).isEqualTo("lm_head.weight");
    }

    private void load(Gpt2Config c) {
        ParamLayout l = Gpt2Layout.of(c);
        HfCheckpoints.load(golden("tiny"), c, l, new float[l.size()]);
    }

    private Path dirWith(String name, String fixture, String as) throws Exception {
        Path d = Files.createDirectories(tmp.resolve(name));
        Files.copy(golden(fixture), d.resolve(as));
        if (!Files.exists(d.resolve("config.json")) && !name.equals("badjson")) Files.copy(golden("tiny/config.json"), d.resolve("config.json"));
        return d;
    }
}
