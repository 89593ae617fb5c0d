package dev.cpt4j.model;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Dropout;
import dev.cpt4j.tensor.cpu.Gemm;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.List;
import java.util.Set;
import java.util.SplittableRandom;

/**
 * LoRA (Hu et al. 2021) on GPT-2's Conv1D layers, as huggingface/peft's {@code lora.Linear} computes it with
 * {@code fan_in_fan_out=True}: {@code y = x·W + b + s · dropout(x)·Aᵀ·Bᵀ} with {@code A} {@code [r, in]},
 * {@code B} {@code [out, r]} (peft's storage, so adapter files need no transpose) and
 * {@code s = alpha / r} (rsLoRA: {@code alpha / √r}).
 *
 * <p>The A and B matrices are views appended to the model's parameter layout ({@link #extend}), so parameters,
 * gradients and optimizer state stay one flat buffer each. Initialisation is peft's default
 * ({@code init_lora_weights=True}): A from {@code kaiming_uniform_(a=√5)}, i.e. U(−1/√in, 1/√in), B zero — the
 * adapter starts as a no-op. Dropout on the LoRA input is a pure function of (step seed, layer, site), regenerated
 * in backward rather than stored. What this is not: DoRA, LoRA on embeddings, or merged inference (see hf).
 *
 * <p>Dimensions: N rows (B·T), in/out the Conv1D's, r the rank, L layers.
 */
public final class Lora implements LinearHook {
    /** Dropout streams of the LoRA inputs, far from the model's own (layer·4 + site). */
    private static final long STREAM_BASE = 1L << 40;

    private final int L, r, maxN;
    private final float scaling, dropout;
    private final Set<Site> sites;
    private final Gemm gemm;
    private final Parallel par;
    private final Gpt2Model model;
    private final float[] params;
    private final int[][] siteDims;     // [site] (in, out)
    private final int[][] aOff, bOff;   // [L][site] offsets into params, −1 where not adapted
    private final int[][] aView, bView; // [L][site] view indices (their gradients are at model.gradOffset(view))
    private final float[][] u;          // [L·4] (maxN, r) s·dropout(x)·Aᵀ of the last forward
    private final float[] scratch;      // (maxN, max in) dropped input / input gradient
    private final float[] du;           // (maxN, r)
    private long seed;
    private boolean training;

    /**
     * The layout views a peft {@code modules_to_save} entry trains in full ({@code transformer.wte}, {@code lm_head},
     * {@code transformer.wpe}, {@code transformer.ln_f}); {@code lm_head} of a tied model is {@code wte}. Null for a
     * module cpt4j cannot save.
     */
    public static List<String> moduleViews(String module, Gpt2Config cfg) {
        return switch (module) {
            case "transformer.wte" -> List.of(Gpt2Layout.WTE);
            case "lm_head" -> List.of(cfg.tieWordEmbeddings() ? Gpt2Layout.WTE : Gpt2Layout.LM_HEAD);
            case "transformer.wpe" -> List.of(Gpt2Layout.WPE);
            case "transformer.ln_f" -> List.of(Gpt2Layout.LNF_W, Gpt2Layout.LNF_B);
            default -> null;
        };
    }

    /** peft's parameter name of a LoRA matrix: {@code transformer.h.3.attn.c_attn.lora_A.weight}. */
    public static String viewName(int layer, Site site, char aOrB) {
        return Gpt2Layout.layer(layer, site.hfName()) + ".lora_" + aOrB + ".weight";
    }

    /** The Conv1D (in, out) of a site. */
    public static int[] dims(Gpt2Config c, Site site) {
        int C = c.nEmbd(), F = c.nInner();
        return switch (site) {
            case ATTN_QKV -> new int[] {C, 3 * C};
            case ATTN_PROJ -> new int[] {C, C};
            case MLP_FC -> new int[] {C, F};
            case MLP_PROJ -> new int[] {F, C};
        };
    }

