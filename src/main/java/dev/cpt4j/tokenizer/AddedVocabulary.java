package dev.cpt4j.tokenizer;

import java.util.List;

/**
 * Splits text on added tokens, as tokenizers' {@code AddedVocabulary::extract_and_normalize}: tokens with
 * {@code normalized=false} are found in the raw text first; the rest is normalized and searched for the normalized
 * forms of {@code normalized=true} tokens. Matching is leftmost-longest, non-overlapping; {@code single_word},
 * {@code lstrip} and {@code rstrip} behave as in {@code find_matches}.
 */
final class AddedVocabulary {
    final List<AddedToken> tokens;
    private final Trie raw;          // normalized=false tokens, matched on raw text
    private final Trie normalized;   // normalized=true tokens (their normalized content), matched after normalization

    AddedVocabulary(List<AddedToken> tokens, Normalizer normalizer) {
        this.tokens = List.copyOf(tokens);
        raw = new Trie();
        normalized = new Trie();
        for (AddedToken t : tokens) {
            if (t.content().isEmpty()) continue;
            if (t.normalized() && normalizer != null) normalized.add(normalizer.normalize(t.content()), t);
            else if (t.normalized()) normalized.add(t.content(), t);
            else raw.add(t.content(), t);
        }
    }

    boolean isEmpty() { return tokens.isEmpty(); }

    /** A piece of text after splitting: either an added token's id, or a text range to tokenize further. */
    interface Sink {
        void token(int id);

        void text(String s, int start, int end);
    }

    /** Splits {@code s} on raw (normalized=false) tokens, then normalizes each gap and splits on normalized tokens. */
    void split(String s, Normalizer normalizer, Sink sink) {
        raw.findMatches(s, 0, s.length(), new Sink() {
            @Override
            public void token(int id) { sink.token(id); }

            @Override
            public void text(String t, int start, int end) {
                String piece = (start == 0 && end == t.length()) ? t : t.substring(start, end);
                String n = normalizer == null ? piece : normalizer.normalize(piece);
                if (n.isEmpty()) return;
                normalized.findMatches(n, 0, n.length(), sink);
            }
        });
    }

    /** A char trie over token contents: sorted child keys, binary search, no boxing; a bitmap of first chars. */
    static final class Trie {
        private char[] keys = new char[0];
        private Trie[] children = new Trie[0];
        private AddedToken token;
        private boolean empty = true;
        private final java.util.BitSet first = new java.util.BitSet(1 << 16);

        private Trie child(char c) {
            int i = java.util.Arrays.binarySearch(keys, c);
            return i >= 0 ? children[i] : null;
        }

        private Trie childOrAdd(char c) {
            int i = java.util.Arrays.binarySearch(keys, c);
            if (i >= 0) return children[i];
            int at = -i - 1;
            char[] nk = new char[keys.length + 1];
            Trie[] nc = new Trie[keys.length + 1];
            System.arraycopy(keys, 0, nk, 0, at);
            System.arraycopy(children, 0, nc, 0, at);
            nk[at] = c;
            nc[at] = new Trie();
            System.arraycopy(keys, at, nk, at + 1, keys.length - at);
            System.arraycopy(children, at, nc, at + 1, keys.length - at);
            keys = nk;
            children = nc;
            return nc[at];
        }

        void add(String s, AddedToken t) {
            empty = false;
            first.set(s.charAt(0));
            Trie node = this;
            for (int i = 0; i < s.length(); i++) node = node.childOrAdd(s.charAt(i));
            if (node.token == null) node.token = t;   // first definition wins for duplicate contents
        }

        void findMatches(String s, int from, int to, Sink sink) {
            if (empty) {
                sink.text(s, from, to);
                return;
            }
            int startOffset = from;   // end of the previous emitted piece
            int i = from;
            while (i < to) {
                if (!first.get(s.charAt(i))) {
                    i++;
                    continue;
                }
                Trie node = this;
                AddedToken best = null;
                int bestEnd = -1;
                for (int j = i; j < to; j++) {
                    node = node.child(s.charAt(j));
                    if (node == null) break;
                    if (node.token != null) {
                        best = node.token;
                        bestEnd = j + 1;
                    }
                }
                if (best == null) {
                    i++;
                    continue;
                }
                int start = i, stop = bestEnd;
                if (best.singleWord()) {
                    boolean startSpace = start == from || !Unicode.isAlphanumeric(s.codePointBefore(start));
                    boolean stopSpace = stop == to || !Unicode.isAlphanumeric(s.codePointAt(stop));
                    if (!startSpace || !stopSpace) {
                        i = bestEnd;   // HF's non-overlapping match iterator resumes after the rejected match
                        continue;
                    }
                }
                if (best.lstrip()) {
                    int ns = start;
                    while (ns > startOffset && Unicode.isWhitespace(s.codePointBefore(ns))) ns -= Character.charCount(s.codePointBefore(ns));
                    start = ns;
                }
                if (best.rstrip()) {
                    while (stop < to && Unicode.isWhitespace(s.codePointAt(stop))) stop += Character.charCount(s.codePointAt(stop));
                }
                start = Math.max(start, startOffset);
                if (startOffset < start) sink.text(s, startOffset, start);
                sink.token(best.id());
                startOffset = Math.max(startOffset, stop);
                i = bestEnd;
            }
            if (startOffset < to) sink.text(s, startOffset, to);
        }
    }
}
