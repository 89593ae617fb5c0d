package dev.cpt4j.generate;

/**
 * The logits processors and warpers of transformers' {@code generate} ({@code generation/logits_process.py}), one
 * row at a time: each function rewrites {@code scores[off, off+V)} in place, a filtered token becoming
 * {@code -Infinity} exactly as HF's {@code filter_value}. {@link TokenChooser} applies them in HF's order.
 *
 * <p>Not here: the processors the CLI does not expose (no-repeat n-gram, bad words, min-p, typical, ...).
 */
public final class LogitsProcessors {
    private LogitsProcessors() {}

    /**
     * {@code RepetitionPenaltyLogitsProcessor}: every token that occurs in the sequence so far (prompt included) gets
     * {@code s < 0 ? s·penalty : s/penalty}, once however often it occurred.
     *
     * @param seen   the distinct token ids of the sequence, {@code seen[0, count)}
     */
    public static void repetitionPenalty(float[] scores, int off, int V, int[] seen, int count, float penalty) {
        for (int i = 0; i < count; i++) {
            int t = seen[i];
            if (t >= V) continue; // HF clamps ids beyond the output vocab onto a dropped column
            float s = scores[off + t];
            scores[off + t] = s < 0 ? s * penalty : s / penalty;
        }
    }

    /** {@code MinNewTokensLengthLogitsProcessor} (and {@code MinLengthLogitsProcessor}): eos ids get -inf. */
    public static void suppress(float[] scores, int off, int V, int[] tokens) {
        for (int t : tokens) if (t >= 0 && t < V) scores[off + t] = Float.NEGATIVE_INFINITY;
    }

    /** {@code TemperatureLogitsWarper}: scores / temperature. */
    public static void temperature(float[] scores, int off, int V, float temperature) {
        for (int i = off; i < off + V; i++) scores[i] = scores[i] / temperature;
    }

    /**
     * {@code TopKLogitsWarper} (min_tokens_to_keep 1): removes every score strictly below the k-th largest, so
     * tokens tied with the k-th are kept, as HF's {@code scores < topk(scores, k)[-1]} does.
     *
     * @param scratch at least V floats
     */
    public static void topK(float[] scores, int off, int V, int k, float[] scratch) {
        if (k >= V) return;
        float kth;
        if (k <= HEAP_K) {
            kth = kthLargestByHeap(scores, off, V, k, scratch);
        } else {
            System.arraycopy(scores, off, scratch, 0, V);
            kth = kthLargest(scratch, V, k);
        }
        for (int i = off; i < off + V; i++) if (scores[i] < kth) scores[i] = Float.NEGATIVE_INFINITY;
    }

