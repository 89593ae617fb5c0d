package dev.cpt4j.model;

import dev.cpt4j.io.DType;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;
import dev.cpt4j.tensor.cpu.Activation;
import dev.cpt4j.tensor.cpu.Attention;
import dev.cpt4j.tensor.cpu.CrossEntropyHead;
import dev.cpt4j.tensor.cpu.Dropout;
import dev.cpt4j.tensor.cpu.Embedding;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tensor.cpu.LayerNorm;
import dev.cpt4j.tensor.cpu.Conv1d;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Predicate;

/**
 * GPT-2 exactly as transformers' {@code GPT2LMHeadModel} computes it (pre-LayerNorm blocks, fused qkv Conv1D,
 * causal attention, tied or untied head), forward and backward on the CPU, in the style of llm.c's train_gpt2.c:
 * one flat parameter buffer, one flat gradient buffer, activations allocated once for (maxBatch, maxT) and reused.
 * The gradient buffer holds only the views that are not frozen ({@link #gradOffset}), so a LoRA run pays nothing for
 * the base's gradients; frozen Conv1D weights may be stored in bf16 outside the parameter buffer (see the
 * constructor with {@code storedBf16}, {@link #paramOffset}, {@link #storageLayout()}). On request
 * ({@link #setSparseTokenEmbeddingGrad}) an untied token embedding's gradient is row-sparse
 * ({@link #sparseGrad}): only the rows of the tokens seen since {@link #zeroGrad()} take space.
 *
 * <h2>API</h2>
 * <ul>
 *   <li>{@code new Gpt2Model(config, gemm, par, maxBatch, maxT, gradientCheckpointing)} — parameters are zero until
 *       {@link #initRandom(long)} or a loader writes {@link #params()} (layout {@link #layout()}, HF names/shapes,
 *       see {@link Gpt2Layout}).</li>
 *   <li>{@link #forward(int[], int, int, boolean, long)} — mean next-token cross-entropy with labels = input ids
 *       (positions 0..T−2 predict tokens 1..T−1), as HF computes with {@code labels=input_ids};
 *       {@link #forward(int[], int[], int, int, boolean, long)} takes separate labels (−100 or any negative is
 *       ignored). With {@code training=true} dropout is applied (from the given seed) and the output head's
 *       gradient is already accumulated into {@link #grads()}: call {@link #backward()} next to finish.</li>
 *   <li>{@link #backward()} adds d(mean loss)/d(params) into {@link #grads()} (× {@link #setGradScale(float)});
 *       {@link #zeroGrad()} clears it.</li>
 *   <li>{@link #logits(int[], int, int, float[])} — eval-mode logits (B, T, V); {@link #evalLoss(int[], int, int)}
 *       — eval-mode loss without any gradient work.</li>
 *   <li>{@link #setLinearHook(LinearHook)} attaches extra computation (LoRA) to every Conv1D;
 *       {@link #setFrozen(Predicate)} skips weight gradients of frozen tensors.</li>
 * </ul>
 * Results are deterministic for a given dropout seed and thread count. Not thread-safe.
 *
 * <p>Memory: kept per layer for backward are the block input, qkv, the attention output and its log-sum-exp, the
 * residual after attention, the c_fc output and the LayerNorm statistics; LayerNorm and activation outputs are
 * recomputed in backward (cheap). With gradient checkpointing only the block inputs are kept and each block is
 * recomputed once in backward. Attention never stores (B, NH, T, T); the head never holds (B·T, V) logits.
 *
 * <p>Dimensions: B batch, T time, N = B·T rows, C width, NH heads, F = n_inner, V vocab, L layers.
 */
public final class Gpt2Model implements CausalLm {
    private final Gpt2Config cfg;
    private final Gemm gemm;
    private final Parallel par;
    private final int maxB, maxT, maxN, L, C, NH, F, V;
    private final boolean checkpointing;
    private final Activation act;
    private final ParamLayout layout;
    private final float[] params;     // fp32 storage, laid out by storageLayout
    private final short[] params16;   // bf16 storage of the views stored so (frozen Conv1D weights)
    private final boolean[] bf16;     // per view index: stored in params16
    private final int[] paramOff;     // per view index: offset into params, or into params16 when bf16
    private final ParamLayout storageLayout; // the fp32-stored views, packed (layout itself when none is bf16)
    private float[] grads;            // (gradient views,) allocated on first use; see gradOffset
    private final boolean[] frozen;   // per view index
    private final int[] gradOff;      // per view index: offset into grads, -1 = no gradient (frozen)
    private int gradSize;
    private boolean sparseWteWanted;  // see setSparseTokenEmbeddingGrad
    private RowSparseGrad wteSparse;  // wte's gradient when row-sparse, else null
    private final int[] wteSlots;     // (maxN) slot of each token's row in wteSparse
    private LinearHook hook;
    private float gradScale = 1f;
    private final PhaseProfile prof = new PhaseProfile();
    private long activationFloats;    // floats allocated by alloc (see activationBytes)

    // parameter offsets: the table shared with the decoder
    private final Gpt2Weights w;
    private final int vWte, vWpe, vHead, vLnfW, vLnfB;
    private final int[] vLn1W, vLn1B, vLn2W, vLn2B;
    private final int[] vAttnW, vProjW, vFcW, vFcProjW;

