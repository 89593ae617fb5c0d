package dev.cpt4j.model.llama;

import dev.cpt4j.io.DType;
import dev.cpt4j.model.CausalLm;
import dev.cpt4j.model.LinearHook;
import dev.cpt4j.model.PhaseProfile;
import dev.cpt4j.model.PhaseProfile.Phase;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;
import dev.cpt4j.tensor.WeightStore;
import dev.cpt4j.tensor.cpu.Conv1d;
import dev.cpt4j.tensor.cpu.CrossEntropyHead;
import dev.cpt4j.tensor.cpu.Embedding;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tensor.cpu.GqaAttention;
import dev.cpt4j.tensor.cpu.NnLinear;
import dev.cpt4j.tensor.cpu.RmsNorm;
import dev.cpt4j.tensor.cpu.Rope;
import dev.cpt4j.tensor.cpu.SwiGlu;

import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.function.Predicate;

import static dev.cpt4j.model.llama.LlamaWeights.off;

/**
 * A LLaMA-family causal LM exactly as transformers' {@code LlamaForCausalLM} (and Qwen2/Qwen3/Mistral) computes it in
 * fp32 — {@code h = x + o_proj(attn(rope(q), rope(k), v))} on {@code RMSNorm(x)}, {@code out = h +
 * down_proj(silu(gate_proj(y)) · up_proj(y))} on {@code y = RMSNorm(h)}, final {@code model.norm}, tied or untied head —
 * forward and backward on the CPU in the style of llm.c: one flat parameter buffer ({@link LlamaLayout}, offsets in
 * {@link LlamaWeights}), one gradient buffer holding only the views that train, activations allocated once for
 * (maxBatch, maxT).
 *
 * <p>Kept per layer for backward: the block input, the rotated q and k (and, with Qwen3's q/k norm, q and k before
 * it with their statistics), v, the attention output and its log-sum-exp, the residual after attention, gate and up.
 * The RMSNorm outputs and silu(gate)·up are recomputed in backward (cheap). With gradient checkpointing only the
 * block inputs are kept and each block runs forward once more in backward. Attention never stores (B, NH, T, T); the
 * head never holds (B·T, V) logits. No dropout: every released config of the family has attention_dropout 0.
 *
 * <p>For training an adapter the layout may carry extra views after the model's own (LoRA's A and B, which a
 * {@link LinearHook} reads; the hook runs after each of the seven projections, site index in
 * {@link LlamaFamily#loraSites()} order), and frozen projection weights may be kept in bfloat16 outside
 * {@link #params()} ({@code --base_dtype bf16}: widened inside the GEMM's packing, never copied to fp32).
 *
 * <p>Dimensions: B batch, T time, N = B·T, C hidden, NH/NKV query/kv heads, hd head_dim, Q = NH·hd, K = NKV·hd,
 * F intermediate, V vocab, L layers.
 */
public final class LlamaModel implements CausalLm {
    private static final int HEAD_ROWS = 128;
    private final LlamaConfig cfg;
    private final ParamLayout layout, storageLayout;
    private final float[] params;                 // the fp32 views, laid out by storageLayout
    private final short[] params16;               // the views stored in bf16 (frozen projection weights)
    private final Set<String> bf16Views;
    private LinearHook hook;
    private final PhaseProfile prof = new PhaseProfile();
    private long lastSeed;
    private final LlamaWeights w;
    private final Gemm gemm;
    private final Parallel par;
    private final int L, C, F, Q, K, NH, NKV, hd, V, maxB, maxT, maxN;
    private final boolean checkpointing;
    private final Rope rope;
    private float[] cos, sin;     // (T, hd/2) rotary tables of the current length
    private int tableT = -1;

