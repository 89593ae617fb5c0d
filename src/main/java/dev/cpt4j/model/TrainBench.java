package dev.cpt4j.model;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;
import dev.cpt4j.tensor.cpu.Gemm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Training-throughput benchmark: random weights of a config, random token ids, whole training steps (forward,
 * backward, global grad-norm clip to 1.0, a plain AdamW over the flat buffer). Reports tokens/s, achieved
 * GFLOP/s, peak RSS and MFU against this machine's GEMM peak measured in the same process.
 *
 * <p>FLOPs are counted as nanoGPT's estimate_mfu does (PaLM appendix B): per token 6·P for the parameter
 * matmuls (P = all parameters) plus 12·L·C·T for attention; recomputation under gradient checkpointing is not
 * counted (model FLOPs, not hardware FLOPs).
 */
public final class TrainBench {
    private TrainBench() {}

    /** What one benchmark run measured. */
    public record Result(double tokensPerS, double peakRssMb, double gflops, double mfu, double peakGflops,
                         double msPerStep, float lastLoss, long params) {}

    /**
     * The LoRA setup of a benchmark run (peft semantics, as {@code cpt4j train}).
     *
     * @param targets       canonical Conv1D modules ({@code attn.c_attn}, {@code attn.c_proj}, {@code mlp.c_fc}, {@code mlp.c_proj})
     * @param modulesToSave {@code transformer.wte}, {@code lm_head}, {@code transformer.wpe}, {@code transformer.ln_f}
     * @param baseBf16      store the frozen Conv1D weights in bf16 ({@code --base_dtype bf16})
     */
    public record LoraSpec(int rank, double alpha, double dropout, java.util.List<String> targets,
                           java.util.List<String> modulesToSave, boolean baseBf16) {
        public LoraSpec {
            if (rank < 1) throw new IllegalArgumentException("LoRA rank must be positive");
            targets = java.util.List.copyOf(targets);
            modulesToSave = java.util.List.copyOf(modulesToSave);
        }

        /** An fp32 base. */
        public LoraSpec(int rank, double alpha, double dropout, java.util.List<String> targets,
                        java.util.List<String> modulesToSave) {
            this(rank, alpha, dropout, targets, modulesToSave, false);
        }
    }

    /**
     * Runs {@code warmup} untimed and {@code steps} timed training steps on (batch, block) random ids.
     *
     * @param log receives one line per step (may be null)
     */
    public static Result run(Gpt2Config cfg, Parallel par, int batch, int block, int steps, int warmup,
                             boolean gradientCheckpointing, Consumer<String> log) {
        return run(cfg, par, batch, block, steps, warmup, gradientCheckpointing, null, log);
    }

