package dev.cpt4j.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
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
    static final int EXTRA = 2_000;

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
        Path f = TestAssets.bge();
        Tokenizer t = TestAssets.load(f);
        List<String> lines = TestAssets.corpus(EXTRA);
        assertParity("bert-base-chinese WordPiece (bge-small-zh tokenizer.json)", t, f, lines, true);
        assertParity("bert-base-chinese WordPiece (bge-small-zh tokenizer.json)", t, f, lines.subList(0, 2000), false);
    }

    @Test
    void qwen3ByteLevelBpeMatchesHf() throws Exception {
        Path f = TestAssets.npmFile("qwen3", "tokenizer.json");
        Tokenizer t = TestAssets.load(f);
        List<String> lines = TestAssets.corpus(EXTRA);
        assertParity("Qwen3 byte-level BPE", t, f, lines, true);
    }

    @Test
    void llama2ByteFallbackBpeMatchesHf() throws Exception {
        Path f = TestAssets.npmFile("llama2", "tokenizer.json");
        Tokenizer t = TestAssets.load(f);
        List<String> lines = TestAssets.corpus(EXTRA);
        assertParity("LLaMA-2 BPE with byte fallback", t, f, lines, true);
        assertParity("LLaMA-2 BPE with byte fallback", t, f, lines.subList(0, 2000), false);
    }

    @Test
    void gpt2VocabJsonMergesMatchesHf(@TempDir Path dir) throws Exception {
        // OpenAI's encoder.json + vocab.bpe (= vocab.json + merges.txt), loaded as transformers' GPT2Tokenizer; HF's
        // reference reads the same model from the tokenizer.json cpt4j writes (GPT-2's standard components).
        Tokenizer t = TestAssets.load(TestAssets.npmFile("gpt2", "encoder.json"));
        Path json = TokenizerJsonWriter.write((HfTokenizer) t, dir);
        assertParity("GPT-2 byte-level BPE (encoder.json + vocab.bpe)", t, json, TestAssets.corpus(EXTRA), true);
    }

    @Test
    void addedTokenFlagsMatchHf(@TempDir Path dir) throws Exception {
        // lstrip / rstrip / single_word / normalized added tokens on the WordPiece and byte-level pipelines.
        com.fasterxml.jackson.databind.ObjectMapper m = new com.fasterxml.jackson.databind.ObjectMapper();
        List<String> lines = new ArrayList<>(TestAssets.corpus(0).subList(0, 1000));
        java.util.Random rnd = new java.util.Random(7);
        String[] toks = {"<L>", "<R>", "<LR>", "word", "Norm", "新词", "[MASK]"};
        for (int i = 0; i < 2000; i++) {
            String a = lines.get(rnd.nextInt(1000));
            int p = rnd.nextInt(a.length() + 1);
            if (p > 0 && p < a.length() && Character.isLowSurrogate(a.charAt(p))) p--;
            String[] pads = {"", " ", "  ", "\t", "\u3000", "x", "1"};
            lines.add(a.substring(0, p) + pads[rnd.nextInt(pads.length)] + toks[rnd.nextInt(toks.length)] + pads[rnd.nextInt(pads.length)] + a.substring(p));
        }
        lines.addAll(List.of("a<L>b", "a <L> b", "a  <R>  b", " <LR> ", "words word sword word1 word", "NORM norm Norm",
                "新词新词 新 词", "x [MASK] y", "<L><R><LR>", "<LR><LR>"));
        for (Path f : List.of(TestAssets.bgeTokenizerJson(Files.createDirectories(dir.resolve("bge"))), TestAssets.npmFile("llama2", "tokenizer.json"))) {
            com.fasterxml.jackson.databind.node.ObjectNode root = (com.fasterxml.jackson.databind.node.ObjectNode) m.readTree(f.toFile());
            com.fasterxml.jackson.databind.node.ArrayNode added = (com.fasterxml.jackson.databind.node.ArrayNode) root.get("added_tokens");
            int next = root.get("model").get("vocab").size() + 1000;
            Object[][] spec = {{"<L>", true, false, false, false}, {"<R>", false, true, false, false}, {"<LR>", true, true, false, true},
                    {"word", false, false, true, false}, {"Norm", false, false, false, true}, {"新词", false, false, false, true}};
            for (Object[] s : spec) {
                com.fasterxml.jackson.databind.node.ObjectNode o = added.addObject();
                o.put("id", next++).put("content", (String) s[0]).put("single_word", (boolean) s[3]).put("lstrip", (boolean) s[1])
                        .put("rstrip", (boolean) s[2]).put("normalized", (boolean) s[4]).put("special", false);
            }
            Path out = Files.createDirectories(dir.resolve("flags-" + f.getParent().getFileName())).resolve("tokenizer.json");
            m.writeValue(out.toFile(), root);
            assertParity("added-token flags on " + f.getParent().getFileName(), Tokenizer.load(out), out, lines, true);
        }
    }
}
