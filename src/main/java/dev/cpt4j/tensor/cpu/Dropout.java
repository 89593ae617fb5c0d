package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;

/**
 * Inverted dropout (torch.nn.Dropout semantics: kept elements scaled by 1/(1−p)) whose mask is a pure function of
 * (seed, stream, element index) — a counter-based hash — so backward regenerates it instead of storing it, and the
 * mask does not depend on the thread count. Backward is the same operation applied to the gradient.
 */
public final class Dropout {
    private Dropout() {}

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The per-(seed, stream) key fed to {@link #keep}. */
    public static long key(long seed, long stream) {
        return mix(mix(seed + 0x9E3779B97F4A7C15L) ^ (stream * 0xD1B54A32D192ED03L));
    }

    /** Whether element {@code index} survives dropout with probability p under {@code key}. */
    public static boolean keep(long key, long index, float p) {
        long z = mix(key + index * 0x9E3779B97F4A7C15L);
        return (z >>> 40) * 0x1.0p-24f >= p;
    }

    /** out[i] = in[i]·keep(i)/(1−p) for i in [0, n); out may be in. p = 0 copies. */
    public static void apply(Parallel par, float[] out, int outOff, float[] in, int inOff, int n, float p,
                             long seed, long stream) {
        if (p == 0f) {
            if (out != in || outOff != inOff) System.arraycopy(in, inOff, out, outOff, n);
            return;
        }
        long key = key(seed, stream);
        float scale = 1f / (1f - p);
        par.forRange(n, (i0, i1) -> {
            for (int i = i0; i < i1; i++) out[outOff + i] = keep(key, i, p) ? in[inOff + i] * scale : 0f;
        });
    }
}
