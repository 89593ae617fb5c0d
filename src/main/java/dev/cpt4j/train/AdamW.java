package dev.cpt4j.train;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Function;
import java.util.function.Predicate;
import java.util.function.ToIntFunction;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * AdamW over one flat parameter buffer, with the arithmetic of {@code torch.optim.AdamW} (single-tensor path, fp32):
 * decoupled weight decay {@code p *= 1 − lr·wd}, {@code m = lerp(m, g, 1 − β1)}, {@code v = β2·v + (1 − β2)·g²},
 * {@code p −= (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)} (ε outside the square root, as torch).
 *
 * <p>Parameters are assigned to groups per {@link ParamLayout.View} (each group has its own base learning rate and
 * weight decay, like torch's param_groups); views assigned to no group are frozen and skipped. The moments m and v
 * are flat buffers holding only the trainable elements (so a LoRA run with a frozen base pays nothing for the base),
 * laid out in layout order. A view's gradient may be row-sparse ({@link RowSparseGrad}): rows without a slot have
 * gradient zero, and still get the full update (moments decay, weight decay, step) — the semantics are torch's dense
 * AdamW.
 *
 * <p>ZeRO-1 ({@link #shard}): under data parallelism each rank keeps the moments of one contiguous range
 * {@code [shardStart, shardStart + shardLength)} of the flat trainable elements and updates only those parameters
 * (the trainer then all-gathers the parameters); every element gets exactly the arithmetic of the unsharded step, so
 * the result is bit-identical to it. What this is not: a general optimizer framework — one algorithm, no AMSGrad, no maximize.
 */
public final class AdamW {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Work below this many elements runs on the calling thread. */
    private static final int PAR_MIN = 1 << 15;

    /** A torch-style parameter group: base learning rate (scaled by the schedule) and weight decay. */
    public record Group(String name, double lr, double weightDecay) {
        public Group {
            if (!(lr >= 0) || Double.isInfinite(lr)) throw new IllegalArgumentException("group " + name + ": bad lr " + lr);
            if (!(weightDecay >= 0)) throw new IllegalArgumentException("group " + name + ": bad weight decay " + weightDecay);
        }
    }

    /**
     * A contiguous trainable run of the parameter buffer: elements {@code [offset, offset+length)} of params, whose
     * gradients are {@code [gradOffset, gradOffset+length)} of grads and whose moments live at
     * {@code [stateOffset, stateOffset+length)} of m and v. When {@code sparse} is non-null the run is one view
     * whose gradient is that row-sparse matrix (row r = elements {@code [r·cols, (r+1)·cols)}) and
     * {@code gradOffset} is −1.
     */
    public record Segment(int offset, int length, int stateOffset, int group, int gradOffset, RowSparseGrad sparse) {
        public Segment {
            if (sparse != null && (gradOffset != -1 || (long) sparse.rows() * sparse.cols() != length))
                throw new IllegalArgumentException("a row-sparse segment has gradOffset -1 and rows·cols elements");
        }

        /** A run with a dense gradient at {@code gradOffset}. */
        public Segment(int offset, int length, int stateOffset, int group, int gradOffset) {
            this(offset, length, stateOffset, group, gradOffset, null);
        }

        /** A run whose gradients share the parameters' offsets (a gradient buffer laid out like the parameters). */
        public Segment(int offset, int length, int stateOffset, int group) {
            this(offset, length, stateOffset, group, offset, null);
        }
    }

    private final ParamLayout layout;
    private final List<Group> groups;
    private final List<Segment> segments;
    private final int[] viewGroup;      // group index per layout view, -1 = frozen
    private final int[] viewState;      // state offset per layout view, -1 = frozen
    private final double beta1, beta2, eps;
    private float[] m, v;               // (shardLength,) the moments of trainable elements [lo, hi)
    private int lo, hi;                 // this optimizer's range of the trainable elements (all of them unsharded)
    private final int count;            // trainable elements
    private final int gradEnd;          // grads must hold at least this many elements
    private long step;                  // optimizer steps taken (torch's state["step"])
    private float[] zeroRow = new float[0]; // (cols,) the gradient of a row-sparse view's rows without a slot

    /**
     * @param groupOf group index for each view of {@code layout}, or −1 for a frozen view
     */
    public AdamW(ParamLayout layout, List<Group> groups, ToIntFunction<ParamLayout.View> groupOf,
                 double beta1, double beta2, double eps) {
        this(layout, groups, groupOf, ParamLayout.View::offset, beta1, beta2, eps);
    }

    /**
     * As {@link #AdamW(ParamLayout, List, ToIntFunction, double, double, double)} with a gradient buffer laid out
     * differently from the parameters (e.g. holding only the trainable views).
     *
     * @param gradOffsetOf where a trainable view's gradient starts in the gradient buffer
     */
    public AdamW(ParamLayout layout, List<Group> groups, ToIntFunction<ParamLayout.View> groupOf,
                 ToIntFunction<ParamLayout.View> gradOffsetOf, double beta1, double beta2, double eps) {
        this(layout, groups, groupOf, gradOffsetOf, view -> null, beta1, beta2, eps);
    }

    /**
     * As {@link #AdamW(ParamLayout, List, ToIntFunction, ToIntFunction, double, double, double)} where some
     * trainable views keep their gradient row-sparse.
     *
     * @param sparseOf a trainable view's row-sparse gradient, or null when it is dense (at {@code gradOffsetOf})
     */
    public AdamW(ParamLayout layout, List<Group> groups, ToIntFunction<ParamLayout.View> groupOf,
                 ToIntFunction<ParamLayout.View> gradOffsetOf, Function<ParamLayout.View, RowSparseGrad> sparseOf,
                 double beta1, double beta2, double eps) {
        if (!(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1))
            throw new IllegalArgumentException("betas must be in [0, 1): " + beta1 + ", " + beta2);
        if (!(eps >= 0)) throw new IllegalArgumentException("eps must be >= 0");
        this.layout = layout;
        this.groups = List.copyOf(groups);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.eps = eps;
        List<ParamLayout.View> views = layout.views();
        viewGroup = new int[views.size()];
        viewState = new int[views.size()];
        List<Segment> segs = new ArrayList<>();
        int state = 0, gEnd = 0;
        for (int i = 0; i < views.size(); i++) {
            ParamLayout.View view = views.get(i);
            int g = groupOf.applyAsInt(view);
            if (g >= groups.size()) throw new IllegalArgumentException("view " + view.name() + ": no group " + g);
            viewGroup[i] = g;
            if (g < 0) {
                viewState[i] = -1;
                continue;
            }
            viewState[i] = state;
            RowSparseGrad sparse = sparseOf.apply(view);
            if (sparse != null) {
                segs.add(new Segment(view.offset(), view.size(), state, g, -1, sparse));
                state += view.size();
                continue;
            }
            int go = gradOffsetOf.applyAsInt(view);
            if (go < 0) throw new IllegalArgumentException("trainable view " + view.name() + " has no gradient");
            gEnd = Math.max(gEnd, go + view.size());
            Segment last = segs.isEmpty() ? null : segs.get(segs.size() - 1);
            if (last != null && last.sparse == null && last.group == g && last.offset + last.length == view.offset()
                    && last.gradOffset + last.length == go) {
                segs.set(segs.size() - 1, new Segment(last.offset, last.length + view.size(), last.stateOffset, g,
                        last.gradOffset));
            } else {
                segs.add(new Segment(view.offset(), view.size(), state, g, go));
            }
            state += view.size();
        }
        this.segments = Collections.unmodifiableList(segs);
        this.gradEnd = gEnd;
        this.count = state;
        this.lo = 0;
        this.hi = state;
        this.m = new float[state];
        this.v = new float[state];
    }

    /**
     * Keeps (and from now on updates) only the trainable elements {@code [start, start + length)}: ZeRO-1's share
     * of one rank. Call before the first step; the moments of the range start at zero.
     */
    public void shard(int start, int length) {
        if (start < 0 || length < 0 || start + length > count)
            throw new IllegalArgumentException("shard [" + start + ", " + (start + length) + ") outside " + count + " elements");
        if (step != 0) throw new IllegalStateException("shard before the first step");
        lo = start;
        hi = start + length;
        m = new float[length];
        v = new float[length];
    }

    /** First trainable element whose moments this optimizer keeps (0 unless {@link #shard sharded}). */
    public int shardStart() {
        return lo;
    }

    /** Number of trainable elements whose moments this optimizer keeps (all unless {@link #shard sharded}). */
    public int shardLength() {
        return hi - lo;
    }

    /**
     * The parameter groups of an LM fine-tune as HF Trainer builds them, plus unsloth's embedding learning rate:
     * group 0 "decay" (lr, weightDecay), 1 "no_decay" (lr, 0; biases and LayerNorm weights per
     * {@link #defaultNoDecay}), 2 "embeddings" (embeddingLr, weightDecay), 3 "embeddings_no_decay".
     *
     * @param trainable   names of the views to update (others are frozen)
     * @param isEmbedding names of the views that use {@code embeddingLr} (wte, wpe, lm_head)
     */
    public static AdamW forLanguageModel(ParamLayout layout, double lr, double embeddingLr, double weightDecay,
                                         double beta1, double beta2, double eps,
                                         Predicate<String> trainable, Predicate<String> isEmbedding) {
        return forLanguageModel(layout, ParamLayout.View::offset, lr, embeddingLr, weightDecay, beta1, beta2, eps,
                trainable, isEmbedding);
    }

    /** As above, with gradients at {@code gradOffsetOf(view)} of the gradient buffer. */
    public static AdamW forLanguageModel(ParamLayout layout, ToIntFunction<ParamLayout.View> gradOffsetOf, double lr,
                                         double embeddingLr, double weightDecay, double beta1, double beta2, double eps,
                                         Predicate<String> trainable, Predicate<String> isEmbedding) {
        return forLanguageModel(layout, gradOffsetOf, view -> null, lr, embeddingLr, weightDecay, beta1, beta2, eps,
                trainable, isEmbedding);
    }

    /** As above, with the row-sparse gradients {@code sparseOf(view)} (null for a dense one). */
    public static AdamW forLanguageModel(ParamLayout layout, ToIntFunction<ParamLayout.View> gradOffsetOf,
                                         Function<ParamLayout.View, RowSparseGrad> sparseOf, double lr,
                                         double embeddingLr, double weightDecay, double beta1, double beta2, double eps,
                                         Predicate<String> trainable, Predicate<String> isEmbedding) {
        return forLanguageModel(layout, gradOffsetOf, sparseOf, lr, embeddingLr, weightDecay, beta1, beta2, eps,
                trainable, isEmbedding, AdamW::defaultNoDecay);
    }

    /**
     * HF Trainer's no-decay rule (biases and norm weights) as any registered family names them; for layouts that
     * come without a model. A model's own rule ({@link TrainableModel#noDecay}, from its family) is what
     * {@link #forModel} uses.
     */
    public static boolean defaultNoDecay(String name) {
        for (dev.cpt4j.model.ModelFamily f : dev.cpt4j.model.ModelFamilies.all()) if (f.noDecay(name)) return true;
        return false;
    }

    /** As above, with {@code noDecay} naming the views in the no-decay groups. */
    public static AdamW forLanguageModel(ParamLayout layout, ToIntFunction<ParamLayout.View> gradOffsetOf,
                                         Function<ParamLayout.View, RowSparseGrad> sparseOf, double lr,
                                         double embeddingLr, double weightDecay, double beta1, double beta2, double eps,
                                         Predicate<String> trainable, Predicate<String> isEmbedding,
                                         Predicate<String> noDecay) {
        List<Group> groups = List.of(new Group("decay", lr, weightDecay), new Group("no_decay", lr, 0),
                new Group("embeddings", embeddingLr, weightDecay), new Group("embeddings_no_decay", embeddingLr, 0));
        return new AdamW(layout, groups, view -> {
            if (!trainable.test(view.name())) return -1;
            int g = noDecay.test(view.name()) ? 1 : 0;
            return isEmbedding.test(view.name()) ? g + 2 : g;
        }, gradOffsetOf, sparseOf, beta1, beta2, eps);
    }

    /**
     * The optimizer {@code cpt4j train} runs on {@code model}: {@link #forLanguageModel} over the model's trainable
     * views, its gradient offsets and row-sparse gradients, its embeddings on {@code embeddingLr}. The benchmark
     * times this same optimizer.
     */
    public static AdamW forModel(TrainableModel model, double lr, double embeddingLr, double weightDecay, double beta1,
                                 double beta2, double eps) {
        return forLanguageModel(model.layout(), v -> model.gradOffset(v.name()), v -> model.sparseGrad(v.name()), lr,
                embeddingLr, weightDecay, beta1, beta2, eps, model::isTrainable, model::isEmbedding, model::noDecay);
    }

    /** Zeroes the gradients of every trainable run (dense ones in {@code grads}, row-sparse ones in place). */
    public void zeroGrads(float[] grads) {
        for (Segment s : segments) {
            if (s.sparse() != null) s.sparse().zero();
            else java.util.Arrays.fill(grads, s.gradOffset(), s.gradOffset() + s.length(), 0f);
        }
    }

    public ParamLayout layout() {
        return layout;
    }

    public List<Group> groups() {
        return groups;
    }

    /** Trainable runs of the buffer, in buffer order (also what gradient clipping and checkpoints walk). */
    public List<Segment> segments() {
        return segments;
    }

    /** True when {@code view} is updated by this optimizer. */
    public boolean isTrainable(ParamLayout.View view) {
        return viewGroup[indexOf(view)] >= 0;
    }

    /** Group index of a view, −1 when frozen. */
    public int groupOf(ParamLayout.View view) {
        return viewGroup[indexOf(view)];
    }

    /** Number of trainable elements (the length of m and v unless {@link #shard sharded}). */
    public int trainableCount() {
        return count;
    }

    /** Optimizer steps taken so far (torch's {@code state["step"]}). */
    public long stepCount() {
        return step;
    }

    /** First moments, flat over the trainable elements of the shard (index − {@link #shardStart()}); read-only by contract. */
    public float[] m() {
        return m;
    }

    /** Second moments, laid out as {@link #m()}; read-only by contract. */
    public float[] v() {
        return v;
    }

    /** Where a trainable view's elements start among the trainable elements (in {@link #m()} unsharded); −1 when frozen. */
    public int stateOffset(ParamLayout.View view) {
        return viewState[indexOf(view)];
    }

    /** Restores the state saved from {@link #m()}, {@link #v()} and {@link #stepCount()} (resume). */
    public void restore(float[] m, float[] v, long step) {
        if (m.length != this.m.length || v.length != this.v.length)
            throw new IllegalArgumentException("optimizer state has " + m.length + " moments, expected " + this.m.length);
        if (step < 0) throw new IllegalArgumentException("negative step");
        System.arraycopy(m, 0, this.m, 0, m.length);
        System.arraycopy(v, 0, this.v, 0, v.length);
        this.step = step;
    }

    /** Learning rate of group {@code g} under the schedule multiplier {@code lrFactor}. */
    public double lr(int g, double lrFactor) {
        return groups.get(g).lr * lrFactor;
    }

    /**
     * One AdamW step over every trainable element: each group uses {@code group.lr × lrFactor} (torch's LambdaLR
     * scaling of the initial lr). Gradients are read, not modified.
     */
    public void step(float[] params, float[] grads, double lrFactor, Parallel par) {
        step(params, grads, lrFactor, par, true);
    }

    /** The same step with the naive scalar kernel (the twin the vector kernel is tested against). */
    public void stepNaive(float[] params, float[] grads, double lrFactor) {
        step(params, grads, lrFactor, null, false);
    }

    private void step(float[] params, float[] grads, double lrFactor, Parallel par, boolean vector) {
        if (params.length < layout.size() || grads.length < gradEnd)
            throw new IllegalArgumentException("params shorter than the layout (" + layout.size() + ") or grads than "
                    + gradEnd);
        step++;
        // torch: bias_correction1 = 1 - beta1**step; step_size = lr / bias_correction1;
        //        bias_correction2_sqrt = (1 - beta2**step)**0.5 — all Python floats (double), then used as fp32 scalars
        double bc1 = 1 - Math.pow(beta1, step);
        double bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, step));
        float w1 = (float) (1 - beta1), b2 = (float) beta2, c2 = (float) (1 - beta2);
        float bc2 = (float) bc2Sqrt, e = (float) eps;
        for (Segment s : segments) {
            // the part of this run inside the shard: elements [d, d + n) of it
            int a0 = Math.max(s.stateOffset, lo), a1 = Math.min(s.stateOffset + s.length, hi);
            if (a0 >= a1) continue;
            int d = a0 - s.stateOffset, n = a1 - a0, so = a0 - lo;
            Group g = groups.get(s.group);
            double lr = g.lr * lrFactor;
            float decay = (float) (1 - lr * g.weightDecay);   // param.mul_(1 - lr * weight_decay)
            float negStep = (float) -(lr / bc1);
            if (s.sparse != null) {
                stepSparse(params, s, d, n, decay, w1, b2, c2, bc2, e, negStep, par, vector);
            } else if (!vector) {
                updateNaive(params, s.offset + d, grads, s.gradOffset + d, m, v, so, n, decay, w1, b2, c2,
                        bc2, e, negStep);
            } else if (par == null || par.threads() == 1 || n < PAR_MIN) {
                updateVector(params, s.offset + d, grads, s.gradOffset + d, m, v, so, n, decay, w1, b2, c2,
                        bc2, e, negStep);
            } else {
                float[] mm = m, vv = v;
                par.forRange(n, (a, b) -> updateVector(params, s.offset + d + a, grads, s.gradOffset + d + a, mm, vv,
                        so + a, b - a, decay, w1, b2, c2, bc2, e, negStep));
            }
        }
    }

    /**
     * The update of a row-sparse run, row by row: a row's gradient is its slot, or a zero row when it has none — so
     * every element gets exactly the dense update (the same kernels, the same per-element arithmetic).
     */
    private void stepSparse(float[] params, Segment s, int d, int n, float decay, float w1, float b2, float c2,
                            float bc2, float e, float negStep, Parallel par, boolean vector) {
        RowSparseGrad sp = s.sparse;
        int cols = sp.cols();
        int first = d / cols, last = (d + n - 1) / cols;     // the rows of elements [d, d + n) of the run
        float[] data = sp.data(), mm = m, vv = v;
        if (zeroRow.length < cols) zeroRow = new float[cols];
        float[] zero = zeroRow;
        Parallel.RangeBody body = (r0, r1) -> {
            for (int k = r0; k < r1; k++) {
                int r = first + k;
                int c0 = Math.max(d, r * cols) - r * cols, c1 = Math.min(d + n, (r + 1) * cols) - r * cols;
                int slot = sp.slotOf(r);
                float[] g = slot < 0 ? zero : data;
                int gOff = (slot < 0 ? 0 : slot * cols) + c0, pOff = s.offset + r * cols + c0;
                int sOff = s.stateOffset + r * cols + c0 - lo;
                if (vector) updateVector(params, pOff, g, gOff, mm, vv, sOff, c1 - c0, decay, w1, b2, c2, bc2, e, negStep);
                else updateNaive(params, pOff, g, gOff, mm, vv, sOff, c1 - c0, decay, w1, b2, c2, bc2, e, negStep);
            }
        };
        int rows = last - first + 1;
        if (!vector || par == null || par.threads() == 1 || n < PAR_MIN) body.run(0, rows);
        else par.forRange(rows, body);
    }

    /**
     * The fp32 update of n elements, scalar. Same operation order as torch's CPU kernels: lerp as
     * {@code fma(w, g − m, m)} (ATen {@code lerp_vec}), addcmul as {@code v + (c·g)·g}, addcdiv as {@code p + (s·m)/d}.
     */
    static void updateNaive(float[] p, int pOff, float[] g, int gOff, float[] m, float[] v, int sOff, int n,
                            float decay, float w1, float b2, float c2, float bc2, float eps, float negStep) {
        for (int i = 0; i < n; i++) {
            float gi = g[gOff + i];
            float pi = p[pOff + i] * decay;
            float mi = m[sOff + i];
            mi = w1 < 0.5f ? Math.fma(w1, gi - mi, mi) : Math.fma(w1 - 1f, gi - mi, gi);
            float vi = v[sOff + i] * b2;
            vi = vi + c2 * gi * gi;
            float denom = (float) Math.sqrt(vi) / bc2 + eps;
            p[pOff + i] = pi + negStep * mi / denom;
            m[sOff + i] = mi;
            v[sOff + i] = vi;
        }
    }

    static void updateVector(float[] p, int pOff, float[] g, int gOff, float[] m, float[] v, int sOff, int n,
                             float decay, float w1, float b2, float c2, float bc2, float eps, float negStep) {
        int i = 0;
        int bound = S.loopBound(n);
        boolean small = w1 < 0.5f;
        float coeff = small ? w1 : w1 - 1f;
        for (; i < bound; i += S.length()) {
            FloatVector gi = FloatVector.fromArray(S, g, gOff + i);
            FloatVector pi = FloatVector.fromArray(S, p, pOff + i).mul(decay);
            FloatVector mi = FloatVector.fromArray(S, m, sOff + i);
            FloatVector diff = gi.sub(mi);
            mi = diff.lanewise(VectorOperators.FMA, coeff, small ? mi : gi);
            FloatVector vi = FloatVector.fromArray(S, v, sOff + i).mul(b2);
            vi = vi.add(gi.mul(c2).mul(gi));
            FloatVector denom = vi.sqrt().div(bc2).add(eps);
            pi = pi.add(mi.mul(negStep).div(denom));
            pi.intoArray(p, pOff + i);
            mi.intoArray(m, sOff + i);
            vi.intoArray(v, sOff + i);
        }
        if (i < n) updateNaive(p, pOff + i, g, gOff + i, m, v, sOff + i, n - i, decay, w1, b2, c2, bc2, eps, negStep);
    }

    private int indexOf(ParamLayout.View view) {
        List<ParamLayout.View> views = layout.views();
        for (int i = 0; i < views.size(); i++) if (views.get(i).name().equals(view.name())) return i;
        throw new IllegalArgumentException("view " + view.name() + " is not in this optimizer's layout");
    }
}
