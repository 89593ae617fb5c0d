package dev.cpt4j.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** {@code cpt4j bench generate} on a tiny config: JSON with tokens_per_s; bad lengths are one line, exit 2. */
class BenchGenerateCommandTest {
    @Test
    void printsJsonWithTokensPerSecond(@TempDir Path dir) throws Exception {
        Path cfg = Files.writeString(dir.resolve("config.json"), "{\"model_type\":\"gpt2\",\"vocab_size\":60,\"n_positions\":48,"
                + "\"n_embd\":24,\"n_layer\":2,\"n_head\":3,\"activation_function\":\"gelu_fast\"}");
        BenchCommandTest.Run r = BenchCommandTest.run("bench", "generate", "--config", cfg.toString(), "--prompt-tokens", "8",
                "--max-new-tokens", "16", "--num-return-sequences", "3", "--top-p", "0.9", "--threads", "2", "--json");
        assertThat(r.code()).as(r.err()).isZero();
        String[] lines = r.out().strip().split("\n");
        JsonNode j = new ObjectMapper().readTree(lines[lines.length - 1]);
        assertThat(j.get("tokens_per_s").asDouble()).isPositive();
        assertThat(j.get("new_tokens").asInt()).isEqualTo(3 * 16); // no eos: every sequence runs to the end

        BenchCommandTest.Run tooLong = BenchCommandTest.run("bench", "generate", "--config", cfg.toString(),
                "--prompt-tokens", "40", "--max-new-tokens", "16");
        assertThat(tooLong.code()).isEqualTo(2);
        assertThat(tooLong.err().strip().lines().count()).isEqualTo(1);
        assertThat(tooLong.err()).contains("exceeds the context of 48 positions");
    }
}
