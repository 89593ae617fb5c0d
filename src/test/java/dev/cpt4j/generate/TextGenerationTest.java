package dev.cpt4j.generate;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Clean text out of the loop: the seed's [PAD] runs and spaced-out Chinese must not appear. */
class TextGenerationTest {
    // 0 [PAD], 1..5 CJK, 6 <|endoftext|>
    static final String[] VOCAB = {"[PAD]", "西", "湖", "的", "景", "色", "<|endoftext|>"};

    /** A fake tokenizer whose decode behaves like the project's: specials skipped, CJK joined. */
    static final Tokenizer TOK = new Tokenizer() {
        @Override public int[] encode(String text, boolean add) {
            return text.codePoints().map(cp -> List.of(VOCAB).indexOf(new String(Character.toChars(cp)))).toArray();
        }
        @Override public String decode(int[] ids) {
            StringBuilder sb = new StringBuilder();
            for (int id : ids) if (id != 0 && id != 6) sb.append(VOCAB[id]);
            return sb.toString();
        }
        @Override public int vocabSize() { return VOCAB.length; }
        @Override public int tokenToId(String t) { return List.of(VOCAB).indexOf(t); }
        @Override public String fingerprint() { return "fake"; }
    };

    @Test
    void greedyStreamsAndStopsAtEosWithoutPadOrEndOfText() {
        //           0  1  2  3  4  5  6
        int[] next = {0, 2, 3, 4, 5, 6, 6}; // 西→湖→的→景→色→eos
        MarkovModel m = MarkovModel.chain(7, next, 32);
        int[] prompt = TOK.encode("西湖", false);
        List<String> pieces = new ArrayList<>();
        GenerationConfig cfg = GenerationConfig.greedy(10, TextGeneration.defaultEos(TOK));
        List<TextGeneration.Sample> s = TextGeneration.run(m, TOK::decode, prompt, cfg, pieces::add);
        assertThat(String.join("", pieces)).isEqualTo("西湖的景色");
        assertThat(pieces.size()).isGreaterThan(2); // really streamed, not printed at the end
        assertThat(s).hasSize(1);
        assertThat(s.get(0).text()).isEqualTo("西湖的景色");
        assertThat(s.get(0).completion()).isEqualTo("的景色");
        assertThat(s.get(0).ids()).containsExactly(3, 4, 5, 6);
        assertThat(s.get(0).finishReason()).isEqualTo(Generator.FinishReason.EOS);

        JsonNode j = Golden.json(s.get(0).toJsonLine().getBytes(java.nio.charset.StandardCharsets.UTF_8));
        assertThat(j.get("text").asText()).isEqualTo("西湖的景色");
        assertThat(Golden.ints(j.get("ids"))).containsExactly(3, 4, 5, 6);
        assertThat(j.get("finish_reason").asText()).isEqualTo("eos");
        assertThat(s.get(0).toJsonLine()).doesNotContain("\n").contains("西湖的景色"); // UTF-8, not \\u escapes
    }

    /** A WordPiece continuation piece (##2 after "gpt") joins its word in the completion instead of showing ##. */
    @Test
    void aContinuationPieceJoinsThePromptsLastWord() throws Exception {
        Tokenizer wp = Tokenizer.load(java.nio.file.Path.of("src/test/resources/golden/generate/tiny_wp"));
        int gpt = wp.tokenToId("gpt"), two = wp.tokenToId("##2"), sep = wp.tokenToId("[SEP]");
        int[] next = new int[wp.vocabSize()];
        java.util.Arrays.fill(next, sep);
        next[gpt] = two;
        MarkovModel m = MarkovModel.chain(wp.vocabSize(), next, 8);
        List<TextGeneration.Sample> s = TextGeneration.run(m, wp::decode, new int[] {gpt},
                GenerationConfig.greedy(4, new int[] {sep}), null);
        assertThat(wp.decode(new int[] {two})).contains("##");   // what the old completion printed
        assertThat(s.get(0).text()).isEqualTo("gpt2");
        assertThat(s.get(0).completion()).isEqualTo("2");
    }

    /**
     * When the whole text does not start with the prompt's own decode (a byte sequence the prompt left incomplete,
     * here U+FFFD, that the continuation completes), the completion is the text past the common prefix — never the
     * continuation decoded alone — and never splits a surrogate pair.
     */
    @Test
    void aCompletionAcrossAChangedBoundaryIsTheTextPastTheCommonPrefix() {
        assertThat(TextGeneration.completion("春眠不觉晓。", "春眠不\uFFFD")).isEqualTo("觉晓。");
        assertThat(TextGeneration.completion("ab\uD83D\uDE00c", "ab\uD83D\uDE01")).isEqualTo("\uD83D\uDE00c");
        assertThat(TextGeneration.completion("xyz", "q")).isEqualTo("xyz");
        assertThat(TextGeneration.completion("gpt2", "gpt")).isEqualTo("2");
    }

    @Test
    void severalSequencesAreDecodedSeparatelyAndNotStreamed() {
        float[][] t = new float[7][7];
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        for (float[] row : t) {
            row[0] = -1e9f; // the pad token is never likely
            for (int j = 1; j < 7; j++) row[j] = (float) r.nextGaussian();
        }
        MarkovModel m = new MarkovModel(t, 32, 5, 32);
        GenerationConfig cfg = GenerationConfig.sampling(0.9f, 5, 12, 11L, 6);
        List<String> pieces = new ArrayList<>();
        List<TextGeneration.Sample> s = TextGeneration.run(m, TOK::decode, new int[] {1, 2}, cfg, pieces::add);
        assertThat(pieces).isEmpty();
        assertThat(s).hasSize(5).allSatisfy(x -> {
            assertThat(x.text()).startsWith("西湖").doesNotContain(" ", "[PAD]", "<|endoftext|>");
            assertThat(x.ids()).isNotEmpty().doesNotContain(0);
        });
    }

    @Test
    void defaultEosPrefersEndOfText() {
        assertThat(TextGeneration.defaultEos(TOK)).containsExactly(6);
    }
}
