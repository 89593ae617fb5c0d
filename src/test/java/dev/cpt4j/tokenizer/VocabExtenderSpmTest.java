package dev.cpt4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HexFormat;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Chinese-LLaMA recipe part 1: {@code tokenizer extend} on a LLaMA-style SentencePiece base writes an extended
 * {@code tokenizer.model} beside the new {@code tokenizer.json}. Golden: tools/golden/make_spm_extend_golden.py (the
 * sentencepiece library 0.2.2 loaded the extended model cpt4j wrote and encoded 477 held-out texts; HF tokenizers
 * gave the same ids from the tokenizer.json).
 */
class VocabExtenderSpmTest {
    static final ObjectMapper JSON = new ObjectMapper();

    static JsonNode golden() throws Exception {
        try (InputStream in = VocabExtenderSpmTest.class.getResourceAsStream("/tokenizer/spm-extend-golden.json")) {
            return JSON.readTree(in);
        }
    }

    static byte[] baseModel() throws Exception {
        try (InputStream in = VocabExtenderSpmTest.class.getResourceAsStream("/tokenizer/spm-bpe.model")) {
            return in.readAllBytes();
        }
    }

    /** The corpus the golden script extended with: parity-corpus lines [0, 3000) joined by \n, final \n. */
    static Path corpus(Path dir) throws Exception {
        Path d = Files.createDirectories(dir.resolve("corpus"));
        Files.writeString(d.resolve("domain.txt"), String.join("\n", TestAssets.corpus(0).subList(0, 3000)) + "\n");
        return d;
    }

    static void assertGoldenIds(String what, Tokenizer t, JsonNode g) {
        int n = 0;
        List<String> report = new ArrayList<>();
        for (int i = 0; i < g.get("texts").size(); i++) {
            String text = g.get("texts").get(i).asText();
            int[] want = new int[g.get("ids").get(i).size()];
            for (int k = 0; k < want.length; k++) want[k] = g.get("ids").get(i).get(k).asInt();
            int[] got = t.encode(text, true);
            if (!Arrays.equals(want, got) && report.size() < 5) {
                report.add(HfParityTest.escape(text) + "\n  sentencepiece: " + Arrays.toString(want) + "\n  cpt4j:         " + Arrays.toString(got));
            }
            if (!Arrays.equals(want, got)) n++;
        }
        System.out.printf("extended tokenizer.model golden, %s: %d texts, %d differences%n", what, g.get("texts").size(), n);
        if (n > 0) fail(what + ": " + n + " texts differ from sentencepiece on the extended model:\n" + String.join("\n", report));
    }

    @Test
    void extendedModelEncodesAsSentencepieceAndAsTheNewTokenizerJson(@TempDir Path dir) throws Exception {
        JsonNode g = golden();
        Path base = Files.createDirectories(dir.resolve("base"));
        byte[] baseBytes = baseModel();
        Files.write(base.resolve("tokenizer.model"), baseBytes);
        Path out = dir.resolve("out");
        VocabExtender.Report r = VocabExtender.extend(base, corpus(dir), g.get("add").asInt(), out);
        assertThat(r.sentencePieceModel()).isEqualTo(out.resolve("tokenizer.model"));
        byte[] written = Files.readAllBytes(out.resolve("tokenizer.model"));
        assertThat(HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(written)))
                .as("cpt4j no longer writes the tokenizer.model the golden was made from; if the extension changed on "
                        + "purpose, rerun tools/golden/make_spm_extend_golden.py").isEqualTo(g.get("sha256").asText());

        // the ModelProto round-trips: the base's pieces and specs unchanged, the new pieces after them
        SentencePieceLoader.ModelProto before = SentencePieceLoader.parse(baseBytes, base), after = SentencePieceLoader.parse(written, out);
        assertThat(after.pieces()).hasSize(g.get("vocab_size").asInt()).startsWith(before.pieces().toArray(SentencePieceLoader.Piece[]::new));
        assertThat(List.of(after.modelType(), after.byteFallback(), after.normName(), after.addDummyPrefix(), after.removeExtraWs()))
                .isEqualTo(List.of(before.modelType(), before.byteFallback(), before.normName(), before.addDummyPrefix(), before.removeExtraWs()));
        float min = Float.POSITIVE_INFINITY;
        for (SentencePieceLoader.Piece p : before.pieces()) min = Math.min(min, p.score());
        List<SentencePieceLoader.Piece> added = after.pieces().subList(before.pieces().size(), after.pieces().size());
        for (SentencePieceLoader.Piece p : added) {
            assertThat(p.type()).isEqualTo(SentencePieceLoader.NORMAL);
            assertThat(p.score()).as(p.text()).isLessThan(min);
            min = p.score();
        }
        assertThat(added).extracting(SentencePieceLoader.Piece::text).anyMatch(s -> s.codePointCount(0, s.length()) == 1)
                .anyMatch(s -> s.codePointCount(0, s.length()) > 1);

