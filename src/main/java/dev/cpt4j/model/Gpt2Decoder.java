package dev.cpt4j.model;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Activation;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tensor.cpu.LayerNorm;
import dev.cpt4j.tensor.cpu.MatVec;
import dev.cpt4j.tensor.cpu.Conv1d;
import dev.cpt4j.tensor.cpu.VecMath;

/**
 * GPT-2 inference with a KV cache (transformers' {@code GPT2LMHeadModel} forward with {@code use_cache}): a prefill
 * over the prompt, then one token per step for N sequences at once. Parameters are the flat buffer of
 * {@link Gpt2Layout} (Conv1D weights {@code [in, out]}, {@code wte} and an untied {@code lm_head} {@code [V, C]}).
 * Every buffer, the cache included, is allocated once in the constructor.
 *
 * <p>Not a training forward: no dropout, no activations kept for backward, logits only for the last position.
 * A prefill's matrix products run on the packed {@link Gemm}; a decode step's on {@link MatVec#nnPacked}, over a copy
 * of the weight matrices (and the head) laid out once, at construction, as contiguous column strips, so each step
 * streams every weight exactly once (the step is bound by that stream). The layernorm,
 * activation and residual kernels are the engine's ({@code tensor.cpu}); only the cached causal attention is
 * specific to decoding.
 *
 * <p>Dimensions: L layers, N sequences, NH heads, HS head size, C = NH·HS, F inner width, V vocab, maxT cache
 * positions, R = max(maxT, N) rows of activations (a prefill has up to maxT rows, a decode step N).
 */
public final class Gpt2Decoder implements StepModel {
    /** Row counts up to this take the weight-streaming {@link MatVec} path, larger ones the packed GEMM. */
    static final int MATVEC_ROWS = 16;
    /** Cached key floats one attention call must read before it is split across threads (~1 MiB of K and V). */
    static final long PARALLEL_ATTENTION_FLOATS = 1 << 17;
    private final Gpt2Config cfg;
    private final float[] p;
    private final Parallel par;
    private final Parallel serial = Parallel.serial();
    private final int L, NH, HS, C, F, V, maxT, maxN;
    private final Activation act;
    private final Gemm gemm;
    private final boolean tied;
    private final Gpt2Weights w;      // offsets into p: the table shared with the training engine

    private final float[] kCache, vCache; // (L, N, NH, maxT, HS)
    private final int[] length;           // (N) positions cached per sequence
    private final float[] x;              // (R, C) residual stream
    private final float[] h;              // (R, C) layernorm output
    private final float[] qkv;            // (R, 3C)
    private final float[] att;            // (R, C) attention output, heads side by side
    private final float[] fc;             // (R, F)
    private final float[] mean, rstd;     // (R) layernorm statistics (not used afterwards)
    private final float[] rowLogits;      // (N, V) logits of the computed rows
    private final float[] logits;         // (N, V) logits by sequence
    private final int[] rowTok, rowSlot, rowPos; // (R)
    // The matrices again, packed for MatVec.nnPacked (decode steps stream each exactly once, contiguously), or null
    // when the model is too large for one array (then decode steps use MatVec.nn on the layout's weights).
    private final float[] packed;
    private final int[] pAttn, pProj, pFc, pFc2;  // (L) offsets into packed
    private final int pHead;
    private final float[] packScratch;
    private final SlotLora[] slotAdapter;         // (N) the adapter each sequence decodes with, null: the base
    private final SlotLora.Scratch loraScratch = new SlotLora.Scratch();

