package dev.cpt4j.tokenizer;

import java.util.Arrays;

/** A growable int array (token ids, ranges) without boxing. */
final class IntList {
    int[] a;
    int n;

    IntList() { this(16); }

    IntList(int cap) { a = new int[Math.max(1, cap)]; }

    void add(int v) {
        if (n == a.length) a = Arrays.copyOf(a, a.length * 2);
        a[n++] = v;
    }

    void addAll(int[] v) {
        for (int x : v) add(x);
    }

    int get(int i) { return a[i]; }

    int size() { return n; }

    void clear() { n = 0; }

    int[] toArray() { return Arrays.copyOf(a, n); }
}
