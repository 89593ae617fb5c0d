package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.List;

/**
 * Rotary position embedding as transformers 5 applies it to the LLaMA family (modeling_llama.py
 * {@code LlamaRotaryEmbedding}, {@code rotate_half}, {@code apply_rotary_pos_emb}; the inverse frequencies of
 * modeling_rope_utils.py {@code _compute_*_parameters}): rotate-half layout, i.e. dimension i is paired with
 * i + d/2 (not interleaved), {@code x' = x·cos + rotate_half(x)·sin} with cos/sin = cat(freqs, freqs)·attention_scaling
 * and freqs = pos·inv_freq in fp32.
 *
 * <p>The inverse frequencies repeat torch's fp32 arithmetic step by step: every tensor op is one fp32 rounding, python
 * scalars enter an op cast to fp32, and {@code base ** t} is the correctly rounded fp32 power of the fp32 base (torch's
 * vectorised powf is within 1 ulp of that; a few elements in a thousand differ by that ulp). cos and sin of the fp32
 * angle are correctly rounded (torch's are within 1 ulp). Not here: "longrope", "proportional", partial rotary
 * factors, the interleaved (GPT-J) layout, and the stateful cache of transformers' dynamic update (see
 * {@link #invFreq}).
 *
 * <p>x layout: rows = B·T tokens, each (nHeads, headDim) contiguous; token r sits at position pos0 + r % T. Tables
 * cos, sin: (positions, headDim/2), row p for position p. Forward and backward work in place, parallel over tokens;
 * each element is computed the same way whatever the thread count.
 */