    // activations; per-layer ones have SL = (checkpointing ? 1 : L) slots
    private final float[] resid;      // (L+1, maxN, C) block inputs (and the final residual stream)
    private final float[] ln1, ln2;   // (maxN, C) LayerNorm outputs of the current block (recomputed in backward)
    private final float[] ln1Mean, ln1Rstd, ln2Mean, ln2Rstd; // (SL, maxN)
    private final float[] qkv;        // (SL, maxN, 3C)
    private final float[] atty;       // (SL, maxN, C) attention output before c_proj
    private final float[] lse;        // (SL, maxB, NH, maxT)
    private final float[] res2;       // (SL, maxN, C) residual after the attention half
    private final float[] fch;        // (SL, maxN, F) c_fc output (activation input)
    private final float[] fchAct;     // (maxN, F) activation output of the current block (recomputed in backward)
    private final float[] lnf;        // (maxN, C)
    private final float[] lnfMean, lnfRstd; // (maxN)
    private final float[] tmp;        // (maxN, C)
    // gradient scratch
    private final float[] dres, dtmp, dln, datty; // (maxN, C)
    private final float[] dqkv;       // (maxN, 3C)
    private final float[] dfch, dfchAct; // (maxN, F)
    private final float[] headScratch;
    private static final int HEAD_ROWS = 128; // (128, V) logits at a time: 11 MB for V = 21k
    private final int[] tokens, targets; // (maxN)
    private final int[] starts;          // (maxN) document starts of the current batch when packed
    private boolean packed;              // the current batch has document starts (neat packing)

    // state of the last forward
    private int curB, curT, validCount;
    private boolean lastTraining;
    private long lastSeed;
    private long origin;              // global index of this batch's first token in a batch split over ranks

    private static final long STREAM_EMBD = -1;
    private static final int ST_ATTN = 0, ST_RESID_ATTN = 1, ST_RESID_MLP = 2;

    /**
     * @param gradientCheckpointing keep only each block's input in forward and recompute the block in backward
     *                              (less memory, ~1/3 more compute)
     */
    public Gpt2Model(Gpt2Config config, Gemm gemm, Parallel par, int maxBatch, int maxT, boolean gradientCheckpointing) {
        this(config, Gpt2Layout.of(config), gemm, par, maxBatch, maxT, gradientCheckpointing);
    }

    /**
     * As {@link #Gpt2Model(Gpt2Config, Gemm, Parallel, int, int, boolean)} with a layout that extends
     * {@link Gpt2Layout#of} by extra views appended after the model's own (adapter tensors such as LoRA's A and B),
     * so that parameters, gradients and optimizer state stay one flat buffer each. The model ignores the extra views.
     */
    public Gpt2Model(Gpt2Config config, ParamLayout layout, Gemm gemm, Parallel par, int maxBatch, int maxT,
                     boolean gradientCheckpointing) {
        this(config, layout, gemm, par, maxBatch, maxT, gradientCheckpointing, name -> false);
    }

