package dev.cpt4j.tokenizer;

/**
 * Hand-written matchers for the three standard byte-level BPE split regexes, equivalent to running them with
 * {@link java.util.regex} (leftmost alternative first, greedy with backtracking) but without a regex engine:
 * <ul>
 * <li>GPT-2: {@code 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+}</li>
 * <li>Qwen2/Qwen3 ({@code \p{N}}) and LLaMA-3 ({@code \p{N}{1,3}}):
 *     {@code (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+}</li>
 * </ul>
 * Every position matches some alternative, so the matches tile the text.
 */
final class SplitScanner {
    static final String GPT2 = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
    static final String QWEN = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    static final String LLAMA3 = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    private final boolean gpt2;        // else the Qwen/LLaMA-3 family
    private final int maxDigits;       // GPT-2: unbounded; Qwen: 1; LLaMA-3: 3

    private SplitScanner(boolean gpt2, int maxDigits) {
        this.gpt2 = gpt2;
        this.maxDigits = maxDigits;
    }

    /** A scanner for a known pattern, or null. */
    static SplitScanner forPattern(String regex) {
        return switch (regex) {
            case GPT2 -> new SplitScanner(true, Integer.MAX_VALUE);
            case QWEN -> new SplitScanner(false, 1);
            case LLAMA3 -> new SplitScanner(false, 3);
            default -> null;
        };
    }

    static boolean isL(int c) {
        if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
        return Character.isLetter(c);
    }

    static boolean isN(int c) {
        if (c < 0x80) return c >= '0' && c <= '9';
        return switch (Character.getType(c)) {
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> true;
            default -> false;
        };
    }

    static boolean isS(int c) { return Unicode.isWhitespace(c); }

    private static boolean ci(int c, char x) {
        return c == x || Character.toUpperCase(c) == Character.toUpperCase(x) || Character.toLowerCase(c) == Character.toLowerCase(x);
    }

    private boolean eq(int c, char x) { return gpt2 ? c == x : ci(c, x); }

    /** End of a contraction match at i (s[i] == '\''), or -1. */
    private int contraction(String s, int i, int end) {
        if (i + 1 >= end) return -1;
        int c1 = s.codePointAt(i + 1);
        int e1 = i + 1 + Character.charCount(c1);
        if (eq(c1, 's') || eq(c1, 't') || eq(c1, 'm') || eq(c1, 'd')) return e1;
        if (e1 < end) {
            int c2 = s.codePointAt(e1);
            int e2 = e1 + Character.charCount(c2);
            if ((eq(c1, 'r') || eq(c1, 'v')) && eq(c2, 'e')) return e2;
            if (eq(c1, 'l') && eq(c2, 'l')) return e2;
        }
        return -1;
    }

    private static int letters(String s, int i, int end) {
        while (i < end) {
            int c = s.codePointAt(i);
            if (!isL(c)) break;
            i += Character.charCount(c);
        }
        return i;
    }

    /** Appends the matches tiling s[start, end) to out. */
    void split(String s, int start, int end, Words out) {
        int i = start;
        while (i < end) {
            int e = match(s, i, end);
            out.add(s, i, e);
            i = e;
        }
    }

    private int match(String s, int i, int end) {
        int c = s.codePointAt(i);
        int n = Character.charCount(c);
        if (c == '\'') {
            int e = contraction(s, i, end);
            if (e > 0) return e;
        }
        if (gpt2) {
            int j = i, cj = c;
            if (c == ' ' && i + 1 < end) { j = i + 1; cj = s.codePointAt(j); }
            if (isL(cj)) return letters(s, j, end);
            if (isN(cj)) {
                int k = j;
                while (k < end && isN(s.codePointAt(k))) k += Character.charCount(s.codePointAt(k));
                return k;
            }
            if (!isS(cj) && (j > i || !isS(c))) {
                int k = j;
                while (k < end) {
                    int ck = s.codePointAt(k);
                    if (isS(ck) || isL(ck) || isN(ck)) break;
                    k += Character.charCount(ck);
                }
                return k;
            }
            return whitespace(s, i, end);
        }
        // [^\r\n\p{L}\p{N}]?\p{L}+
        if (isL(c)) return letters(s, i + n, end);
        if (c != '\r' && c != '\n' && !isN(c) && i + n < end && isL(s.codePointAt(i + n))) return letters(s, i + n, end);
        // \p{N}{1,maxDigits}
        if (isN(c)) {
            int k = i + n, d = 1;
            while (d < maxDigits && k < end && isN(s.codePointAt(k))) { k += Character.charCount(s.codePointAt(k)); d++; }
            return k;
        }
        // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
        int j = (c == ' ' && i + 1 < end) ? i + 1 : i;
        int cj = s.codePointAt(j);
        if (!isS(cj) && !isL(cj) && !isN(cj)) {
            int k = j;
            while (k < end) {
                int ck = s.codePointAt(k);
                if (isS(ck) || isL(ck) || isN(ck)) break;
                k += Character.charCount(ck);
            }
            while (k < end && (s.charAt(k) == '\r' || s.charAt(k) == '\n')) k++;
            return k;
        }
        // \s*[\r\n]+ : up to just after the last \r or \n of the whitespace run
        int k = i, lastNl = -1;
        while (k < end) {
            int ck = s.codePointAt(k);
            if (!isS(ck)) break;
            k += Character.charCount(ck);
            if (ck == '\r' || ck == '\n') lastNl = k;
        }
        if (lastNl > 0) return lastNl;
        return whitespace(s, i, end);
    }

    /** {@code \s+(?!\S)|\s+} at a whitespace character. */
    private static int whitespace(String s, int i, int end) {
        int k = i, last = i;
        while (k < end) {
            int ck = s.codePointAt(k);
            if (!isS(ck)) break;
            last = k;
            k += Character.charCount(ck);
        }
        if (k == end || last == i) return k;   // at the end, or a single whitespace before \S (second alternative)
        return last;                            // leave the last whitespace to join the next word
    }
}
