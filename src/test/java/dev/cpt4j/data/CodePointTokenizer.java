package dev.cpt4j.data;

import dev.cpt4j.tokenizer.Tokenizer;

import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Predicate;

/**
 * Test-only tokenizer: one id per code point ({@code cp % vocab}), wrapped as {@code [BOS] … [EOS]} with special
 * tokens — hand-checkable ids for ASCII text ("ab" → 1, 97, 98, 2).
 */
final class CodePointTokenizer implements Tokenizer {
    static final int BOS = 1, EOS = 2;

    private final int vocab;
    private final String salt;
    private final Predicate<String> crashOn;
    final AtomicLong calls = new AtomicLong();
    /** Every text encoded (only when made by {@link #recording}). */
    final java.util.Set<String> seen = java.util.concurrent.ConcurrentHashMap.newKeySet();
    private boolean record;

    /** A tokenizer that remembers every text it encodes, in {@link #seen}. */
    static CodePointTokenizer recording(int vocab) {
        CodePointTokenizer t = new CodePointTokenizer(vocab);
        t.record = true;
        return t;
    }

    CodePointTokenizer(int vocab) {
        this(vocab, "", t -> false);
    }

    CodePointTokenizer(int vocab, String salt, Predicate<String> crashOn) {
        this.vocab = vocab;
        this.salt = salt;
        this.crashOn = crashOn;
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        if (crashOn.test(text)) throw new IllegalStateException("simulated crash on '" + text + "'");
        calls.incrementAndGet();
        if (record) seen.add(text);
        int[] cps = text.codePoints().map(c -> c % vocab).toArray();
        if (!addSpecialTokens) return cps;
        int[] out = new int[cps.length + 2];
        out[0] = BOS;
        System.arraycopy(cps, 0, out, 1, cps.length);
        out[out.length - 1] = EOS;
        return out;
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) if (id > EOS) sb.appendCodePoint(id);
        return sb.toString();
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    @Override
    public int tokenToId(String token) {
        return token.codePointCount(0, token.length()) == 1 ? token.codePointAt(0) % vocab : -1;
    }

    @Override
    public String fingerprint() {
        return "codepoint-" + vocab + salt;
    }
}