    /**
     * {@code TopPLogitsWarper} (min_tokens_to_keep 1). HF sorts the probabilities ascending, removes every token whose
     * cumulative probability (itself included) is {@code <= 1 - topP}, and always keeps the most likely token. The
     * kept set is therefore the smallest prefix of the descending order whose remainder has mass {@code <= 1 - topP};
     * it is found here by a quickselect on (score, index) keys in O(V) rather than a full sort. Ties between equal
     * scores, which torch's unstable sort breaks arbitrarily, rank the lower token id first.
     *
     * @param probs scratch of at least V doubles; keys scratch of at least V longs
     */
    public static void topP(float[] scores, int off, int V, float topP, double[] probs, long[] keys) {
        if (topP >= 1f) return;
        double max = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < V; i++) max = Math.max(max, scores[off + i]);
        double total = 0;
        int n = 0;
        for (int i = 0; i < V; i++) {
            float s = scores[off + i];
            double p = s == Float.NEGATIVE_INFINITY ? 0.0 : Math.exp(s - max);
            probs[i] = p;
            total += p;
            if (p > 0) keys[n++] = key(scores[off + i], i); // zero-probability tokens are always removed
        }
        double inv = 1.0 / total;
        for (int i = 0; i < V; i++) probs[i] *= inv;
        int kept = keptPrefix(keys, n, probs, 1.0 - topP);
        long minKept = Long.MAX_VALUE;
        for (int j = 0; j < kept; j++) minKept = Math.min(minKept, keys[j]);
        for (int i = 0; i < V; i++) if (key(scores[off + i], i) < minKept) scores[off + i] = Float.NEGATIVE_INFINITY;
    }

    /**
     * {@link #topP} on a row whose only finite scores are at {@code cand[0, n)}, ascending token ids (e.g. after
     * top-k, as {@link #finiteIndices} lists them): reads and writes those positions only, with the same sums in the
     * same order, so the row ends bit-identical to the dense version.
     *
     * @param probs scratch indexed by token id (at least V doubles); keys scratch of at least n longs
     */
    public static void topP(float[] scores, int off, int[] cand, int n, float topP, double[] probs, long[] keys) {
        if (topP >= 1f) return;
        double max = Double.NEGATIVE_INFINITY;
        for (int j = 0; j < n; j++) max = Math.max(max, scores[off + cand[j]]);
        double total = 0;
        int m = 0;
        for (int j = 0; j < n; j++) {
            int i = cand[j];
            float s = scores[off + i];
            double p = s == Float.NEGATIVE_INFINITY ? 0.0 : Math.exp(s - max);
            probs[i] = p;
            total += p;
            if (p > 0) keys[m++] = key(s, i);
        }
        double inv = 1.0 / total;
        for (int j = 0; j < n; j++) probs[cand[j]] *= inv;
        int kept = keptPrefix(keys, m, probs, 1.0 - topP);
        long minKept = Long.MAX_VALUE;
        for (int j = 0; j < kept; j++) minKept = Math.min(minKept, keys[j]);
        for (int j = 0; j < n; j++) {
            int i = cand[j];
            if (key(scores[off + i], i) < minKept) scores[off + i] = Float.NEGATIVE_INFINITY;
        }
    }

    /** Writes the ids of the row's scores above -Infinity to {@code cand}, ascending; returns how many. */
    public static int finiteIndices(float[] scores, int off, int V, int[] cand) {
        int n = 0;
        for (int i = 0; i < V; i++) if (scores[off + i] != Float.NEGATIVE_INFINITY) cand[n++] = i;
        return n;
    }

    /**
     * Partitions {@code keys[0, n)} so that the first m hold the m largest keys, where m is the number of tokens top-p
     * keeps: position j of the descending order is kept iff j == 0 or (1 - mass of positions before j) > threshold.
     * Returns m. Invariant of the loop: m lies in [lo, hi]; {@code above} is the mass of positions before lo.
     */
    static int keptPrefix(long[] keys, int n, double[] probs, double threshold) {
        int lo = 0, hi = n;
        double above = 0;
        while (hi - lo > 16) {
            int k = partition(keys, lo, hi);
            double mass = above;
            for (int j = lo; j < k; j++) mass += probs[index(keys[j])];
            if (k >= 1 && 1.0 - mass <= threshold) {
                hi = k;                                   // position k is removed: the cut is at or before it
            } else {
                above = mass + probs[index(keys[k])];     // position k is kept
                lo = k + 1;
            }
        }
        // small range: sort it descending and scan
        for (int i = lo + 1; i < hi; i++) {
            long v = keys[i];
            int j = i - 1;
            while (j >= lo && keys[j] < v) {
                keys[j + 1] = keys[j];
                j--;
            }
            keys[j + 1] = v;
        }
        for (int j = lo; j < hi; j++) {
            if (j >= 1 && 1.0 - above <= threshold) return j;
            above += probs[index(keys[j])];
        }
        return hi;
    }

    /** Hoare-style partition of distinct keys, descending around a median-of-three pivot; returns its final slot. */
    private static int partition(long[] a, int lo, int hi) {
        int mid = (lo + hi) >>> 1, last = hi - 1;
        // median of three moved to the last slot
        if (a[lo] < a[mid]) swap(a, lo, mid);
        if (a[lo] < a[last]) swap(a, lo, last);
        if (a[mid] > a[last]) swap(a, mid, last);
        long pivot = a[last];
        int store = lo;
        for (int i = lo; i < last; i++) {
            if (a[i] > pivot) swap(a, i, store++);
        }
        swap(a, store, last);
        return store;
    }

    private static void swap(long[] a, int i, int j) {
        long t = a[i];
        a[i] = a[j];
        a[j] = t;
    }

    /** A key ordering tokens by score, then by lower id first; all keys of one row are distinct. */
    static long key(float score, int index) {
        int bits = Float.floatToIntBits(score);
        int sortable = bits < 0 ? bits ^ 0x7fffffff : bits; // monotone in the float value
        return ((long) sortable << 32) | ((~index) & 0xffffffffL);
    }

    static int index(long key) {
        return ~(int) key;
    }

    /** Up to this k, top-k finds its threshold with a heap in one pass instead of a quickselect over a copy. */
    static final int HEAP_K = 256;

    /**
     * The k-th largest of {@code a[off, off+n)} (1-based k, duplicates counted), with a min-heap of the k largest
     * seen so far in {@code heap[0, k)}: one pass in which most elements lose a single comparison to the heap's top.
     */
    static float kthLargestByHeap(float[] a, int off, int n, int k, float[] heap) {
        for (int i = 0; i < k; i++) {
            float v = a[off + i];
            int j = i;
            while (j > 0) {                       // sift up
                int parent = (j - 1) >>> 1;
                if (!(heap[parent] > v)) break;
                heap[j] = heap[parent];
                j = parent;
            }
            heap[j] = v;
        }
        for (int i = k; i < n; i++) {
            float v = a[off + i];
            if (!(v > heap[0])) continue;
            int j = 0;                            // replace the top, sift down
            while (true) {
                int c = 2 * j + 1;
                if (c >= k) break;
                if (c + 1 < k && heap[c + 1] < heap[c]) c++;
                if (!(heap[c] < v)) break;
                heap[j] = heap[c];
                j = c;
            }
            heap[j] = v;
        }
        return heap[0];
    }

    /** The k-th largest of a[0, n) (1-based k), reordering a. */
    static float kthLargest(float[] a, int n, int k) {
        int lo = 0, hi = n - 1, target = k - 1;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            float pivot = median(a[lo], a[mid], a[hi]);
            int i = lo, j = hi;
            while (i <= j) {   // descending partition
                while (a[i] > pivot) i++;
                while (a[j] < pivot) j--;
                if (i <= j) {
                    float t = a[i];
                    a[i] = a[j];
                    a[j] = t;
                    i++;
                    j--;
                }
            }
            if (target <= j) hi = j;
            else if (target >= i) lo = i;
            else return a[target];
        }
        return a[target];
    }

    private static float median(float a, float b, float c) {
        return Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));
    }
}
