package dev.cpt4j.model.llama;

import dev.cpt4j.io.DType;
import dev.cpt4j.model.SlotLora;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.model.UnmergedAdapter;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.WeightStore;
import dev.cpt4j.tensor.cpu.CrossEntropyHead;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tensor.cpu.GqaAttention;
import dev.cpt4j.tensor.cpu.MatVec;
import dev.cpt4j.tensor.cpu.NnLinear;
import dev.cpt4j.tensor.cpu.RmsNorm;
import dev.cpt4j.tensor.cpu.Rope;
import dev.cpt4j.tensor.cpu.SwiGlu;

/**
 * LLaMA-family inference with a KV cache (transformers' forward with {@code use_cache}): a prefill over the prompt,
 * then one token per step for N sequences at once, over the same weight table as the training engine
 * ({@link LlamaWeights}): a flat fp32 buffer, or tensors stored one by one with the matrices in bf16 (widened while
 * the GEMM packs them), which has no 2³¹-element limit on the model. The cache keeps keys after the rotation, as transformers' {@code DynamicCache} does, so a
 * step rotates only its own q and k. Every buffer, the cache included, is allocated once in the constructor.
 *
 * <p>Dynamic rope scaling follows transformers' {@code dynamic_rope_update}: the frequencies of a step are those of
 * the longest sequence seen since the prefill (never below max_position_embeddings, where they are the default
 * ones), and keys already cached keep the rotation they were stored with.
 *
 * <p>Dimensions: L layers, N sequences, C hidden, Q/K query/kv widths, F intermediate, V vocab, maxT positions,
 * R = max(maxT, N) activation rows.
 */
public final class LlamaDecoder implements StepModel {
    /** Row counts up to this (decode steps) take the weight-streaming {@link MatVec#nnPacked} path, larger the GEMM. */
    static final int MATVEC_ROWS = 16;
    /** Rows of one head pass in {@link #sequenceLoss}. */
    private static final int LOSS_ROWS = 64;
    private final LlamaConfig cfg;
    private final LlamaWeights w;
    private final Parallel par;
    private final Gemm gemm;
    private final Rope rope;
    private final int L, C, Q, K, F, V, NH, NKV, hd, maxT, maxN, half;
    private final float[] kCache, vCache;     // (L, N, maxT, K)
    private final int[] length;               // (N) positions cached per sequence
    private final float[] x, xn, q, qn, k, kn, v, att, tmp, gate, up, act, rstd, qr, kr, lse, last, logits, scratch;
    private final float[] cos, sin;           // (maxT, hd/2) table of the current frequencies
    private final float[] rowCos, rowSin;     // (hd/2) one position's
    // fp32 matrices again, packed once as column strips for MatVec.nnPacked (a decode step then streams each weight
    // exactly once), or null: bf16-stored weights, or a model too large for one packed array
    private final float[] packed;
    private final java.util.IdentityHashMap<WeightStore.Tensor, Integer> packedAt = new java.util.IdentityHashMap<>();
    private final float[] packScratch;
    private final SlotLora[] slotAdapter;     // (N) the adapter each sequence decodes with, null: the base
    private final int[] rowSlot;              // (R) the sequence each activation row belongs to
    private final SlotLora.Scratch loraScratch = new SlotLora.Scratch();
    private boolean lora;                     // some row of the current pass decodes with an adapter
    private int tableSeqLen = -1;             // seq_len the table was built for (dynamic rope), −1 = none
    private int seenLen;                      // longest sequence since the prefill (dynamic rope)