    private final int[] tokens, targets;
    private final float[] resid;                  // (L+1, maxN, C) block inputs (the last: before model.norm)
    private final float[] hRes;                   // (S, maxN, C) residual after attention
    private final float[] qPre, kPre;             // (S, maxN, Q|K) before q/k norm (Qwen3), else null
    private final float[] qRot, kRot, vAct;       // (S, maxN, Q|K|K) rotated q, k; v
    private final float[] att, lse;               // (S, maxN, Q), (S, maxB, NH, maxT)
    private final float[] gate, up;               // (S, maxN, F)
    private final float[] rstd1, rstd2;           // (S, maxN)
    private final float[] qRstd, kRstd;           // (S, maxN·NH), (S, maxN·NKV) (Qwen3)
    private final float[] xn, act, tmp, lnf, lnfRstd;
    private final float[] dres, dxn, dact, dgate, dup, datt, dq, dk, dv, dqPre, dkPre, dlnf;
    private final float[] headScratch;

    private float[] grads;
    private Map<Integer, Integer> gradOf = new HashMap<>();   // parameter offset → gradient offset (trained views)
    private boolean sparseEmbedWanted;
    private RowSparseGrad embedSparse;                        // embed_tokens' gradient when row-sparse, else null
    private final int[] embedSlots;                           // (maxN) slot of each token's row in embedSparse
    private final int[] starts;                               // (maxN) document starts of the current batch when packed
    private boolean packed;                                   // the current batch has document starts (neat packing)
    private Predicate<String> frozen = n -> false;
    private float gradScale = 1f;
    private int curB, curT, validCount;
    private boolean lastTraining;

    public LlamaModel(LlamaConfig cfg, Gemm gemm, Parallel par, int maxBatch, int maxT, boolean gradientCheckpointing) {
        this(cfg, LlamaLayout.of(cfg), gemm, par, maxBatch, maxT, gradientCheckpointing, n -> false);
    }

    /**
     * As {@link #LlamaModel(LlamaConfig, Gemm, Parallel, int, int, boolean)} over {@code layout}: {@link LlamaLayout}
     * followed by extra views the model ignores (LoRA's); the projection weights for which {@code storedBf16} is true
     * are frozen and stored in bf16 ({@link #writeView} rounds to nearest even, as {@code .to(torch.bfloat16)}).
     */
    public LlamaModel(LlamaConfig cfg, ParamLayout layout, Gemm gemm, Parallel par, int maxBatch, int maxT,
                      boolean gradientCheckpointing, Predicate<String> storedBf16) {
        if (maxBatch < 1 || maxT < 1) throw new IllegalArgumentException("maxBatch and maxT must be positive");
        List<ParamLayout.View> base = LlamaLayout.of(cfg).views(), given = layout.views();
        boolean prefix = given.size() >= base.size();
        for (int i = 0; prefix && i < base.size(); i++)
            prefix = base.get(i).name().equals(given.get(i).name()) && Arrays.equals(base.get(i).shape(), given.get(i).shape());
        if (!prefix) throw new IllegalArgumentException("layout does not start with the LLaMA layout of the config");
        this.cfg = cfg;
        this.layout = layout;
        this.bf16Views = new HashSet<>();
        ParamLayout fp32 = new ParamLayout();
        int n16 = 0;
        for (ParamLayout.View v : given) {
            if (storedBf16.test(v.name())) {
                if (!LlamaFamily.INSTANCE.bf16Storable(v.name()))
                    throw new IllegalArgumentException(v.name() + " cannot be stored in bf16 (only projection weights)");
                bf16Views.add(v.name());
                n16 += v.size();
            } else fp32.add(v.name(), v.shape());
        }
        this.storageLayout = bf16Views.isEmpty() ? layout : fp32;
        this.params = new float[storageLayout.size()];
        this.params16 = new short[n16];
        WeightStore store = new WeightStore();
        int o16 = 0;
        for (ParamLayout.View v : given) {
            if (bf16Views.contains(v.name())) {
                store.put(new WeightStore.Tensor(v.name(), v.shape(), null, params16, o16));
                o16 += v.size();
            } else store.put(new WeightStore.Tensor(v.name(), v.shape(), params, null, storageLayout.get(v.name()).offset()));
        }
        this.w = LlamaWeights.of(cfg, store);
        this.gemm = gemm;
        this.par = par;
        this.L = cfg.numLayers();
        this.C = cfg.hiddenSize();
        this.F = cfg.intermediateSize();
        this.Q = cfg.qDim();
        this.K = cfg.kvDim();
        this.NH = cfg.numHeads();
        this.NKV = cfg.numKvHeads();
        this.hd = cfg.headDim();
        this.V = cfg.vocabSize();
        this.maxB = maxBatch;
        this.maxT = maxT;
        this.maxN = Math.multiplyExact(maxBatch, maxT);
        this.checkpointing = gradientCheckpointing;
        this.rope = cfg.rope();
        int S = gradientCheckpointing ? 1 : L;
        tokens = new int[maxN];
        targets = new int[maxN];
        embedSlots = new int[maxN];
        starts = new int[maxN];
        resid = new float[Math.multiplyExact((L + 1) * maxN, C)];
        hRes = new float[S * maxN * C];
        qPre = cfg.qkNorm() ? new float[S * maxN * Q] : null;
        kPre = cfg.qkNorm() ? new float[S * maxN * K] : null;
        qRot = new float[S * maxN * Q];
        kRot = new float[S * maxN * K];
        vAct = new float[S * maxN * K];
        att = new float[S * maxN * Q];
        lse = new float[S * maxB * NH * maxT];
        gate = new float[S * maxN * F];
        up = new float[S * maxN * F];
        rstd1 = new float[S * maxN];
        rstd2 = new float[S * maxN];
        qRstd = cfg.qkNorm() ? new float[S * maxN * NH] : null;
        kRstd = cfg.qkNorm() ? new float[S * maxN * NKV] : null;
        xn = new float[maxN * C];
        act = new float[maxN * F];
        tmp = new float[maxN * C];
        lnf = new float[maxN * C];
        lnfRstd = new float[maxN];
        dres = new float[maxN * C];
        dxn = new float[maxN * C];
        dact = new float[maxN * F];
        dgate = new float[maxN * F];
        dup = new float[maxN * F];
        datt = new float[maxN * Q];
        dq = new float[maxN * Q];
        dk = new float[maxN * K];
        dv = new float[maxN * K];
        dqPre = cfg.qkNorm() ? new float[maxN * Q] : null;
        dkPre = cfg.qkNorm() ? new float[maxN * K] : null;
        dlnf = new float[maxN * C];
        headScratch = new float[CrossEntropyHead.scratchSize(Math.min(HEAD_ROWS, maxN), C, V)];
    }

