package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The MLP activations transformers' ACT2FN names for GPT-2 configs, forward and backward, element-wise over a
 * flat buffer. The tanh-approximated GELUs are computed as x·σ(2u) (since ½(1+tanh u) = σ(2u)) with a vectorised
 * exp, never a scalar tanh; exact {@code gelu} uses an erf approximation accurate to 1.5e-7.
 * Backward adds into dIn.
 */
public enum Activation {
    /** transformers NewGELUActivation: 0.5x(1+tanh(√(2/π)(x+0.044715x³))). */
    GELU_NEW("gelu_new"),
    /** transformers FastGELUActivation: 0.5x(1+tanh(0.7978845608·x(1+0.044715x²))). */
    GELU_FAST("gelu_fast"),
    /** torch gelu(approximate='tanh'), the same formula as gelu_new. */
    GELU_PYTORCH_TANH("gelu_pytorch_tanh"),
    /** torch gelu: 0.5x(1+erf(x/√2)). */
    GELU("gelu"),
    RELU("relu"),
    /** x·σ(1.702x). */
    QUICK_GELU("quick_gelu"),
    /** x·σ(x). */
    SILU("silu");

    private final String hfName;

    Activation(String hfName) {
        this.hfName = hfName;
    }

    public String hfName() {
        return hfName;
    }

    /** The activation for a config.json {@code activation_function} value. */
    public static Activation of(String hfName) {
        for (Activation a : values()) if (a.hfName.equals(hfName)) return a;
        throw new IllegalArgumentException("unknown activation_function " + hfName);
    }

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final float SQRT_2_OVER_PI = 0.7978845608028654f;
    private static final float FAST_K = 0.7978845608f;
    private static final float C3 = 0.044715f;
    private static final float INV_SQRT2 = 0.70710678118654752f;
    private static final float INV_SQRT_2PI = 0.3989422804014327f;

    private float tanhK() {
        return this == GELU_FAST ? FAST_K : SQRT_2_OVER_PI;
    }

    /** out[i] = act(in[i]) for i in [0, n). out may be in. */
    public void forward(Parallel par, float[] out, int outOff, float[] in, int inOff, int n) {
        par.forRange(blocks(n), (b0, b1) -> {
            int i = b0 * BLOCK, end = Math.min(n, b1 * BLOCK), ub = i + S.loopBound(end - i);
            for (; i < ub; i += S.length()) fwd(FloatVector.fromArray(S, in, inOff + i)).intoArray(out, outOff + i);
            for (; i < end; i++) out[outOff + i] = fwd(in[inOff + i]);
        });
    }

    /** dIn[i] += dOut[i]·act'(in[i]) for i in [0, n). */
    public void backward(Parallel par, float[] dIn, int dInOff, float[] dOut, int dOutOff, float[] in, int inOff, int n) {
        par.forRange(blocks(n), (b0, b1) -> {
            int i = b0 * BLOCK, end = Math.min(n, b1 * BLOCK), ub = i + S.loopBound(end - i);
            for (; i < ub; i += S.length()) {
                FloatVector d = grad(FloatVector.fromArray(S, in, inOff + i)).mul(FloatVector.fromArray(S, dOut, dOutOff + i));
                d.add(FloatVector.fromArray(S, dIn, dInOff + i)).intoArray(dIn, dInOff + i);
            }
            for (; i < end; i++) dIn[dInOff + i] += dOut[dOutOff + i] * grad(in[inOff + i]);
        });
    }

    private static final int BLOCK = 4096;

    private static int blocks(int n) {
        return (n + BLOCK - 1) / BLOCK;
    }

    private FloatVector fwd(FloatVector x) {
        switch (this) {
            case GELU_NEW, GELU_FAST, GELU_PYTORCH_TANH -> {
                FloatVector u = x.mul(x).fma(C3, 1f).mul(x).mul(2f * tanhK());
                return x.mul(VecMath.sigmoid(u));
            }
            case GELU -> {
                return x.mul(0.5f).mul(VecMath.erf(x.mul(INV_SQRT2)).add(1f));
            }
            case RELU -> {
                return x.max(0f);
            }
            case QUICK_GELU -> {
                return x.mul(VecMath.sigmoid(x.mul(1.702f)));
            }
            default -> {
                return x.mul(VecMath.sigmoid(x));
            }
        }
    }

