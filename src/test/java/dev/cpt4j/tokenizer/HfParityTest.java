package dev.cpt4j.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * Id-for-id parity with Hugging Face tokenizers (Rust, through DJL's JNI binding) on the parity corpus: real Chinese
 * poetry and prose mixed with Latin text, digits, emoji, full-width forms, CJK extensions, odd whitespace and
 * control characters. Any difference fails the build and prints the first differing lines.
 */
class HfParityTest {
    static final int EXTRA = 10_000;

    static void assertParity(String name, Tokenizer ours, Path hfFile, List<String> lines, boolean special) throws Exception {
        try (HuggingFaceTokenizer hf = HuggingFaceTokenizer.newInstance(hfFile,
                Map.of("truncation", "false", "padding", "false", "addSpecialTokens", Boolean.toString(special)))) {
            int diffs = 0;
            List<String> report = new ArrayList<>();
            int batch = 2048;
            for (int s = 0; s < lines.size(); s += batch) {
                List<String> part = lines.subList(s, Math.min(lines.size(), s + batch));
                Encoding[] enc = hf.batchEncode(part, special, false);
                for (int i = 0; i < part.size(); i++) {
                    long[] want = enc[i].getIds();
                    int[] got = ours.encode(part.get(i), special);
                    if (!Arrays.equals(Arrays.stream(got).asLongStream().toArray(), want)) {
                        diffs++;
                        if (report.size() < 6) {
                            report.add("line " + (s + i) + ": " + escape(part.get(i)) + "\n    hf:    " + Arrays.toString(want)
                                    + "\n    cpt4j: " + Arrays.toString(got));
                        }
                    }
                }
            }
            System.out.printf("parity %s (special=%s): %d lines compared, %d differences%n", name, special, lines.size(), diffs);
            if (diffs > 0) fail(name + ": " + diffs + " of " + lines.size() + " lines differ from HF tokenizers:\n" + String.join("\n", report));
        }
    }

    static String escape(String s) {
        StringBuilder b = new StringBuilder();
        s.codePoints().forEach(c -> {
            if (c < 0x20 || (c >= 0x7F && c < 0xA0) || c == 0x200B || c == 0x3000 || c == 0xA0 || Character.getType(c) == Character.FORMAT) b.append(String.format("\\u%04x", c));
            else b.appendCodePoint(c);
        });
        return b.toString();
    }

    @Test
    void bertChineseWordPieceMatchesHf(@TempDir Path dir) throws Exception {
        Path f = TestAssets.bgeTokenizerJson(dir);
        Tokenizer t = Tokenizer.load(f);
        List<String> lines = TestAssets.corpus(EXTRA);
        assertParity("bert-base-chinese WordPiece (bge-small-zh tokenizer.json)", t, f, lines, true);
        assertParity("bert-base-chinese WordPiece (bge-small-zh tokenizer.json)", t, f, lines.subList(0, 5000), false);
    }

    @Test
    void qwen3ByteLevelBpeMatchesHf() throws Exception {
        Path f = TestAssets.npmFile("qwen3", "tokenizer.json");
        Tokenizer t = Tokenizer.load(f);
        List<String> lines = TestAssets.corpus(EXTRA);
        assertParity("Qwen3 byte-level BPE", t, f, lines, true);
    }

    @Test
    void llama2ByteFallbackBpeMatchesHf() throws Exception {
        Path f = TestAssets.npmFile("llama2", "tokenizer.json");
        Tokenizer t = Tokenizer.load(f);
        List<String> lines = TestAssets.corpus(EXTRA);
        assertParity("LLaMA-2 BPE with byte fallback", t, f, lines, true);
        assertParity("LLaMA-2 BPE with byte fallback", t, f, lines.subList(0, 5000), false);
    }
}