    /**
     * As {@link #run(Gpt2Config, Parallel, int, int, int, int, boolean, Consumer)}; with {@code lora} non-null the
     * base is frozen, LoRA is attached to the targets and only the LoRA matrices and modules_to_save are trained
     * (a tied wte/lm_head pair in modules_to_save is untied, as peft does). FLOPs are counted as the products run:
     * 6·P per token over all parameters, less 2 per weight of each frozen matrix (its input gradient still costs
     * 4 per weight, its weight gradient is skipped), plus attention.
     */
    public static Result run(Gpt2Config cfg, Parallel par, int batch, int block, int steps, int warmup,
                             boolean gradientCheckpointing, LoraSpec lora, Consumer<String> log) {
        if (batch < 1 || block < 1 || steps < 1 || warmup < 0)
            throw new IllegalArgumentException("batch, block and steps must be positive, warmup non-negative");
        Gemm gemm = new Gemm(par);
        java.util.Set<LinearHook.Site> sites = java.util.EnumSet.noneOf(LinearHook.Site.class);
        if (lora != null) {
            for (String t : lora.targets()) sites.add(Lora.site(t));
            boolean saveEmb = lora.modulesToSave().contains("transformer.wte") || lora.modulesToSave().contains("lm_head");
            if (saveEmb && cfg.tieWordEmbeddings()) cfg = cfg.withTiedEmbeddings(false);
        }
        ParamLayout layout = Gpt2Layout.of(cfg);
        if (lora != null) Lora.extend(layout, cfg, sites, lora.rank());
        java.util.Set<String> trainable = new java.util.HashSet<>();
        if (lora != null) {
            trainable.addAll(Lora.viewNames(cfg, sites));
            for (String m : lora.modulesToSave()) {
                java.util.List<String> views = Lora.moduleViews(m, cfg);
                if (views == null) throw new IllegalArgumentException("unsupported module to save: " + m);
                trainable.addAll(views);
            }
        } else {
            for (ParamLayout.View v : layout.views()) trainable.add(v.name());
        }
        boolean bf16 = lora != null && lora.baseBf16();
        Gpt2Model model = new Gpt2Model(cfg, layout, gemm, par, batch, block, gradientCheckpointing,
                n -> bf16 && !trainable.contains(n) && Gpt2Model.isConv1dWeight(n));
        model.initRandom(1234);
        PhaseProfile prof = model.profile();
        if (lora != null) {
            Lora hook = new Lora(model, sites, lora.rank(), (float) (lora.alpha() / lora.rank()), (float) lora.dropout(), gemm, par);
            hook.init(99);
            model.setLinearHook(hook);
            model.setFrozen(n -> !trainable.contains(n));
        }
        model.setSparseTokenEmbeddingGrad(true); // as cpt4j train: an untied wte keeps only its batch's rows
        float[] p = model.params(), g = model.grads(); // after setFrozen: grads holds the trainable views only
        // trainable runs: [param offset, length, grad offset] triples, merged where adjacent in both buffers
        java.util.List<int[]> runs = new java.util.ArrayList<>();
        RowSparseGrad sparse = model.sparseGrad(Gpt2Layout.WTE); // null, or wte's row-sparse gradient
        int sparseP = sparse == null ? -1 : model.paramOffset(Gpt2Layout.WTE), sparseS = -1;
        int count = 0;
        for (ParamLayout.View v : layout.views()) {
            if (!trainable.contains(v.name())) continue;
            if (sparse != null && v.name().equals(Gpt2Layout.WTE)) {
                sparseS = count;
                count += v.size();
                continue;
            }
            int po = model.paramOffset(v.name()), go = model.gradOffset(v.name());
            int[] last = runs.isEmpty() ? null : runs.get(runs.size() - 1);
            if (last != null && last[0] + last[1] == po && last[2] + last[1] == go) last[1] += v.size();
            else runs.add(new int[] {po, v.size(), go});
            count += v.size();
        }
        SplittableRandom r = new SplittableRandom(42);
        int[] ids = new int[batch * block];
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(cfg.vocabSize());
        float[] m = new float[count], v = new float[count];
        float loss = Float.NaN;
        long t0 = 0;
        for (int s = 0; s < warmup + steps; s++) {
            if (s == warmup) {
                t0 = System.nanoTime();
                prof.reset();
            }
            long st = System.nanoTime();
            prof.begin();
            for (int[] run : runs) java.util.Arrays.fill(g, run[2], run[2] + run[1], 0f);
            if (sparse != null) sparse.zero();
            prof.lap(PhaseProfile.Phase.GRAD_ZERO);
            loss = model.forward(ids, batch, block, true, s);
            model.backward();
            double sq = 0;
            for (int[] run : runs) sq += sumSquares(par, g, run[2], run[1]);
            if (sparse != null) sq += sumSquares(par, sparse.data(), 0, sparse.used() * sparse.cols());
            double norm = Math.sqrt(sq);
            prof.lap(PhaseProfile.Phase.GRAD_NORM);
            float clip = norm > 1.0 ? (float) (1.0 / (norm + 1e-6)) : 1f;
            int so = 0;
            for (int[] run : runs) {
                adamw(par, p, g, m, v, run[0], run[2], so, run[1], s + 1, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, clip);
                so += run[1];
            }
            if (sparse != null) adamwRows(par, p, sparse, m, v, sparseP, sparseS, s + 1, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, clip);
            prof.lap(PhaseProfile.Phase.OPTIMIZER);
            prof.countStep();
            if (log != null)
                log.accept(String.format("step %d%s loss %.4f grad-norm %.3f %.0f ms", s + 1, s < warmup ? " (warmup)" : "",
                        loss, norm, (System.nanoTime() - st) / 1e6));
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        if (PhaseProfile.ENABLED) System.err.print(prof.report());
        long tokens = (long) batch * block * steps;
        long P = Gpt2Layout.of(cfg).size();
        // Frozen matrices (LoRA's base, a frozen head) skip their weight-gradient product: 2 FLOPs per weight less.
        long frozenMatrix = 0;
        for (ParamLayout.View w : Gpt2Layout.of(cfg).views()) {
            boolean matrix = Gpt2Model.isConv1dWeight(w.name()) || w.name().equals(Gpt2Layout.LM_HEAD)
                    || (w.name().equals(Gpt2Layout.WTE) && cfg.tieWordEmbeddings());
            if (matrix && !trainable.contains(w.name())) frozenMatrix += w.size();
        }
        double flops = (6.0 * P - 2.0 * frozenMatrix + 12.0 * cfg.nLayer() * cfg.nEmbd() * block) * tokens;
        double gflops = flops / secs / 1e9;
        double peak = gemm.measurePeakGflops();
        return new Result(tokens / secs, peakRssMb(), gflops, gflops / peak, peak, secs * 1000 / steps, loss, P);
    }

    private static final int BLOCKS = 256;

    /** Sum of squares of g[off, off+n), summed in fixed blocks (deterministic). */
    static double sumSquares(Parallel par, float[] g, int off, int n) {
        double[] partial = new double[BLOCKS];
        par.forRange(BLOCKS, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int s = off + (int) ((long) n * b / BLOCKS), e = off + (int) ((long) n * (b + 1) / BLOCKS);
                double acc = 0;
                for (int i = s; i < e; i++) acc += g[i] * g[i];
                partial[b] = acc;
            }
        });
        double t = 0;
        for (double x : partial) t += x;
        return t;
    }

    /**
     * torch.optim.AdamW over p[off, off+n) with gradients g[go, go+n) and moments m/v[so, so+n), gradients
     * multiplied by {@code gradMul} (the clip factor).
     */
    static void adamw(Parallel par, float[] p, float[] g, float[] m, float[] v, int off, int go, int so, int n, int t,
                      float lr, float b1, float b2, float eps, float wd, float gradMul) {
        par.forRange(BLOCKS, (b0, b1x) -> {
            int s = (int) ((long) n * b0 / BLOCKS), e = (int) ((long) n * b1x / BLOCKS);
            adamwSerial(p, off + s, g, go + s, m, v, so + s, e - s, t, lr, b1, b2, eps, wd, gradMul);
        });
    }

    /**
     * {@link #adamw} over a (rows, cols) tensor at p[off ..] whose gradient is row-sparse: a row without a slot has
     * gradient zero (and still decays and moves, as dense AdamW). Moments at m/v[so ..].
     */
    static void adamwRows(Parallel par, float[] p, RowSparseGrad g, float[] m, float[] v, int off, int so, int t,
                          float lr, float b1, float b2, float eps, float wd, float gradMul) {
        int cols = g.cols();
        float[] data = g.data(), zero = new float[cols];
        par.forRange(g.rows(), (r0, r1) -> {
            for (int r = r0; r < r1; r++) {
                int slot = g.slotOf(r);
                adamwSerial(p, off + r * cols, slot < 0 ? zero : data, slot < 0 ? 0 : slot * cols, m, v, so + r * cols,
                        cols, t, lr, b1, b2, eps, wd, gradMul);
            }
        });
    }

    /** {@link #adamw}'s element update over n elements on the calling thread. */
    private static void adamwSerial(float[] p, int pOff, float[] g, int gOff, float[] m, float[] v, int sOff, int n,
                                    int t, float lr, float b1, float b2, float eps, float wd, float gradMul) {
        float bc1 = (float) (1 - Math.pow(b1, t)), bc2Sqrt = (float) Math.sqrt(1 - Math.pow(b2, t));
        float stepSize = lr / bc1;
        var S = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
        int d = sOff - pOff, dg = gOff - pOff; // moment index = parameter index + d, gradient index = parameter index + dg
        int s = pOff, e = pOff + n;
        int i = s, ub = s + S.loopBound(e - s);
        float decay = 1 - lr * wd;
        for (; i < ub; i += S.length()) {
            var gi = jdk.incubator.vector.FloatVector.fromArray(S, g, i + dg).mul(gradMul);
            var mi = jdk.incubator.vector.FloatVector.fromArray(S, m, i + d).mul(b1).add(gi.mul(1 - b1));
            var vi = jdk.incubator.vector.FloatVector.fromArray(S, v, i + d).mul(b2).add(gi.mul(gi).mul(1 - b2));
            var denom = vi.sqrt().div(bc2Sqrt).add(eps);
            var pi = jdk.incubator.vector.FloatVector.fromArray(S, p, i).mul(decay).sub(mi.mul(stepSize).div(denom));
            mi.intoArray(m, i + d);
            vi.intoArray(v, i + d);
            pi.intoArray(p, i);
        }
        for (; i < e; i++) {
            float gi = g[i + dg] * gradMul;
            p[i] *= decay;
            m[i + d] = b1 * m[i + d] + (1 - b1) * gi;
            v[i + d] = b2 * v[i + d] + (1 - b2) * gi * gi;
            p[i] -= stepSize * m[i + d] / ((float) Math.sqrt(v[i + d]) / bc2Sqrt + eps);
        }
    }

    /** Peak resident set size of this process in MiB (VmHWM), or NaN where /proc is unavailable. */
    public static double peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
        return Double.NaN;
    }
}
