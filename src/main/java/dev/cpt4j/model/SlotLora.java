package dev.cpt4j.model;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tensor.cpu.MatVec;
import dev.cpt4j.tensor.cpu.VecMath;

/**
 * An {@link UnmergedAdapter} prepared for one decoder, and the per-row arithmetic both families' decoders share to
 * apply adapters per sequence while every sequence reads the same base weights: after a base projection
 * {@code y = x·W + b} over a batch of rows, each row whose sequence has an adapter with a pair at that projection
 * gets {@code y += s·(x·Aᵀ)·Bᵀ} (peft's unmerged {@code lora.Linear} forward, without dropout); the embedding
 * lookup and the head of such a row read the adapter's copies. Rows of one adapter share one pass over its head.
 *
 * <p>Cost per adapted row and projection: r·(in + out) multiply-adds, small beside the base's in·out; an adapter
 * with its own head streams that head once per step for all its rows.
 */
public final class SlotLora implements StepModel.Adapter {
    /** Rows up to this go through the streaming {@link MatVec} path (the decoders' threshold). */
    private static final int MATVEC_ROWS = 16;
    private final String name;
    private final float[][][] a, b;   // [L][S] A (r, in), B (out, r), or null
    private final int[][] rank, in, out;
    private final float[][] scale;
    private final float[] embedding;  // (V, C) or null
    private final float[] head;       // (V, C) or null
    private final float[] packedHead; // head packed for MatVec.nnPacked, or null
    private final int C, V;

    private SlotLora(UnmergedAdapter u, int L, int S, int C, int V, Parallel par) {
        this.name = u.name();
        this.C = C;
        this.V = V;
        a = new float[L][S][];
        b = new float[L][S][];
        rank = new int[L][S];
        in = new int[L][S];
        out = new int[L][S];
        scale = new float[L][S];
        for (UnmergedAdapter.Delta d : u.deltas()) {
            if (d.layer() < 0 || d.layer() >= L || d.site() < 0 || d.site() >= S)
                throw new IllegalArgumentException(u.name() + ": LoRA pair at layer " + d.layer() + " site " + d.site()
                        + " is outside this model (" + L + " layers, " + S + " projections each)");
            a[d.layer()][d.site()] = d.a();
            b[d.layer()][d.site()] = d.b();
            rank[d.layer()][d.site()] = d.rank();
            in[d.layer()][d.site()] = d.in();
            out[d.layer()][d.site()] = d.out();
            scale[d.layer()][d.site()] = d.scale();
        }
        for (float[] t : new float[][] {u.embedding(), u.head()})
            if (t != null && t.length != (long) V * C)
                throw new IllegalArgumentException(u.name() + ": an embedding copy of " + t.length + " floats, expected "
                        + V + "×" + C);
        embedding = u.embedding();
        head = u.head();
        if (head != null && MatVec.packedSize(C, V) <= Integer.MAX_VALUE - 16) {
            packedHead = new float[(int) MatVec.packedSize(C, V)];
            MatVec.pack(par, true, C, V, head, 0, C, packedHead, 0);
        } else packedHead = null;
    }

    /** Prepares {@code u} for a decoder of L layers, S projections per layer, width C and vocabulary V. */
    public static SlotLora prepare(UnmergedAdapter u, int L, int S, int C, int V, Parallel par) {
        return new SlotLora(u, L, S, C, V, par);
    }

    @Override
    public String toString() {
        return "adapter " + name;
    }

    /** The embedding row of {@code token} for a sequence with adapter {@code ad} (null: none): array and offset. */
    public static boolean hasEmbedding(SlotLora ad) {
        return ad != null && ad.embedding != null;
    }

    /** Copies the adapter's embedding row of {@code token} into {@code dst[dstOff, dstOff+C)}. */
    public void embed(int token, float[] dst, int dstOff) {
        System.arraycopy(embedding, token * C, dst, dstOff, C);
    }

