package dev.cpt4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

/** SentencePiece BPE tokenizer.model vs sentencepiece itself (golden: tools/golden/gen_spm_golden.py, sentencepiece 0.2.2). */
class SentencePieceTest {
    @Test
    void spmBpeModelMatchesSentencepiece(@TempDir Path dir) throws Exception {
        Path model = dir.resolve("tokenizer.model");
        try (InputStream in = getClass().getResourceAsStream("/tokenizer/spm-bpe.model")) {
            Files.copy(in, model);
        }
        Tokenizer t = Tokenizer.load(dir);
        assertThat(t.vocabSize()).isEqualTo(6000);
        List<String> corpus = TestAssets.corpus(0);
        ObjectMapper json = new ObjectMapper();
        int n = 0, diffs = 0, skippedControl = 0;
        List<String> report = new ArrayList<>();
        try (InputStream in = getClass().getResourceAsStream("/tokenizer/spm-bpe-golden.jsonl")) {
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.isBlank()) continue;
                JsonNode g = json.readTree(line);
                String text = g.has("text") ? g.get("text").asText() : corpus.get(g.get("line").asInt());
                int[] want = new int[g.get("ids").size()];
                for (int i = 0; i < want.length; i++) want[i] = g.get("ids").get(i).asInt();
                if (text.contains("<s>") || text.contains("</s>") || text.contains("<unk>")) {
                    skippedControl++;   // sentencepiece spells control pieces out; cpt4j (like transformers) matches them
                    continue;
                }
                int[] got = t.encode(text, true);
                n++;
                if (!Arrays.equals(want, got)) {
                    diffs++;
                    if (report.size() < 5) report.add(HfParityTest.escape(text) + "\n  sentencepiece: " + Arrays.toString(want) + "\n  cpt4j:         " + Arrays.toString(got));
                } else if (!text.startsWith(" ") && !text.contains("\r") && !text.contains("<|im_")) {
                    assertThat(t.decode(got)).isEqualTo(text);
                }
            }
        }
        System.out.printf("parity SentencePiece BPE tokenizer.model: %d lines compared, %d differences (%d lines with <s>/</s>/<unk> left out)%n", n, diffs, skippedControl);
        assertThat(t.encode("停杯且止。</s>", true)).containsExactly(1, 2202, 3780, 2754, 2524, 3177, 2204, 2);
        if (diffs > 0) fail(diffs + " of " + n + " lines differ from sentencepiece:\n" + String.join("\n", report));
    }
}