public final class Rope {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** The rope types supported (transformers' ROPE_INIT_FUNCTIONS minus longrope). */
    public static final List<String> TYPES = List.of("default", "linear", "dynamic", "yarn", "llama3");

    /**
     * A config's {@code rope_parameters} / {@code rope_scaling} (key {@code rope_type}, legacy {@code type}).
     * Absent keys: {@code factor} NaN (yarn then uses max_position_embeddings / original_max_position_embeddings),
     * {@code originalMaxPositionEmbeddings} 0 (→ max_position_embeddings, as transformers' standardize_rope_params),
     * {@code betaFast}/{@code betaSlow} 0 (→ 32 / 1, transformers' {@code get(...) or 32}), the boxed fields null;
     * {@code truncate} defaults to true in transformers.
     */
    public record Scaling(String type, double factor, int originalMaxPositionEmbeddings, double lowFreqFactor,
                          double highFreqFactor, double betaFast, double betaSlow, Double attentionFactor,
                          Double mscale, Double mscaleAllDim, boolean truncate) {
        /** No scaling (transformers' "default"). */
        public static final Scaling DEFAULT = new Scaling("default", 1.0, 0, 0, 0, 0, 0, null, null, null, true);

        public Scaling {
            if (type == null || !TYPES.contains(type))
                throw new IllegalArgumentException("unsupported RoPE type " + (type == null ? "null" : "'" + type + "'")
                        + "; supported: " + String.join(", ", TYPES));
            boolean needsFactor = !type.equals("default") && !(type.equals("yarn") && Double.isNaN(factor));
            if (needsFactor && !(factor > 0))
                throw new IllegalArgumentException("RoPE type '" + type + "' needs factor > 0, got " + factor);
            if (originalMaxPositionEmbeddings < 0)
                throw new IllegalArgumentException("original_max_position_embeddings must be >= 0 (0: absent), got "
                        + originalMaxPositionEmbeddings);
            if (type.equals("llama3") && !(highFreqFactor > lowFreqFactor && lowFreqFactor > 0))
                throw new IllegalArgumentException("llama3 RoPE needs high_freq_factor > low_freq_factor > 0, got "
                        + highFreqFactor + " and " + lowFreqFactor);
        }
    }

    private final Scaling scaling;
    private final double theta;
    private final int headDim, maxPositionEmbeddings;
    private final float attentionScaling;
    private final float[] invFreq; // (headDim/2) for every seqLen (dynamic: for seqLen <= maxPositionEmbeddings)

    private Rope(Scaling s, double theta, int headDim, int maxPositionEmbeddings) {
        this.scaling = s;
        this.theta = theta;
        this.headDim = headDim;
        this.maxPositionEmbeddings = maxPositionEmbeddings;
        double att = 1.0;
        switch (s.type()) {
            case "default" -> invFreq = defaultInvFreq(theta, headDim);
            case "linear" -> {
                invFreq = defaultInvFreq(theta, headDim);
                float f = (float) s.factor();
                for (int i = 0; i < invFreq.length; i++) invFreq[i] /= f;
            }
            case "dynamic" -> invFreq = dynamicInvFreq(maxPositionEmbeddings);
            case "yarn" -> {
                double factor = Double.isNaN(s.factor()) ? (double) maxPositionEmbeddings / originalMax() : s.factor();
                if (s.attentionFactor() != null) att = s.attentionFactor();
                else if (s.mscale() != null && s.mscaleAllDim() != null && s.mscale() != 0 && s.mscaleAllDim() != 0)
                    att = mscale(factor, s.mscale()) / mscale(factor, s.mscaleAllDim());
                else att = mscale(factor, 1);
                invFreq = yarnInvFreq(factor);
            }
            case "llama3" -> invFreq = llama3InvFreq();
            default -> throw new AssertionError(s.type());
        }
        this.attentionScaling = (float) att;
    }

    /**
     * The RoPE of a config: {@code theta} ({@code rope_theta}), {@code headDim} (the config's head_dim, else
     * hidden/heads), {@code maxPositionEmbeddings} (config.max_position_embeddings).
     */
    public static Rope of(Scaling s, double theta, int headDim, int maxPositionEmbeddings) {
        if (s == null) throw new IllegalArgumentException("RoPE scaling must not be null (use Rope.Scaling.DEFAULT)");
        if (headDim < 2 || headDim % 2 != 0)
            throw new IllegalArgumentException("RoPE needs an even head_dim >= 2, got " + headDim);
        if (!(theta > 0)) throw new IllegalArgumentException("rope_theta must be > 0, got " + theta);
        if (maxPositionEmbeddings < 1)
            throw new IllegalArgumentException("max_position_embeddings must be >= 1, got " + maxPositionEmbeddings);
        if (s.type().equals("dynamic") && headDim < 4)
            throw new IllegalArgumentException("dynamic RoPE needs head_dim >= 4 (its exponent is d/(d-2)), got " + headDim);
        return new Rope(s, theta, headDim, maxPositionEmbeddings);
    }

    public Scaling scaling() {
        return scaling;
    }

    /** True when the frequencies depend on the sequence length ("dynamic" scaling). */
    public boolean dependsOnLength() {
        return scaling.type().equals("dynamic");
    }

    public int headDim() {
        return headDim;
    }

    /** The factor cos and sin are multiplied by (yarn's attention factor; 1 for the other types). */
    public float attentionScaling() {
        return attentionScaling;
    }

    /**
     * inv_freq (headDim/2), a fresh array. {@code seqLen} matters only for "dynamic": the base grows once seqLen passes
     * max_position_embeddings. (transformers keeps the largest length seen so far and resets only below the original
     * length; this is the pure function of the length it is given.)
     */
    public float[] invFreq(int seqLen) {
        if (scaling.type().equals("dynamic") && seqLen > maxPositionEmbeddings) return dynamicInvFreq(seqLen);
        return invFreq.clone();
    }

    /**
     * cos, sin (T, headDim/2) for positions 0..T-1, already multiplied by {@link #attentionScaling()}: the first half
     * of transformers' cat(freqs, freqs) (the second half is identical). {@code seqLen}: the length dynamic scaling
     * is computed for (usually the longest position + 1).
     */
    public void table(int seqLen, int T, float[] cos, float[] sin) {
        int half = headDim / 2;
        if (cos.length < T * half || sin.length < T * half)
            throw new IllegalArgumentException("RoPE tables need T·headDim/2 = " + T * half + " floats, got "
                    + cos.length + " and " + sin.length);
        float[] inv = invFreq(seqLen);
        for (int t = 0; t < T; t++)
            for (int i = 0; i < half; i++) {
                float f = inv[i] * (float) t; // the K = 1 product inv_freq @ position_ids
                cos[t * half + i] = (float) StrictMath.cos(f) * attentionScaling;
                sin[t * half + i] = (float) StrictMath.sin(f) * attentionScaling;
            }
    }

    // ---- inverse frequencies (modeling_rope_utils.py), fp32 step by step ----

    /** fp32 {@code base ** (arange(0, dim, 2).float() / dim)}: the correctly rounded power of the fp32 operands. */
    private static float powF(double base, int i2, int dim) {
        float t = (float) i2 / (float) dim;
        return (float) StrictMath.pow((float) base, t);
    }

    /** _compute_default_rope_parameters: 1 / base^(2i/d). */
    private static float[] defaultInvFreq(double base, int dim) {
        float[] inv = new float[dim / 2];
        for (int i = 0; i < inv.length; i++) inv[i] = 1f / powF(base, 2 * i, dim);
        return inv;
    }

    /** _compute_dynamic_ntk_parameters: base·(factor·L/max − (factor − 1))^(d/(d−2)), L = max(seqLen, max). */
    private float[] dynamicInvFreq(int seqLen) {
        double L = Math.max(seqLen, maxPositionEmbeddings), f = scaling.factor();
        double base = theta * StrictMath.pow((f * L / maxPositionEmbeddings) - (f - 1), (double) headDim / (headDim - 2));
        return defaultInvFreq(base, headDim);
    }

    private int originalMax() {
        int o = scaling.originalMaxPositionEmbeddings();
        return o > 0 ? o : maxPositionEmbeddings;
    }

    /** yarn's get_mscale. */
    private static double mscale(double scale, double m) {
        return scale <= 1 ? 1.0 : 0.1 * m * Math.log(scale) + 1.0;
    }

    /** yarn's find_correction_dim: the dimension whose wavelength makes numRotations turns over the context. */
    private double correctionDim(double numRotations, int orig) {
        return (headDim * Math.log(orig / (numRotations * 2 * Math.PI))) / (2 * Math.log(theta));
    }

    /** _compute_yarn_parameters: interpolation/extrapolation blended by a linear ramp over the correction range. */
    private float[] yarnInvFreq(double factor) {
        int dim = headDim, half = dim / 2, orig = originalMax();
        double betaFast = scaling.betaFast() != 0 ? scaling.betaFast() : 32;
        double betaSlow = scaling.betaSlow() != 0 ? scaling.betaSlow() : 1;
        double low = correctionDim(betaFast, orig), high = correctionDim(betaSlow, orig);
        if (scaling.truncate()) {
            low = Math.floor(low);
            high = Math.ceil(high);
        }
        low = Math.max(low, 0);
        high = Math.min(high, dim - 1);
        if (low == high) high += 0.001; // transformers: prevent singularity
        float lowF = (float) low, spanF = (float) (high - low), factorF = (float) factor;
        float[] inv = new float[half];
        for (int i = 0; i < half; i++) {
            float pos = powF(theta, 2 * i, dim);
            float extrap = 1f / pos, interp = 1f / (factorF * pos);
            float ramp = Math.min(Math.max(((float) i - lowF) / spanF, 0f), 1f);
            float extrapFactor = 1f - ramp;
            inv[i] = interp * (1f - extrapFactor) + extrap * extrapFactor;
        }
        return inv;
    }

    /** _compute_llama3_parameters: low frequencies divided by factor, high kept, a smooth blend between. */
    private float[] llama3InvFreq() {
        float[] inv = defaultInvFreq(theta, headDim);
        double oldLen = originalMax(), lowF = scaling.lowFreqFactor(), highF = scaling.highFreqFactor();
        float lowWavelen = (float) (oldLen / lowF), highWavelen = (float) (oldLen / highF);
        float factor = (float) scaling.factor(), twoPi = (float) (2 * Math.PI);
        float oldLenF = (float) oldLen, lowFF = (float) lowF, spanF = (float) (highF - lowF);
        for (int i = 0; i < inv.length; i++) {
            float wavelen = twoPi / inv[i];
            float llama = wavelen > lowWavelen ? inv[i] / factor : inv[i];
            float smooth = (oldLenF / wavelen - lowFF) / spanF;
            float smoothed = (1f - smooth) * llama / factor + smooth * llama;
            boolean medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
            inv[i] = medium ? smoothed : llama;
        }
        return inv;
    }

    // ---- the rotation ----

    /**
     * x (rows, nHeads·headDim) ← rotated in place: for i &lt; d/2 with c, s = cos, sin[pos0 + r % T][i],
     * x_i' = x_i·c − x_{i+d/2}·s, x_{i+d/2}' = x_{i+d/2}·c + x_i·s (the fp32 roundings of transformers'
     * {@code q*cos + rotate_half(q)*sin}). The tables need pos0 + T rows.
     */
    public static void forward(Parallel par, float[] x, int xOff, int rows, int T, int nHeads, int headDim,
                               float[] cos, float[] sin, int pos0) {
        apply(par, x, xOff, rows, T, nHeads, headDim, cos, sin, pos0, null, false);
    }

    /**
     * As {@link #forward(Parallel, float[], int, int, int, int, int, float[], float[], int)} with row r at position
     * r % T − starts[r] (neat packing: positions restart at 0 where a document starts; starts null: r % T).
     */
    public static void forward(Parallel par, float[] x, int xOff, int rows, int T, int nHeads, int headDim,
                               float[] cos, float[] sin, int[] starts) {
        apply(par, x, xOff, rows, T, nHeads, headDim, cos, sin, 0, starts, false);
    }

    /** The gradient through {@link #forward}, in place on dx: the transposed rotation (angle −θ). */
    public static void backward(Parallel par, float[] dx, int dxOff, int rows, int T, int nHeads, int headDim,
                                float[] cos, float[] sin, int pos0) {
        apply(par, dx, dxOff, rows, T, nHeads, headDim, cos, sin, pos0, null, true);
    }

    /** The gradient through the packed {@link #forward(Parallel, float[], int, int, int, int, int, float[], float[], int[])}. */
    public static void backward(Parallel par, float[] dx, int dxOff, int rows, int T, int nHeads, int headDim,
                                float[] cos, float[] sin, int[] starts) {
        apply(par, dx, dxOff, rows, T, nHeads, headDim, cos, sin, 0, starts, true);
    }

    private static void apply(Parallel par, float[] x, int xOff, int rows, int T, int nHeads, int headDim,
                              float[] cos, float[] sin, int pos0, int[] starts, boolean transpose) {
        int half = headDim / 2, width = nHeads * headDim;
        par.forRange(rows, (r0, r1) -> {
            int ub = S.loopBound(half);
            for (int r = r0; r < r1; r++) {
                int to = (pos0 + r % T - (starts == null ? 0 : starts[r])) * half;
                for (int h = 0; h < nHeads; h++) {
                    int a = xOff + r * width + h * headDim, b = a + half;
                    int i = 0;
                    for (; i < ub; i += S.length()) {
                        FloatVector x1 = FloatVector.fromArray(S, x, a + i), x2 = FloatVector.fromArray(S, x, b + i);
                        FloatVector c = FloatVector.fromArray(S, cos, to + i), s = FloatVector.fromArray(S, sin, to + i);
                        if (transpose) {
                            x1.mul(c).add(x2.mul(s)).intoArray(x, a + i);
                            x2.mul(c).sub(x1.mul(s)).intoArray(x, b + i);
                        } else {
                            x1.mul(c).sub(x2.mul(s)).intoArray(x, a + i);
                            x2.mul(c).add(x1.mul(s)).intoArray(x, b + i);
                        }
                    }
                    for (; i < half; i++) {
                        float x1 = x[a + i], x2 = x[b + i], c = cos[to + i], s = sin[to + i];
                        if (transpose) {
                            x[a + i] = x1 * c + x2 * s;
                            x[b + i] = x2 * c - x1 * s;
                        } else {
                            x[a + i] = x1 * c - x2 * s;
                            x[b + i] = x2 * c + x1 * s;
                        }
                    }
                }
            }
        });
    }

    /** Naive twin of {@link #forward}: transformers' formula literally, cat(−x2, x1) materialised per head. */
    public static void forwardNaive(float[] x, int xOff, int rows, int T, int nHeads, int headDim, float[] cos,
                                    float[] sin, int pos0) {
        forwardNaive(x, xOff, rows, T, nHeads, headDim, cos, sin, pos0, null);
    }

    /** Naive twin with positions from starts (see the packed forward). */
    public static void forwardNaive(float[] x, int xOff, int rows, int T, int nHeads, int headDim, float[] cos,
                                    float[] sin, int pos0, int[] starts) {
        int half = headDim / 2;
        float[] rot = new float[headDim];
        for (int r = 0; r < rows; r++) {
            int t = pos0 + r % T - (starts == null ? 0 : starts[r]);
            for (int h = 0; h < nHeads; h++) {
                int o = xOff + (r * nHeads + h) * headDim;
                for (int i = 0; i < half; i++) {
                    rot[i] = -x[o + half + i];
                    rot[half + i] = x[o + i];
                }
                for (int i = 0; i < headDim; i++) {
                    float c = cos[t * half + i % half], s = sin[t * half + i % half];
                    x[o + i] = x[o + i] * c + rot[i] * s;
                }
            }
        }
    }

    /** Naive twin of {@link #backward}: dx = Rᵀ·dy with the rotation matrix R of each pair written out. */
    public static void backwardNaive(float[] dx, int dxOff, int rows, int T, int nHeads, int headDim, float[] cos,
                                     float[] sin, int pos0) {
        backwardNaive(dx, dxOff, rows, T, nHeads, headDim, cos, sin, pos0, null);
    }

    /** Naive twin with positions from starts (see the packed forward). */
    public static void backwardNaive(float[] dx, int dxOff, int rows, int T, int nHeads, int headDim, float[] cos,
                                     float[] sin, int pos0, int[] starts) {
        int half = headDim / 2;
        for (int r = 0; r < rows; r++) {
            int t = pos0 + r % T - (starts == null ? 0 : starts[r]);
            for (int h = 0; h < nHeads; h++) {
                int o = dxOff + (r * nHeads + h) * headDim;
                for (int i = 0; i < half; i++) {
                    double c = cos[t * half + i], s = sin[t * half + i];
                    double[][] R = {{c, -s}, {s, c}}; // (y1, y2) = R·(x1, x2)
                    double g1 = dx[o + i], g2 = dx[o + half + i];
                    dx[o + i] = (float) (R[0][0] * g1 + R[1][0] * g2);
                    dx[o + half + i] = (float) (R[0][1] * g1 + R[1][1] * g2);
                }
            }
        }
    }
}