    public LlamaDecoder(LlamaConfig cfg, LlamaWeights weights, int maxSeqs, int maxLength, Parallel par) {
        if (maxLength < 1) throw new IllegalArgumentException("maxLength must be positive, got " + maxLength);
        if (maxSeqs < 1) throw new IllegalArgumentException("maxSeqs must be positive, got " + maxSeqs);
        this.cfg = cfg;
        this.w = weights;
        this.par = par;
        this.gemm = new Gemm(par);
        this.rope = cfg.rope();
        this.L = cfg.numLayers();
        this.C = cfg.hiddenSize();
        this.Q = cfg.qDim();
        this.K = cfg.kvDim();
        this.F = cfg.intermediateSize();
        this.V = cfg.vocabSize();
        this.NH = cfg.numHeads();
        this.NKV = cfg.numKvHeads();
        this.hd = cfg.headDim();
        this.half = hd / 2;
        this.maxT = maxLength;
        this.maxN = maxSeqs;
        long cache = (long) L * maxN * maxT * K;
        if (cache > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("KV cache of " + cache + " floats is too large; lower the sequences or length");
        kCache = new float[(int) cache];
        vCache = new float[(int) cache];
        length = new int[maxN];
        int R = Math.max(maxT, maxN);
        x = new float[R * C];
        xn = new float[R * C];
        q = new float[R * Q];
        qn = cfg.qkNorm() ? new float[R * Q] : null;
        k = new float[R * K];
        kn = cfg.qkNorm() ? new float[R * K] : null;
        v = new float[R * K];
        att = new float[R * Q];
        tmp = new float[R * C];
        gate = new float[R * F];
        up = new float[R * F];
        act = new float[R * F];
        rstd = new float[R];
        qr = new float[R * NH];
        kr = new float[R * NKV];
        lse = new float[NH * maxT];
        last = new float[maxN * C];
        logits = new float[maxN * V];
        scratch = new float[Math.max(maxT, 16) + 16];
        cos = new float[maxT * half];
        sin = new float[maxT * half];
        rowCos = new float[half];
        slotAdapter = new SlotLora[maxN];
        rowSlot = new int[R];
        rowSin = new float[half];
        java.util.List<WeightStore.Tensor[]> mats = new java.util.ArrayList<>();
        for (int l = 0; l < L; l++)
            for (WeightStore.Tensor t : new WeightStore.Tensor[] {w.q()[l], w.k()[l], w.v()[l], w.o()[l], w.gate()[l],
                    w.up()[l], w.down()[l]}) mats.add(new WeightStore.Tensor[] {t});
        mats.add(new WeightStore.Tensor[] {w.head()});
        long total = 0;
        boolean fp32 = true;
        for (WeightStore.Tensor[] m : mats) {
            fp32 &= !m[0].isBf16();
            total += MatVec.packedSize(m[0].shape()[1], m[0].shape()[0]);
        }
        if (fp32 && total <= Integer.MAX_VALUE - 16) {
            packed = new float[(int) total];
            int at = 0;
            for (WeightStore.Tensor[] m : mats) {
                WeightStore.Tensor t = m[0];
                int out = t.shape()[0], in = t.shape()[1];   // nn.Linear [out, in]: op(B) = Wᵀ is (in, out)
                MatVec.pack(par, true, in, out, t.f32(), t.offset(), in, packed, at);
                packedAt.put(t, at);
                at += (int) MatVec.packedSize(in, out);
            }
            packScratch = new float[MatVec.scratchSize(MATVEC_ROWS, Math.max(Math.max(C, Q), F))];
        } else {
            packed = null;
            packScratch = null;
        }
    }

    @Override
    public int vocabSize() {
        return V;
    }

    @Override
    public int contextLength() {
        return cfg.maxPositionEmbeddings();
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
    public StepModel.Adapter prepareAdapter(UnmergedAdapter adapter) {
        return SlotLora.prepare(adapter, L, 7, C, V, Parallel.serial()); // callable beside decoding
    }

    @Override
    public void setAdapter(int slot, StepModel.Adapter adapter) {
        if (slot < 0 || slot >= maxN) throw new IllegalArgumentException("slot " + slot + " not in [0, " + maxN + ")");
        if (adapter != null && !(adapter instanceof SlotLora))
            throw new IllegalArgumentException("not an adapter prepared by this decoder: " + adapter);
        slotAdapter[slot] = (SlotLora) adapter;
    }

    /** The rotary table for positions 0..maxT−1 at sequence length {@code seqLen} (only dynamic scaling depends on it). */
    private void ensureTable(int seqLen) {
        int eff = rope.dependsOnLength() ? Math.max(seqLen, cfg.maxPositionEmbeddings()) : 0;
        if (eff == tableSeqLen) return;
        rope.table(Math.max(eff, 1), maxT, cos, sin);
        tableSeqLen = eff;
    }

    @Override
    public float[] prefill(int[] prompt, int numSeq) {
        int P = prompt.length;
        if (P < 1) throw new IllegalArgumentException("prompt must not be empty");
        if (P > maxT) throw new IllegalArgumentException("prompt of " + P + " tokens is longer than the cache (" + maxT + ")");
        if (numSeq < 1 || numSeq > maxN) throw new IllegalArgumentException("numSeq must be in [1, " + maxN + "]");
        java.util.Arrays.fill(length, 0);
        runPrompt(0, prompt);
        seenLen = P;
        for (int n = 0; n < numSeq; n++) length[n] = P;
        for (int n = 1; n < numSeq; n++)
            for (int l = 0; l < L; l++) {
                System.arraycopy(kCache, cacheOff(l, 0, 0), kCache, cacheOff(l, n, 0), P * K);
                System.arraycopy(vCache, cacheOff(l, 0, 0), vCache, cacheOff(l, n, 0), P * K);
            }
        System.arraycopy(x, (P - 1) * C, last, 0, C);
        head(1);
        for (int n = 1; n < numSeq; n++) System.arraycopy(logits, 0, logits, n * V, V);
        return logits;
    }

    /**
     * The prompt's loss from one prefill: every row's logits, up to 64 rows per pass over the head, against the next
     * token.
     * Equal to the training engine's eval loss (same kernels, same order), without its activations.
     */
    @Override
    public double sequenceLoss(int[] tokens) {
        int P = tokens.length;
        if (P < 2) throw new IllegalArgumentException("a loss needs at least 2 tokens");
        if (P > maxT) throw new IllegalArgumentException(P + " tokens are longer than the cache (" + maxT + ")");
        SlotLora keep = slotAdapter[0];
        slotAdapter[0] = null;   // the loss is the base model's, as the training engine computes it
        try {
            runPrompt(0, tokens);
        } finally {
            slotAdapter[0] = keep;
        }
        java.util.Arrays.fill(length, 0);
        // the head over LOSS_ROWS rows at a time: each pass streams the (V, C) head once
        int chunk = Math.min(LOSS_ROWS, P - 1);
        float[] hx = new float[chunk * C], hn = new float[chunk * C], hr = new float[chunk], lg = new float[chunk * V];
        WeightStore.Tensor h = w.head();
        double sum = 0;
        for (int r0 = 0; r0 < P - 1; r0 += chunk) {
            int R = Math.min(chunk, P - 1 - r0);
            System.arraycopy(x, r0 * C, hx, 0, R * C);
            RmsNorm.forward(par, hn, 0, hr, 0, hx, 0, w.norm().f32(), w.norm().offset(), R, C, cfg.rmsNormEps());
            if (h.isBf16()) gemm.sgemmBf16(false, true, R, V, C, hn, 0, C, h.bf16(), h.offset(), C, 0f, lg, 0, V);
            else CrossEntropyHead.logits(gemm, lg, 0, hn, 0, h.f32(), h.offset(), R, C, V);
            for (int i = 0; i < R; i++) sum += StepModel.nll(lg, i * V, V, tokens[r0 + i + 1]);
        }
        return sum / (P - 1);
    }

    @Override
    public float[] prefillSlot(int slot, int[] prompt) {
        int P = prompt.length;
        if (slot < 0 || slot >= maxN) throw new IllegalArgumentException("slot " + slot + " not in [0, " + maxN + ")");
        if (P < 1) throw new IllegalArgumentException("prompt must not be empty");
        if (P > maxT) throw new IllegalArgumentException("prompt of " + P + " tokens is longer than the cache (" + maxT + ")");
        length[slot] = 0;
        runPrompt(slot, prompt);
        length[slot] = P;
        // dynamic rope: the next step's frequencies follow the longest live sequence, as in a shared batch
        seenLen = 0;
        for (int n = 0; n < maxN; n++) seenLen = Math.max(seenLen, length[n]);
        System.arraycopy(x, (P - 1) * C, last, 0, C);
        head(1);
        if (slot != 0) System.arraycopy(logits, 0, logits, slot * V, V);
        return logits;
    }

    @Override
    public void release(int slot) {
        if (slot < 0 || slot >= maxN) throw new IllegalArgumentException("slot " + slot + " not in [0, " + maxN + ")");
        length[slot] = 0;
    }

    /** Every layer over the P prompt rows into x, filling sequence {@code slot}'s cache (rotary table for length P). */
    private void runPrompt(int slot, int[] prompt) {
        int P = prompt.length;
        ensureTable(P);
        java.util.Arrays.fill(rowSlot, 0, P, slot);
        lora = slotAdapter[slot] != null;
        for (int r = 0; r < P; r++) embed(prompt[r], r);
        for (int l = 0; l < L; l++) {
            project(l, P);
            Rope.forward(par, q, 0, P, P, NH, hd, cos, sin, 0);
            Rope.forward(par, k, 0, P, P, NKV, hd, cos, sin, 0);
            int base = cacheOff(l, slot, 0);
            System.arraycopy(k, 0, kCache, base, P * K);
            System.arraycopy(v, 0, vCache, base, P * K);
            GqaAttention.forward(par, att, 0, lse, 0, q, 0, k, 0, v, 0, 1, P, NH, NKV, hd, scale(), cfg.window(l));
            finishLayer(l, P);
        }
    }

    @Override
    public float[] next(int[] lastTokens, boolean[] active) {
        int numSeq = Math.min(lastTokens.length, maxN);
        int[] rows = new int[numSeq];
        int R = 0;
        for (int n = 0; n < numSeq; n++) {
            if (!active[n]) continue;
            if (length[n] >= maxT) throw new IllegalStateException("sequence " + n + " is full (" + maxT + " positions)");
            rows[R++] = n;
        }
        if (R == 0) return logits;
        for (int i = 0; i < R; i++) seenLen = Math.max(seenLen, length[rows[i]] + 1);
        ensureTable(seenLen);
        lora = false;
        for (int i = 0; i < R; i++) {
            rowSlot[i] = rows[i];
            lora |= slotAdapter[rows[i]] != null;
        }
        for (int i = 0; i < R; i++) embed(lastTokens[rows[i]], i);
        for (int l = 0; l < L; l++) {
            project(l, R);
            for (int i = 0; i < R; i++) {
                int n = rows[i], pos = length[n];
                Rope.forward(Parallel.serial(), q, i * Q, 1, 1, NH, hd, cos, sin, pos);
                Rope.forward(Parallel.serial(), k, i * K, 1, 1, NKV, hd, cos, sin, pos);
                System.arraycopy(k, i * K, kCache, cacheOff(l, n, pos), K);
                System.arraycopy(v, i * K, vCache, cacheOff(l, n, pos), K);
            }
            final int layer = l, cnt = R;
            par.forRange(cnt, (i0, i1) -> {
                float[] sc = new float[maxT + 16];
                for (int i = i0; i < i1; i++) {
                    int n = rows[i];
                    GqaAttention.decodeStep(att, i * Q, q, i * Q, kCache, cacheOff(layer, n, 0), vCache, cacheOff(layer, n, 0),
                            length[n] + 1, NH, NKV, hd, scale(), cfg.window(layer), sc);
                }
            });
            finishLayer(l, R);
        }
        for (int i = 0; i < R; i++) System.arraycopy(x, i * C, last, i * C, C);
        head(R);
        // logits rows are in active order: move row i to sequence rows[i] (descending keeps unread rows intact)
        for (int i = R - 1; i >= 0; i--) if (rows[i] != i) System.arraycopy(logits, i * V, logits, rows[i] * V, V);
        for (int i = 0; i < R; i++) length[rows[i]]++;
        return logits;
    }

    private int cacheOff(int l, int n, int pos) {
        return ((l * maxN + n) * maxT + pos) * K;
    }

    private float scale() {
        return (float) (1.0 / Math.sqrt(hd));
    }

    private void embed(int token, int row) {
        if (token < 0 || token >= V) throw new IllegalArgumentException("token id " + token + " outside the vocabulary (" + V + ")");
        SlotLora ad = slotAdapter[rowSlot[row]];
        if (SlotLora.hasEmbedding(ad)) {
            ad.embed(token, x, row * C);
            return;
        }
        WeightStore.Tensor e = w.embed();
        int src = e.offset() + token * C;
        if (e.isBf16()) for (int c = 0; c < C; c++) x[row * C + c] = DType.bf16ToFloat(e.bf16()[src + c]);
        else System.arraycopy(e.f32(), src, x, row * C, C);
    }

    /** {@link #linear}, then each adapted row's LoRA term of projection {@code site} of block {@code l}. */
    private void linear(int l, int site, float[] out, float[] in, WeightStore.Tensor W, WeightStore.Tensor b, int R,
                        int IN, int OUT) {
        linear(out, in, W, b, R, IN, OUT);
        if (lora) SlotLora.apply(slotAdapter, rowSlot, R, l, site, in, 0, IN, out, 0, OUT, loraScratch);
    }

    /** out (R, OUT) = in (R, IN) · Wᵀ + b, W fp32 or bf16. */
    private void linear(float[] out, float[] in, WeightStore.Tensor W, WeightStore.Tensor b, int R, int IN, int OUT) {
        float[] bf = b == null ? null : b.f32();
        int bo = b == null ? 0 : b.offset();
        if (packed != null && R <= MATVEC_ROWS)
            MatVec.nnPacked(par, R, OUT, IN, in, 0, IN, packed, packedAt.get(W), bf, bo, out, 0, OUT, packScratch);
        else if (W.isBf16()) NnLinear.forwardBf16(gemm, par, out, 0, in, 0, W.bf16(), W.offset(), bf, bo, R, IN, OUT);
        else NnLinear.forward(gemm, par, out, 0, in, 0, W.f32(), W.offset(), bf, bo, R, IN, OUT);
    }

    private void norm(float[] out, float[] in, WeightStore.Tensor g, int rows, int width) {
        RmsNorm.forward(par, out, 0, rstd.length >= rows ? rstd : new float[rows], 0, in, 0, g.f32(), g.offset(), rows, width,
                cfg.rmsNormEps());
    }

    /** xn = RMSNorm(x); q, k, v projections (+ Qwen3's q/k norm) of R rows. */
    private void project(int l, int R) {
        norm(xn, x, w.ln1()[l], R, C);
        float[] qOut = cfg.qkNorm() ? qn : q, kOut = cfg.qkNorm() ? kn : k;
        linear(l, 0, qOut, xn, w.q()[l], w.qb()[l], R, C, Q);
        linear(l, 1, kOut, xn, w.k()[l], w.kb()[l], R, C, K);
        linear(l, 2, v, xn, w.v()[l], w.vb()[l], R, C, K);
        if (cfg.qkNorm()) {
            RmsNorm.forward(par, q, 0, qr, 0, qn, 0, w.qNorm()[l].f32(), w.qNorm()[l].offset(), R * NH, hd, cfg.rmsNormEps());
            RmsNorm.forward(par, k, 0, kr, 0, kn, 0, w.kNorm()[l].f32(), w.kNorm()[l].offset(), R * NKV, hd, cfg.rmsNormEps());
        }
    }

    /** o_proj and residual, then the MLP half, on R rows of att. */
    private void finishLayer(int l, int R) {
        linear(l, 3, tmp, att, w.o()[l], w.ob()[l], R, Q, C);
        for (int i = 0; i < R * C; i++) x[i] += tmp[i];
        norm(xn, x, w.ln2()[l], R, C);
        linear(l, 4, gate, xn, w.gate()[l], w.gateB()[l], R, C, F);
        linear(l, 5, up, xn, w.up()[l], w.upB()[l], R, C, F);
        SwiGlu.forward(par, act, 0, gate, 0, up, 0, R * F);
        linear(l, 6, tmp, act, w.down()[l], w.downB()[l], R, F, C);
        for (int i = 0; i < R * C; i++) x[i] += tmp[i];
    }

    /** logits (R, V) of the R rows in {@code last}, after model.norm. */
    private void head(int R) {
        norm(xn, last, w.norm(), R, C);
        WeightStore.Tensor h = w.head();
        if (packed != null && R <= MATVEC_ROWS)
            MatVec.nnPacked(par, R, V, C, xn, 0, C, packed, packedAt.get(h), null, 0, logits, 0, V, packScratch);
        else if (h.isBf16()) gemm.sgemmBf16(false, true, R, V, C, xn, 0, C, h.bf16(), h.offset(), C, 0f, logits, 0, V);
        else CrossEntropyHead.logits(gemm, logits, 0, xn, 0, h.f32(), h.offset(), R, C, V);
        SlotLora.heads(slotAdapter, rowSlot, 0, R, xn, 0, logits, 0, gemm, par, loraScratch);
    }
}