    @Override
    public LlamaConfig config() {
        return cfg;
    }

    @Override
    public ParamLayout layout() {
        return layout;
    }

    @Override
    public float[] params() {
        return params;
    }

    @Override
    public ParamLayout storageLayout() {
        return storageLayout;
    }

    @Override
    public int paramOffset(String name) {
        return bf16Views.contains(name) ? -1 : storageLayout.get(name).offset();
    }

    @Override
    public void writeView(String name, float[] src, int srcOff) {
        WeightStore.Tensor t = tensor(name);
        int n = layout.get(name).size();
        if (!t.isBf16()) System.arraycopy(src, srcOff, params, t.offset(), n);
        else for (int k = 0; k < n; k++) params16[t.offset() + k] = DType.floatToBf16(src[srcOff + k]);
    }

    private WeightStore.Tensor tensor(String name) {
        ParamLayout.View v = layout.get(name);
        return bf16Views.contains(name) ? bf16Tensor(name) : new WeightStore.Tensor(name, v.shape(), params, null, paramOffset(name));
    }

    private WeightStore.Tensor bf16Tensor(String name) {
        int o = 0;
        for (ParamLayout.View v : layout.views()) {
            if (v.name().equals(name)) return new WeightStore.Tensor(name, v.shape(), null, params16, o);
            if (bf16Views.contains(v.name())) o += v.size();
        }
        throw new IllegalArgumentException(name);
    }

    @Override
    public void setDropoutOrigin(long firstToken) {   // the model itself has no dropout; LoRA's is on its inputs
        if (firstToken < 0) throw new IllegalArgumentException("negative dropout origin " + firstToken);
        if (hook != null) hook.setDropoutOrigin(firstToken);
    }

