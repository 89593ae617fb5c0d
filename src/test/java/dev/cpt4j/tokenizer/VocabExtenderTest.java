package dev.cpt4j.tokenizer;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Vocabulary extension and training: ids kept, fewer tokens on held-out text, HF tokenizers encodes identically. */
class VocabExtenderTest {
    static Path corpusDir(Path dir, int from, int to) throws Exception {
        Path d = Files.createDirectories(dir.resolve("corpus"));
        List<String> lines = TestAssets.corpus(0).subList(from, to);
        Files.writeString(d.resolve("domain.txt"), String.join("\n", lines) + "\n");
        return d;
    }

    static void assertExtension(Path base, Path corpus, int add, Path out) throws Exception {
        HfTokenizer before = (HfTokenizer) TestAssets.load(base);
        VocabExtender.Report r = VocabExtender.extend(base, corpus, add, out);
        Tokenizer after = Tokenizer.load(r.tokenizerJson());
        assertThat(r.newVocabSize()).isEqualTo(before.vocabSize() + r.newTokens());
        assertThat(r.newTokens()).isPositive().isLessThanOrEqualTo(add);
        assertThat(r.tokensPer1kCharsAfter()).isLessThan(r.tokensPer1kCharsBefore());
        for (Map.Entry<String, Integer> e : before.model.vocab().entrySet()) {
            assertThat(after.tokenToId(e.getKey())).as(e.getKey()).isEqualTo(e.getValue().intValue());
        }
        for (AddedToken a : before.added.tokens) assertThat(after.tokenToId(a.content())).isEqualTo(a.id());
        List<String> check = TestAssets.corpus(0);
        HfParityTest.assertParity("extended " + base.getFileName(), after, r.tokenizerJson(), check.subList(0, 2500), true);
        System.out.printf("extend %s by %d: %.1f -> %.1f tokens per 1,000 held-out chars%n", base, add, r.tokensPer1kCharsBefore(), r.tokensPer1kCharsAfter());
    }

    @Test
    void extendWordPieceWithChinesePieces(@TempDir Path dir) throws Exception {
        Path base = TestAssets.bge();
        assertExtension(base, corpusDir(dir, 0, 4000), 300, dir.resolve("out"));
    }

    @Test
    void extendVocabTxtTokenizer(@TempDir Path dir) throws Exception {
        // Wenzhong-like vocab.txt + added tokens: the written tokenizer.json keeps [CLS] … [SEP] and ids 21128..21134
        Path base = BertVocabTxtTest.makeDir(dir);
        assertExtension(base.resolve("vocab.txt"), corpusDir(dir, 0, 4000), 200, dir.resolve("out"));
        assertThatThrownBy(() -> VocabExtender.extend(base, dir.resolve("corpus"), 10, dir.resolve("out")))
                .isInstanceOf(dev.cpt4j.UserError.class).hasMessageContaining("already has a tokenizer.json");
    }

    @Test
    void extendByteFallbackBpe(@TempDir Path dir) throws Exception {
        assertExtension(TestAssets.npmFile("llama2", "tokenizer.json"), corpusDir(dir, 0, 4000), 300, dir.resolve("out"));
    }

    @Test
    void extendByteLevelBpe(@TempDir Path dir) throws Exception {
        assertExtension(TestAssets.npmFile("gpt2", "encoder.json"), corpusDir(dir, 0, 3000), 300, dir.resolve("out"));
    }

    @Test
    void trainFromScratch(@TempDir Path dir) throws Exception {
        Path corpus = corpusDir(dir, 0, 2500);
        for (String kind : List.of("bpe", "wordpiece")) {
            VocabExtender.Report r = VocabExtender.train(corpus, kind, kind.equals("bpe") ? 1500 : 4000, dir.resolve(kind));
            Tokenizer t = Tokenizer.load(r.tokenizerJson());
            assertThat(t.vocabSize()).isBetween(300, 6001);
            HfParityTest.assertParity("trained " + kind, t, r.tokenizerJson(), TestAssets.corpus(0).subList(6000, 7500), true);
            String s = kind.equals("bpe") ? "床前明月光，疑是地上霜。" : "明月，地上";
            assertThat(t.decode(t.encode(s, true))).isEqualTo(s);
        }
    }

    @Test
    void tinyHandCheckedBpe(@TempDir Path dir) throws Exception {
        // "aaabdaaabac" (minbpe's example), counted by hand: (a,a) occurs 4 times → "aa"; then aa a b d aa a b a c has
        // (aa,a) and (a,b) twice each, the tie goes to the smaller left symbol "a" → "ab"; then aa ab d aa ab a c has
        // (aa,ab) twice → "aaab".
        MergeLearner l = new MergeLearner();
        l.addWord(List.of("a", "a", "a", "b", "d", "a", "a", "a", "b", "a", "c"), 1);
        List<MergeLearner.Merge> m = l.learn(3, 1, String::concat, (a, b) -> true);
        assertThat(m).extracting(MergeLearner.Merge::joined).containsExactly("aa", "ab", "aaab");
        assertThat(m).extracting(MergeLearner.Merge::count).containsExactly(4L, 2L, 2L);
    }
}