    /** Per-decoder scratch for {@link #apply} and {@link #heads}. */
    public static final class Scratch {
        final float[] u = new float[1024];
        float[] x = new float[0], lg = new float[0], mv = new float[0];
        final int[] rows = new int[4096];
    }

    /**
     * {@code y[r] += s·B·(A·x[r])} for each row r in [0, R) whose sequence ({@code bySlot[rowSlot[r]]}) has a pair at
     * (layer, site); x rows have stride IN, y rows stride OUT.
     */
    public static void apply(SlotLora[] bySlot, int[] rowSlot, int R, int layer, int site, float[] x, int xOff, int IN,
                             float[] y, int yOff, int OUT, Scratch sc) {
        for (int r = 0; r < R; r++) {
            SlotLora ad = bySlot[rowSlot[r]];
            if (ad == null) continue;
            float[] A = ad.a[layer][site];
            if (A == null) continue;
            if (ad.in[layer][site] != IN || ad.out[layer][site] != OUT)
                throw new IllegalStateException(ad + ": LoRA pair of layer " + layer + " site " + site + " is "
                        + ad.in[layer][site] + "→" + ad.out[layer][site] + ", the projection " + IN + "→" + OUT);
            float[] B = ad.b[layer][site];
            int k = ad.rank[layer][site];
            float s = ad.scale[layer][site];
            float[] u = k <= sc.u.length ? sc.u : new float[k];
            int xr = xOff + r * IN, yr = yOff + r * OUT;
            for (int j = 0; j < k; j++) u[j] = s * VecMath.dot(A, j * IN, x, xr, IN);
            for (int o = 0; o < OUT; o++) {
                float acc = 0f;
                int bo = o * k;
                for (int j = 0; j < k; j++) acc += B[bo + j] * u[j];
                y[yr + o] += acc;
            }
        }
    }

    /**
     * Overwrites the logits rows {@code logits[i·V, (i+1)·V)}, i in [0, R), of rows whose sequence's adapter has its
     * own head with {@code x[i]·headᵀ}; x rows (the final-norm output) have stride C. One pass over each adapter's
     * head for all of its rows.
     */
    public static void heads(SlotLora[] bySlot, int[] rowSlot, int rowSlotOff, int R, float[] x, int xOff,
                             float[] logits, int lgOff, Gemm gemm, Parallel par, Scratch sc) {
        boolean any = false;
        for (int r = 0; r < R && !any; r++) {
            SlotLora ad = bySlot[rowSlot[rowSlotOff + r]];
            any = ad != null && ad.head != null;
        }
        if (!any) return;
        boolean[] done = new boolean[R];
        for (int r0 = 0; r0 < R; r0++) {
            SlotLora ad = bySlot[rowSlot[rowSlotOff + r0]];
            if (done[r0] || ad == null || ad.head == null) continue;
            int C = ad.C, V = ad.V, n = 0;
            for (int r = r0; r < R; r++)
                if (!done[r] && bySlot[rowSlot[rowSlotOff + r]] == ad) {
                    sc.rows[n++] = r;
                    done[r] = true;
                }
            if (sc.x.length < n * C) sc.x = new float[n * C];
            if (sc.lg.length < n * V) sc.lg = new float[n * V];
            for (int i = 0; i < n; i++) System.arraycopy(x, xOff + sc.rows[i] * C, sc.x, i * C, C);
            if (ad.packedHead != null && n <= MATVEC_ROWS) {
                int need = MatVec.scratchSize(MATVEC_ROWS, C);
                if (sc.mv.length < need) sc.mv = new float[need];
                MatVec.nnPacked(par, n, V, C, sc.x, 0, C, ad.packedHead, 0, null, 0, sc.lg, 0, V, sc.mv);
            } else gemm.sgemm(false, true, n, V, C, sc.x, 0, C, ad.head, 0, C, 0f, sc.lg, 0, V);
            for (int i = 0; i < n; i++) System.arraycopy(sc.lg, i * V, logits, lgOff + sc.rows[i] * V, V);
        }
    }
}
