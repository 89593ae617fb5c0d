package dev.cpt4j.tensor.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Vectorised transcendental functions for the kernels: exp (Cephes expf polynomial, ~2 ulp), sigmoid, erf
 * (Abramowitz–Stegun 7.1.26, |error| ≤ 1.5e-7). Written out with plain lane arithmetic instead of
 * {@code VectorOperators.EXP} so the result does not depend on which intrinsic stubs the JDK has, and so a scalar
 * {@code Math.tanh} never sits in a hot loop. Scalar twins of the same formulas serve loop tails.
 */
public final class VecMath {
    private VecMath() {}

    static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    private static final float EXP_HI = 88.0f, EXP_LO = -87.0f;
    private static final float P0 = 1.9875691500E-4f, P1 = 1.3981999507E-3f, P2 = 8.3334519073E-3f,
            P3 = 4.1665795894E-2f, P4 = 1.6666665459E-1f, P5 = 5.0000001201E-1f;
    private static final float ROUND_MAGIC = 12582912f; // 1.5·2^23: adding it rounds to an integer in the low bits

    /** e^x lane-wise; inputs below -87 give ~e^-87 (not 0), above 88 give e^88. */
    public static FloatVector exp(FloatVector x) {
        x = x.max(EXP_LO).min(EXP_HI);
        FloatVector y = x.fma(LOG2E, ROUND_MAGIC);
        FloatVector n = y.sub(ROUND_MAGIC);
        IntVector ni = y.reinterpretAsInts().sub(0x4B400000);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), x);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = r.fma(P0, P1).fma(r, FloatVector.broadcast(S, P2)).fma(r, FloatVector.broadcast(S, P3))
                .fma(r, FloatVector.broadcast(S, P4)).fma(r, FloatVector.broadcast(S, P5));
        FloatVector r2 = r.mul(r);
        p = p.fma(r2, r).add(1f);
        FloatVector pow2 = ni.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(pow2);
    }

    /** Scalar twin of {@link #exp(FloatVector)} (same formula, for loop tails). */
    public static float exp(float x) {
        x = Math.min(Math.max(x, EXP_LO), EXP_HI);
        float y = Math.fma(x, LOG2E, ROUND_MAGIC);
        float n = y - ROUND_MAGIC;
        int ni = Float.floatToRawIntBits(y) - 0x4B400000;
        float r = Math.fma(n, -LN2_HI, x);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(Math.fma(Math.fma(Math.fma(Math.fma(P0, r, P1), r, P2), r, P3), r, P4), r, P5);
        p = Math.fma(p, r * r, r) + 1f;
        return p * Float.intBitsToFloat((ni + 127) << 23);
    }

    /** 1 / (1 + e^-x) lane-wise. */
    public static FloatVector sigmoid(FloatVector x) {
        FloatVector one = FloatVector.broadcast(x.species(), 1f);
        return one.div(exp(x.neg()).add(1f));
    }

    public static float sigmoid(float x) {
        return 1f / (1f + exp(-x));
    }

    private static final float ERF_P = 0.3275911f, A1 = 0.254829592f, A2 = -0.284496736f, A3 = 1.421413741f,
            A4 = -1.453152027f, A5 = 1.061405429f;

    /** erf(x) lane-wise (Abramowitz &amp; Stegun 7.1.26). */
    public static FloatVector erf(FloatVector x) {
        FloatVector ax = x.abs();
        FloatVector one = FloatVector.broadcast(x.species(), 1f);
        FloatVector t = one.div(ax.fma(ERF_P, 1f));
        FloatVector poly = t.fma(A5, A4).fma(t, FloatVector.broadcast(S, A3)).fma(t, FloatVector.broadcast(S, A2))
                .fma(t, FloatVector.broadcast(S, A1)).mul(t);
        FloatVector y = one.sub(poly.mul(exp(ax.mul(ax).neg())));
        return y.blend(y.neg(), x.compare(VectorOperators.LT, 0f));
    }

    public static float erf(float x) {
        float ax = Math.abs(x);
        float t = 1f / Math.fma(ax, ERF_P, 1f);
        float poly = Math.fma(Math.fma(Math.fma(Math.fma(A5, t, A4), t, A3), t, A2), t, A1) * t;
        float y = 1f - poly * exp(-ax * ax);
        return x < 0 ? -y : y;
    }

    /**
     * Sum of the lanes, in lane order ((l0 + l1) + l2) + …. Every floating-point horizontal sum in cpt4j goes through
     * here instead of {@code reduceLanes(ADD)}: the JDK leaves that order unspecified (the interpreter sums in lane
     * order, C2 in a tree), so results would change once the JIT compiles a kernel — and a resumed run would drift
     * from an uninterrupted one. KernelDeterminismTest checks kernels interpreted against compiled, bit for bit.
     */
    public static float hsum(FloatVector v) {
        float s = 0f;
        for (int i = 0; i < v.length(); i++) s += v.lane(i);
        return s;
    }

    /** {@link #hsum} accumulated in double (lane order). */
    public static double hsumDouble(FloatVector v) {
        double s = 0;
        for (int i = 0; i < v.length(); i++) s += v.lane(i);
        return s;
    }

    /** Sum of all elements of a[off, off+n) with lane-wise partial sums. */
    public static float sum(float[] a, int off, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector acc = FloatVector.zero(S);
        for (; i < ub; i += S.length()) acc = acc.add(FloatVector.fromArray(S, a, off + i));
        float s = VecMath.hsum(acc);
        for (; i < n; i++) s += a[off + i];
        return s;
    }

    /** Dot product of a[aOff, aOff+n) and b[bOff, bOff+n). */
    public static float dot(float[] a, int aOff, float[] b, int bOff, int n) {
        int i = 0, ub = S.loopBound(n);
        FloatVector acc = FloatVector.zero(S);
        for (; i < ub; i += S.length())
            acc = FloatVector.fromArray(S, a, aOff + i).fma(FloatVector.fromArray(S, b, bOff + i), acc);
        float s = VecMath.hsum(acc);
        for (; i < n; i++) s += a[aOff + i] * b[bOff + i];
        return s;
    }

    /** y[yOff..] += alpha · x[xOff..] over n elements. */
    public static void axpy(float alpha, float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += S.length())
            FloatVector.fromArray(S, x, xOff + i).fma(FloatVector.broadcast(S, alpha), FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += alpha * x[xOff + i];
    }

    /** y[yOff..] += x[xOff..] over n elements. */
    public static void add(float[] x, int xOff, float[] y, int yOff, int n) {
        int i = 0, ub = S.loopBound(n);
        for (; i < ub; i += S.length())
            FloatVector.fromArray(S, x, xOff + i).add(FloatVector.fromArray(S, y, yOff + i)).intoArray(y, yOff + i);
        for (; i < n; i++) y[yOff + i] += x[xOff + i];
    }

    /** a[off+j] = exp(a[off+j] − max) for j < n, in place; returns their sum (lane-order summation, deterministic). */
    static float expShift(float[] a, int off, int n, float max) {
        int i = 0, ub = S.loopBound(n);
        FloatVector acc = FloatVector.zero(S);
        for (; i < ub; i += S.length()) {
            FloatVector e = exp(FloatVector.fromArray(S, a, off + i).sub(max));
            e.intoArray(a, off + i);
            acc = acc.add(e);
        }
        float s = hsum(acc);
        for (; i < n; i++) {
            a[off + i] = exp(a[off + i] - max);
            s += a[off + i];
        }
        return s;
    }
}
