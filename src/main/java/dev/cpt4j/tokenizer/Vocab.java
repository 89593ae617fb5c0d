package dev.cpt4j.tokenizer;

import java.util.Arrays;
import java.util.Map;

/**
 * An immutable string → id map that looks up a char range of a buffer without allocating a String (open addressing,
 * keys stored in one char array). Thread-safe once built. Not a general-purpose map: no removal, no resizing.
 */
final class Vocab {
    private final char[] chars;      // all keys, back to back
    private final int[] keyStart;    // slot → start in chars, -1 empty
    private final int[] keyLen;
    private final int[] values;
    private final int mask;
    private final int size;
    private final int maxKeyLen;

    Vocab(Map<String, Integer> map) {
        int cap = Integer.highestOneBit(Math.max(4, map.size() * 2 - 1)) << 1;
        mask = cap - 1;
        keyStart = new int[cap];
        Arrays.fill(keyStart, -1);
        keyLen = new int[cap];
        values = new int[cap];
        long total = 0;
        for (String k : map.keySet()) total += k.length();
        chars = new char[Math.toIntExact(total)];
        int pos = 0, maxLen = 0;
        for (Map.Entry<String, Integer> e : map.entrySet()) {
            String k = e.getKey();
            k.getChars(0, k.length(), chars, pos);
            int slot = hash(chars, pos, pos + k.length()) & mask;
            while (keyStart[slot] >= 0) slot = (slot + 1) & mask;
            keyStart[slot] = pos;
            keyLen[slot] = k.length();
            values[slot] = e.getValue();
            pos += k.length();
            maxLen = Math.max(maxLen, k.length());
        }
        size = map.size();
        maxKeyLen = maxLen;
    }

    private static int hash(char[] a, int start, int end) {
        int h = 0x9E3779B9;
        for (int i = start; i < end; i++) h = (h ^ a[i]) * 0x01000193;
        return h ^ (h >>> 15);
    }

    private static int hash(CharSequence s, int start, int end) {
        int h = 0x9E3779B9;
        for (int i = start; i < end; i++) h = (h ^ s.charAt(i)) * 0x01000193;
        return h ^ (h >>> 15);
    }

    /** Id of {@code buf[start, end)}, or -1. */
    int get(char[] buf, int start, int end) {
        int len = end - start;
        int slot = hash(buf, start, end) & mask;
        while (true) {
            int ks = keyStart[slot];
            if (ks < 0) return -1;
            if (keyLen[slot] == len && Arrays.equals(chars, ks, ks + len, buf, start, end)) return values[slot];
            slot = (slot + 1) & mask;
        }
    }

    int get(CharSequence s) {
        return get(s, 0, s.length());
    }

    int get(CharSequence s, int start, int end) {
        int len = end - start;
        int slot = hash(s, start, end) & mask;
        outer:
        while (true) {
            int ks = keyStart[slot];
            if (ks < 0) return -1;
            if (keyLen[slot] == len) {
                for (int i = 0; i < len; i++) if (chars[ks + i] != s.charAt(start + i)) { slot = (slot + 1) & mask; continue outer; }
                return values[slot];
            }
            slot = (slot + 1) & mask;
        }
    }

    int size() { return size; }

    int maxKeyLength() { return maxKeyLen; }
}
