package dev.cpt4j.tokenizer;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Splits a normalized piece of text into words, as Hugging Face tokenizers' pre-tokenizers
 * (tokenizers/src/pre_tokenizers). Empty words are dropped, as HF's {@code PreTokenizedString::split} does.
 */
interface PreTokenizer {
    /** Appends the words of {@code s[start, end)} to {@code out}; {@code atTextStart}: the piece begins the input. */
    void split(String s, int start, int end, boolean atTextStart, Words out);

    /** How a split keeps the matched delimiters (tokenizers' {@code SplitDelimiterBehavior}). */
    enum Behavior { REMOVED, ISOLATED, MERGED_WITH_PREVIOUS, MERGED_WITH_NEXT, CONTIGUOUS }

    /** Emits segments given alternating match flags, following tokenizers' {@code NormalizedString::split}. */
    final class Segments {
        private final IntList bounds = new IntList();   // start, end, isMatch triples

        void add(int s, int e, boolean match) {
            bounds.add(s);
            bounds.add(e);
            bounds.add(match ? 1 : 0);
        }

        void emit(String text, Behavior behavior, boolean invert, Words out) {
            int m = bounds.size() / 3;
            int[] b = bounds.a;
            if (invert) for (int i = 0; i < m; i++) b[3 * i + 2] ^= 1;
            switch (behavior) {
                case REMOVED -> {
                    for (int i = 0; i < m; i++) if (b[3 * i + 2] == 0) out.add(text, b[3 * i], b[3 * i + 1]);
                }
                case ISOLATED -> {
                    for (int i = 0; i < m; i++) out.add(text, b[3 * i], b[3 * i + 1]);
                }
                case MERGED_WITH_PREVIOUS -> {
                    int cs = -1, ce = -1;
                    boolean prevMatch = false;
                    for (int i = 0; i < m; i++) {
                        boolean match = b[3 * i + 2] == 1;
                        if (match && !prevMatch && cs >= 0) {
                            ce = b[3 * i + 1];
                        } else {
                            if (cs >= 0) out.add(text, cs, ce);
                            cs = b[3 * i];
                            ce = b[3 * i + 1];
                        }
                        prevMatch = match;
                    }
                    if (cs >= 0) out.add(text, cs, ce);
                }
                case MERGED_WITH_NEXT -> {
                    // Walk backwards: a match not preceded (in reverse) by a match merges into the piece after it.
                    int[] rs = new int[m], re = new int[m];
                    int k = 0;
                    boolean prevMatch = false;
                    for (int i = m - 1; i >= 0; i--) {
                        boolean match = b[3 * i + 2] == 1;
                        if (match && !prevMatch && k > 0) {
                            rs[k - 1] = b[3 * i];
                        } else {
                            rs[k] = b[3 * i];
                            re[k] = b[3 * i + 1];
                            k++;
                        }
                        prevMatch = match;
                    }
                    for (int i = k - 1; i >= 0; i--) out.add(text, rs[i], re[i]);
                }
                case CONTIGUOUS -> {
                    int cs = -1, ce = -1;
                    boolean prevMatch = false;
                    for (int i = 0; i < m; i++) {
                        boolean match = b[3 * i + 2] == 1;
                        if (match == prevMatch && cs >= 0) {
                            ce = b[3 * i + 1];
                        } else {
                            if (cs >= 0) out.add(text, cs, ce);
                            cs = b[3 * i];
                            ce = b[3 * i + 1];
                        }
                        prevMatch = match;
                    }
                    if (cs >= 0) out.add(text, cs, ce);
                }
            }
            bounds.clear();
        }
    }

    /** Characters matching a predicate are delimiters, each its own match (as HF's char-predicate patterns). */
    interface CharClass { boolean test(int c); }

    static void splitOnChars(String s, int start, int end, CharClass cls, Behavior behavior, boolean invert, Words out) {
        Segments seg = new Segments();
        int prev = start;
        for (int i = start; i < end; ) {
            int c = s.codePointAt(i);
            int n = Character.charCount(c);
            if (cls.test(c)) {
                if (prev < i) seg.add(prev, i, false);
                seg.add(i, i + n, true);
                prev = i + n;
            }
            i += n;
        }
        if (prev < end) seg.add(prev, end, false);
        seg.emit(s, behavior, invert, out);
    }

    static void splitOnRegex(String s, int start, int end, Pattern p, Behavior behavior, boolean invert, Words out) {
        Segments seg = new Segments();
        Matcher m = p.matcher(s).region(start, end);
        int prev = start;
        while (m.find()) {
            if (prev < m.start()) seg.add(prev, m.start(), false);
            seg.add(m.start(), m.end(), true);
            prev = m.end();
        }
        if (prev < end) seg.add(prev, end, false);
        seg.emit(s, behavior, invert, out);
    }

