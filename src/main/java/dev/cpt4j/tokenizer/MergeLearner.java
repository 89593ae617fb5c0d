package dev.cpt4j.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.function.BinaryOperator;

/**
 * BPE merge learning over weighted symbol sequences (words with counts): repeatedly joins the most frequent adjacent
 * pair (ties: smaller left symbol, then right, by string order), counting pairs incrementally — only the words that
 * contain the chosen pair are recounted. Deterministic. Used for vocabulary extension and training from scratch.
 */
final class MergeLearner {
    private final List<String> symbols = new ArrayList<>();
    private final Map<String, Integer> symbolIds = new HashMap<>();
    private final List<int[]> words = new ArrayList<>();
    private final List<Long> counts = new ArrayList<>();
    private final Map<Long, Long> pairCount = new HashMap<>();
    private final Map<Long, Set<Integer>> pairWords = new HashMap<>();

    int symbol(String s) {
        Integer id = symbolIds.get(s);
        if (id == null) {
            id = symbols.size();
            symbols.add(s);
            symbolIds.put(s, id);
        }
        return id;
    }

    /** Adds a word (a sequence of at least two symbols) seen {@code count} times. */
    void addWord(List<String> syms, long count) {
        if (syms.size() < 2) return;
        int[] w = new int[syms.size()];
        for (int i = 0; i < w.length; i++) w[i] = symbol(syms.get(i));
        int idx = words.size();
        words.add(w);
        counts.add(count);
        addPairs(idx, +1);
    }

    private static long key(int a, int b) { return ((long) a << 32) | (b & 0xFFFFFFFFL); }

    private void addPairs(int idx, int sign) {
        int[] w = words.get(idx);
        long c = counts.get(idx) * sign;
        for (int i = 0; i + 1 < w.length; i++) {
            long k = key(w[i], w[i + 1]);
            pairCount.merge(k, c, Long::sum);
            if (sign > 0) pairWords.computeIfAbsent(k, x -> new HashSet<>()).add(idx);
        }
    }

    record Merge(String left, String right, String joined, long count) {}

    /**
     * Learns up to {@code n} merges; {@code join} makes the new symbol's string; {@code minCount} stops early.
     * {@code allowed} may veto a pair (e.g. byte tokens).
     */
    List<Merge> learn(int n, long minCount, BinaryOperator<String> join, java.util.function.BiPredicate<String, String> allowed) {
        record Entry(long count, long key) {}
        PriorityQueue<Entry> pq = new PriorityQueue<>((x, y) -> {
            if (x.count != y.count) return Long.compare(y.count, x.count);
            int c = symbols.get((int) (x.key >>> 32)).compareTo(symbols.get((int) (y.key >>> 32)));
            if (c != 0) return c;
            return symbols.get((int) x.key).compareTo(symbols.get((int) y.key));
        });
        for (Map.Entry<Long, Long> e : pairCount.entrySet()) pq.add(new Entry(e.getValue(), e.getKey()));
        List<Merge> out = new ArrayList<>();
        while (out.size() < n && !pq.isEmpty()) {
            Entry top = pq.poll();
            long now = pairCount.getOrDefault(top.key, 0L);
            if (now != top.count) {
                if (now > 0) pq.add(new Entry(now, top.key));
                continue;
            }
            if (now < minCount) break;
            int a = (int) (top.key >>> 32), b = (int) top.key;
            String sa = symbols.get(a), sb = symbols.get(b);
            if (!allowed.test(sa, sb)) {
                pairCount.put(top.key, 0L);
                continue;
            }
            String joined = join.apply(sa, sb);
            int c = symbol(joined);
            out.add(new Merge(sa, sb, joined, now));
            Set<Long> touched = new HashSet<>();
            for (int idx : new ArrayList<>(pairWords.getOrDefault(top.key, Set.of()))) {
                int[] w = words.get(idx);
                addPairs(idx, -1);
                int[] nw = new int[w.length];
                int k = 0;
                for (int i = 0; i < w.length; i++) {
                    if (i + 1 < w.length && w[i] == a && w[i + 1] == b) {
                        nw[k++] = c;
                        i++;
                    } else {
                        nw[k++] = w[i];
                    }
                }
                words.set(idx, java.util.Arrays.copyOf(nw, k));
                addPairs(idx, +1);
                for (int i = 0; i + 1 < k; i++) touched.add(key(nw[i], nw[i + 1]));
            }
            pairCount.remove(top.key);
            for (long t : touched) {
                long cnt = pairCount.getOrDefault(t, 0L);
                if (cnt > 0) pq.add(new Entry(cnt, t));
            }
        }
        return out;
    }
}
