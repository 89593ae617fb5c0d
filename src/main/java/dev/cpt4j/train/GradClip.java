package dev.cpt4j.train;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.VecMath;
import java.util.List;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * Gradient clipping by global L2 norm, as {@code torch.nn.utils.clip_grad_norm_}: the norm over all trainable
 * gradients, {@code coef = max_norm / (norm + 1e-6)} in fp32, gradients multiplied by {@code min(coef, 1)}.
 * The sum of squares is accumulated in fixed 4096-element blocks (fp32 lanes, then the lanes in lane order in double,
 * then the blocks in block order), so the result depends neither on the thread count nor on the JIT tier. A row-sparse segment contributes its used slots, summed in slot order (first-seen,
 * deterministic); rows without a slot are zero.
 */
public final class GradClip {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int BLOCK = 4096;

    private GradClip() {}

    /**
     * Clips the gradients of the trainable runs {@code segments} (at their {@code gradOffset}) in place and returns the norm BEFORE clipping
     * (what HF Trainer logs as {@code grad_norm}). {@code maxNorm <= 0} only measures.
     */
    public static double clip(float[] grads, List<AdamW.Segment> segments, double maxNorm, Parallel par) {
        double norm = globalNorm(grads, segments, par);
        float coef = (float) maxNorm / ((float) norm + 1e-6f);  // clip_coef = max_norm / (total_norm + 1e-6), fp32
        if (maxNorm > 0 && coef < 1f) {
            for (AdamW.Segment s : segments) {
                if (s.sparse() != null) scale(s.sparse().data(), 0, s.sparse().used() * s.sparse().cols(), coef, par);
                else scale(grads, s.gradOffset(), s.length(), coef, par);
            }
        }
        return norm;
    }

    /** Global L2 norm over the trainable runs. */
    public static double globalNorm(float[] grads, List<AdamW.Segment> segments, Parallel par) {
        double sum = 0;
        for (AdamW.Segment s : segments) {
            float[] a0 = s.sparse() != null ? s.sparse().data() : grads;
            int start = s.sparse() != null ? 0 : s.gradOffset();
            int len = s.sparse() != null ? s.sparse().used() * s.sparse().cols() : s.length();
            int blocks = (len + BLOCK - 1) / BLOCK;
            double[] partial = new double[blocks];
            Parallel.RangeBody body = (a, b) -> {
                for (int k = a; k < b; k++) {
                    int off = start + k * BLOCK;
                    partial[k] = sumSquares(a0, off, Math.min(BLOCK, start + len - off));
                }
            };
            if (par == null || blocks < 8) body.run(0, blocks);
            else par.forRange(blocks, body);
            for (double d : partial) sum += d;
        }
        return Math.sqrt(sum);
    }

    /** Naive twin of {@link #globalNorm}: every square accumulated in double. */
    public static double globalNormNaive(float[] grads, List<AdamW.Segment> segments) {
        double sum = 0;
        for (AdamW.Segment s : segments) {
            float[] a = s.sparse() != null ? s.sparse().data() : grads;
            int start = s.sparse() != null ? 0 : s.gradOffset();
            int len = s.sparse() != null ? s.sparse().used() * s.sparse().cols() : s.length();
            for (int i = 0; i < len; i++) {
                double g = a[start + i];
                sum += g * g;
            }
        }
        return Math.sqrt(sum);
    }

    private static double sumSquares(float[] a, int off, int n) {
        FloatVector acc = FloatVector.zero(S);
        int i = 0, bound = S.loopBound(n);
        for (; i < bound; i += S.length()) {
            FloatVector x = FloatVector.fromArray(S, a, off + i);
            acc = x.fma(x, acc);
        }
        double sum = VecMath.hsumDouble(acc); // lanes in lane order, not reduceLanes(ADD): see VecMath.hsum
        for (; i < n; i++) sum += (double) a[off + i] * a[off + i];
        return sum;
    }

    private static void scale(float[] a, int off, int n, float c, Parallel par) {
        Parallel.RangeBody body = (s, e) -> {
            int i = s, bound = s + S.loopBound(e - s);
            for (; i < bound; i += S.length()) FloatVector.fromArray(S, a, off + i).mul(c).intoArray(a, off + i);
            for (; i < e; i++) a[off + i] *= c;
        };
        if (par == null || n < (1 << 15)) body.run(0, n);
        else par.forRange(n, body);
    }
}
