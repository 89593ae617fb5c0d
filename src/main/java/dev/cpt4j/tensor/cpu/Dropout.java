package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Inverted dropout (torch.nn.Dropout semantics: kept elements scaled by 1/(1−p)) whose mask is a pure function of
 * (seed, stream, row, column) — a counter-based hash — so backward regenerates it instead of storing it, and the
 * mask does not depend on the thread count. A 64-bit mix of (key, row) gives a row key; each column then takes a
 * 32-bit hash (Wellons' lowbias32) of rowKey + column·φ, vectorised. Backward is the same operation on the
 * gradient. Flat buffers are treated as rows of {@link #ROW} elements.
 */
public final class Dropout {
    private Dropout() {}

    /** Row length used by {@link #apply} for flat buffers. */
    public static final int ROW = 4096;

    private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Float> SF = FloatVector.SPECIES_PREFERRED;
    private static final int PHI32 = 0x9E3779B9;

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /** The per-(seed, stream) key. */
    public static long key(long seed, long stream) {
        return mix(mix(seed + 0x9E3779B97F4A7C15L) ^ (stream * 0xD1B54A32D192ED03L));
    }

    /** The key of one row under a (seed, stream) key. */
    public static int rowKey(long key, long row) {
        return (int) mix(key + row * 0x9E3779B97F4A7C15L);
    }

    private static int hash(int x) {
        x ^= x >>> 16;
        x *= 0x7feb352d;
        x ^= x >>> 15;
        x *= 0x846ca68b;
        return x ^ (x >>> 16);
    }

    private static int threshold(float p) {
        return (int) Math.ceil(p * 16777216.0); // keep iff the top 24 bits of the hash ≥ p·2^24
    }

    /** Whether column j of a row with key rowKey survives dropout with probability p. */
    public static boolean keep(int rowKey, int j, float p) {
        return (hash(rowKey + j * PHI32) >>> 8) >= threshold(p);
    }

    private static VectorMask<Integer> keepMask(int rowKey, int j0, int thr) {
        IntVector x = IntVector.broadcast(SI, j0).add(IntVector.fromArray(SI, IOTA, 0)).mul(PHI32).add(rowKey);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 16)).mul(0x7feb352d);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 15)).mul(0x846ca68b);
        x = x.lanewise(VectorOperators.XOR, x.lanewise(VectorOperators.LSHR, 16));
        return x.lanewise(VectorOperators.LSHR, 8).compare(VectorOperators.GE, thr);
    }

    private static final int[] IOTA = new int[64];

    static {
        for (int i = 0; i < IOTA.length; i++) IOTA[i] = i;
        if (SI.length() != SF.length()) throw new AssertionError("int and float vector shapes differ");
    }

    /** a[off + j] *= keep(j) ? 1/(1−p) : 0 for j in [0, n) of the row with key rowKey. */
    public static void scaleRow(int rowKey, float p, float[] a, int off, int n) {
        scaleRow(rowKey, p, a, off, n, 0);
    }

    /** a[off + j] *= keep(col0 + j) ? 1/(1−p) : 0 for j in [0, n): a slice of the row starting at column col0. */
    public static void scaleRow(int rowKey, float p, float[] a, int off, int n, int col0) {
        int thr = threshold(p);
        float scale = 1f / (1f - p);
        int j = 0, ub = SF.loopBound(n);
        FloatVector zero = FloatVector.zero(SF);
        for (; j < ub; j += SF.length()) {
            VectorMask<Float> keep = keepMask(rowKey, col0 + j, thr).cast(SF);
            FloatVector.fromArray(SF, a, off + j).mul(scale).blend(zero, keep.not()).intoArray(a, off + j);
        }
        for (; j < n; j++) a[off + j] = (hash(rowKey + (col0 + j) * PHI32) >>> 8) >= thr ? a[off + j] * scale : 0f;
    }

    /**
     * As {@link #apply(Parallel, float[], int, float[], int, int, float, long, long)} for a buffer that is the
     * elements {@code [origin, origin + n)} of a larger one (one rank's rows of a batch split over ranks): element i
     * gets the larger buffer's mask of element {@code origin + i}, so the masks do not depend on the split.
     */
    public static void apply(Parallel par, float[] out, int outOff, float[] in, int inOff, int n, float p,
                             long seed, long stream, long origin) {
        if (origin == 0) {
            apply(par, out, outOff, in, inOff, n, p, seed, stream);
            return;
        }
        if (origin < 0) throw new IllegalArgumentException("negative dropout origin " + origin);
        if (out != in || outOff != inOff) System.arraycopy(in, inOff, out, outOff, n);
        if (p == 0f || n == 0) return;
        long key = key(seed, stream);
        long r0 = origin / ROW, r1 = (origin + n + ROW - 1) / ROW;   // the larger buffer's rows this part touches
        par.forRange((int) (r1 - r0), (a, b) -> {
            for (int k = a; k < b; k++) {
                long row = r0 + k, e0 = Math.max(row * ROW, origin), e1 = Math.min((row + 1) * ROW, origin + n);
                scaleRow(rowKey(key, row), p, out, outOff + (int) (e0 - origin), (int) (e1 - e0), (int) (e0 - row * ROW));
            }
        });
    }

    /** out[i] = in[i]·keep(i)/(1−p) for i in [0, n); out may be in. p = 0 copies. */
    public static void apply(Parallel par, float[] out, int outOff, float[] in, int inOff, int n, float p,
                             long seed, long stream) {
        if (out != in || outOff != inOff) System.arraycopy(in, inOff, out, outOff, n);
        if (p == 0f) return;
        long key = key(seed, stream);
        par.forRange((n + ROW - 1) / ROW, (r0, r1) -> {
            for (int r = r0; r < r1; r++)
                scaleRow(rowKey(key, r), p, out, outOff + r * ROW, Math.min(ROW, n - r * ROW));
        });
    }

    /** Naive twin of {@link #apply}. */
    public static void applyNaive(float[] out, float[] in, int n, float p, long seed, long stream) {
        long key = key(seed, stream);
        for (int i = 0; i < n; i++)
            out[i] = keep(rowKey(key, i / ROW), i % ROW, p) ? in[i] * (1f / (1f - p)) : 0f;
    }
}