    /**
     * As {@link #Gpt2Model(Gpt2Config, ParamLayout, Gemm, Parallel, int, int, boolean)}, with the Conv1D weights for
     * which {@code storedBf16} is true kept in bfloat16 (half the memory of fp32) instead of in {@link #params()}:
     * they are frozen (no gradient), written with {@link #writeView} (rounded to nearest even, as torch's
     * {@code .to(torch.bfloat16)}) and widened to fp32 inside the GEMM's packing. Results equal an fp32 model whose
     * weights were rounded through bf16. Only {@code transformer.h.*.{attn.c_attn, attn.c_proj, mlp.c_fc,
     * mlp.c_proj}.weight} may be stored so.
     */
    public Gpt2Model(Gpt2Config config, ParamLayout layout, Gemm gemm, Parallel par, int maxBatch, int maxT,
                     boolean gradientCheckpointing, Predicate<String> storedBf16) {
        List<ParamLayout.View> base = Gpt2Layout.of(config).views(), given = layout.views();
        boolean prefix = given.size() >= base.size();
        for (int i = 0; prefix && i < base.size(); i++)
            prefix = base.get(i).name().equals(given.get(i).name()) && base.get(i).offset() == given.get(i).offset()
                    && Arrays.equals(base.get(i).shape(), given.get(i).shape());
        if (!prefix) throw new IllegalArgumentException("layout does not start with the GPT-2 layout of the config");
        if (maxBatch < 1 || maxT < 1) throw new IllegalArgumentException("maxBatch and maxT must be positive");
        if (maxT > config.nPositions())
            throw new IllegalArgumentException("maxT " + maxT + " exceeds n_positions " + config.nPositions());
        this.cfg = config;
        this.gemm = gemm;
        this.par = par;
        this.maxB = maxBatch;
        this.maxT = maxT;
        this.maxN = maxBatch * maxT;
        this.L = config.nLayer();
        this.C = config.nEmbd();
        this.NH = config.nHead();
        this.F = config.nInner();
        this.V = config.vocabSize();
        this.checkpointing = gradientCheckpointing;
        this.act = Activation.of(config.activation());
        this.layout = layout;
        List<ParamLayout.View> views = layout.views();
        int nv = views.size();
        this.bf16 = new boolean[nv];
        this.paramOff = new int[nv];
        ParamLayout fp32 = new ParamLayout();
        int n16 = 0;
        for (int i = 0; i < nv; i++) {
            ParamLayout.View v = views.get(i);
            bf16[i] = storedBf16.test(v.name());
            if (bf16[i] && !isConv1dWeight(v.name()))
                throw new IllegalArgumentException(v.name() + " cannot be stored in bf16 (only Conv1D weights can)");
            if (bf16[i]) {
                paramOff[i] = n16;
                n16 += v.size();
            } else {
                paramOff[i] = fp32.add(v.name(), v.shape()).offset();
            }
        }
        this.storageLayout = n16 == 0 ? layout : fp32;
        this.params = new float[storageLayout.size()];
        this.params16 = new short[n16];
        this.frozen = new boolean[nv];
        for (int i = 0; i < nv; i++) frozen[i] = bf16[i];
        this.gradOff = new int[nv];
        w = Gpt2Weights.of(config, n -> paramOff[viewIndex(n)]);
        vWte = viewIndex(Gpt2Layout.WTE);
        vWpe = viewIndex(Gpt2Layout.WPE);
        vHead = config.tieWordEmbeddings() ? vWte : viewIndex(Gpt2Layout.LM_HEAD);
        vLnfW = viewIndex(Gpt2Layout.LNF_W);
        vLnfB = viewIndex(Gpt2Layout.LNF_B);
        wteSlots = new int[maxBatch * maxT];
        planGrads();
        vLn1W = viewIndices("ln_1.weight");
        vLn1B = viewIndices("ln_1.bias");
        vLn2W = viewIndices("ln_2.weight");
        vLn2B = viewIndices("ln_2.bias");
        vAttnW = viewIndices("attn.c_attn.weight");
        vProjW = viewIndices("attn.c_proj.weight");
        vFcW = viewIndices("mlp.c_fc.weight");
        vFcProjW = viewIndices("mlp.c_proj.weight");

        int SL = gradientCheckpointing ? 1 : L;
        resid = alloc((long) (L + 1) * maxN * C, "resid");
        ln1 = alloc((long) maxN * C, "ln1");
        ln2 = alloc((long) maxN * C, "ln2");
        ln1Mean = alloc((long) SL * maxN, "ln1Mean");
        ln1Rstd = alloc((long) SL * maxN, "ln1Rstd");
        ln2Mean = alloc((long) SL * maxN, "ln2Mean");
        ln2Rstd = alloc((long) SL * maxN, "ln2Rstd");
        qkv = alloc((long) SL * maxN * 3 * C, "qkv");
        atty = alloc((long) SL * maxN * C, "atty");
        lse = alloc((long) SL * maxB * NH * maxT, "lse");
        res2 = alloc((long) SL * maxN * C, "res2");
        fch = alloc((long) SL * maxN * F, "fch");
        fchAct = alloc((long) maxN * F, "fchAct");
        lnf = alloc((long) maxN * C, "lnf");
        lnfMean = alloc((long) maxN, "lnfMean");
        lnfRstd = alloc((long) maxN, "lnfRstd");
        tmp = alloc((long) maxN * C, "tmp");
        dres = alloc((long) maxN * C, "dres");
        dtmp = alloc((long) maxN * C, "dtmp");
        dln = alloc((long) maxN * C, "dln");
        datty = alloc((long) maxN * C, "datty");
        dqkv = alloc((long) maxN * 3 * C, "dqkv");
        dfch = alloc((long) maxN * F, "dfch");
        dfchAct = alloc((long) maxN * F, "dfchAct");
        headScratch = new float[CrossEntropyHead.scratchSize(Math.min(HEAD_ROWS, maxN), C, V)];
        tokens = new int[maxN];
        targets = new int[maxN];
        starts = new int[maxN];
    }

    /**
     * Bytes of the activation and scratch buffers the constructor allocates for (maxBatch, maxT) — the same sizes as
     * the allocations above, so a caller can refuse a batch the heap cannot hold before allocating anything.
     * Parameters, gradients and optimizer state are not included.
     */
    public static long activationBytes(Gpt2Config config, int maxBatch, int maxT, boolean gradientCheckpointing) {
        long N = (long) maxBatch * maxT, C = config.nEmbd(), F = config.nInner(), L = config.nLayer();
        long SL = gradientCheckpointing ? 1 : L;
        long floats = (L + 1) * N * C              // resid
                + 2 * N * C                        // ln1, ln2
                + 4 * SL * N                       // ln1/ln2 mean, rstd
                + SL * N * 3 * C                   // qkv
                + SL * N * C                       // atty
                + SL * maxBatch * config.nHead() * (long) maxT // lse
                + SL * N * C                       // res2
                + SL * N * F                       // fch
                + N * F                            // fchAct
                + N * C + 2 * N                    // lnf, lnfMean, lnfRstd
                + N * C                            // tmp
                + 4 * N * C                        // dres, dtmp, dln, datty
                + N * 3 * C                        // dqkv
                + 2 * N * F                        // dfch, dfchAct
                + CrossEntropyHead.scratchSize((int) Math.min(HEAD_ROWS, N), (int) C, config.vocabSize());
        long ints = 4 * N;                         // tokens, targets, starts, wteSlots
        return 4 * (floats + ints);
    }

