package dev.cpt4j.model;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Dropout;
import dev.cpt4j.tensor.cpu.Gemm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * LoRA (Hu et al. 2021) on a family's per-layer projections, as huggingface/peft's {@code lora.Linear} computes it:
 * {@code y = base(x) + s · dropout(x)·Aᵀ·Bᵀ} with {@code A} {@code [r, in]}, {@code B} {@code [out, r]} (peft's
 * storage, so adapter files need no transpose) and {@code s = alpha / r} (rsLoRA: {@code alpha / √r}). The adapter
 * path is the same whether the base weight is GPT-2's Conv1D ({@code fan_in_fan_out=True}, W {@code [in, out]}) or
 * an {@code nn.Linear} (W {@code [out, in]}); only a merge cares (see hf). Sites are the family's
 * {@link ModelFamily#loraSites()}; the model calls this hook through {@link LinearHook}.
 *
 * <p>The A and B matrices are views appended to the model's parameter layout ({@link #extend}), so parameters,
 * gradients and optimizer state stay one flat buffer each. Initialisation is peft's default
 * ({@code init_lora_weights=True}): A from {@code kaiming_uniform_(a=√5)}, i.e. U(−1/√in, 1/√in), B zero — the
 * adapter starts as a no-op. Dropout on the LoRA input is a pure function of (step seed, layer, site), regenerated
 * in backward rather than stored. What this is not: DoRA, LoRA on embeddings, or merged inference (see hf).
 *
 * <p>Dimensions: N rows (B·T), in/out the projection's, r the rank, L layers, S sites per layer.
 */
public final class Lora implements LinearHook {
    /** Dropout streams of the LoRA inputs, far from the model's own (layer·S + site). */
    private static final long STREAM_BASE = 1L << 40;

    private final int L, S, r, maxN;
    private final float scaling, dropout;
    private final Gemm gemm;
    private final Parallel par;
    private final CausalLm model;
    private final float[] params;
    private final int[][] dims;          // [site] (in, out)
    private final int[][] aOff, bOff;    // [L][site] offsets into params, −1 where not adapted
    private final String[][] aName, bName; // [L][site] view names (their gradients are at model.gradOffset(name))
    private final float[][] u;           // [L·S] (maxN, r) s·dropout(x)·Aᵀ of the last forward
    private final float[] scratch;       // (maxN, max in) dropped input / input gradient
    private final float[] du;            // (maxN, r)
    private long seed;
    private long origin;   // global index of the batch's first token (a rank's share of a split batch)
    private boolean training;

    /** The projections of {@code c} adapted when LoRA targets {@code sites} (names from {@link ModelFamily#loraSites()}), in state-dict order. */
    public static List<ModelFamily.LoraTarget> adapted(ModelConfig c, Collection<String> sites) {
        List<ModelFamily.LoraTarget> out = new ArrayList<>();
        for (ModelFamily.LoraTarget t : c.family().loraTargets(c))
            if (t.layer() >= 0 && siteOf(c.family(), t) >= 0 && sites.contains(c.family().loraSites().get(siteOf(c.family(), t))))
                out.add(t);
        return out;
    }

    /** The index in {@link ModelFamily#loraSites()} of a per-layer target, −1 for one outside the layers. */
    static int siteOf(ModelFamily f, ModelFamily.LoraTarget t) {
        if (t.layer() < 0) return -1;
        List<String> sites = f.loraSites();
        for (int i = 0; i < sites.size(); i++) if (t.module().endsWith("." + sites.get(i))) return i;
        return -1;
    }

    /**
     * Appends the A {@code [r, in]} and B {@code [out, r]} views of every adapted projection to {@code layout}
     * (layer-major, A before B, as peft's state dict orders them), named as peft's keys without its prefix.
     */
    public static ParamLayout extend(ParamLayout layout, ModelConfig c, Collection<String> sites, int r) {
        for (ModelFamily.LoraTarget t : adapted(c, sites)) {
            layout.add(t.module() + ".lora_A.weight", r, t.in());
            layout.add(t.module() + ".lora_B.weight", t.out(), r);
        }
        return layout;
    }

    /** Names of all LoRA views of {@code sites}, in layout order. */
    public static List<String> viewNames(ModelConfig c, Collection<String> sites) {
        List<String> out = new ArrayList<>();
        for (ModelFamily.LoraTarget t : adapted(c, sites)) {
            out.add(t.module() + ".lora_A.weight");
            out.add(t.module() + ".lora_B.weight");
        }
        return out;
    }

    /** GPT-2: {@link #extend(ParamLayout, ModelConfig, Collection, int)} for Conv1D sites. */
    public static ParamLayout extend(ParamLayout layout, Gpt2Config c, Set<Site> sites, int r) {
        return extend(layout, c, names(sites), r);
    }

    /** GPT-2: {@link #viewNames(ModelConfig, Collection)} for Conv1D sites. */
    public static List<String> viewNames(Gpt2Config c, Set<Site> sites) {
        return viewNames(c, names(sites));
    }

    private static List<String> names(Set<Site> sites) {
        List<String> n = new ArrayList<>();
        for (Site s : sites) n.add(s.hfName());
        return n;
    }

    /** GPT-2: a LoRA hook on the Conv1D {@code sites} of {@code model}. */
    public Lora(Gpt2Model model, Set<Site> sites, int r, float scaling, float dropout, Gemm gemm, Parallel par) {
        this((CausalLm) model, names(sites), r, scaling, dropout, gemm, par);
    }

    /**
     * A LoRA hook over {@code model}, whose layout must hold the views {@link #extend} adds for {@code sites}. Attach
     * it with {@link CausalLm#setLinearHook}; call {@link #init(long)} for peft's initialisation (or load A/B).
     *
     * @param scaling s ({@code alpha/r}, or {@code alpha/√r} for rsLoRA)
     * @param dropout LoRA dropout probability in [0, 1)
     */
    public Lora(CausalLm model, Collection<String> sites, int r, float scaling, float dropout, Gemm gemm, Parallel par) {
        if (r < 1) throw new IllegalArgumentException("LoRA rank must be positive");
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("LoRA dropout must be in [0, 1)");
        ModelConfig c = model.config();
        ModelFamily f = c.family();
        this.L = c.numLayers();
        this.S = f.loraSites().size();
        this.r = r;
        this.maxN = model.maxBatch() * model.maxT();
        this.scaling = scaling;
        this.dropout = dropout;
        this.gemm = gemm;
        this.par = par;
        this.model = model;
        this.params = model.params();
        ParamLayout layout = model.layout();
        dims = new int[S][];
        aOff = new int[L][S];
        bOff = new int[L][S];
        aName = new String[L][S];
        bName = new String[L][S];
        for (int[] a : aOff) Arrays.fill(a, -1);
        for (int[] b : bOff) Arrays.fill(b, -1);
        u = new float[L * S][];
        int maxIn = 1;
        for (ModelFamily.LoraTarget t : adapted(c, sites)) {
            int l = t.layer(), i = siteOf(f, t);
            dims[i] = new int[] {t.in(), t.out()};
            ParamLayout.View a = layout.get(t.module() + ".lora_A.weight"), b = layout.get(t.module() + ".lora_B.weight");
            if (!Arrays.equals(a.shape(), new int[] {r, t.in()}) || !Arrays.equals(b.shape(), new int[] {t.out(), r}))
                throw new IllegalArgumentException("LoRA views of " + t.module() + " have the wrong shape");
            aName[l][i] = a.name();
            bName[l][i] = b.name();
            aOff[l][i] = model.paramOffset(a.name());
            bOff[l][i] = model.paramOffset(b.name());
            u[l * S + i] = new float[maxN * r];
            maxIn = Math.max(maxIn, t.in());
        }
        scratch = new float[maxN * maxIn];
        du = new float[maxN * r];
    }

    /**
     * peft's default init: A ~ U(−1/√in, 1/√in) ({@code nn.init.kaiming_uniform_(a=math.sqrt(5))}: gain √(2/(1+5)),
     * bound gain·√(3/in) = 1/√in), B = 0. Deterministic in {@code seed} (not torch's generator).
     */
    public void init(long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (int l = 0; l < L; l++)
            for (int i = 0; i < S; i++) {
                if (aOff[l][i] < 0) continue;
                int in = dims[i][0], out = dims[i][1];
                double bound = 1.0 / Math.sqrt(in);
                for (int k = 0; k < r * in; k++) params[aOff[l][i] + k] = (float) ((rng.nextDouble() * 2 - 1) * bound);
                Arrays.fill(params, bOff[l][i], bOff[l][i] + out * r, 0f);
            }
    }

    public int rank() {
        return r;
    }

    public float scaling() {
        return scaling;
    }

    @Override
    public void setDropoutOrigin(long firstToken) {
        origin = firstToken;
    }

    @Override
    public void forward(int layer, int i, float[] x, int xOff, float[] y, int yOff, int n, int in, int out,
                        boolean training, long dropoutSeed) {
        if (aOff[layer][i] < 0) return;
        this.training = training;
        this.seed = dropoutSeed;
        float[] xs = x;
        int xo = xOff;
        if (training && dropout > 0) {            // peft: lora_B(lora_A(dropout(x)))
            Dropout.apply(par, scratch, 0, x, xOff, n * in, dropout, dropoutSeed, stream(layer, i), origin * in);
            xs = scratch;
            xo = 0;
        }
        float[] us = u[layer * S + i];
        // us (N, r) = x (N, in) · Aᵀ, A (r, in)
        gemm.sgemm(false, true, n, r, in, xs, xo, in, params, aOff[layer][i], in, 0f, us, 0, r);
        for (int k = 0; k < n * r; k++) us[k] *= scaling;
        // y (N, out) += us · Bᵀ, B (out, r)
        gemm.sgemm(false, true, n, out, r, us, 0, r, params, bOff[layer][i], r, 1f, y, yOff, out);
    }

    @Override
    public void backward(int layer, int i, float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff,
                         int n, int in, int out) {
        if (aOff[layer][i] < 0) return;
        float[] us = u[layer * S + i];
        float[] grads = model.grads();
        int gA = model.gradOffset(aName[layer][i]), gB = model.gradOffset(bName[layer][i]); // −1: frozen
        // dB (out, r) += dyᵀ (out, N) · us (N, r)
        if (gB >= 0) gemm.sgemm(true, false, out, r, n, dy, dyOff, out, us, 0, r, 1f, grads, gB, r);
        // du (N, r) = s · dy (N, out) · B (out, r)
        gemm.sgemm(false, false, n, r, out, dy, dyOff, out, params, bOff[layer][i], r, 0f, du, 0, r);
        for (int k = 0; k < n * r; k++) du[k] *= scaling;
        boolean drop = training && dropout > 0;
        float[] xs = x;
        int xo = xOff;
        if (drop) {                                // regenerate the forward's mask
            Dropout.apply(par, scratch, 0, x, xOff, n * in, dropout, seed, stream(layer, i), origin * in);
            xs = scratch;
            xo = 0;
        }
        // dA (r, in) += duᵀ (r, N) · dropout(x) (N, in)
        if (gA >= 0) gemm.sgemm(true, false, r, in, n, du, 0, r, xs, xo, in, 1f, grads, gA, in);
        if (!drop) {
            // dx (N, in) += du (N, r) · A (r, in)
            gemm.sgemm(false, false, n, in, r, du, 0, r, params, aOff[layer][i], in, 1f, dx, dxOff, in);
        } else {
            gemm.sgemm(false, false, n, in, r, du, 0, r, params, aOff[layer][i], in, 0f, scratch, 0, in);
            Dropout.apply(par, scratch, 0, scratch, 0, n * in, dropout, seed, stream(layer, i), origin * in);
            int total = n * in;
            par.forRange(64, (b0, b1) -> {
                int s0 = (int) ((long) total * b0 / 64), s1 = (int) ((long) total * b1 / 64);
                for (int k = s0; k < s1; k++) dx[dxOff + k] += scratch[k];
            });
        }
    }

    private long stream(int layer, int site) {
        return STREAM_BASE + (long) layer * S + site;
    }
}
