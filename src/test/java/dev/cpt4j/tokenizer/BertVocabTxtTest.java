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
import java.util.Map;
import java.util.TreeMap;

import static org.assertj.core.api.Assertions.assertThat;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * vocab.txt + tokenizer_config.json + special_tokens_map.json + added_tokens.json, as transformers' BertTokenizer
 * loads them (a Wenzhong-like layout: 21,128 bert-base-chinese tokens, 7 added tokens). Golden ids:
 * tools/golden/gen_bert_vocab_golden.py (transformers 5.18 BertTokenizer).
 */
class BertVocabTxtTest {
    static final ObjectMapper JSON = new ObjectMapper();

    /** Same files as gen_bert_vocab_golden.py writes. */
    static Path makeDir(Path dir) throws Exception {
        Path tj = TestAssets.bgeTokenizerJson(Files.createDirectories(dir.resolve("src")));
        JsonNode vocab = JSON.readTree(tj.toFile()).get("model").get("vocab");
        TreeMap<Integer, String> byId = new TreeMap<>();
        for (Map.Entry<String, JsonNode> e : vocab.properties()) byId.put(e.getValue().asInt(), e.getKey());
        Path d = Files.createDirectories(dir.resolve("wenzhong-like"));
        StringBuilder b = new StringBuilder();
        for (String t : byId.values()) b.append(t).append('\n');
        Files.writeString(d.resolve("vocab.txt"), b.toString());
        Files.writeString(d.resolve("tokenizer_config.json"), "{\"do_lower_case\": true, \"tokenize_chinese_chars\": true, \"model_max_length\": 1000000000, \"tokenizer_class\": \"BertTokenizer\"}");
        Files.writeString(d.resolve("special_tokens_map.json"), "{\"unk_token\": \"[UNK]\", \"sep_token\": \"[SEP]\", \"pad_token\": \"[PAD]\", \"cls_token\": \"[CLS]\", \"mask_token\": \"[MASK]\", \"bos_token\": \"<s>\", \"eos_token\": \"<|endoftext|>\", \"additional_special_tokens\": [\"</s>\", \"<pad>\"]}");
        Files.writeString(d.resolve("added_tokens.json"), "{\"<|endoftext|>\": 21128, \"<s>\": 21129, \"</s>\": 21130, \"<pad>\": 21131, \"〈新词〉\": 21132, \"Wenzhong\": 21133, \"ChatGPT\": 21134}");
        return d;
    }

    @Test
    void vocabTxtMatchesTransformersBertTokenizer(@TempDir Path tmp) throws Exception {
        Tokenizer t = Tokenizer.load(makeDir(tmp));
        assertThat(t.vocabSize()).isEqualTo(21135);
        assertThat(t.tokenToId("<|endoftext|>")).isEqualTo(21128);
        List<String> corpus = TestAssets.corpus(0);
        List<String> report = new ArrayList<>();
        int n = 0, diffs = 0;
        try (InputStream in = getClass().getResourceAsStream("/tokenizer/bert-vocab-txt-golden.jsonl")) {
            for (String line : new String(in.readAllBytes(), StandardCharsets.UTF_8).split("\n")) {
                if (line.isBlank()) continue;
                JsonNode g = JSON.readTree(line);
                String text = g.has("text") ? g.get("text").asText() : corpus.get(g.get("line").asInt());
                int[] want = new int[g.get("ids").size()];
                for (int i = 0; i < want.length; i++) want[i] = g.get("ids").get(i).asInt();
                int[] got = t.encode(text, true);
                n++;
                if (!Arrays.equals(want, got)) {
                    diffs++;
                    if (report.size() < 5) report.add(HfParityTest.escape(text) + "\n  transformers: " + Arrays.toString(want) + "\n  cpt4j:        " + Arrays.toString(got));
                }
            }
        }
        System.out.printf("parity vocab.txt BertTokenizer: %d lines compared, %d differences%n", n, diffs);
        if (diffs > 0) fail(diffs + " of " + n + " lines differ from transformers' BertTokenizer:\n" + String.join("\n", report));
        assertThat(n).isGreaterThan(1500);
    }

    @Test
    void decodeIsCleanChinese(@TempDir Path tmp) throws Exception {
        Tokenizer t = Tokenizer.load(makeDir(tmp));
        int[] ids = t.encode("我爱北京天安门，hello world！", true);
        int pad = t.tokenToId("[PAD]"), eos = t.tokenToId("<|endoftext|>");
        int[] padded = Arrays.copyOf(ids, ids.length + 6);
        for (int i = ids.length; i < padded.length; i++) padded[i] = i % 2 == 0 ? pad : eos;
        assertThat(t.decode(padded)).isEqualTo("我爱北京天安门，hello world！");
        // the seed's line format: 21134 … 21133 wraps (here: <s> … <|endoftext|>)
        assertThat(t.decode(new int[] {21129, 2769, 4263, 21128, 0, 0})).isEqualTo("我爱");
        assertThat(t.decode(t.encode("unaffable 的 playing", false))).isEqualTo("unaffable的playing");
    }
}
