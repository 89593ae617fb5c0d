package dev.cpt4j.serve;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Hugging Face chat templates through Jinjava: a Qwen2-style ChatML template, raise_exception, a broken template. */
class ChatTemplateTest {
    @TempDir
    Path dir;

    private ChatTemplate of(String template) throws Exception {
        Files.writeString(dir.resolve("tokenizer_config.json"), OpenAiServer.JSON.writeValueAsString(
                Map.of("chat_template", template, "eos_token", "<|im_end|>", "bos_token", Map.of("content", "<s>"))));
        return ChatTemplate.of(dir);
    }

    static final List<Map<String, Object>> USER = List.of(Map.of("role", "user", "content", "床前明月光"));

    @Test
    void chatMlAsTransformersRendersIt() throws Exception {
        // Qwen2-Instruct's template (tokenizer_config.json), whitespace as shipped
        ChatTemplate t = of("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                + "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
                + "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
                + "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}");
        // what transformers' apply_chat_template(tokenize=False, add_generation_prompt=True) returns for USER
        assertThat(t.render(USER, true)).isEqualTo("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
                + "<|im_start|>user\n床前明月光<|im_end|>\n<|im_start|>assistant\n");
        assertThat(t.render(USER, false)).doesNotEndWith("assistant\n");
        assertThat(t.eosToken()).isEqualTo("<|im_end|>");
    }

    @Test
    void specialTokensAndRaiseException() throws Exception {
        ChatTemplate t = of("{{ bos_token }}{% for m in messages %}{% if m['role'] == 'system' %}"
                + "{{ raise_exception('System role not supported') }}{% endif %}[{{ m['role'] }}] {{ m['content'] }}"
                + "{% endfor %}");
        assertThat(t.render(USER, true)).isEqualTo("<s>[user] 床前明月光");
        assertThatThrownBy(() -> t.render(List.of(Map.of("role", "system", "content", "x")), true))
                .isInstanceOf(ApiError.class).hasMessageContaining("System role not supported")
                .satisfies(e -> assertThat(((ApiError) e).status).isEqualTo(400));
    }

    @Test
    void aTemplateJinjavaCannotRenderIsA400() throws Exception {
        ChatTemplate t = of("{% for m in messages %}{{ m['content'] }}");
        assertThatThrownBy(() -> t.render(USER, true)).isInstanceOf(ApiError.class)
                .hasMessageContaining("chat template could not be rendered");
    }

    @Test
    void noTemplateNoChat() throws Exception {
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"</s>\"}");
        assertThat(ChatTemplate.of(dir)).isNull();
        assertThat(ChatTemplate.of(dir.resolve("missing"))).isNull();
    }
}
