package dev.cpt4j.tokenizer;

import dev.cpt4j.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Decoding for people, save/load identity, bad files. */
class TokenizerRoundTripTest {
    static final String[] TEXTS = {
        "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
        "Hello, world! It's 2024 — naïve café 😀👨‍👩‍👧 ok",
        "混合 mixed 文本 text 123 ＡＢＣ １２３ 𠮷野家",
        "  leading spaces and\ttabs\u3000全角空格",
    };

    @Test
    void byteLevelAndByteFallbackDecodeRoundTrip() {
        for (Path f : List.of(TestAssets.npmFile("qwen3", "tokenizer.json"), TestAssets.npmFile("llama2", "tokenizer.json"))) {
            Tokenizer t = TestAssets.load(f);
            for (String s : TEXTS) assertThat(t.decode(t.encode(s, true))).as(f + ": " + s).isEqualTo(s);
        }
        Tokenizer gpt2 = TestAssets.load(TestAssets.npmFile("gpt2", "encoder.json"));
        for (String s : TEXTS) assertThat(gpt2.decode(gpt2.encode(s + "<|endoftext|>", true))).isEqualTo(s);
        assertThat(gpt2.encode("<|endoftext|>", true)).containsExactly(50256);
    }

    @Test
    void wordPieceDecodeHasNoSpacesBetweenCjk(@TempDir Path dir) throws Exception {
        Tokenizer t = TestAssets.load(TestAssets.bge());
        assertThat(t.decode(t.encode(TEXTS[0], true))).isEqualTo(TEXTS[0]);
        assertThat(t.decode(t.encode("我们在 new york 看到了 iphone 15。", true))).isEqualTo("我们在new york看到了iphone 15。");
        // [UNK] is a special token: skipped, as HF's decode(skip_special_tokens=True)
        assertThat(t.decode(t.encode("New 年", true))).isEqualTo("年");
        assertThat(t.decode(t.encode("he said: don't stop.", true))).isEqualTo("he said : don't stop.");
        int[] ids = t.encode("你好", true);
        int[] padded = java.util.Arrays.copyOf(ids, ids.length + 5);   // trailing [PAD] (id 0) run
        assertThat(t.decode(padded)).isEqualTo("你好");
    }

    @Test
    void writtenTokenizerJsonLoadsIdentically(@TempDir Path dir) throws Exception {
        List<String> lines = TestAssets.corpus(0).subList(0, 1000);
        // (GPT-2's written tokenizer.json is checked against HF in HfParityTest.gpt2VocabJsonMergesMatchesHf)
        for (Path f : List.of(TestAssets.bge(), TestAssets.npmFile("llama2", "tokenizer.json"))) {
            HfTokenizer a = (HfTokenizer) TestAssets.load(f);
            Path out = TokenizerJsonWriter.write(a, dir.resolve("out-" + f.getParent().getFileName() + "-" + f.getFileName()));
            Tokenizer b = Tokenizer.load(out);
            assertThat(b.vocabSize()).isEqualTo(a.vocabSize());
            for (String s : lines) assertThat(b.encode(s, true)).as(s).isEqualTo(a.encode(s, true));
        }
    }

    @Test
    void fingerprintIsStableAndSensitive(@TempDir Path dir) throws Exception {
        Path f = TestAssets.bgeTokenizerJson(dir);
        String a = Tokenizer.load(f).fingerprint();
        assertThat(Tokenizer.load(f).fingerprint()).isEqualTo(a);
        Files.writeString(f, Files.readString(f).replace("\"lowercase\": false", "\"lowercase\": true"));
        assertThat(Tokenizer.load(f).fingerprint()).isNotEqualTo(a);
    }

    @Test
    void badFilesGiveOneLineUserErrors(@TempDir Path dir) throws Exception {
        Path notJson = Files.writeString(dir.resolve("tokenizer.json"), "{ not json");
        assertThatThrownBy(() -> Tokenizer.load(notJson)).isInstanceOf(UserError.class)
                .hasMessageContaining(notJson.toString()).hasMessageContaining("not valid JSON").hasMessageNotContaining("\n");
        Path noModel = Files.writeString(dir.resolve("a.json"), "{\"normalizer\": null}");
        assertThatThrownBy(() -> Tokenizer.load(noModel)).isInstanceOf(UserError.class).hasMessageContaining("'tokenizer.model' is missing");
        Path unigram = Files.writeString(dir.resolve("b.json"), "{\"model\": {\"type\": \"Unigram\", \"vocab\": {}}}");
        assertThatThrownBy(() -> Tokenizer.load(unigram)).isInstanceOf(UserError.class)
                .hasMessageContaining("'model.type' is 'Unigram'").hasMessageContaining("supported: WordPiece, BPE");
        Path badNorm = Files.writeString(dir.resolve("c.json"), "{\"normalizer\": {\"type\": \"Precompiled\"}, \"model\": {\"type\": \"WordPiece\", \"vocab\": {\"[UNK]\": 0}}}");
        assertThatThrownBy(() -> Tokenizer.load(badNorm)).isInstanceOf(UserError.class)
                .hasMessageContaining("'normalizer.type' is 'Precompiled'").hasMessageContaining("supported: BertNormalizer");
        assertThatThrownBy(() -> Tokenizer.load(dir.resolve("missing"))).isInstanceOf(UserError.class).hasMessageContaining("does not exist");
    }
}