    @Override
    public void setLinearHook(LinearHook hook) {
        this.hook = hook;
    }

    /** Bytes this model's activation and scratch buffers take (what {@link LlamaFamily#activationBytes} predicts). */
    public long allocatedActivationBytes() {
        long n = tokens.length + targets.length + starts.length + embedSlots.length;
        for (float[] a : new float[][] {resid, hRes, qPre, kPre, qRot, kRot, vAct, att, lse, gate, up, rstd1, rstd2, qRstd,
                kRstd, xn, act, tmp, lnf, lnfRstd, dres, dxn, dact, dgate, dup, datt, dq, dk, dv, dqPre, dkPre, dlnf, headScratch})
            if (a != null) n += a.length;
        return 4 * n;
    }

    /** The weight table over {@link #params()} (shared with {@link LlamaDecoder}). */
    public LlamaWeights weights() {
        return w;
    }

    @Override
    public float[] grads() {
        if (grads == null) {
            int size = 0;
            gradOf = new HashMap<>();
            boolean sparse = sparseEmbedWanted && !cfg.tieWordEmbeddings() && !frozen.test(LlamaLayout.EMBED);
            if (!sparse) embedSparse = null;
            else if (embedSparse == null) embedSparse = new RowSparseGrad(V, C);
            else embedSparse.zero();
            for (ParamLayout.View v : layout.views()) {
                if (frozen.test(v.name()) || bf16Views.contains(v.name())) continue;
                if (sparse && v.name().equals(LlamaLayout.EMBED)) continue;
                gradOf.put(paramOffset(v.name()), size);
                size += v.size();
            }
            grads = new float[size];
        }
        return grads;
    }

    @Override
    public int gradOffset(String name) {
        grads();
        if (bf16Views.contains(name)) return -1;
        Integer o = gradOf.get(paramOffset(name));
        return o == null ? -1 : o;
    }

    /** The gradient offset of the parameter at {@code paramOff}, or −1 (absent or frozen). */
    private int g(int paramOff) {
        if (paramOff < 0) return -1;
        Integer o = gradOf.get(paramOff);
        return o == null ? -1 : o;
    }

    private float[] ga(int paramOff) {
        return g(paramOff) < 0 ? null : grads;
    }

    @Override
    public int maxBatch() {
        return maxB;
    }

    @Override
    public int maxT() {
        return maxT;
    }

    @Override
    public void setFrozen(Predicate<String> isFrozen) {
        this.frozen = isFrozen;
        this.grads = null;
    }

    @Override
    public void setGradScale(float s) {
        this.gradScale = s;
    }

    @Override
    public void zeroGrad() {
        Arrays.fill(grads(), 0f);
        if (embedSparse != null) embedSparse.zero();
    }

    /**
     * With {@code sparse} true, a trainable untied {@code embed_tokens} keeps its gradient in a {@link RowSparseGrad}
     * instead of {@link #grads()}: its backward only adds into the rows of the batch's tokens (a tied embedding stays
     * dense: the head writes every row). The values are the same as dense. Replaces and zeroes the gradients.
     */
    @Override
    public void setSparseTokenEmbeddingGrad(boolean sparse) {
        sparseEmbedWanted = sparse;
        grads = null;
    }

    @Override
    public RowSparseGrad sparseGrad(String name) {
        grads();
        return name.equals(LlamaLayout.EMBED) ? embedSparse : null;
    }

    /**
     * HF init (LlamaPreTrainedModel._init_weights): Linear and embedding weights N(0, initializer_range), biases 0,
     * RMSNorm weights 1. Deterministic in the seed.
     */
    @Override
    public void initRandom(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double std = cfg.initializerRange();
        for (ParamLayout.View v : layout.views()) {
            int n = v.size();
            if (bf16Views.contains(v.name())) {
                int o = bf16Tensor(v.name()).offset();
                for (int i = 0; i < n; i++) params16[o + i] = DType.floatToBf16((float) (r.nextGaussian() * std));
                continue;
            }
            int o = paramOffset(v.name());
            if (v.name().endsWith(".bias")) Arrays.fill(params, o, o + n, 0f);
            else if (v.name().endsWith("norm.weight")) Arrays.fill(params, o, o + n, 1f);
            else for (int i = 0; i < n; i++) params[o + i] = (float) (r.nextGaussian() * std);
        }
    }