    /**
     * @param params     flat parameters with {@code layout} (from {@link Gpt2Layout#of})
     * @param maxSeqs    most sequences decoded together
     * @param maxLength  most positions per sequence (prompt + new tokens), at most n_positions
     */
    public Gpt2Decoder(Gpt2Config cfg, float[] params, ParamLayout layout, int maxSeqs, int maxLength, Parallel par) {
        if (maxLength < 1 || maxLength > cfg.nPositions())
            throw new IllegalArgumentException("maxLength must be in [1, " + cfg.nPositions() + "], got " + maxLength);
        if (maxSeqs < 1) throw new IllegalArgumentException("maxSeqs must be positive, got " + maxSeqs);
        if (params.length != layout.size())
            throw new IllegalArgumentException("params has " + params.length + " floats, layout " + layout.size());
        this.cfg = cfg;
        this.p = params;
        this.par = par;
        this.L = cfg.nLayer();
        this.NH = cfg.nHead();
        this.HS = cfg.headSize();
        this.C = cfg.nEmbd();
        this.F = cfg.nInner();
        this.V = cfg.vocabSize();
        this.maxT = maxLength;
        this.maxN = maxSeqs;
        this.act = Activation.of(cfg.activation());
        this.gemm = new Gemm(par);
        this.tied = cfg.tieWordEmbeddings();
        this.w = Gpt2Weights.of(cfg, n -> layout.get(n).offset());

        long cache = (long) L * maxN * NH * maxT * HS;
        if (cache > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("KV cache of " + cache + " floats is too large; lower the sequences or length");
        kCache = new float[(int) cache];
        vCache = new float[(int) cache];
        length = new int[maxN];
        int R = Math.max(maxT, maxN);
        x = new float[R * C];
        h = new float[R * C];
        qkv = new float[R * 3 * C];
        att = new float[R * C];
        fc = new float[R * F];
        mean = new float[R];
        rstd = new float[R];

        rowLogits = new float[maxN * V];
        logits = new float[maxN * V];
        rowTok = new int[R];
        rowSlot = new int[R];
        rowPos = new int[R];

        pAttn = new int[L];
        pProj = new int[L];
        pFc = new int[L];
        pFc2 = new int[L];
        long perLayer = MatVec.packedSize(C, 3 * C) + MatVec.packedSize(C, C) + MatVec.packedSize(C, F) + MatVec.packedSize(F, C);
        long total = L * perLayer + MatVec.packedSize(C, V);
        if (total <= Integer.MAX_VALUE - 16) {
            packed = new float[(int) total];
            int at = 0;
            for (int l = 0; l < L; l++) {
                pAttn[l] = at;
                MatVec.pack(par, false, C, 3 * C, p, w.attnW()[l], 3 * C, packed, at);
                at += (int) MatVec.packedSize(C, 3 * C);
                pProj[l] = at;
                MatVec.pack(par, false, C, C, p, w.projW()[l], C, packed, at);
                at += (int) MatVec.packedSize(C, C);
                pFc[l] = at;
                MatVec.pack(par, false, C, F, p, w.fcW()[l], F, packed, at);
                at += (int) MatVec.packedSize(C, F);
                pFc2[l] = at;
                MatVec.pack(par, false, F, C, p, w.fcProjW()[l], C, packed, at);
                at += (int) MatVec.packedSize(F, C);
            }
            pHead = at;
            MatVec.pack(par, true, C, V, p, w.head(), C, packed, pHead);
        } else {
            packed = null;
            pHead = 0;
        }
        packScratch = new float[MatVec.scratchSize(MATVEC_ROWS, Math.max(C, F))];
        slotAdapter = new SlotLora[maxN];
    }

    @Override
    public StepModel.Adapter prepareAdapter(UnmergedAdapter adapter) {
        return SlotLora.prepare(adapter, L, LinearHook.Site.values().length, C, V, Parallel.serial()); // callable beside decoding
    }

    @Override
    public void setAdapter(int slot, StepModel.Adapter adapter) {
        if (slot < 0 || slot >= maxN) throw new IllegalArgumentException("slot " + slot + " not in [0, " + maxN + ")");
        if (adapter != null && !(adapter instanceof SlotLora))
            throw new IllegalArgumentException("not an adapter prepared by this decoder: " + adapter);
        slotAdapter[slot] = (SlotLora) adapter;
    }

    /** True when some row of [0, R) decodes with an adapter. */
    private boolean adapted(int R) {
        for (int r = 0; r < R; r++) if (slotAdapter[rowSlot[r]] != null) return true;
        return false;
    }


    @Override
    public int vocabSize() {
        return V;
    }

    @Override
    public int contextLength() {
        return cfg.nPositions();
    }

    @Override
    public int maxSequences() {
        return maxN;
    }

    @Override
    public int maxLength() {
        return maxT;
    }

    @Override
    public float[] prefill(int[] prompt, int numSeq) {
        int T = prompt.length;
        if (numSeq < 1 || numSeq > maxN) throw new IllegalArgumentException("numSeq " + numSeq + " not in [1, " + maxN + "]");
        java.util.Arrays.fill(length, 0);
        runPrompt(0, prompt);
        // the prompt's cache is the same for every sequence: copy slot 0 instead of recomputing
        for (int l = 0; l < L; l++) {
            for (int n = 1; n < numSeq; n++) {
                for (int hh = 0; hh < NH; hh++) {
                    int src = cacheBase(l, 0, hh), dst = cacheBase(l, n, hh);
                    System.arraycopy(kCache, src, kCache, dst, T * HS);
                    System.arraycopy(vCache, src, vCache, dst, T * HS);
                }
            }
        }
        for (int n = 1; n < numSeq; n++) length[n] = T;
        for (int n = 0; n < numSeq; n++) System.arraycopy(rowLogits, 0, logits, n * V, V);
        return logits;
    }

    @Override
    public float[] prefillSlot(int slot, int[] prompt) {
        if (slot < 0 || slot >= maxN) throw new IllegalArgumentException("slot " + slot + " not in [0, " + maxN + ")");
        runPrompt(slot, prompt);
        System.arraycopy(rowLogits, 0, logits, slot * V, V);
        return logits;
    }

    @Override
    public void release(int slot) {
        if (slot < 0 || slot >= maxN) throw new IllegalArgumentException("slot " + slot + " not in [0, " + maxN + ")");
        length[slot] = 0;
    }

    /** The prompt's rows through every block into slot's cache; its last row's logits into rowLogits row 0. */
    private void runPrompt(int slot, int[] prompt) {
        int T = prompt.length;
        if (T < 1 || T > maxT) throw new IllegalArgumentException("prompt length " + T + " not in [1, " + maxT + "]");
        for (int t = 0; t < T; t++) {
            rowTok[t] = prompt[t];
            rowSlot[t] = slot;
            rowPos[t] = t;
        }
        length[slot] = 0;
        forward(T);
        length[slot] = T;
        logitsOf(T - 1, 1);
    }

    @Override
    public float[] next(int[] lastTokens, boolean[] active) {
        int rows = 0;
        for (int n = 0; n < active.length; n++) {
            if (!active[n]) continue;
            if (length[n] >= maxT) throw new IllegalStateException("sequence " + n + " reached the cache length " + maxT);
            rowTok[rows] = lastTokens[n];
            rowSlot[rows] = n;
            rowPos[rows] = length[n];
            rows++;
        }
        if (rows == 0) return logits;
        forward(rows);
        for (int r = 0; r < rows; r++) length[rowSlot[r]]++;
        logitsOf(0, rows);
        for (int r = 0; r < rows; r++) System.arraycopy(rowLogits, r * V, logits, rowSlot[r] * V, V);
        return logits;
    }

    private int cacheBase(int l, int n, int head) {
        return (((l * maxN + n) * NH + head) * maxT) * HS;
    }

    /** Runs the transformer blocks for rows [0, R) (token, slot, position each); leaves the residual stream in x. */
    private void forward(int R) {
        for (int r = 0; r < R; r++) {
            int tok = rowTok[r];
            if (tok < 0 || tok >= V) throw new IllegalArgumentException("token " + tok + " outside [0, " + V + ")");
            int te = w.wte() + tok * C, pe = w.wpe() + rowPos[r] * C;
            SlotLora ad = slotAdapter[rowSlot[r]];
            if (SlotLora.hasEmbedding(ad)) {
                ad.embed(tok, x, r * C);
                for (int c = 0; c < C; c++) x[r * C + c] += p[pe + c];
            } else for (int c = 0; c < C; c++) x[r * C + c] = p[te + c] + p[pe + c];
        }
        boolean lora = adapted(R);
        float eps = cfg.layerNormEpsilon();
        float scale = cfg.scaleAttnWeights() ? (float) (1.0 / Math.sqrt(HS)) : 1f;
        // A decode step's layernorms, residuals and activation touch a few rows only: handing them to the worker
        // threads costs more than they do (a wake-up per call, ~10 calls per layer), so they run on this thread.
        Parallel small = R <= MATVEC_ROWS ? serial : par;
        long attnWork = 0;
        for (int r = 0; r < R; r++) attnWork += (long) (rowPos[r] + 1) * NH * HS;
        Parallel attnPar = attnWork >= PARALLEL_ATTENTION_FLOATS ? par : serial;
        for (int l = 0; l < L; l++) {
            LayerNorm.forward(small, h, 0, mean, rstd, 0, x, 0, p, w.ln1W()[l], p, w.ln1B()[l], R, C, eps);
            linear(qkv, 0, h, 0, w.attnW()[l], pAttn[l], p, w.attnB()[l], R, C, 3 * C);
            if (lora) SlotLora.apply(slotAdapter, rowSlot, R, l, 0, h, 0, C, qkv, 0, 3 * C, loraScratch);
            // write this step's keys and values into the cache, then attend
            for (int r = 0; r < R; r++) {
                for (int hh = 0; hh < NH; hh++) {
                    int dst = cacheBase(l, rowSlot[r], hh) + rowPos[r] * HS;
                    System.arraycopy(qkv, r * 3 * C + C + hh * HS, kCache, dst, HS);
                    System.arraycopy(qkv, r * 3 * C + 2 * C + hh * HS, vCache, dst, HS);
                }
            }
            float s = cfg.scaleAttnByInverseLayerIdx() ? scale / (l + 1) : scale;
            int layer = l;
            attnPar.forRange(R * NH, (a, b) -> {
                for (int i = a; i < b; i++) attendRow(layer, i / NH, i % NH, s);
            });
            linear(h, 0, att, 0, w.projW()[l], pProj[l], p, w.projB()[l], R, C, C);
            if (lora) SlotLora.apply(slotAdapter, rowSlot, R, l, 1, att, 0, C, h, 0, C, loraScratch);
            Conv1d.residualForward(small, x, 0, x, 0, h, 0, R * C);
            LayerNorm.forward(small, h, 0, mean, rstd, 0, x, 0, p, w.ln2W()[l], p, w.ln2B()[l], R, C, eps);
            linear(fc, 0, h, 0, w.fcW()[l], pFc[l], p, w.fcB()[l], R, C, F);
            if (lora) SlotLora.apply(slotAdapter, rowSlot, R, l, 2, h, 0, C, fc, 0, F, loraScratch);
            act.forward(small, fc, 0, fc, 0, R * F);
            linear(h, 0, fc, 0, w.fcProjW()[l], pFc2[l], p, w.fcProjB()[l], R, F, C);
            if (lora) SlotLora.apply(slotAdapter, rowSlot, R, l, 3, fc, 0, F, h, 0, C, loraScratch);
            Conv1d.residualForward(small, x, 0, x, 0, h, 0, R * C);
        }
    }

    /**
     * out (R, OUT) = in (R, IN) · W (IN, OUT) + b. A decode step has few rows and reads every weight once: the
     * streaming {@link MatVec} reads it once for all rows (from the packed copy); a prefill's many rows go to the
     * packed {@link Gemm}.
     */
    private void linear(float[] out, int outOff, float[] in, int inOff, int wOff, int packedOff, float[] b, int bOff,
                        int R, int IN, int OUT) {
        if (R > MATVEC_ROWS) Conv1d.forward(gemm, par, out, outOff, in, inOff, p, wOff, b, bOff, R, IN, OUT);
        else if (packed != null)
            MatVec.nnPacked(par, R, OUT, IN, in, inOff, IN, packed, packedOff, b, bOff, out, outOff, OUT, packScratch);
        else MatVec.nn(par, R, OUT, IN, in, inOff, IN, p, wOff, OUT, b, bOff, out, outOff, OUT);
    }

    /** ln_f and the LM head for rows [first, first+rows) of x, into rowLogits (rows, V). */
    private void logitsOf(int first, int rows) {
        LayerNorm.forward(rows <= MATVEC_ROWS ? serial : par, h, first * C, mean, rstd, 0, x, first * C, p, w.lnfW(), p, w.lnfB(), rows, C, cfg.layerNormEpsilon());
        if (packed != null && rows <= MATVEC_ROWS)
            MatVec.nnPacked(par, rows, V, C, h, first * C, C, packed, pHead, null, 0, rowLogits, 0, V, packScratch);
        else gemm.sgemm(false, true, rows, V, C, h, first * C, C, p, w.head(), C, 0f, rowLogits, 0, V);
        SlotLora.heads(slotAdapter, rowSlot, first, rows, h, first * C, rowLogits, 0, gemm, par, loraScratch);
    }

    /**
     * softmax(q·Kᵀ·scale)·V for one row and head over the cached positions [0, pos] (a causal row), in one pass
     * with a running maximum (online softmax, Milakov &amp; Gimelshein 2018), written to att[r, head]; no score buffer.
     */
    private void attendRow(int l, int r, int head, float scale) {
        int q = r * 3 * C + head * HS, o = r * C + head * HS;
        int base = cacheBase(l, rowSlot[r], head);
        int pos = rowPos[r];
        java.util.Arrays.fill(att, o, o + HS, 0f);
        float max = Float.NEGATIVE_INFINITY, sum = 0f;
        for (int t = 0; t <= pos; t++) {
            int k = base + t * HS;
            float dot = VecMath.dot(qkv, q, kCache, k, HS) * scale;
            if (dot > max) {
                float corr = (float) Math.exp(max - dot);
                sum *= corr;
                if (corr != 1f) for (int i = 0; i < HS; i++) att[o + i] *= corr;
                max = dot;
            }
            float e = (float) Math.exp(dot - max);
            sum += e;
            VecMath.axpy(e, vCache, k, att, o, HS);
        }
        float inv = 1f / sum;
        for (int i = 0; i < HS; i++) att[o + i] *= inv;
    }
}
