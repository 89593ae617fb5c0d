package dev.cpt4j.train;

import dev.cpt4j.dist.Collective;
import dev.cpt4j.tensor.RowSparseGrad;
import java.util.List;

/**
 * What the trainer does differently when {@code size} ranks train one model (data parallelism over a
 * {@link Collective}; HF/DDP semantics): every micro-batch is the global batch of {@code size × B} blocks a single
 * process with batch {@code size × B} would see, and rank r trains on its rows {@code [r·B, (r+1)·B)}; each rank's
 * gradient is scaled by {@code 1 / (accumulation · size)} and the trained views' gradients are summed over ranks, so
 * every rank holds the gradient of the global mean loss — clipping and its norm are then global by construction.
 * Dropout masks are drawn at the rows' global token positions ({@link #firstToken}), so they do not depend on the
 * split. Held-out evaluation splits the evaluation batches over ranks and sums. With one rank every method is the
 * single-process code path.
 *
 * <p>Row-sparse gradients (the token embedding's) are summed by gathering every rank's used rows and adding them,
 * rank after rank, into fresh slots in first-seen order — the same slot order on every rank, so the clipping norm
 * and the optimizer see identical state everywhere.
 */
final class DataParallel {
    private final Collective comm;
    private final int rank, size;
    private int[] global = new int[0];          // (size·B, T) the global micro-batch
    private int[] rowsBuf = new int[0], allRows = new int[0];
    private float[] valsBuf = new float[0], allVals = new float[0];
    private final int[] one = new int[1];
    private float[] send = new float[0], recv = new float[0];   // parameter all-gather buffers

    DataParallel(Collective comm) {
        this.comm = comm;
        this.rank = comm.rank();
        this.size = comm.size();
    }

    Collective comm() {
        return comm;
    }

    boolean single() {
        return size == 1;
    }

    boolean isRoot() {
        return rank == 0;
    }

    int size() {
        return size;
    }

    /** Fills {@code local} (B, T) with this rank's rows of the next global micro-batch of {@code size·B} blocks. */
    void nextTrain(BatchSource data, int[] local, int B, int T) {
        if (single()) {
            data.nextTrain(local, B);
            return;
        }
        if (global.length != size * B * T) global = new int[size * B * T];
        data.nextTrain(global, size * B);
        System.arraycopy(global, rank * B * T, local, 0, B * T);
    }

    /** The global index of this rank's first token in a micro-batch of B blocks of T tokens per rank. */
    long firstToken(int B, int T) {
        return (long) rank * B * T;
    }

    /** The mean over ranks of a per-rank mean (every rank holds the same number of tokens). */
    double mean(double local) {
        if (single()) return local;
        double[] a = {local};
        comm.allReduceSum(a);
        return a[0] / size;
    }

    /** True on every rank when any rank asks to stop (each rank sees its own signal at its own time). */
    boolean anyRequested(boolean local) {
        if (single()) return local;
        long[] a = {local ? 1 : 0};
        comm.allReduceMax(a);
        return a[0] != 0;
    }

    /** Sums the gradients of the trained runs over ranks (contiguous dense runs in one call each). */
    void allReduceGrads(float[] grads, List<AdamW.Segment> segments) {
        if (single()) return;
        int start = -1, end = -1;
        for (AdamW.Segment s : segments) {
            if (s.sparse() != null) {
                reduceSparse(s.sparse());
                continue;
            }
            if (s.gradOffset() == end) {
                end += s.length();
                continue;
            }
            if (start >= 0) comm.allReduceSum(grads, start, end - start);
            start = s.gradOffset();
            end = start + s.length();
        }
        if (start >= 0) comm.allReduceSum(grads, start, end - start);
    }

    private void reduceSparse(RowSparseGrad sp) {
        int cols = sp.cols(), used = sp.used();
        int[] counts = new int[size];
        one[0] = used;
        comm.allGather(one, 0, 1, counts, 0);
        int max = 0;
        for (int c : counts) max = Math.max(max, c);
        if (max == 0) return;
        if (rowsBuf.length < max) rowsBuf = new int[max];
        if (valsBuf.length < max * cols) valsBuf = new float[max * cols];
        if (allRows.length < size * max) allRows = new int[size * max];
        if (allVals.length < size * max * cols) allVals = new float[size * max * cols];
        for (int s = 0; s < used; s++) rowsBuf[s] = sp.rowOf(s);
        System.arraycopy(sp.data(), 0, valsBuf, 0, used * cols);
        comm.allGather(rowsBuf, 0, max, allRows, 0);
        comm.allGather(valsBuf, 0, max * cols, allVals, 0);
        sp.zero();
        for (int q = 0; q < size; q++) {
            for (int s = 0; s < counts[q]; s++) {
                int slot = sp.slot(allRows[q * max + s]);
                float[] d = sp.data();
                int o = slot * cols, src = (q * max + s) * cols;
                for (int c = 0; c < cols; c++) d[o + c] += allVals[src + c];
            }
        }
    }