    @Override
    public float forward(int[] toks, int[] labels, int[] docStarts, int B, int T, boolean training, long dropoutSeed) {
        int N = B * T;
        lastSeed = dropoutSeed;
        packed = docStarts != null;
        if (packed) {
            CausalLm.checkDocStarts(docStarts, B, T);
            System.arraycopy(docStarts, 0, starts, 0, N);
        }
        run(toks, B, T, training);
        int count = CausalLm.shiftedTargets(toks, labels, packed ? starts : null, B, T, V, targets);
        validCount = count;
        float scale = count == 0 ? 0f : gradScale / count;
        double total;
        int R = Math.min(HEAD_ROWS, maxN);
        if (training) {
            grads();
            Arrays.fill(dlnf, 0, N * C, 0f);
            prof.lap(Phase.ZERO_FILL);
            total = CrossEntropyHead.forward(gemm, par, lnf, 0, params, off(w.head()), targets, 0, N, C, V, scale,
                    dlnf, 0, ga(off(w.head())), g(off(w.head())), headScratch, R);
        } else {
            total = CrossEntropyHead.forward(gemm, par, lnf, 0, params, off(w.head()), targets, 0, N, C, V, 0f,
                    null, 0, null, 0, headScratch, R);
        }
        prof.lap(Phase.HEAD);
        return count == 0 ? Float.NaN : (float) (total / count);
    }

    /** The opt-in phase timer ({@code -Dcpt4j.profile=true}); the GPT-2 phase names, LoRA hooks charged to their projection. */
    @Override
    public PhaseProfile profile() {
        return prof;
    }

    @Override
    public void logits(int[] toks, int B, int T, float[] out) {
        if (out.length < (long) B * T * V) throw new IllegalArgumentException("logits buffer smaller than B·T·V");
        packed = false;
        run(toks, B, T, false);
        CrossEntropyHead.logits(gemm, out, 0, lnf, 0, params, off(w.head()), B * T, C, V);
    }

    /** Number of positions with a label in the last forward (the loss's denominator). */
    public int lastLabelCount() {
        return validCount;
    }

    /** Embedding, every block and model.norm: fills lnf (N, C). */
    private void run(int[] toks, int B, int T, boolean training) {
        CausalLm.copyTokens(toks, B, T, maxB, maxT, V, tokens);
        int N = B * T;
        curB = B;
        curT = T;
        lastTraining = training;
        if (tableT != T) {
            cos = new float[T * hd / 2];
            sin = new float[T * hd / 2];
            rope.table(T, T, cos, sin);
            tableT = T;
        }
        par.forRange(N, (r0, r1) -> {
            for (int r = r0; r < r1; r++) System.arraycopy(params, off(w.embed()) + tokens[r] * C, resid, r * C, C);
        });
        prof.lap(Phase.EMBED_FWD);
        for (int l = 0; l < L; l++) blockForward(l, slot(l));
        RmsNorm.forward(par, lnf, 0, lnfRstd, 0, resid, L * maxN * C, params, off(w.norm()), N, C, cfg.rmsNormEps());
        prof.lap(Phase.LNF_FWD);
    }

    private int slot(int l) {
        return checkpointing ? 0 : l;
    }

    private float scale() {
        return (float) (1.0 / Math.sqrt(hd));
    }

