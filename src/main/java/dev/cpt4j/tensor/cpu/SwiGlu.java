package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The gated MLP activation of the LLaMA family (transformers LlamaMLP / Qwen2MLP / Qwen3MLP / MistralMLP with
 * hidden_act "silu": down_proj(act_fn(gate_proj(x)) * up_proj(x))): out = silu(gate) ⊙ up, silu(x) = x·σ(x), in fp32,
 * element-wise over n contiguous elements. σ uses {@link VecMath#sigmoid} (vectorised exp, ~2 ulp). Backward
 * overwrites dgate and dup (gate and up are two separate GEMM outputs, each written once). Not the projections.
 */
public final class SwiGlu {
    private SwiGlu() {}

    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    private static final int BLOCK = 4096;

    /** out[i] = silu(gate[i])·up[i] for i in [0, n). out may be gate or up. */
    public static void forward(Parallel par, float[] out, int outOff, float[] gate, int gOff, float[] up, int uOff, int n) {
        par.forRange(blocks(n), (b0, b1) -> {
            int i = b0 * BLOCK, end = Math.min(n, b1 * BLOCK), ub = i + S.loopBound(end - i);
            for (; i < ub; i += S.length()) {
                FloatVector g = FloatVector.fromArray(S, gate, gOff + i);
                g.mul(VecMath.sigmoid(g)).mul(FloatVector.fromArray(S, up, uOff + i)).intoArray(out, outOff + i);
            }
            for (; i < end; i++) {
                float g = gate[gOff + i];
                out[outOff + i] = g * VecMath.sigmoid(g) * up[uOff + i];
            }
        });
    }

    /**
     * dgate[i] = dout[i]·up[i]·silu'(gate[i]), dup[i] = dout[i]·silu(gate[i]) (both overwritten), with
     * silu'(x) = σ(x)·(1 + x·(1 − σ(x))). dgate/dup may alias gate/up respectively (each element is read before it is
     * written).
     */
    public static void backward(Parallel par, float[] dgate, int dgOff, float[] dup, int duOff, float[] dout, int dOff,
                                float[] gate, int gOff, float[] up, int uOff, int n) {
        par.forRange(blocks(n), (b0, b1) -> {
            int i = b0 * BLOCK, end = Math.min(n, b1 * BLOCK), ub = i + S.loopBound(end - i);
            for (; i < ub; i += S.length()) {
                FloatVector g = FloatVector.fromArray(S, gate, gOff + i), u = FloatVector.fromArray(S, up, uOff + i);
                FloatVector d = FloatVector.fromArray(S, dout, dOff + i);
                FloatVector s = VecMath.sigmoid(g), silu = g.mul(s);
                FloatVector ds = s.add(silu.mul(s.neg().add(1f))); // σ + x·σ·(1 − σ)
                d.mul(u).mul(ds).intoArray(dgate, dgOff + i);
                d.mul(silu).intoArray(dup, duOff + i);
            }
            for (; i < end; i++) {
                float g = gate[gOff + i], u = up[uOff + i], d = dout[dOff + i];
                float s = VecMath.sigmoid(g), silu = g * s;
                dgate[dgOff + i] = d * u * (s + silu * (1f - s));
                dup[duOff + i] = d * silu;
            }
        });
    }

    private static int blocks(int n) {
        return (n + BLOCK - 1) / BLOCK;
    }

    /** Naive twin of {@link #forward}: the textbook formula in double. */
    public static void forwardNaive(float[] out, float[] gate, float[] up, int n) {
        for (int i = 0; i < n; i++) {
            double g = gate[i];
            out[i] = (float) (g / (1 + Math.exp(-g)) * up[i]);
        }
    }

    /** Naive twin of {@link #backward}: the analytic derivative in double; overwrites dgate and dup. */
    public static void backwardNaive(float[] dgate, float[] dup, float[] dout, float[] gate, float[] up, int n) {
        for (int i = 0; i < n; i++) {
            double g = gate[i], s = 1 / (1 + Math.exp(-g));
            dgate[i] = (float) (dout[i] * (double) up[i] * (s + g * s * (1 - s)));
            dup[i] = (float) (dout[i] * g * s);
        }
    }
}
