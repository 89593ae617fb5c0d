package dev.cpt4j.hf;

import static dev.cpt4j.io.Fixtures.golden;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Json;
import dev.cpt4j.model.Gpt2Config;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HfConfigsTest {
    @TempDir Path tmp;

    @Test
    void readsTransformersConfig() {
        // tiny/config.json: GPT2Config(vocab_size=61, n_positions=16, n_embd=8, n_layer=2, n_head=2, n_inner=12,
        // activation_function="gelu_fast") saved by transformers (tools/golden/make_io_fixtures.py)
        Gpt2Config c = (Gpt2Config) HfConfigs.read(golden("tiny/config.json"));
        assertThat(c).isEqualTo(new Gpt2Config(61, 16, 8, 2, 2, 12, "gelu_fast", 1e-5f, 0.02f, 0.1f, 0.1f, 0.1f, true, true, false));
        assertThat(HfConfigs.read(golden("tiny_untied/config.json")).tieWordEmbeddings()).isFalse();
    }

    @Test
    void aliasesAndDefaults() throws Exception {
        Path f = write("{\"model_type\": \"gpt2\", \"vocab_size\": 100, \"max_position_embeddings\": 32, \"hidden_size\": 12, \"num_hidden_layers\": 3,"
                + " \"num_attention_heads\": 4, \"n_inner\": null}");
        Gpt2Config c = (Gpt2Config) HfConfigs.read(f);
        assertThat(c).isEqualTo(new Gpt2Config(100, 32, 12, 3, 4, 48, "gelu_new", 1e-5f, 0.02f, 0.1f, 0.1f, 0.1f, true, true, false));
    }

    @Test
    void errorsNameTheFileAndField() throws Exception {
        Path invalid = write("{\"vocab_size\": 10,\n \"n_embd\": }");
        assertThatThrownBy(() -> HfConfigs.read(invalid)).isInstanceOf(UserError.class)
                .hasMessageStartingWith(invalid + ": invalid JSON at line 2, column")
                .hasMessageEndingWith("; fix the file or download it again").hasMessageNotContaining("\n");
        Path missing = write("{\"model_type\": \"gpt2\", \"vocab_size\": 10, \"n_positions\": 8, \"n_embd\": 4, \"n_head\": 2}");
        assertThatThrownBy(() -> HfConfigs.read(missing)).hasMessage(missing + ": missing field 'n_layer' (or 'num_hidden_layers');"
                + " a GPT-2 config.json needs vocab_size, n_positions, n_embd, n_layer and n_head");
        Path llama = write("{\"model_type\": \"llama\", \"vocab_size\": 10}");
        assertThatThrownBy(() -> HfConfigs.read(llama)).hasMessageStartingWith(llama + ": missing field 'hidden_size'");
        Path bert = write("{\"model_type\": \"bert\", \"vocab_size\": 10}");
        assertThatThrownBy(() -> HfConfigs.read(bert)).hasMessage(bert + ": unsupported model_type \"bert\"; cpt4j supports [gpt2, llama, qwen2, qwen3, mistral]");
        Path unknown = write("{\"vocab_size\": 10, \"hidden_size\": 4}");
        assertThatThrownBy(() -> HfConfigs.read(unknown)).hasMessageContaining(unknown + ": no model_type; add \"model_type\"");
        Path wrongType = write("{\"vocab_size\": \"10\", \"n_positions\": 8, \"n_embd\": 4, \"n_layer\": 1, \"n_head\": 2}");
        assertThatThrownBy(() -> HfConfigs.read(wrongType)).hasMessage(wrongType + ": field 'vocab_size' must be an integer, got \"10\"");
        Path badAct = write("{\"vocab_size\": 10, \"n_positions\": 8, \"n_embd\": 4, \"n_layer\": 1, \"n_head\": 2, \"activation_function\": \"swish2\"}");
        assertThatThrownBy(() -> HfConfigs.read(badAct)).hasMessageStartingWith(badAct + ": activation_function 'swish2' is not supported");
        Path badHeads = write("{\"vocab_size\": 10, \"n_positions\": 8, \"n_embd\": 5, \"n_layer\": 1, \"n_head\": 2}");
        assertThatThrownBy(() -> HfConfigs.read(badHeads)).hasMessageStartingWith(badHeads + ": n_embd (5) must be a positive multiple of n_head (2)");
        assertThatThrownBy(() -> HfConfigs.read(tmp.resolve("nope.json"))).hasMessage(tmp.resolve("nope.json") + ": file not found; check the path");
    }

    @Test
    void writeReadRoundTripKeepsOtherKeys() throws Exception {
        Gpt2Config c = new Gpt2Config(21133, 1024, 768, 12, 12, 3072, "gelu_fast", 1e-5f, 0.02f, 0f, 0.05f, 0.1f, false, true, true);
        var base = Json.readObject(golden("tiny/config.json"));
        base.put("hidden_size", 999);  // an alias that would contradict n_embd must not survive
        Path f = tmp.resolve("out/config.json");
        HfConfigs.write(f, c, base, DType.BF16);
        assertThat(HfConfigs.read(f)).isEqualTo(c);
        var j = Json.readObject(f);
        assertThat(j.get("model_type").asText()).isEqualTo("gpt2");
        assertThat(j.get("architectures").get(0).asText()).isEqualTo("GPT2LMHeadModel");
        assertThat(j.get("bos_token_id").asInt()).isZero();
        assertThat(j.has("hidden_size")).isFalse();
        assertThat(j.get("dtype").asText()).isEqualTo("bfloat16");
        assertThat(j.get("layer_norm_epsilon").asDouble()).isEqualTo(1e-5);
        assertThat(Files.readString(f)).startsWith("{\n  \"activation_function\": \"gelu_fast\",\n");
        Path plain = tmp.resolve("plain.json");
        HfConfigs.write(plain, Gpt2Config.of(50, 8, 4, 1, 2));
        assertThat(HfConfigs.read(plain)).isEqualTo(Gpt2Config.of(50, 8, 4, 1, 2));
    }

    private int n;

    private Path write(String json) throws Exception {
        Path f = tmp.resolve("config" + (n++) + ".json");
        Files.writeString(f, json);
        return f;
    }
}