    /** One block: resid[l] → resid[l+1], saving activations in slot s. */
    private void blockForward(int l, int s) {
        int N = curB * curT, T = curT;
        float eps = cfg.rmsNormEps();
        int rIn = l * maxN * C, rOut = (l + 1) * maxN * C, sC = s * maxN * C, sQ = s * maxN * Q, sK = s * maxN * K,
                sF = s * maxN * F, sN = s * maxN;
        RmsNorm.forward(par, xn, 0, rstd1, sN, resid, rIn, params, off(w.ln1()[l]), N, C, eps);
        prof.lap(Phase.LN_FWD);
        if (cfg.qkNorm()) {
            proj(l, Q_PROJ, qPre, sQ, xn, 0, w.q()[l], w.qb()[l], N, C, Q);
            proj(l, K_PROJ, kPre, sK, xn, 0, w.k()[l], w.kb()[l], N, C, K);
            RmsNorm.forward(par, qRot, sQ, qRstd, s * maxN * NH, qPre, sQ, params, off(w.qNorm()[l]), N * NH, hd, eps);
            RmsNorm.forward(par, kRot, sK, kRstd, s * maxN * NKV, kPre, sK, params, off(w.kNorm()[l]), N * NKV, hd, eps);
        } else {
            proj(l, Q_PROJ, qRot, sQ, xn, 0, w.q()[l], w.qb()[l], N, C, Q);
            proj(l, K_PROJ, kRot, sK, xn, 0, w.k()[l], w.kb()[l], N, C, K);
        }
        proj(l, V_PROJ, vAct, sK, xn, 0, w.v()[l], w.vb()[l], N, C, K);
        prof.lap(Phase.QKV_FWD);
        ropeForward(qRot, sQ, N, T, NH);
        ropeForward(kRot, sK, N, T, NKV);
        GqaAttention.forward(par, att, sQ, lse, s * maxB * NH * maxT, qRot, sQ, kRot, sK, vAct, sK, packed ? starts : null, 0, curB, T, NH, NKV, hd,
                scale(), cfg.window(l));
        prof.lap(Phase.ATTN_FWD);
        proj(l, O_PROJ, tmp, 0, att, sQ, w.o()[l], w.ob()[l], N, Q, C);
        prof.lap(Phase.PROJ_FWD);
        Conv1d.residualForward(par, hRes, sC, resid, rIn, tmp, 0, N * C);
        prof.lap(Phase.RESID_DROP_FWD);
        RmsNorm.forward(par, xn, 0, rstd2, sN, hRes, sC, params, off(w.ln2()[l]), N, C, eps);
        prof.lap(Phase.LN_FWD);
        proj(l, GATE_PROJ, gate, sF, xn, 0, w.gate()[l], w.gateB()[l], N, C, F);
        proj(l, UP_PROJ, up, sF, xn, 0, w.up()[l], w.upB()[l], N, C, F);
        prof.lap(Phase.FC_FWD);
        SwiGlu.forward(par, act, 0, gate, sF, up, sF, N * F);
        prof.lap(Phase.ACT_FWD);
        proj(l, DOWN_PROJ, tmp, 0, act, 0, w.down()[l], w.downB()[l], N, F, C);
        prof.lap(Phase.FCPROJ_FWD);
        Conv1d.residualForward(par, resid, rOut, hRes, sC, tmp, 0, N * C);
        prof.lap(Phase.RESID_DROP_FWD);
    }

    /** RoPE in place on x (rows, heads·hd) from xOff: positions from the document starts when packed. */
    private void ropeForward(float[] x, int xOff, int N, int T, int heads) {
        if (packed) Rope.forward(par, x, xOff, N, T, heads, hd, cos, sin, starts);
        else Rope.forward(par, x, xOff, N, T, heads, hd, cos, sin, 0);
    }

    private void ropeBackward(float[] dx, int N, int T, int heads) {
        if (packed) Rope.backward(par, dx, 0, N, T, heads, hd, cos, sin, starts);
        else Rope.backward(par, dx, 0, N, T, heads, hd, cos, sin, 0);
    }

    private float[] bias(int off) {
        return off < 0 ? null : params;
    }


