package dev.cpt4j.hf;

import static dev.cpt4j.io.Fixtures.golden;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Json;
import dev.cpt4j.io.Safetensors;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PeftAdaptersTest {
    @TempDir Path tmp;

    /** peft_expected.json: get_peft_model_state_dict of the adapter in peft/ (tools/golden/make_io_fixtures.py). */
    private static void assertIsTheFixtureAdapter(Map<String, PeftAdapters.Tensor> got) {
        var expected = Json.readObject(golden("peft_expected.json"));
        assertThat(got.keySet()).containsExactlyInAnyOrderElementsOf(() -> expected.fieldNames());
        for (var e : expected.properties()) {
            PeftAdapters.Tensor t = got.get(e.getKey());
            JsonNode shape = e.getValue().get("shape"), values = e.getValue().get("values");
            assertThat(t.shape()).as(e.getKey()).hasSize(shape.size());
            for (int i = 0; i < shape.size(); i++) assertThat(t.shape()[i]).isEqualTo(shape.get(i).asInt());
            assertThat(t.data()).hasSize(values.size());
            for (int i = 0; i < values.size(); i++) assertThat(t.data()[i]).isEqualTo((float) values.get(i).asDouble());
        }
    }

    @Test
    void readsAdapterWrittenByPeft() {
        PeftAdapters.Adapter a = PeftAdapters.read(golden("peft"));
        PeftAdapters.LoraConfig c = a.config();
        assertThat(c.peftType()).isEqualTo("LORA");
        assertThat(c.taskType()).isEqualTo("CAUSAL_LM");
        assertThat(c.r()).isEqualTo(4);
        assertThat(c.loraAlpha()).isEqualTo(8.0);
        assertThat(c.scaling()).isEqualTo(2.0);
        assertThat(c.loraDropout()).isZero();
        assertThat(c.targetModules()).containsExactly("c_attn");
        assertThat(c.modulesToSave()).containsExactly("wte", "lm_head");
        assertThat(c.fanInFanOut()).isTrue();
        assertThat(c.useRslora()).isFalse();
        assertThat(c.initLoraWeights()).isEqualTo("true");
        assertThat(c.extra().get("peft_version").asText()).isEqualTo("0.21.0");
        assertIsTheFixtureAdapter(a.tensors());
        assertThat(a.tensors().get(PeftAdapters.loraKey("transformer.h.1.attn.c_attn", 'A')).shape()).containsExactly(4, 8);
        assertThat(a.tensors().get(PeftAdapters.loraKey("transformer.h.1.attn.c_attn", 'B')).shape()).containsExactly(24, 4);
        assertThat(a.tensors().get(PeftAdapters.savedKey("transformer.wte.weight")).shape()).containsExactly(61, 8);
        assertThat(a.tensors().get(PeftAdapters.savedKey("lm_head.weight")).shape()).containsExactly(61, 8);
    }

    @Test
    void readsBinWithDefaultAdapterNameVariants() {
        // peft_bin/adapter_model.bin is torch.save of the live model's keys: lora_A.default.weight, wte.modules_to_save.default.weight
        assertIsTheFixtureAdapter(PeftAdapters.read(golden("peft_bin")).tensors());
    }

    @Test
    void canonicalKeys() {
        assertThat(PeftAdapters.canonicalKey("base_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight"))
                .isEqualTo("base_model.model.transformer.h.0.attn.c_attn.lora_A.weight");
        assertThat(PeftAdapters.canonicalKey("base_model.model.lm_head.modules_to_save.default.weight")).isEqualTo("base_model.model.lm_head.weight");
        assertThat(PeftAdapters.canonicalKey("base_model.model.lm_head.original_module.weight")).isNull();
        assertThat(PeftAdapters.canonicalKey("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight"))
                .isEqualTo("base_model.model.transformer.h.0.attn.c_attn.lora_B.weight");
    }

    @Test
    void writeReadRoundTripInPeftsFormat() throws Exception {
        PeftAdapters.Adapter a = PeftAdapters.read(golden("peft"));
        Path out = tmp.resolve("adapter");
        PeftAdapters.write(out, a.config(), a.tensors(), DType.F32);
        PeftAdapters.Adapter b = PeftAdapters.read(out);
        assertThat(b.config()).isEqualTo(a.config());
        assertIsTheFixtureAdapter(b.tensors());
        try (Safetensors st = Safetensors.open(out.resolve("adapter_model.safetensors"))) {
            assertThat(st.metadata()).isEqualTo(Map.of("format", "pt"));
        }
        // every field peft wrote is written back, with the same value
        var theirs = Json.readObject(golden("peft/adapter_config.json"));
        var ours = Json.readObject(out.resolve("adapter_config.json"));
        assertThat(ours).isEqualTo(theirs);
    }

    @Test
    void newConfigHasPeftsFieldNames() throws Exception {
        var c = PeftAdapters.LoraConfig.of(8, 32, 0.05, List.of("c_attn"), List.of("transformer.wte", "lm_head"), false, "Wenzhong");
        assertThat(c.scaling()).isEqualTo(4.0);  // the seed's alpha 32 / r 8
        Path f = tmp.resolve("adapter_config.json");
        PeftAdapters.writeConfig(f, c);
        var j = Json.readObject(f);
        assertThat(j.get("peft_type").asText()).isEqualTo("LORA");
        assertThat(j.get("task_type").asText()).isEqualTo("CAUSAL_LM");
        assertThat(j.get("r").asInt()).isEqualTo(8);
        assertThat(j.get("lora_alpha").isIntegralNumber()).isTrue();
        assertThat(j.get("lora_dropout").asDouble()).isEqualTo(0.05);
        assertThat(j.get("fan_in_fan_out").asBoolean()).isTrue();
        assertThat(j.get("bias").asText()).isEqualTo("none");
        assertThat(j.get("init_lora_weights").asBoolean()).isTrue();
        assertThat(j.get("modules_to_save").toString()).isEqualTo("[\"transformer.wte\",\"lm_head\"]");
        assertThat(PeftAdapters.readConfig(f)).isEqualTo(c);
    }

    @Test
    void writesTheFilesPeftWasCheckedToLoad() throws Exception {
        // java_adapter/ was written by this code (tools/golden/SaveTinyModel.java) and loaded by peft's
        // PeftModel.from_pretrained with identical tensors and logits (make_io_fixtures.py --java).
        var tensors = PeftAdapters.read(golden("peft")).tensors();
        var cfg = PeftAdapters.LoraConfig.of(4, 8, 0.0, List.of("c_attn"), List.of("wte", "lm_head"), false, null);
        Path out = tmp.resolve("mine");
        PeftAdapters.write(out, cfg, tensors, DType.F32);
        for (String f : List.of("adapter_config.json", "adapter_model.safetensors"))
            assertThat(Files.readAllBytes(out.resolve(f))).as(f).isEqualTo(Files.readAllBytes(golden("java_adapter/" + f)));
        // the tensor file is byte-identical to the one peft wrote
        assertThat(Files.readAllBytes(out.resolve("adapter_model.safetensors"))).isEqualTo(Files.readAllBytes(golden("peft/adapter_model.safetensors")));
    }

    @Test
    void badAdapters() throws Exception {
        Path none = tmp.resolve("none");
        assertThatThrownBy(() -> PeftAdapters.read(none)).hasMessage(none + ": adapter directory does not exist; check --adapter");
        Path d = Files.createDirectories(tmp.resolve("d"));
        Files.writeString(d.resolve("adapter_config.json"), "{\"peft_type\": \"PREFIX_TUNING\", \"target_modules\": [\"x\"]}");
        assertThatThrownBy(() -> PeftAdapters.readConfig(d.resolve("adapter_config.json"))).isInstanceOf(UserError.class)
                .hasMessage(d.resolve("adapter_config.json") + ": peft_type 'PREFIX_TUNING' is not supported; cpt4j reads LoRA adapters (peft_type \"LORA\")");
        Files.writeString(d.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 4.5, \"target_modules\": [\"x\"]}");
        assertThatThrownBy(() -> PeftAdapters.readConfig(d.resolve("adapter_config.json"))).hasMessageContaining("field 'r' must be an integer, got 4.5");
        Files.copy(golden("peft/adapter_config.json"), d.resolve("adapter_config.json"), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        assertThatThrownBy(() -> PeftAdapters.read(d)).hasMessageContaining(d + ": no adapter weights (looked for adapter_model.safetensors and adapter_model.bin)");
    }
}