    /** The site named by a canonical module name ({@code attn.c_attn}, …). */
    public static Site site(String hfName) {
        for (Site s : Site.values()) if (s.hfName().equals(hfName)) return s;
        throw new IllegalArgumentException("not a GPT-2 Conv1D module: " + hfName);
    }

    /**
     * Appends the A {@code [r, in]} and B {@code [out, r]} views for every layer and site to {@code layout}
     * (layer-major, A before B, as peft's state dict orders them).
     */
    public static ParamLayout extend(ParamLayout layout, Gpt2Config c, Set<Site> sites, int r) {
        for (int l = 0; l < c.nLayer(); l++)
            for (Site s : Site.values()) {
                if (!sites.contains(s)) continue;
                int[] d = dims(c, s);
                layout.add(viewName(l, s, 'A'), r, d[0]);
                layout.add(viewName(l, s, 'B'), d[1], r);
            }
        return layout;
    }

    /**
     * A LoRA hook over {@code model}, whose layout must hold the views {@link #extend} adds. Attach it with
     * {@link Gpt2Model#setLinearHook}; call {@link #init(long)} for peft's initialisation (or load A/B).
     *
     * @param scaling s ({@code alpha/r}, or {@code alpha/√r} for rsLoRA)
     * @param dropout LoRA dropout probability in [0, 1)
     */
    public Lora(Gpt2Model model, Set<Site> sites, int r, float scaling, float dropout, Gemm gemm, Parallel par) {
        if (r < 1) throw new IllegalArgumentException("LoRA rank must be positive");
        if (!(dropout >= 0 && dropout < 1)) throw new IllegalArgumentException("LoRA dropout must be in [0, 1)");
        Gpt2Config c = model.config();
        this.L = c.nLayer();
        this.r = r;
        this.maxN = model.maxBatch() * model.maxT();
        this.scaling = scaling;
        this.dropout = dropout;
        this.sites = sites.isEmpty() ? EnumSet.noneOf(Site.class) : EnumSet.copyOf(sites);
        this.gemm = gemm;
        this.par = par;
        this.model = model;
        this.params = model.params();
        ParamLayout layout = model.layout();
        siteDims = new int[4][];
        for (Site s : Site.values()) siteDims[s.ordinal()] = dims(c, s);
        aOff = new int[L][4];
        bOff = new int[L][4];
        aView = new int[L][4];
        bView = new int[L][4];
        List<ParamLayout.View> views = layout.views();
        u = new float[L * 4][];
        int maxIn = 1;
        for (int l = 0; l < L; l++)
            for (Site s : Site.values()) {
                int i = s.ordinal();
                if (!this.sites.contains(s)) {
                    aOff[l][i] = bOff[l][i] = -1;
                    continue;
                }
                int[] d = dims(c, s);
                ParamLayout.View a = layout.get(viewName(l, s, 'A')), b = layout.get(viewName(l, s, 'B'));
                if (!Arrays.equals(a.shape(), new int[] {r, d[0]}) || !Arrays.equals(b.shape(), new int[] {d[1], r}))
                    throw new IllegalArgumentException("LoRA views of layer " + l + " " + s.hfName() + " have the wrong shape");
                aOff[l][i] = model.paramOffset(a.name());
                bOff[l][i] = model.paramOffset(b.name());
                aView[l][i] = views.indexOf(a);
                bView[l][i] = views.indexOf(b);
                u[l * 4 + i] = new float[maxN * r];
                maxIn = Math.max(maxIn, d[0]);
            }
        scratch = new float[maxN * maxIn];
        du = new float[maxN * r];
    }

    /** Names of all LoRA views, in layout order. */
    public static List<String> viewNames(Gpt2Config c, Set<Site> sites) {
        List<String> out = new ArrayList<>();
        for (int l = 0; l < c.nLayer(); l++)
            for (Site s : Site.values())
                if (sites.contains(s)) {
                    out.add(viewName(l, s, 'A'));
                    out.add(viewName(l, s, 'B'));
                }
        return out;
    }