    /** Bytes this model's activation and scratch buffers take (what {@link #activationBytes} predicts). */
    public long allocatedActivationBytes() {
        return 4 * (activationFloats + headScratch.length + tokens.length + targets.length + starts.length + wteSlots.length);
    }

    private float[] alloc(long n, String what) {
        activationFloats += n;
        if (n > Integer.MAX_VALUE - 16)
            throw new IllegalArgumentException("activation buffer " + what + " would need " + n
                    + " floats (more than one Java array holds); use a smaller batch or block, or gradient checkpointing");
        return new float[(int) n];
    }

    private int viewIndex(String name) {
        var vs = layout.views();
        for (int i = 0; i < vs.size(); i++) if (vs.get(i).name().equals(name)) return i;
        throw new IllegalArgumentException(name);
    }


    private int[] viewIndices(String suffix) {
        int[] o = new int[L];
        for (int l = 0; l < L; l++) o[l] = viewIndex(Gpt2Layout.layer(l, suffix));
        return o;
    }

    public Gpt2Config config() {
        return cfg;
    }

    /**
     * The flat fp32 parameters, laid out by {@link #storageLayout()} — which is {@link #layout()} unless some views
     * are stored in bf16 (see the constructor); view {@code name} starts at {@link #paramOffset(String)}.
     */
    public float[] params() {
        return params;
    }

    /** The layout of {@link #params()}: every view not stored in bf16, packed in layout order. */
    public ParamLayout storageLayout() {
        return storageLayout;
    }

    /** Where view {@code name} starts in {@link #params()}, or −1 when it is stored in bf16. */
    public int paramOffset(String name) {
        int i = viewIndex(name);
        return bf16[i] ? -1 : paramOff[i];
    }

    /** True when view {@code name} is stored in bf16 (outside {@link #params()}). */
    public boolean storedBf16(String name) {
        return bf16[viewIndex(name)];
    }

    /** Sets view {@code name} from {@code src[srcOff ..]} (its size), rounding to bf16 when it is stored so. */
    public void writeView(String name, float[] src, int srcOff) {
        int i = viewIndex(name), n = layout.views().get(i).size(), o = paramOff[i];
        if (!bf16[i]) System.arraycopy(src, srcOff, params, o, n);
        else for (int k = 0; k < n; k++) params16[o + k] = DType.floatToBf16(src[srcOff + k]);
    }

    /** Copies view {@code name} into {@code dst[dstOff ..]} (widened from bf16 when stored so). */
    public void readView(String name, float[] dst, int dstOff) {
        int i = viewIndex(name), n = layout.views().get(i).size(), o = paramOff[i];
        if (!bf16[i]) System.arraycopy(params, o, dst, dstOff, n);
        else for (int k = 0; k < n; k++) dst[dstOff + k] = DType.bf16ToFloat(params16[o + k]);
    }

    /** True for the weight of a block's Conv1D ({@code transformer.h.N.attn.c_attn.weight}, …): what may be bf16. */
    public static boolean isConv1dWeight(String name) {
        if (!name.startsWith("transformer.h.")) return false;
        for (LinearHook.Site s : LinearHook.Site.values())
            if (name.endsWith("." + s.hfName() + ".weight") && name.split("\\.").length == 6) return true;
        return false;
    }

    /**
     * The flat gradients of the views that have one (all views unless {@link #setFrozen} froze some): view
     * {@code name} starts at {@link #gradOffset(String)}. With nothing frozen this is the layout of
     * {@link #params()}; frozen views take no space. {@link #setFrozen} may replace the array: fetch it again after.
     */
    public float[] grads() {
        if (grads == null) grads = new float[gradSize];
        return grads;
    }

    /**
     * Where view {@code name}'s gradient starts in {@link #grads()}, or −1 when it has none there: frozen, or
     * row-sparse ({@link #sparseGrad} is then non-null).
     */
    public int gradOffset(String name) {
        return gradOff[viewIndex(name)];
    }

    /** {@link #gradOffset(String)} by index into {@code layout().views()}. */
    public int gradOffset(int view) {
        return gradOff[view];
    }

    /**
     * The row-sparse gradient of view {@code name}, or null when its gradient is dense (in {@link #grads()}) or
     * absent (frozen). Only the token embedding can be row-sparse; see {@link #setSparseTokenEmbeddingGrad}.
     */
    public RowSparseGrad sparseGrad(String name) {
        return viewIndex(name) == vWte ? wteSparse : null;
    }

    /**
     * With {@code sparse} true, a trainable token embedding that is not tied to the head keeps its gradient in a
     * {@link RowSparseGrad} ({@link #sparseGrad}) instead of {@link #grads()}: its backward only ever adds into the
     * rows of the batch's tokens, so the dense (V, C) buffer is mostly zeros. The values are the same as dense.
     * A tied embedding stays dense (the head writes every row). Replaces and zeroes the gradients, as
     * {@link #setFrozen}. Default: dense.
     */
    public void setSparseTokenEmbeddingGrad(boolean sparse) {
        sparseWteWanted = sparse;
        planGrads();
    }