    @Override
    public void backward() {
        if (!lastTraining) throw new IllegalStateException("backward() needs a preceding forward(..., training=true, ...)");
        int N = curB * curT;
        Arrays.fill(dres, 0, N * C, 0f);
        RmsNorm.backward(par, dres, 0, ga(off(w.norm())), g(off(w.norm())), dlnf, 0, resid, L * maxN * C, params, off(w.norm()),
                lnfRstd, 0, N, C);
        prof.lap(Phase.LNF_BWD);
        for (int l = L - 1; l >= 0; l--) {
            if (checkpointing && l != L - 1) blockForward(l, 0);   // (the block's laps are charged to the forward phases)
            blockBackward(l, slot(l));
        }
        int e = g(off(w.embed()));
        if (e >= 0) Embedding.backward(par, grads, e, null, 0, dres, 0, tokens, 0, curB, curT, C);
        else if (embedSparse != null) {   // the rows of this batch's tokens become slots; the same scatter-add into them
            for (int i = 0; i < N; i++) embedSlots[i] = embedSparse.slot(tokens[i]);
            Embedding.backward(par, embedSparse.data(), 0, null, 0, dres, 0, embedSlots, 0, curB, curT, C);
        }
        prof.lap(Phase.EMBED_BWD);
        lastTraining = false;
    }

    /** dres holds d resid[l+1] on entry and d resid[l] on exit. */
    private void blockBackward(int l, int s) {
        int N = curB * curT, T = curT;
        float eps = cfg.rmsNormEps();
        int rIn = l * maxN * C, sC = s * maxN * C, sQ = s * maxN * Q, sK = s * maxN * K, sF = s * maxN * F, sN = s * maxN;
        // MLP half: resid[l+1] = h + down(silu(gate(y)) · up(y)), y = RMSNorm(h)
        RmsNorm.forward(par, xn, 0, rstd2, sN, hRes, sC, params, off(w.ln2()[l]), N, C, eps);
        SwiGlu.forward(par, act, 0, gate, sF, up, sF, N * F);
        prof.lap(Phase.RECOMPUTE);
        Arrays.fill(dact, 0, N * F, 0f);
        prof.lap(Phase.ZERO_FILL);
        linBack(l, DOWN_PROJ, dact, 0, dres, 0, act, 0, w.down()[l], w.downB()[l], N, F, C);
        prof.lap(Phase.FCPROJ_BWD);
        SwiGlu.backward(par, dgate, 0, dup, 0, dact, 0, gate, sF, up, sF, N * F);
        prof.lap(Phase.ACT_BWD);
        Arrays.fill(dxn, 0, N * C, 0f);
        prof.lap(Phase.ZERO_FILL);
        linBack(l, GATE_PROJ, dxn, 0, dgate, 0, xn, 0, w.gate()[l], w.gateB()[l], N, C, F);
        linBack(l, UP_PROJ, dxn, 0, dup, 0, xn, 0, w.up()[l], w.upB()[l], N, C, F);
        prof.lap(Phase.FC_BWD);
        RmsNorm.backward(par, dres, 0, ga(off(w.ln2()[l])), g(off(w.ln2()[l])), dxn, 0, hRes, sC, params, off(w.ln2()[l]), rstd2, sN, N, C);
        prof.lap(Phase.LN_BWD);
        // attention half: h = x + o(attn(rope(q(xn)), rope(k(xn)), v(xn))), xn = RMSNorm(x)
        Arrays.fill(datt, 0, N * Q, 0f);
        prof.lap(Phase.ZERO_FILL);
        linBack(l, O_PROJ, datt, 0, dres, 0, att, sQ, w.o()[l], w.ob()[l], N, Q, C);
        prof.lap(Phase.PROJ_BWD);
        GqaAttention.backward(par, dq, 0, dk, 0, dv, 0, datt, 0, att, sQ, lse, s * maxB * NH * maxT, qRot, sQ, kRot, sK,
                vAct, sK, packed ? starts : null, 0, curB, T, NH, NKV, hd, scale(), cfg.window(l));
        ropeBackward(dq, N, T, NH);
        ropeBackward(dk, N, T, NKV);
        float[] dqIn = dq, dkIn = dk;
        if (cfg.qkNorm()) {
            Arrays.fill(dqPre, 0, N * Q, 0f);
            Arrays.fill(dkPre, 0, N * K, 0f);
            RmsNorm.backward(par, dqPre, 0, ga(off(w.qNorm()[l])), g(off(w.qNorm()[l])), dq, 0, qPre, sQ, params, off(w.qNorm()[l]),
                    qRstd, s * maxN * NH, N * NH, hd);
            RmsNorm.backward(par, dkPre, 0, ga(off(w.kNorm()[l])), g(off(w.kNorm()[l])), dk, 0, kPre, sK, params, off(w.kNorm()[l]),
                    kRstd, s * maxN * NKV, N * NKV, hd);
            dqIn = dqPre;
            dkIn = dkPre;
        }
        prof.lap(Phase.ATTN_BWD);
        RmsNorm.forward(par, xn, 0, rstd1, sN, resid, rIn, params, off(w.ln1()[l]), N, C, eps);
        prof.lap(Phase.RECOMPUTE);
        Arrays.fill(dxn, 0, N * C, 0f);
        prof.lap(Phase.ZERO_FILL);
        linBack(l, Q_PROJ, dxn, 0, dqIn, 0, xn, 0, w.q()[l], w.qb()[l], N, C, Q);
        linBack(l, K_PROJ, dxn, 0, dkIn, 0, xn, 0, w.k()[l], w.kb()[l], N, C, K);
        linBack(l, V_PROJ, dxn, 0, dv, 0, xn, 0, w.v()[l], w.vb()[l], N, C, K);
        prof.lap(Phase.QKV_BWD);
        RmsNorm.backward(par, dres, 0, ga(off(w.ln1()[l])), g(off(w.ln1()[l])), dxn, 0, resid, rIn, params, off(w.ln1()[l]), rstd1, sN, N, C);
        prof.lap(Phase.LN_BWD);
    }