    /** BERT: split on whitespace (removed), then isolate each punctuation character. */
    record Bert() implements PreTokenizer {
        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            int ws = -1;  // start of the current word
            for (int i = start; i < end; ) {
                int c = s.codePointAt(i);
                int n = Character.charCount(c);
                if (Unicode.isWhitespace(c)) {
                    if (ws >= 0) out.add(s, ws, i);
                    ws = -1;
                } else if (Unicode.isBertPunctuation(c)) {
                    if (ws >= 0) out.add(s, ws, i);
                    out.add(s, i, i + n);
                    ws = -1;
                } else if (ws < 0) {
                    ws = i;
                }
                i += n;
            }
            if (ws >= 0) out.add(s, ws, end);
        }
    }

    record WhitespaceSplit() implements PreTokenizer {
        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            splitOnChars(s, start, end, Unicode::isWhitespace, Behavior.REMOVED, false, out);
        }
    }

    /** {@code \w+|[^\w\s]+}, delimiters kept (tokenizers' Whitespace). */
    record Whitespace() implements PreTokenizer {
        private static final Pattern P = Pattern.compile("\\w+|[^\\w\\s]+", Pattern.UNICODE_CHARACTER_CLASS);

        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            splitOnRegex(s, start, end, P, Behavior.REMOVED, true, out);
        }
    }

    record Punctuation(Behavior behavior) implements PreTokenizer {
        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            splitOnChars(s, start, end, Unicode::isBertPunctuation, behavior, false, out);
        }
    }

    record Digits(boolean individual) implements PreTokenizer {
        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            splitOnChars(s, start, end, c -> Character.getType(c) == Character.DECIMAL_DIGIT_NUMBER
                            || Character.getType(c) == Character.LETTER_NUMBER || Character.getType(c) == Character.OTHER_NUMBER,
                    individual ? Behavior.ISOLATED : Behavior.CONTIGUOUS, false, out);
        }
    }

    /** tokenizers' Split: a literal or regex pattern with a delimiter behavior, optionally inverted. */
    record Split(String source, boolean literal, Pattern pattern, Behavior behavior, boolean invert, SplitScanner scanner) implements PreTokenizer {
        Split(String source, boolean literal, Pattern pattern, Behavior behavior, boolean invert) {
            this(source, literal, pattern, behavior, invert,
                    !literal && behavior == Behavior.ISOLATED && !invert ? SplitScanner.forPattern(source) : null);
        }

        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            if (scanner != null) scanner.split(s, start, end, out);
            else splitOnRegex(s, start, end, pattern, behavior, invert, out);
        }
    }

    /**
     * GPT-2 byte-level: optional prefix space, optional GPT-2 regex split, then every UTF-8 byte becomes one printable
     * character (GPT-2's {@code bytes_to_unicode}).
     */
    record ByteLevel(boolean addPrefixSpace, boolean useRegex) implements PreTokenizer {
        static final SplitScanner GPT2_SCANNER = SplitScanner.forPattern(SplitScanner.GPT2);

        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            if (addPrefixSpace && !(start < end && s.charAt(start) == ' ')) {
                s = " " + s.substring(start, end);
                start = 0;
                end = s.length();
            }
            if (useRegex) {
                Words tmp = new Words();
                GPT2_SCANNER.split(s, start, end, tmp);
                for (int i = 0; i < tmp.n; i++) out.add(ByteLevelCodec.encode(tmp.text[i], tmp.start[i], tmp.end[i]));
            } else {
                out.add(ByteLevelCodec.encode(s, start, end));
            }
        }
    }

    /** SentencePiece-style: spaces become the replacement (▁), optional prefix, split before each replacement. */
    record Metaspace(char replacement, String prependScheme, boolean splitWords) implements PreTokenizer {
        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            String t = s.substring(start, end).replace(' ', replacement);
            boolean prepend = switch (prependScheme) {
                case "always" -> true;
                case "first" -> atTextStart;
                default -> false;
            };
            if (prepend && !(t.length() > 0 && t.charAt(0) == replacement)) t = replacement + t;
            if (!splitWords) {
                out.add(t);
                return;
            }
            final char r = replacement;
            splitOnChars(t, 0, t.length(), c -> c == r, Behavior.MERGED_WITH_NEXT, false, out);
        }
    }

    record Sequence(List<PreTokenizer> steps) implements PreTokenizer {
        @Override
        public void split(String s, int start, int end, boolean atTextStart, Words out) {
            Words cur = new Words();
            cur.add(s, start, end);
            for (int k = 0; k < steps.size(); k++) {
                Words next = k == steps.size() - 1 ? out : new Words();
                for (int i = 0; i < cur.n; i++) {
                    steps.get(k).split(cur.text[i], cur.start[i], cur.end[i], atTextStart && i == 0, next);
                }
                cur = next;
            }
            if (steps.isEmpty()) out.add(s, start, end);
        }
    }
}
