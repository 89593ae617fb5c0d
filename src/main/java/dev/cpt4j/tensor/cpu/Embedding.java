package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;

/**
 * GPT-2's input embedding: out[b, t] = wte[tokens[b, t]] + wpe[t], forward and backward. Backward scatter-adds
 * with threads splitting the channels (each thread walks all tokens in order), so repeated tokens accumulate in a
 * fixed order whatever the thread count. B batch, T time, C width.
 */
public final class Embedding {
    private Embedding() {}

    /** out (B, T, C) = wte (V, C)[tokens (B, T)] + wpe (maxT, C)[t]. */
    public static void forward(Parallel par, float[] out, int outOff, int[] tokens, int tokOff, float[] wte, int wteOff,
                               float[] wpe, int wpeOff, int B, int T, int C) {
        forward(par, out, outOff, tokens, tokOff, wte, wteOff, wpe, wpeOff, null, B, T, C);
    }

    /**
     * As {@link #forward(Parallel, float[], int, int[], int, float[], int, float[], int, int, int, int)} with the
     * position of token (b, t) counted from its document's start, {@code starts[b·T + t]} (neat packing: positions
     * restart at 0 where a document starts); starts null: position t.
     */
    public static void forward(Parallel par, float[] out, int outOff, int[] tokens, int tokOff, float[] wte, int wteOff,
                               float[] wpe, int wpeOff, int[] starts, int B, int T, int C) {
        par.forRange(B * T, (r0, r1) -> {
            var S = VecMath.S;
            for (int r = r0; r < r1; r++) {
                int t = r % T - (starts == null ? 0 : starts[r]), tok = tokens[tokOff + r];
                int eo = wteOff + tok * C, po = wpeOff + t * C, oo = outOff + r * C;
                int c = 0, ub = S.loopBound(C);
                for (; c < ub; c += S.length())
                    jdk.incubator.vector.FloatVector.fromArray(S, wte, eo + c)
                            .add(jdk.incubator.vector.FloatVector.fromArray(S, wpe, po + c)).intoArray(out, oo + c);
                for (; c < C; c++) out[oo + c] = wte[eo + c] + wpe[po + c];
            }
        });
    }

    /** dwte[tokens[b, t]] += dout[b, t]; dwpe[t] += dout[b, t]. dwte null skips the token embedding (frozen). */
    public static void backward(Parallel par, float[] dwte, int dwteOff, float[] dwpe, int dwpeOff, float[] dout, int dOff,
                                int[] tokens, int tokOff, int B, int T, int C) {
        backward(par, dwte, dwteOff, dwpe, dwpeOff, dout, dOff, tokens, tokOff, null, B, T, C);
    }

    /** The backward of the packed {@link #forward} (positions from {@code starts} as there; null: t). */
    public static void backward(Parallel par, float[] dwte, int dwteOff, float[] dwpe, int dwpeOff, float[] dout, int dOff,
                                int[] tokens, int tokOff, int[] starts, int B, int T, int C) {
        int S = VecMath.S.length();
        int blocks = (C + S - 1) / S;
        par.forRange(blocks, (b0, b1) -> {
            int c0 = b0 * S, c1 = Math.min(C, b1 * S), w = c1 - c0;
            for (int r = 0; r < B * T; r++) {
                int t = r % T - (starts == null ? 0 : starts[r]), go = dOff + r * C + c0;
                if (dwte != null) VecMath.add(dout, go, dwte, dwteOff + tokens[tokOff + r] * C + c0, w);
                if (dwpe != null) VecMath.add(dout, go, dwpe, dwpeOff + t * C + c0, w);
            }
        });
    }

    /** Naive twin of {@link #forward}. */
    public static void forwardNaive(float[] out, int[] tokens, float[] wte, float[] wpe, int B, int T, int C) {
        forwardNaive(out, tokens, wte, wpe, null, B, T, C);
    }

    /** Naive twin of the packed {@link #forward}. */
    public static void forwardNaive(float[] out, int[] tokens, float[] wte, float[] wpe, int[] starts, int B, int T, int C) {
        for (int r = 0; r < B * T; r++) {
            int t = r % T - (starts == null ? 0 : starts[r]);
            for (int c = 0; c < C; c++) out[r * C + c] = wte[tokens[r] * C + c] + wpe[t * C + c];
        }
    }

    /** Naive twin of {@link #backward}. */
    public static void backwardNaive(float[] dwte, float[] dwpe, float[] dout, int[] tokens, int B, int T, int C) {
        backwardNaive(dwte, dwpe, dout, tokens, null, B, T, C);
    }

    /** Naive twin of the packed {@link #backward}. */
    public static void backwardNaive(float[] dwte, float[] dwpe, float[] dout, int[] tokens, int[] starts, int B, int T, int C) {
        for (int r = 0; r < B * T; r++) {
            int t = r % T - (starts == null ? 0 : starts[r]);
            for (int c = 0; c < C; c++) {
                dwte[tokens[r] * C + c] += dout[r * C + c];
                dwpe[t * C + c] += dout[r * C + c];
            }
        }
    }
}