    /** Gradient offsets: the unfrozen views in layout order, packed. (Nothing frozen: the parameter offsets.) */
    private void planGrads() {
        var vs = layout.views();
        boolean sparseWte = sparseWteWanted && !frozen[vWte] && vHead != vWte;
        if (!sparseWte) wteSparse = null;
        else if (wteSparse == null) wteSparse = new RowSparseGrad(V, C);
        else wteSparse.zero();
        int n = 0;
        for (int i = 0; i < vs.size(); i++) {
            if (frozen[i] || (sparseWte && i == vWte)) gradOff[i] = -1;
            else {
                gradOff[i] = n;
                n += vs.get(i).size();
            }
        }
        if (grads != null && grads.length != n) grads = null;
        else if (grads != null) Arrays.fill(grads, 0f);
        gradSize = n;
    }

    /** The gradient buffer for a view, or null when it has none (frozen): what the kernels take. */
    private float[] g(int view) {
        return gradOff[view] < 0 ? null : grads();
    }

    private int go(int view) {
        return Math.max(0, gradOff[view]);
    }

    public ParamLayout layout() {
        return layout;
    }

    public int maxBatch() {
        return maxB;
    }

    public int maxT() {
        return maxT;
    }

    public boolean gradientCheckpointing() {
        return checkpointing;
    }

    @Override
    public void setDropoutOrigin(long firstToken) {
        if (firstToken < 0) throw new IllegalArgumentException("negative dropout origin " + firstToken);
        origin = firstToken;
        if (hook != null) hook.setDropoutOrigin(firstToken);
    }

    /** Attaches (or with null removes) the extra computation run at every Conv1D (LoRA). */
    public void setLinearHook(LinearHook hook) {
        this.hook = hook;
    }

    /**
     * Tensors for which the predicate is true get no gradient and no space in {@link #grads()} (which this replaces
     * and zeroes). Views stored in bf16 are always frozen.
     */
    public void setFrozen(Predicate<String> isFrozen) {
        var vs = layout.views();
        for (int i = 0; i < vs.size(); i++) frozen[i] = bf16[i] || isFrozen.test(vs.get(i).name());
        planGrads();
    }

    /** Multiplies every gradient {@link #forward}/{@link #backward} accumulate (e.g. 1/accumulation steps). */
    public void setGradScale(float s) {
        this.gradScale = s;
    }

    public void zeroGrad() {
        if (wteSparse != null) wteSparse.zero();
        float[] grads = grads();
        int n = grads.length, blocks = 64;
        par.forRange(blocks, (b0, b1) -> Arrays.fill(grads, (int) ((long) n * b0 / blocks), (int) ((long) n * b1 / blocks), 0f));
    }

    /**
     * HF init (GPT2PreTrainedModel._init_weights): weights N(0, initializer_range), the two c_proj weights per block
     * N(0, initializer_range/√(2·n_layer)), LayerNorm weight 1 and bias 0, biases 0. Deterministic in the seed.
     */
    public void initRandom(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        double std = cfg.initializerRange(), projStd = std / Math.sqrt(2.0 * L);
        var views = layout.views();
        for (int vi = 0; vi < views.size(); vi++) {
            ParamLayout.View v = views.get(vi);
            String n = v.name();
            int o = paramOff[vi], size = v.size();
            if (n.endsWith(".bias")) Arrays.fill(params, o, o + size, 0f);
            else if (n.contains(".ln_") || n.startsWith("transformer.ln_f")) Arrays.fill(params, o, o + size, 1f);
            else {
                double s = n.endsWith("c_proj.weight") ? projStd : std;
                if (bf16[vi]) for (int i = 0; i < size; i++) params16[o + i] = DType.floatToBf16((float) (r.nextGaussian() * s));
                else for (int i = 0; i < size; i++) params[o + i] = (float) (r.nextGaussian() * s);
            }
        }
    }

    /** Mean next-token loss with labels = tokens; see the class comment. tokens is (B, T) row-major. */
    public float forward(int[] tokens, int B, int T, boolean training, long dropoutSeed) {
        return forward(tokens, null, B, T, training, dropoutSeed);
    }

    /** Eval-mode mean loss (no dropout, no gradient work). */
    public float evalLoss(int[] tokens, int B, int T) {
        return forward(tokens, null, B, T, false, 0L);
    }

    /**
     * Mean cross-entropy of predicting labels[b, t+1] from positions t = 0..T−2 (HF's shift), ignoring negative
     * labels; labels null means labels = tokens. NaN if no position has a label.
     */
    public float forward(int[] tokens, int[] labels, int B, int T, boolean training, long dropoutSeed) {
        return forward(tokens, labels, null, B, T, training, dropoutSeed);
    }

