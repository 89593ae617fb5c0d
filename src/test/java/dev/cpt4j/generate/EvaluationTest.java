package dev.cpt4j.generate;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.model.Gpt2Decoder;
import dev.cpt4j.UserError;
import dev.cpt4j.tensor.Parallel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

/**
 * Held-out loss and greedy decoding of a tiny WordPiece GPT-2, without and with a real peft adapter (vocabulary
 * resized 64 → 66, LoRA on c_attn, wte and lm_head trained apart), against transformers + peft. Expected numbers:
 * golden/generate/tiny_wp/eval.json from tools/golden/make_generate_golden.py.
 */
class EvaluationTest {
    static final JsonNode G = Golden.json("tiny_wp/eval.json");
    @TempDir
    Path tmp;

    @Test
    void tokenizationMatchesBertTokenizer() {
        LoadedModel m = LoadedModel.load(Golden.path("tiny_wp"), null);
        int[] ids = Evaluation.tokenizeLines(m.tokenizer(), Golden.path("tiny_wp/text.txt"));
        assertThat(ids).containsExactly(Golden.ints(G.get("ids")));
    }

    @Test
    void baseLossMatchesTransformers() {
        LoadedModel m = LoadedModel.load(Golden.path("tiny_wp"), null);
        try (Parallel par = new Parallel(2)) {
            for (int batch : new int[] {8, 3}) {
                Evaluation.Result r = Evaluation.evaluateText(m, Golden.path("tiny_wp/text.txt"), 16, batch, par);
                assertThat(r.loss()).as("batch %d", batch).isCloseTo(G.get("base_loss").asDouble(), within(1e-4));
                assertThat(r.blocks()).isEqualTo(G.get("blocks").asLong());
                assertThat(r.tokens()).isEqualTo(16L * G.get("blocks").asLong());
                assertThat(r.textTokens()).isEqualTo(G.get("tokens").asLong());
            }
        }
    }

    @Test
    void adapterLossMatchesPeftModel() {
        LoadedModel m = LoadedModel.load(Golden.path("tiny_wp"), Golden.path("tiny_wp_adapter"));
        assertThat(m.config().vocabSize()).isEqualTo(66);      // resized automatically
        assertThat(m.config().tieWordEmbeddings()).isFalse();  // wte and lm_head trained apart
        try (Parallel par = new Parallel(2)) {
            Evaluation.Result r = Evaluation.evaluateText(m, Golden.path("tiny_wp/text.txt"), 16, 4, par);
            assertThat(r.loss()).isCloseTo(G.get("adapter_loss").asDouble(), within(1e-4));
        }
    }

    @Test
    void greedyIdsMatchTransformersWithAndWithoutAdapter() {
        for (String adapter : new String[] {null, "tiny_wp_adapter"}) {
            LoadedModel m = LoadedModel.load(Golden.path("tiny_wp"), adapter == null ? null : Golden.path(adapter));
            int[] want = Golden.ints(G.get(adapter == null ? "base_greedy" : "adapter_greedy"));
            int[] prompt = m.tokenizer().encode(G.get("prompt_text").asText(), false);
            assertThat(prompt).containsExactly(Golden.ints(G.get("prompt")));
            GenerationConfig cfg = new GenerationConfig(false, 1f, 50, 1f, 1f, 1, GenerationConfig.UNSET, want.length,
                    want.length, new int[] {3}, 0, 0L);
            try (Parallel par = new Parallel(2)) {
                Gpt2Decoder dec = new Gpt2Decoder((dev.cpt4j.model.Gpt2Config) m.config(), m.params(), m.layout(), 1, prompt.length + want.length, par);
                Generator.Result r = Generator.generate(dec, prompt, cfg, new SplittableRandom(0), Generator.TokenListener.NONE);
                assertThat(r.tokens()[0]).as(String.valueOf(adapter)).containsExactly(want);
            }
        }
        assertThat(Golden.ints(G.get("adapter_greedy"))).hasSizeGreaterThanOrEqualTo(64);
    }

    @Test
    void badInput() throws Exception {
        LoadedModel m = LoadedModel.load(Golden.path("tiny_wp"), null);
        Path blank = Files.writeString(tmp.resolve("blank.txt"), "\n  \n\n");
        Path shortText = Files.writeString(tmp.resolve("short.txt"), "春眠\n");
        try (Parallel par = Parallel.serial()) {
            assertThatThrownBy(() -> Evaluation.evaluateText(m, Golden.path("tiny_wp/text.txt"), 97, 1, par))
                    .isInstanceOf(UserError.class).hasMessageContaining("context of 96 positions");
            assertThatThrownBy(() -> Evaluation.evaluateText(m, blank, 16, 1, par))
                    .isInstanceOf(UserError.class).hasMessageContaining("no text");
            assertThatThrownBy(() -> Evaluation.evaluateText(m, shortText, 16, 1, par))
                    .isInstanceOf(UserError.class).hasMessageContaining("less than one block");
        }
    }
}