    /**
     * ZeRO-1: gives this rank's optimizer its share of the AdamW moments — {@code ceil(count / size)} consecutive
     * trainable elements (the last rank's share may be shorter).
     */
    void shard(AdamW opt) {
        if (single()) return;
        int count = opt.trainableCount(), per = shardSize(count);
        int lo = Math.min(rank * per, count);
        opt.shard(lo, Math.min(per, count - lo));
    }

    private int shardSize(int count) {
        return (count + size - 1) / size;
    }

    /**
     * After a sharded step: every rank's updated parameters (its share of the trainable elements) to every rank,
     * through a bounded buffer (chunks of the share, so no full-size copy of the trainable parameters is needed).
     */
    void gatherParams(float[] params, AdamW opt) {
        if (single()) return;
        int count = opt.trainableCount(), per = shardSize(count);
        int chunk = Math.max(1, Math.min(per, (1 << 22) / size));
        if (send.length < chunk) send = new float[chunk];
        if (recv.length < chunk * size) recv = new float[chunk * size];
        List<AdamW.Segment> segs = opt.segments();
        for (int k = 0; k < per; k += chunk) {
            int n = Math.min(chunk, per - k);
            copy(segs, params, rank * per + k, n, count, send, 0, true);
            comm.allGather(send, 0, n, recv, 0);
            for (int q = 0; q < size; q++) copy(segs, params, q * per + k, n, count, recv, q * n, false);
        }
    }

    /**
     * Copies trainable elements {@code [e0, e0 + n)} (clipped to {@code count}) between params and {@code buf[off…]}:
     * {@code out} true packs params into buf (zero past the end), false unpacks.
     */
    private static void copy(List<AdamW.Segment> segs, float[] params, int e0, int n, int count, float[] buf, int off,
                             boolean out) {
        int e1 = Math.min(e0 + n, count);
        if (out && e1 - e0 < n) java.util.Arrays.fill(buf, off + Math.max(0, e1 - e0), off + n, 0f);
        for (AdamW.Segment s : segs) {
            int a = Math.max(e0, s.stateOffset()), b = Math.min(e1, s.stateOffset() + s.length());
            if (a >= b) continue;
            int p = s.offset() + (a - s.stateOffset()), q = off + (a - e0);
            if (out) System.arraycopy(params, p, buf, q, b - a);
            else System.arraycopy(buf, q, params, p, b - a);
        }
    }

    /** Each rank's {@code value}, in rank order, on every rank. */
    double[] perRank(double value) {
        double[] a = new double[size];
        a[rank] = value;
        comm.allReduceSum(a);
        return a;
    }

    /** Rank 0's {@code decision} on every rank (a choice that depends on a rank's own clock must be one). */
    boolean rootDecides(boolean decision) {
        if (single()) return decision;
        long[] a = {isRoot() && decision ? 1 : 0};
        comm.allReduceMax(a);
        return a[0] != 0;
    }

    int rank() {
        return rank;
    }

    /**
     * Mean loss over all evaluation blocks, as {@link Trainer#evaluate}: the batches of {@code batch} blocks are
     * split into contiguous runs over ranks, each rank sums loss × blocks over its run, the sums are added.
     */
    double evaluate(TrainableModel model, BatchSource data, int batch) {
        if (single()) return Trainer.evaluate(model, data, batch);
        int T = data.blockSize();
        long n = data.evalBlocks(), batches = (n + batch - 1) / batch;
        long b0 = batches * rank / size, b1 = batches * (rank + 1) / size;
        int[] tokens = new int[batch * T];
        double[] sum = {0};
        for (long b = b0; b < b1; b++) {
            long first = b * batch;
            int count = (int) Math.min(batch, n - first);
            data.evalBlocks(tokens, first, count);
            sum[0] += model.loss(tokens, count, T) * count;
        }
        comm.allReduceSum(sum);
        return sum[0] / n;
    }
}