    /** The LoRA sites of a block, in {@link LlamaFamily#loraSites()} order. */
    static final int Q_PROJ = 0, K_PROJ = 1, V_PROJ = 2, O_PROJ = 3, GATE_PROJ = 4, UP_PROJ = 5, DOWN_PROJ = 6;

    /** The one place a projection runs forward: y (N, out) = x (N, in)·Wᵀ + b (W fp32 or bf16), then the hook. */
    private void proj(int l, int site, float[] y, int yOff, float[] x, int xOff, WeightStore.Tensor wt, WeightStore.Tensor bt,
                      int N, int in, int out) {
        int bo = off(bt);
        if (wt.isBf16()) NnLinear.forwardBf16(gemm, par, y, yOff, x, xOff, params16, wt.offset(), bias(bo), bo, N, in, out);
        else NnLinear.forward(gemm, par, y, yOff, x, xOff, params, wt.offset(), bias(bo), bo, N, in, out);
        if (hook != null) hook.forward(l, site, x, xOff, y, yOff, N, in, out, lastTraining, lastSeed);
    }

    /**
     * The one place a projection runs backward: dx += dy·W, dW += dyᵀ·x, db += Σ dy (unless frozen; a bf16 weight
     * always is), then the hook.
     */
    private void linBack(int l, int site, float[] dx, int dxOff, float[] dy, int dyOff, float[] x, int xOff,
                         WeightStore.Tensor wt, WeightStore.Tensor bt, int N, int in, int out) {
        int bo = off(bt);
        if (wt.isBf16()) {
            // dx (N, in) += dy (N, out) · W (out, in), W widened from bf16 while packing
            gemm.sgemmBf16(false, false, N, in, out, dy, dyOff, out, params16, wt.offset(), in, 1f, dx, dxOff, in);
            if (g(bo) >= 0) Conv1d.biasBackward(par, grads, g(bo), dy, dyOff, N, out);
        } else {
            int wo = wt.offset();
            NnLinear.backward(gemm, par, dx, dxOff, ga(wo), g(wo), ga(bo), g(bo), dy, dyOff, x, xOff, params, wo, N, in, out);
        }
        if (hook != null) hook.backward(l, site, x, xOff, dy, dyOff, dx, dxOff, N, in, out);
    }
}