        // the written tokenizer.model through cpt4j's loader, the written tokenizer.json, and sentencepiece agree
        Path onlyModel = Files.createDirectories(dir.resolve("only-model"));
        Files.write(onlyModel.resolve("tokenizer.model"), written);
        Tokenizer fromModel = Tokenizer.load(onlyModel), fromJson = Tokenizer.load(r.tokenizerJson());
        assertThat(fromModel.vocabSize()).isEqualTo(6400);
        assertThat(fromJson.vocabSize()).isEqualTo(6400);
        assertGoldenIds("tokenizer.model", fromModel, g);
        assertGoldenIds("tokenizer.json", fromJson, g);
        String zh = "中文LLaMA的词表扩充：在原有词表之上加入新的中文词，再继续预训练。";
        assertThat(fromJson.decode(fromJson.encode(zh, false))).isEqualTo(zh);
        assertThat(r.tokensPer1kCharsAfter()).isLessThan(r.tokensPer1kCharsBefore());
    }

    @Test
    void tokenizerJsonBesideTheModelIsExtendedWithItAndSideFilesCome(@TempDir Path dir) throws Exception {
        JsonNode g = golden();
        // an HF-style LLaMA folder: tokenizer.model, tokenizer.json of the same tokenizer, tokenizer_config.json
        Path base = Files.createDirectories(dir.resolve("base"));
        Files.write(base.resolve("tokenizer.model"), baseModel());
        TokenizerJsonWriter.write((HfTokenizer) Tokenizer.load(base.resolve("tokenizer.model")), base);
        Files.writeString(base.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_bos_token\": true}");
        Path out = dir.resolve("out");
        VocabExtender.Report r = VocabExtender.extend(base, corpus(dir), g.get("add").asInt(), out);
        assertThat(out.resolve("tokenizer_config.json")).hasSameTextualContentAs(base.resolve("tokenizer_config.json"));
        assertThat(r.sentencePieceModel()).isNotNull();
        // the learned pieces may differ from the tokenizer.model-only run (the json pipeline matches user-defined
        // symbols as HF does), but the two written files encode alike, and as sentencepiece where the pieces are the same
        Path onlyModel = Files.createDirectories(dir.resolve("only-model"));
        Files.copy(r.sentencePieceModel(), onlyModel.resolve("tokenizer.model"));
        Tokenizer fromModel = Tokenizer.load(onlyModel), fromJson = Tokenizer.load(r.tokenizerJson());
        assertThat(fromJson.vocabSize()).isEqualTo(fromModel.vocabSize()).isGreaterThan(6000);
        List<String> texts = new ArrayList<>(TestAssets.corpus(0).subList(6000, 7500));
        g.get("texts").forEach(t -> texts.add(t.asText()));
        int diffs = 0;
        for (String t : texts) {
            if (t.contains("<|im_") || t.contains("<s>") || t.contains("</s>") || t.contains("<unk>")) continue;
            if (!Arrays.equals(fromModel.encode(t, true), fromJson.encode(t, true))) diffs++;
        }
        assertThat(diffs).as("texts where the written tokenizer.model and tokenizer.json disagree").isZero();
    }

    @Test
    void aTokenizerJsonOfAnotherVocabularyBesideTheModelIsOneLine(@TempDir Path dir) throws Exception {
        Path base = Files.createDirectories(dir.resolve("base"));
        Files.write(base.resolve("tokenizer.model"), baseModel());
        Files.copy(TestAssets.npmFile("llama2", "tokenizer.json"), base.resolve("tokenizer.json"));
        assertThatThrownBy(() -> VocabExtender.extend(base, corpus(dir), 10, dir.resolve("out")))
                .isInstanceOf(UserError.class).hasMessageContaining("32000 ids").hasMessageContaining("6000 pieces")
                .hasMessageContaining("not the same tokenizer").hasMessageNotContaining("\n");
        assertThat(dir.resolve("out")).doesNotExist();
    }

    @Test
    void selfTestDataIsDroppedAndPiecesGoAfterTheLastPiece() throws Exception {
        byte[] base = baseModel();
        ByteArrayOutputStream withSelfTest = new ByteArrayOutputStream();
        withSelfTest.writeBytes(base);
        withSelfTest.write(4 << 3 | 2);   // self_test_data { samples { input: "x" expected: "y" } }
        withSelfTest.writeBytes(new byte[] {8, 10, 6, 10, 1, 'x', 18, 1, 'y'});
        List<SentencePieceLoader.Piece> add = List.of(new SentencePieceLoader.Piece("新词", -1e6f, SentencePieceLoader.NORMAL),
                new SentencePieceLoader.Piece("<ctl>", 0f, SentencePieceLoader.CONTROL));
        byte[] out = SentencePieceWriter.appendPieces(withSelfTest.toByteArray(), Path.of("x.model"), add);
        assertThat(out).hasSize(base.length + 2 + 2 + "新词".getBytes(java.nio.charset.StandardCharsets.UTF_8).length + 5
                + 2 + 2 + 5 + 5 + 2);
        List<SentencePieceLoader.Piece> ps = SentencePieceLoader.parse(out, Path.of("x.model")).pieces();
        assertThat(ps.subList(6000, 6002)).isEqualTo(add);
        assertThat(new String(out, java.nio.charset.StandardCharsets.ISO_8859_1)).doesNotContain("\u0006\n\u0001x\u0012\u0001y");
    }
}
