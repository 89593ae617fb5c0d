package dev.cpt4j.tokenizer;

import ai.djl.huggingface.tokenizers.Encoding;
import ai.djl.huggingface.tokenizers.HuggingFaceTokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * Encodes every Unicode scalar value (in "a{c}a {c}1{c} {c}") with cpt4j and with HF tokenizers (DJL) and prints the
 * code points that differ, grouped by JDK general category. Too slow for the test suite (minutes); it produced the
 * tables in {@code Unicode}. Run: {@code java -cp target/test-classes:target/classes:<deps> dev.cpt4j.tokenizer.UnicodeSweep [bge] [qwen3] [llama2]}
 * (last result: zero differences for bge-small-zh WordPiece, Qwen3 and LLaMA-2).
 */
public final class UnicodeSweep {
    static void sweep(String name, Path f) throws Exception {
        Tokenizer ours = Tokenizer.load(f);
        try (HuggingFaceTokenizer hf = HuggingFaceTokenizer.newInstance(f, Map.of("truncation", "false", "padding", "false"))) {
            Map<Integer, List<String>> byType = new TreeMap<>();
            List<String> batch = new ArrayList<>();
            List<Integer> cps = new ArrayList<>();
            for (int c = 0; c <= 0x10FFFF; c++) {
                if (c < 0xD800 || c > 0xDFFF) {
                    String s = new String(Character.toChars(c));
                    batch.add("a" + s + "a " + s + "1" + s + " " + s);
                    cps.add(c);
                }
                if (batch.size() == 50000 || (c == 0x10FFFF && !batch.isEmpty())) {
                    Encoding[] e = hf.batchEncode(batch, false, false);
                    for (int i = 0; i < e.length; i++) {
                        long[] got = Arrays.stream(ours.encode(batch.get(i), false)).asLongStream().toArray();
                        if (!Arrays.equals(e[i].getIds(), got)) {
                            byType.computeIfAbsent(Character.getType(cps.get(i)), k -> new ArrayList<>()).add(String.format("%X", cps.get(i)));
                        }
                    }
                    batch.clear();
                    cps.clear();
                }
            }
            System.out.println(name + ": " + byType.values().stream().mapToInt(List::size).sum() + " code points differ");
            for (var en : byType.entrySet()) System.out.println("  category " + en.getKey() + ": " + en.getValue());
        }
    }

    public static void main(String[] args) throws Exception {
        List<String> which = args.length == 0 ? List.of("bge", "qwen3", "llama2") : List.of(args);
        Path tmp = Files.createTempDirectory("sweep");
        if (which.contains("bge")) sweep("bge-small-zh WordPiece", TestAssets.bgeTokenizerJson(tmp));
        if (which.contains("qwen3")) sweep("Qwen3", TestAssets.npmFile("qwen3", "tokenizer.json"));
        if (which.contains("llama2")) sweep("LLaMA-2", TestAssets.npmFile("llama2", "tokenizer.json"));
    }
}