    /** As {@link #forward(int[], int[], int, int, boolean, long)} with packed documents (see {@link CausalLm}). */
    public float forward(int[] tokens, int[] labels, int[] docStarts, int B, int T, boolean training, long dropoutSeed) {
        int N = B * T;
        setDocStarts(docStarts, B, T);
        encodeAndRun(tokens, B, T, training, dropoutSeed);
        int count = CausalLm.shiftedTargets(tokens, labels, packed ? starts : null, B, T, V, targets);
        validCount = count;
        float scale = count == 0 ? 0f : gradScale / count;
        double total;
        if (training) {
            Arrays.fill(dln, 0, N * C, 0f);
            prof.lap(PhaseProfile.Phase.ZERO_FILL);
            total = CrossEntropyHead.forward(gemm, par, lnf, 0, params, w.head(), targets, 0, N, C, V, scale,
                    dln, 0, g(vHead), go(vHead), headScratch, Math.min(HEAD_ROWS, maxN));
        } else {
            total = CrossEntropyHead.forward(gemm, par, lnf, 0, params, w.head(), targets, 0, N, C, V, 0f,
                    null, 0, null, 0, headScratch, Math.min(HEAD_ROWS, maxN));
        }
        prof.lap(PhaseProfile.Phase.HEAD);
        return count == 0 ? Float.NaN : (float) (total / count);
    }

    /** Copies the batch's document starts (null: unpacked) for the forward and backward that follow. */
    private void setDocStarts(int[] docStarts, int B, int T) {
        packed = docStarts != null;
        if (!packed) return;
        CausalLm.checkDocStarts(docStarts, B, T);
        System.arraycopy(docStarts, 0, starts, 0, B * T);
    }

    /** Eval-mode logits: out (B, T, V). */
    public void logits(int[] tokens, int B, int T, float[] out) {
        if (out.length < (long) B * T * V) throw new IllegalArgumentException("logits buffer smaller than B·T·V");
        packed = false;
        encodeAndRun(tokens, B, T, false, 0L);
        CrossEntropyHead.logits(gemm, out, 0, lnf, 0, params, w.head(), B * T, C, V);
    }

    /** Embedding, all blocks and ln_f: fills lnf (N, C). */
    private void encodeAndRun(int[] toks, int B, int T, boolean training, long seed) {
        CausalLm.copyTokens(toks, B, T, maxB, maxT, V, tokens);
        int N = B * T;
        curB = B;
        curT = T;
        lastTraining = training;
        lastSeed = seed;
        Embedding.forward(par, resid, 0, tokens, 0, params, w.wte(), params, w.wpe(), packed ? starts : null, B, T, C);
        if (training && cfg.embdPdrop() > 0)
            Dropout.apply(par, resid, 0, resid, 0, N * C, cfg.embdPdrop(), seed, STREAM_EMBD, origin * C);
        prof.lap(PhaseProfile.Phase.EMBED_FWD);
        for (int l = 0; l < L; l++) blockForward(l, slot(l));
        LayerNorm.forward(par, lnf, 0, lnfMean, lnfRstd, 0, resid, L * maxN * C, params, w.lnfW(), params, w.lnfB(),
                N, C, cfg.layerNormEpsilon());
        prof.lap(PhaseProfile.Phase.LNF_FWD);
    }

    private int slot(int l) {
        return checkpointing ? 0 : l;
    }

    private float attnScale(int l) {
        double s = cfg.scaleAttnWeights() ? Math.pow(C / NH, -0.5) : 1.0;
        if (cfg.scaleAttnByInverseLayerIdx()) s /= (l + 1);
        return (float) s;
    }

    private static long stream(int l, int site) {
        return (long) l * 4 + site;
    }

    /** One GPT-2 block: resid[l] → resid[l+1], saving activations in slot s. */
    private void blockForward(int l, int s) {
        int N = curB * curT;
        boolean tr = lastTraining;
        long seed = lastSeed;
        int rIn = l * maxN * C, rOut = (l + 1) * maxN * C, sc = s * maxN * C, sm = s * maxN;
        float eps = cfg.layerNormEpsilon();
        LayerNorm.forward(par, ln1, 0, ln1Mean, ln1Rstd, sm, resid, rIn, params, w.ln1W()[l], params, w.ln1B()[l], N, C, eps);
        prof.lap(PhaseProfile.Phase.LN_FWD);
        conv1dForward(l, LinearHook.Site.ATTN_QKV, vAttnW[l], qkv, s * maxN * 3 * C, ln1, 0, w.attnW()[l], w.attnB()[l], N, C, 3 * C);
        prof.lap(PhaseProfile.Phase.QKV_FWD);
        Attention.forward(par, atty, sc, lse, s * maxB * NH * maxT, qkv, s * maxN * 3 * C, packed ? starts : null, 0, curB, curT, C, NH,
                attnScale(l), tr ? cfg.attnPdrop() : 0f, seed, stream(l, ST_ATTN), origin);
        prof.lap(PhaseProfile.Phase.ATTN_FWD);
        conv1dForward(l, LinearHook.Site.ATTN_PROJ, vProjW[l], tmp, 0, atty, sc, w.projW()[l], w.projB()[l], N, C, C);
        prof.lap(PhaseProfile.Phase.PROJ_FWD);
        if (tr && cfg.residPdrop() > 0)
            Dropout.apply(par, tmp, 0, tmp, 0, N * C, cfg.residPdrop(), seed, stream(l, ST_RESID_ATTN), origin * C);
        Conv1d.residualForward(par, res2, sc, resid, rIn, tmp, 0, N * C);
        prof.lap(PhaseProfile.Phase.RESID_DROP_FWD);
        LayerNorm.forward(par, ln2, 0, ln2Mean, ln2Rstd, sm, res2, sc, params, w.ln2W()[l], params, w.ln2B()[l], N, C, eps);
        prof.lap(PhaseProfile.Phase.LN_FWD);
        conv1dForward(l, LinearHook.Site.MLP_FC, vFcW[l], fch, s * maxN * F, ln2, 0, w.fcW()[l], w.fcB()[l], N, C, F);
        prof.lap(PhaseProfile.Phase.FC_FWD);
        act.forward(par, fchAct, 0, fch, s * maxN * F, N * F);
        prof.lap(PhaseProfile.Phase.ACT_FWD);
        conv1dForward(l, LinearHook.Site.MLP_PROJ, vFcProjW[l], tmp, 0, fchAct, 0, w.fcProjW()[l], w.fcProjB()[l], N, F, C);
        prof.lap(PhaseProfile.Phase.FCPROJ_FWD);
        if (tr && cfg.residPdrop() > 0)
            Dropout.apply(par, tmp, 0, tmp, 0, N * C, cfg.residPdrop(), seed, stream(l, ST_RESID_MLP), origin * C);
        Conv1d.residualForward(par, resid, rOut, res2, sc, tmp, 0, N * C);
        prof.lap(PhaseProfile.Phase.RESID_DROP_FWD);
    }

