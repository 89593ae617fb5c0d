package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.tokenizer.Tokenizer;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A tokenizer whose bos/eos/pad the model's config.json contradicts: one line naming both ids. */
class SpecialTokensTest {
    static ObjectNode config(String json) throws Exception {
        return (ObjectNode) new ObjectMapper().readTree(json);
    }

    @Test
    void bosTheTokenizerAddsIsComparedWithTheConfig(@TempDir Path dir) throws Exception {
        Path tok = Files.createDirectories(dir.resolve("tok"));   // LLaMA-style tokenizer.model alone: <s> = 1 before every text
        try (InputStream in = getClass().getResourceAsStream("/tokenizer/spm-bpe.model")) {
            Files.copy(in, tok.resolve("tokenizer.model"));
        }
        Tokenizer t = Tokenizer.load(tok);
        assertThatThrownBy(() -> SpecialTokens.check(config("{\"vocab_size\": 6000, \"bos_token_id\": 5}"), dir, tok, t))
                .isInstanceOf(UserError.class).hasMessageContaining("bos_token_id 5").hasMessageContaining("with id 1")
                .hasMessageNotContaining("\n");
        assertThatCode(() -> SpecialTokens.check(config("{\"vocab_size\": 6000, \"bos_token_id\": 1}"), dir, tok, t)).doesNotThrowAnyException();
        // an id beyond the config's vocabulary names no token (GPT-2's 50256 beside a BERT vocabulary): not compared
        assertThatCode(() -> SpecialTokens.check(config("{\"vocab_size\": 6000, \"bos_token_id\": 50256}"), dir, tok, t)).doesNotThrowAnyException();

        // tokenizer_config.json names the roles: pad '<unk>' is id 0, eos '</s>' id 2
        Files.writeString(tok.resolve("tokenizer_config.json"), "{\"pad_token\": \"<unk>\", \"eos_token\": {\"content\": \"</s>\"}}");
        Tokenizer t2 = Tokenizer.load(tok);
        assertThatThrownBy(() -> SpecialTokens.check(config("{\"vocab_size\": 6000, \"pad_token_id\": 7}"), dir, tok, t2))
                .isInstanceOf(UserError.class).hasMessageContaining("pad_token_id 7").hasMessageContaining("'<unk>' as id 0");
        assertThatThrownBy(() -> SpecialTokens.check(config("{\"vocab_size\": 6000, \"eos_token_id\": [5, 6]}"), dir, tok, t2))
                .isInstanceOf(UserError.class).hasMessageContaining("eos_token_id [5,6]").hasMessageContaining("'</s>' as id 2");
        assertThatCode(() -> SpecialTokens.check(config("{\"vocab_size\": 6000, \"eos_token_id\": [2, 6], \"pad_token_id\": 0, \"bos_token_id\": 1}"),
                dir, tok, t2)).doesNotThrowAnyException();
    }
}
