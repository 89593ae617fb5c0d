package dev.cpt4j.tokenizer;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * BPE as tokenizers' {@code models/bpe}: a word starts as one symbol per character (unknown characters become byte
 * tokens {@code <0xXX>} with byte fallback, else the unknown token, fused if {@code fuseUnk}); then the lowest-rank
 * adjacent pair is merged, leftmost first, until no pair has a merge. Results are cached per word.
 */
final class BpeModel implements Model {
    final Map<String, Integer> vocab;
    final List<String[]> merges;          // rank order
    final String unkToken;                // may be null
    final String prefix;                  // continuing_subword_prefix, may be null
    final String suffix;                  // end_of_word_suffix, may be null
    final boolean fuseUnk;
    final boolean byteFallback;
    final boolean ignoreMerges;
    private final Vocab ids;
    private final String[] idToToken;
    private final PairMap pairs;          // (left id, right id) → (rank, merged id)
    private final int unkId;
    private final int[] byteIds = new int[256];
    private final ConcurrentHashMap<String, int[]> cache = new ConcurrentHashMap<>();
    private static final int CACHE_MAX_ENTRIES = 1 << 18;
    private static final int CACHE_MAX_WORD = 256;

    BpeModel(Map<String, Integer> vocab, List<String[]> merges, String unkToken, String prefix, String suffix,
             boolean fuseUnk, boolean byteFallback, boolean ignoreMerges) {
        this.vocab = vocab;
        this.merges = merges;
        this.unkToken = unkToken;
        this.prefix = prefix == null || prefix.isEmpty() ? null : prefix;
        this.suffix = suffix == null || suffix.isEmpty() ? null : suffix;
        this.fuseUnk = fuseUnk;
        this.byteFallback = byteFallback;
        this.ignoreMerges = ignoreMerges;
        this.ids = new Vocab(vocab);
        int maxId = -1;
        for (int v : vocab.values()) maxId = Math.max(maxId, v);
        idToToken = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) idToToken[e.getValue()] = e.getKey();
        pairs = new PairMap(merges.size());
        int prefixLen = this.prefix == null ? 0 : this.prefix.length();
        for (int r = 0; r < merges.size(); r++) {
            String[] m = merges.get(r);
            Integer a = vocab.get(m[0]), b = vocab.get(m[1]);
            if (a == null || b == null) throw new IllegalArgumentException("merge '" + m[0] + " " + m[1] + "' uses a token missing from the vocabulary");
            String merged = m[0] + m[1].substring(Math.min(prefixLen, m[1].length()));
            Integer n = vocab.get(merged);
            if (n == null) throw new IllegalArgumentException("merge '" + m[0] + " " + m[1] + "' makes '" + merged + "', missing from the vocabulary");
            pairs.put(a, b, r, n);
        }
        Integer u = unkToken == null ? null : vocab.get(unkToken);
        unkId = u == null ? -1 : u;
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.format("<0x%02X>", b));
            byteIds[b] = id == null ? -1 : id;
        }
    }

    @Override
    public Map<String, Integer> vocab() { return vocab; }

    @Override
    public String idToToken(int id) { return id >= 0 && id < idToToken.length ? idToToken[id] : null; }

    @Override
    public void encode(String s, int start, int end, IntList out) {
        if (ignoreMerges) {
            int id = ids.get(s, start, end);
            if (id >= 0) {
                out.add(id);
                return;
            }
        }
        int len = end - start;
        if (len == 1 || (len == 2 && Character.isHighSurrogate(s.charAt(start)))) {   // one character: no merges
            int id = prefix == null && suffix == null ? ids.get(s, start, end) : -1;
            if (id >= 0) {
                out.add(id);
                return;
            }
        }
        String word = s.substring(start, end);
        int[] r = len <= CACHE_MAX_WORD ? cache.get(word) : null;
        if (r == null) {
            r = bpe(word);
            if (len <= CACHE_MAX_WORD && cache.size() < CACHE_MAX_ENTRIES) cache.put(word, r);
        }
        out.addAll(r);
    }

    void clearCache() { cache.clear(); }

    /** Initial symbols (tokenizers' {@code BPE::merge_word}), then merges. */
    int[] bpe(String w) {
        IntList sym = new IntList(w.length() + 4);
        int unk = -1;          // pending unknown symbol (id), fused while fuseUnk
        for (int i = 0; i < w.length(); ) {
            int c = w.codePointAt(i);
            int e = i + Character.charCount(c);
            boolean isFirst = i == 0, isLast = e == w.length();
            int id;
            String piece = null;
            if ((prefix != null && !isFirst) || (suffix != null && isLast)) {
                piece = w.substring(i, e);
                if (prefix != null && !isFirst) piece = prefix + piece;
                if (suffix != null && isLast) piece = piece + suffix;
                id = ids.get(piece);
            } else {
                id = ids.get(w, i, e);
            }
            if (id >= 0) {
                if (unk >= 0) { sym.add(unk); unk = -1; }
                sym.add(id);
            } else {
                boolean done = false;
                if (byteFallback) {
                    byte[] bytes = (piece != null ? piece : w.substring(i, e)).getBytes(java.nio.charset.StandardCharsets.UTF_8);
                    boolean all = true;
                    for (byte b : bytes) if (byteIds[b & 0xFF] < 0) { all = false; break; }
                    if (all) {
                        for (byte b : bytes) sym.add(byteIds[b & 0xFF]);
                        done = true;
                    }
                }
                if (!done && unkId >= 0) {
                    if (unk >= 0 && !fuseUnk) sym.add(unk);
                    unk = unkId;
                }
            }
            i = e;
        }
        if (unk >= 0) sym.add(unk);
        return merge(sym.a, sym.n);
    }

    /** Applies merges lowest rank first, leftmost first among equal ranks, via a heap of (rank, position). */
    private int[] merge(int[] id, int n) {
        if (n < 2) return Arrays.copyOf(id, n);
        int[] prev = new int[n], next = new int[n];
        for (int i = 0; i < n; i++) { prev[i] = i - 1; next[i] = i + 1 < n ? i + 1 : -1; }
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            long m = pairs.get(id[i], id[i + 1]);
            if (m >= 0) heap.push((m & 0xFFFFFFFF00000000L) | i);
        }
        boolean[] dead = new boolean[n];
        while (heap.size > 0) {
            long top = heap.pop();
            int pos = (int) top;
            int rank = (int) (top >>> 32);
            if (dead[pos] || next[pos] < 0) continue;
            int right = next[pos];
            long m = pairs.get(id[pos], id[right]);
            if (m < 0 || (int) (m >>> 32) != rank) continue;   // stale entry: the pair changed since it was queued
            id[pos] = (int) m;
            dead[right] = true;
            next[pos] = next[right];
            if (next[right] >= 0) prev[next[right]] = pos;
            if (prev[pos] >= 0) {
                long pm = pairs.get(id[prev[pos]], id[pos]);
                if (pm >= 0) heap.push((pm & 0xFFFFFFFF00000000L) | prev[pos]);
            }
            if (next[pos] >= 0) {
                long nm = pairs.get(id[pos], id[next[pos]]);
                if (nm >= 0) heap.push((nm & 0xFFFFFFFF00000000L) | pos);
            }
        }
        IntList r = new IntList(n);
        for (int i = 0; i >= 0; i = next[i]) r.add(id[i]);
        return r.toArray();
    }

    /** Open-addressing (int, int) → (rank, id) map packed in longs; get returns -1 when absent. */
    static final class PairMap {
        private final long[] keys;
        private final long[] vals;
        private final int mask;

        PairMap(int expected) {
            int cap = Integer.highestOneBit(Math.max(4, expected * 2)) << 1;
            keys = new long[cap];
            Arrays.fill(keys, -1L);
            vals = new long[cap];
            mask = cap - 1;
        }

        private static int slot(long k) {
            long h = k * 0x9E3779B97F4A7C15L;
            return (int) (h ^ (h >>> 29));
        }

        void put(int a, int b, int rank, int id) {
            long k = ((long) a << 32) | (b & 0xFFFFFFFFL);
            int s = slot(k) & mask;
            while (keys[s] != -1L && keys[s] != k) s = (s + 1) & mask;
            keys[s] = k;   // a duplicate merge keeps the later rank, as HF's HashMap collect does
            vals[s] = ((long) rank << 32) | (id & 0xFFFFFFFFL);
        }

        long get(int a, int b) {
            long k = ((long) a << 32) | (b & 0xFFFFFFFFL);
            int s = slot(k) & mask;
            while (true) {
                long x = keys[s];
                if (x == k) return vals[s];
                if (x == -1L) return -1;
                s = (s + 1) & mask;
            }
        }
    }

    /** A binary min-heap of longs. */
    static final class LongHeap {
        long[] h;
        int size;

        LongHeap(int cap) { h = new long[Math.max(4, cap)]; }

        void push(long v) {
            if (size == h.length) h = Arrays.copyOf(h, size * 2);
            int i = size++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (h[p] <= v) break;
                h[i] = h[p];
                i = p;
            }
            h[i] = v;
        }

        long pop() {
            long top = h[0];
            long v = h[--size];
            int i = 0;
            while (true) {
                int c = 2 * i + 1;
                if (c >= size) break;
                if (c + 1 < size && h[c + 1] < h[c]) c++;
                if (h[c] >= v) break;
                h[i] = h[c];
                i = c;
            }
            h[i] = v;
            return top;
        }
    }
}