    /**
     * peft's default init: A ~ U(−1/√in, 1/√in) ({@code nn.init.kaiming_uniform_(a=math.sqrt(5))}: gain √(2/(1+5)),
     * bound gain·√(3/in) = 1/√in), B = 0. Deterministic in {@code seed} (not torch's generator).
     */
    public void init(long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        for (int l = 0; l < L; l++)
            for (Site s : sites) {
                int i = s.ordinal();
                int in = inOf(l, i), out = outOf(l, i);
                double bound = 1.0 / Math.sqrt(in);
                for (int k = 0; k < r * in; k++) params[aOff[l][i] + k] = (float) ((rng.nextDouble() * 2 - 1) * bound);
                Arrays.fill(params, bOff[l][i], bOff[l][i] + out * r, 0f);
            }
    }

    private int inOf(int l, int i) {
        return siteDims[i][0];
    }

    private int outOf(int l, int i) {
        return siteDims[i][1];
    }

    public int rank() {
        return r;
    }

    public float scaling() {
        return scaling;
    }

    public Set<Site> sites() {
        return EnumSet.copyOf(sites.isEmpty() ? EnumSet.noneOf(Site.class) : sites);
    }

    @Override
    public void forward(int layer, Site site, float[] x, int xOff, float[] y, int yOff, int n, int in, int out,
                        boolean training, long dropoutSeed) {
        int i = site.ordinal();
        if (aOff[layer][i] < 0) return;
        this.training = training;
        this.seed = dropoutSeed;
        float[] xs = x;
        int xo = xOff;
        if (training && dropout > 0) {            // peft: lora_B(lora_A(dropout(x)))
            Dropout.apply(par, scratch, 0, x, xOff, n * in, dropout, dropoutSeed, stream(layer, site));
            xs = scratch;
            xo = 0;
        }
        float[] us = u[layer * 4 + i];
        // us (N, r) = x (N, in) · Aᵀ, A (r, in)
        gemm.sgemm(false, true, n, r, in, xs, xo, in, params, aOff[layer][i], in, 0f, us, 0, r);
        for (int k = 0; k < n * r; k++) us[k] *= scaling;
        // y (N, out) += us · Bᵀ, B (out, r)
        gemm.sgemm(false, true, n, out, r, us, 0, r, params, bOff[layer][i], r, 1f, y, yOff, out);
    }

    @Override
    public void backward(int layer, Site site, float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff,
                         int n, int in, int out) {
        int i = site.ordinal();
        if (aOff[layer][i] < 0) return;
        float[] us = u[layer * 4 + i];
        float[] grads = model.grads();
        int gA = model.gradOffset(aView[layer][i]), gB = model.gradOffset(bView[layer][i]); // −1: frozen
        // dB (out, r) += dyᵀ (out, N) · us (N, r)
        if (gB >= 0) gemm.sgemm(true, false, out, r, n, dy, dyOff, out, us, 0, r, 1f, grads, gB, r);
        // du (N, r) = s · dy (N, out) · B (out, r)
        gemm.sgemm(false, false, n, r, out, dy, dyOff, out, params, bOff[layer][i], r, 0f, du, 0, r);
        for (int k = 0; k < n * r; k++) du[k] *= scaling;
        boolean drop = training && dropout > 0;
        float[] xs = x;
        int xo = xOff;
        if (drop) {                                // regenerate the forward's mask
            Dropout.apply(par, scratch, 0, x, xOff, n * in, dropout, seed, stream(layer, site));
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
            Dropout.apply(par, scratch, 0, scratch, 0, n * in, dropout, seed, stream(layer, site));
            int total = n * in;
            par.forRange(64, (b0, b1) -> {
                int s0 = (int) ((long) total * b0 / 64), s1 = (int) ((long) total * b1 / 64);
                for (int k = s0; k < s1; k++) dx[dxOff + k] += scratch[k];
            });
        }
    }

    private static long stream(int layer, Site site) {
        return STREAM_BASE + (long) layer * 4 + site.ordinal();
    }
}