    /** The one place a Conv1D runs forward: y = x·W + b (W fp32 or bf16), then the hook. */
    private void conv1dForward(int l, LinearHook.Site site, int wView, float[] y, int yOff, float[] x, int xOff,
                               int wOff, int bOff, int N, int in, int out) {
        if (bf16[wView]) Conv1d.forwardBf16(gemm, par, y, yOff, x, xOff, params16, wOff, params, bOff, N, in, out);
        else Conv1d.forward(gemm, par, y, yOff, x, xOff, params, wOff, params, bOff, N, in, out);
        if (hook != null) hook.forward(l, site.ordinal(), x, xOff, y, yOff, N, in, out, lastTraining, lastSeed);
    }

    /** The one place a Conv1D runs backward: dx += dy·Wᵀ, dW += xᵀ·dy, db += Σ dy (unless frozen), then the hook. */
    private void conv1dBackward(int l, LinearHook.Site site, int wView, float[] dx, int dxOff, float[] dy, int dyOff,
                                float[] x, int xOff, int wOff, int bOff, int N, int in, int out) {
        // the bias view follows its weight in the layout
        if (bf16[wView]) Conv1d.backwardBf16(gemm, par, dx, dxOff, g(wView + 1), go(wView + 1), dy, dyOff,
                params16, wOff, N, in, out);
        else Conv1d.backward(gemm, par, dx, dxOff, g(wView), go(wView), g(wView + 1), go(wView + 1), dy, dyOff,
                x, xOff, params, wOff, N, in, out);
        if (hook != null) hook.backward(l, site.ordinal(), x, xOff, dy, dyOff, dx, dxOff, N, in, out);
    }

    /**
     * Adds the gradient of the last training forward's mean loss into {@link #grads()}. Call once per training
     * forward.
     */
    public void backward() {
        if (!lastTraining) throw new IllegalStateException("backward() needs a preceding forward(..., training=true, ...)");
        int N = curB * curT;
        Arrays.fill(dres, 0, N * C, 0f);
        prof.lap(PhaseProfile.Phase.ZERO_FILL);
        // dln holds dlnf from the fused head
        LayerNorm.backward(par, dres, 0, g(vLnfW), go(vLnfW), g(vLnfB), go(vLnfB), dln, 0, resid, L * maxN * C, lnfMean, lnfRstd, 0,
                params, w.lnfW(), N, C);
        prof.lap(PhaseProfile.Phase.LNF_BWD);
        for (int l = L - 1; l >= 0; l--) {
            if (checkpointing && l != L - 1) {
                blockForward(l, 0);
                prof.lap(PhaseProfile.Phase.RECOMPUTE); // (the block's laps are charged to the forward phases)
            }
            blockBackward(l, slot(l));
        }
        if (cfg.embdPdrop() > 0)
            Dropout.apply(par, dres, 0, dres, 0, N * C, cfg.embdPdrop(), lastSeed, STREAM_EMBD, origin * C);
        if (wteSparse != null) { // the rows of this batch's tokens become slots; the same scatter-add into them
            for (int i = 0; i < N; i++) wteSlots[i] = wteSparse.slot(tokens[i]);
            Embedding.backward(par, wteSparse.data(), 0, g(vWpe), go(vWpe), dres, 0, wteSlots, 0, packed ? starts : null, curB, curT, C);
        } else {
            Embedding.backward(par, g(vWte), go(vWte), g(vWpe), go(vWpe), dres, 0, tokens, 0, packed ? starts : null, curB, curT, C);
        }
        prof.lap(PhaseProfile.Phase.EMBED_BWD);
        lastTraining = false;
    }

