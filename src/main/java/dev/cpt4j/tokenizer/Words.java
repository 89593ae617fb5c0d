package dev.cpt4j.tokenizer;

import java.util.Arrays;

/** Pre-tokenized words: ranges of (possibly shared) strings, so splitting allocates no String per word. */
final class Words {
    String[] text = new String[16];
    int[] start = new int[16];
    int[] end = new int[16];
    int n;

    void add(String t, int s, int e) {
        if (s >= e) return;                  // HF drops empty pieces
        if (n == start.length) {
            text = Arrays.copyOf(text, n * 2);
            start = Arrays.copyOf(start, n * 2);
            end = Arrays.copyOf(end, n * 2);
        }
        text[n] = t;
        start[n] = s;
        end[n] = e;
        n++;
    }

    void add(String t) { add(t, 0, t.length()); }

    String word(int i) {
        String t = text[i];
        return start[i] == 0 && end[i] == t.length() ? t : t.substring(start[i], end[i]);
    }

    void clear() {
        Arrays.fill(text, 0, n, null);
        n = 0;
    }
}