    private FloatVector grad(FloatVector x) {
        switch (this) {
            case GELU_NEW, GELU_FAST, GELU_PYTORCH_TANH -> {
                float k2 = 2f * tanhK();
                FloatVector x2 = x.mul(x);
                FloatVector s = VecMath.sigmoid(x2.fma(C3, 1f).mul(x).mul(k2));
                // d/dx x·σ(2u) = σ + x·σ(1−σ)·2u', 2u' = 2k(1 + 3·0.044715x²)
                FloatVector du = x2.fma(3f * C3, 1f).mul(k2);
                return s.add(x.mul(s).mul(s.neg().add(1f)).mul(du));
            }
            case GELU -> {
                FloatVector cdf = VecMath.erf(x.mul(INV_SQRT2)).add(1f).mul(0.5f);
                FloatVector pdf = VecMath.exp(x.mul(x).mul(-0.5f)).mul(INV_SQRT_2PI);
                return x.fma(pdf, cdf);
            }
            case RELU -> {
                FloatVector one = FloatVector.broadcast(S, 1f);
                return FloatVector.zero(S).blend(one, x.compare(VectorOperators.GT, 0f));
            }
            case QUICK_GELU -> {
                FloatVector s = VecMath.sigmoid(x.mul(1.702f));
                return s.add(x.mul(1.702f).mul(s).mul(s.neg().add(1f)));
            }
            default -> {
                FloatVector s = VecMath.sigmoid(x);
                return s.add(x.mul(s).mul(s.neg().add(1f)));
            }
        }
    }

    private float fwd(float x) {
        return switch (this) {
            case GELU_NEW, GELU_FAST, GELU_PYTORCH_TANH -> x * VecMath.sigmoid(2f * tanhK() * x * (1f + C3 * x * x));
            case GELU -> 0.5f * x * (1f + VecMath.erf(x * INV_SQRT2));
            case RELU -> Math.max(0f, x);
            case QUICK_GELU -> x * VecMath.sigmoid(1.702f * x);
            case SILU -> x * VecMath.sigmoid(x);
        };
    }

    private float grad(float x) {
        switch (this) {
            case GELU_NEW, GELU_FAST, GELU_PYTORCH_TANH -> {
                float k2 = 2f * tanhK();
                float s = VecMath.sigmoid(k2 * x * (1f + C3 * x * x));
                return s + x * s * (1f - s) * k2 * (1f + 3f * C3 * x * x);
            }
            case GELU -> {
                return 0.5f * (1f + VecMath.erf(x * INV_SQRT2)) + x * INV_SQRT_2PI * VecMath.exp(-0.5f * x * x);
            }
            case RELU -> {
                return x > 0 ? 1f : 0f;
            }
            case QUICK_GELU -> {
                float s = VecMath.sigmoid(1.702f * x);
                return s + 1.702f * x * s * (1f - s);
            }
            default -> {
                float s = VecMath.sigmoid(x);
                return s + x * s * (1f - s);
            }
        }
    }

    /** Naive twin of {@link #forward}: the textbook formulas in double (Math.tanh, a series erf). */
    public void forwardNaive(float[] out, float[] in, int n) {
        for (int i = 0; i < n; i++) out[i] = (float) fwdRef(in[i]);
    }

    /** Naive twin of {@link #backward} (central differences of {@link #forwardNaive}'s formula in double would be
     *  too coarse, so the analytic derivative in double). */
    public void backwardNaive(float[] dIn, float[] dOut, float[] in, int n) {
        for (int i = 0; i < n; i++) dIn[i] += (float) (dOut[i] * gradRef(in[i]));
    }

    double fwdRef(double x) {
        return switch (this) {
            case GELU_NEW, GELU_PYTORCH_TANH -> 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
            case GELU_FAST -> 0.5 * x * (1 + Math.tanh(0.7978845608 * x * (1 + 0.044715 * x * x)));
            case GELU -> 0.5 * x * (1 + erfRef(x / Math.sqrt(2)));
            case RELU -> Math.max(0, x);
            case QUICK_GELU -> x / (1 + Math.exp(-1.702 * x));
            case SILU -> x / (1 + Math.exp(-x));
        };
    }

    double gradRef(double x) {
        switch (this) {
            case GELU_NEW, GELU_PYTORCH_TANH, GELU_FAST -> {
                double k = this == GELU_FAST ? 0.7978845608 : Math.sqrt(2 / Math.PI);
                double t = Math.tanh(k * (x + 0.044715 * x * x * x));
                return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
            }
            case GELU -> {
                return 0.5 * (1 + erfRef(x / Math.sqrt(2))) + x * Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
            }
            case RELU -> {
                return x > 0 ? 1 : 0;
            }
            case QUICK_GELU -> {
                double s = 1 / (1 + Math.exp(-1.702 * x));
                return s + 1.702 * x * s * (1 - s);
            }
            default -> {
                double s = 1 / (1 + Math.exp(-x));
                return s + x * s * (1 - s);
            }
        }
    }

    /** erf in double by its Maclaurin series (|x| < 4; beyond, erf = ±1 to 1.6e-8). */
    static double erfRef(double x) {
        double ax = Math.abs(x);
        if (ax >= 4) return Math.signum(x);
        double term = ax, sum = ax, x2 = ax * ax;
        for (int n = 1; n < 200; n++) {
            term *= -x2 / n;
            double t = term / (2 * n + 1);
            sum += t;
            if (Math.abs(t) < 1e-17) break;
        }
        double r = 2 / Math.sqrt(Math.PI) * sum;
        return x < 0 ? -r : r;
    }
}