    /** dres holds d resid[l+1] on entry and d resid[l] on exit. */
    private void blockBackward(int l, int s) {
        int N = curB * curT, NC = N * C;
        int rIn = l * maxN * C, sc = s * maxN * C, sm = s * maxN, sf = s * maxN * F, sq = s * maxN * 3 * C;
        long seed = lastSeed;
        float eps = cfg.layerNormEpsilon();
        if (!checkpointing) { // the cheap per-block activations were not kept: recompute them (same values)
            LayerNorm.forward(par, ln1, 0, ln1Mean, ln1Rstd, sm, resid, rIn, params, w.ln1W()[l], params, w.ln1B()[l], N, C, eps);
            LayerNorm.forward(par, ln2, 0, ln2Mean, ln2Rstd, sm, res2, sc, params, w.ln2W()[l], params, w.ln2B()[l], N, C, eps);
            act.forward(par, fchAct, 0, fch, sf, N * F);
            prof.lap(PhaseProfile.Phase.RECOMPUTE);
        }
        float[] dy;
        // MLP half: resid[l+1] = res2 + dropout(c_proj(act(c_fc(ln_2(res2)))))
        if (cfg.residPdrop() > 0) {
            Dropout.apply(par, dtmp, 0, dres, 0, NC, cfg.residPdrop(), seed, stream(l, ST_RESID_MLP), origin * C);
            dy = dtmp;
        } else dy = dres;
        Arrays.fill(dfchAct, 0, N * F, 0f);
        prof.lap(PhaseProfile.Phase.ZERO_FILL);
        conv1dBackward(l, LinearHook.Site.MLP_PROJ, vFcProjW[l], dfchAct, 0, dy, 0, fchAct, 0, w.fcProjW()[l], w.fcProjB()[l], N, F, C);
        prof.lap(PhaseProfile.Phase.FCPROJ_BWD);
        Arrays.fill(dfch, 0, N * F, 0f);
        prof.lap(PhaseProfile.Phase.ZERO_FILL);
        act.backward(par, dfch, 0, dfchAct, 0, fch, sf, N * F);
        prof.lap(PhaseProfile.Phase.ACT_BWD);
        Arrays.fill(dln, 0, NC, 0f);
        prof.lap(PhaseProfile.Phase.ZERO_FILL);
        conv1dBackward(l, LinearHook.Site.MLP_FC, vFcW[l], dln, 0, dfch, 0, ln2, 0, w.fcW()[l], w.fcB()[l], N, C, F);
        prof.lap(PhaseProfile.Phase.FC_BWD);
        LayerNorm.backward(par, dres, 0, g(vLn2W[l]), go(vLn2W[l]), g(vLn2B[l]), go(vLn2B[l]), dln, 0, res2, sc, ln2Mean, ln2Rstd, sm,
                params, w.ln2W()[l], N, C);
        prof.lap(PhaseProfile.Phase.LN_BWD);
        // attention half: res2 = resid[l] + dropout(c_proj(attn(c_attn(ln_1(resid[l])))))
        if (cfg.residPdrop() > 0) {
            Dropout.apply(par, dtmp, 0, dres, 0, NC, cfg.residPdrop(), seed, stream(l, ST_RESID_ATTN), origin * C);
            dy = dtmp;
        } else dy = dres;
        Arrays.fill(datty, 0, NC, 0f);
        prof.lap(PhaseProfile.Phase.ZERO_FILL);
        conv1dBackward(l, LinearHook.Site.ATTN_PROJ, vProjW[l], datty, 0, dy, 0, atty, sc, w.projW()[l], w.projB()[l], N, C, C);
        prof.lap(PhaseProfile.Phase.PROJ_BWD);
        Arrays.fill(dqkv, 0, 3 * NC, 0f);
        prof.lap(PhaseProfile.Phase.ZERO_FILL);
        Attention.backward(par, dqkv, 0, datty, 0, atty, sc, lse, s * maxB * NH * maxT, qkv, sq, packed ? starts : null, 0, curB, curT, C, NH,
                attnScale(l), cfg.attnPdrop(), seed, stream(l, ST_ATTN), origin);
        prof.lap(PhaseProfile.Phase.ATTN_BWD);
        Arrays.fill(dln, 0, NC, 0f);
        prof.lap(PhaseProfile.Phase.ZERO_FILL);
        conv1dBackward(l, LinearHook.Site.ATTN_QKV, vAttnW[l], dln, 0, dqkv, 0, ln1, 0, w.attnW()[l], w.attnB()[l], N, C, 3 * C);
        prof.lap(PhaseProfile.Phase.QKV_BWD);
        LayerNorm.backward(par, dres, 0, g(vLn1W[l]), go(vLn1W[l]), g(vLn1B[l]), go(vLn1B[l]), dln, 0, resid, rIn, ln1Mean, ln1Rstd, sm,
                params, w.ln1W()[l], N, C);
        prof.lap(PhaseProfile.Phase.LN_BWD);
    }

    /** The opt-in phase timer ({@code -Dcpt4j.profile=true}). */
    public PhaseProfile profile() {
        return prof;
    }

    /** Number of positions with a label in the last forward (the loss's denominator). */
    public int lastLabelCount() {
        return validCount;
    }
}
