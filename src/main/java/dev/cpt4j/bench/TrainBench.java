package dev.cpt4j.bench;

import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.model.PhaseProfile;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.train.AdamW;
import dev.cpt4j.train.FamilyTrainable;
import dev.cpt4j.train.GradClip;
import dev.cpt4j.train.PeakMemory;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Training-throughput benchmark: random weights of a config of any family, random token ids, whole training steps
 * of exactly what {@code cpt4j train} runs — the model built by {@link FamilyTrainable} (the family's engine, LoRA,
 * modules_to_save, bf16 base, row-sparse embedding gradient where the engine has it), forward and backward,
 * {@link GradClip} to 1.0 and the trainer's {@link AdamW#forModel} (no weight decay on biases and norm weights, the
 * family's rule). Reports tokens/s, achieved GFLOP/s, peak RSS and MFU against this machine's GEMM peak measured in
 * the same process.
 *
 * <p>FLOPs are counted as nanoGPT's estimate_mfu does (PaLM appendix B), per token
 * {@code 6·P − 2·F + 12·L·Q·T}: P all parameters of the model (LoRA's excluded), F the weights of the frozen
 * matrices (LoRA's base, a frozen head: their weight-gradient product is skipped, 2 FLOPs per weight less; the input
 * gradient still costs 4), Q the attention width NH·hd (GPT-2: n_embd; the LLaMA family: the query projection's
 * output, whatever the number of kv heads — scores and the weighted sum run per query head, 2·2·T·Q forward per
 * token and layer and twice that backward; the causal half is not subtracted, as PaLM). Recomputation under
 * gradient checkpointing is not counted (model FLOPs, not hardware FLOPs). Lives outside {@code train} so that
 * nothing in training imports a benchmark; it may import train and model.
 */
public final class TrainBench {
    private TrainBench() {}

    /** What one benchmark run measured. */
    public record Result(double tokensPerS, double peakRssMb, double gflops, double mfu, double peakGflops,
                         double msPerStep, float lastLoss, long params, long trainableParams) {}

    /**
     * The LoRA setup of a benchmark run (peft semantics, as {@code cpt4j train}).
     *
     * @param targets       {@code --trainable} names as peft takes them (resolved by the config's family; empty = its
     *                      peft default)
     * @param modulesToSave {@code --modules_to_save} names (resolved by the family)
     * @param baseBf16      store the frozen projection weights in bf16 ({@code --base_dtype bf16})
     */
    public record LoraSpec(int rank, double alpha, double dropout, List<String> targets, List<String> modulesToSave,
                           boolean baseBf16, boolean rslora) {
        public LoraSpec {
            if (rank < 1) throw new IllegalArgumentException("LoRA rank must be positive");
            targets = List.copyOf(targets);
            modulesToSave = List.copyOf(modulesToSave);
        }

        public LoraSpec(int rank, double alpha, double dropout, List<String> targets, List<String> modulesToSave,
                        boolean baseBf16) {
            this(rank, alpha, dropout, targets, modulesToSave, baseBf16, false);
        }

        /** An fp32 base. */
        public LoraSpec(int rank, double alpha, double dropout, List<String> targets, List<String> modulesToSave) {
            this(rank, alpha, dropout, targets, modulesToSave, false);
        }

        double scaling() {
            return rslora ? alpha / Math.sqrt(rank) : alpha / rank;
        }
    }

    /** Document starts (batch, block) of documents with lengths uniform in [1, 2·mean − 1]. */
    static int[] docStarts(int batch, int block, int mean, SplittableRandom r) {
        int[] st = new int[batch * block];
        int left = 0, start = 0;
        for (int i = 0; i < st.length; i++) {
            int t = i % block;
            if (t == 0) start = 0;
            if (left == 0) {
                left = 1 + r.nextInt(Math.max(1, 2 * mean - 1));
                start = t;
            }
            st[i] = start;
            left--;
        }
        return st;
    }

    /** The optimizer settings timed: the recipe's learning rate and weight decay, torch's betas and epsilon. */
    private static final double LR = 1e-4, WEIGHT_DECAY = 0.01, BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8, MAX_NORM = 1.0;

    /**
     * Full fine-tuning: runs {@code warmup} untimed and {@code steps} timed training steps on (batch, block) random ids.
     *
     * @param log receives one line per step (may be null)
     */
    public static Result run(ModelConfig cfg, Parallel par, int batch, int block, int steps, int warmup,
                             boolean gradientCheckpointing, Consumer<String> log) {
        return run(cfg, par, batch, block, steps, warmup, gradientCheckpointing, null, log);
    }

    /**
     * As {@link #run(ModelConfig, Parallel, int, int, int, int, boolean, Consumer)}; with {@code lora} non-null the
     * base is frozen, LoRA is attached to the targets and only the LoRA matrices and modules_to_save are trained
     * (a tied embedding/lm_head pair in modules_to_save is untied, as peft does).
     */
    public static Result run(ModelConfig cfg, Parallel par, int batch, int block, int steps, int warmup,
                             boolean gradientCheckpointing, LoraSpec lora, Consumer<String> log) {
        return run(cfg, par, batch, block, steps, warmup, gradientCheckpointing, lora, 0, log);
    }

    /**
     * As {@link #run(ModelConfig, Parallel, int, int, int, int, boolean, LoraSpec, Consumer)}; with
     * {@code neatPackingDocTokens} D &gt; 0 each block is cut into documents of random lengths (uniform in [1, 2D−1],
     * mean D, seeded) and trained with neat packing (documents do not see each other); 0: plain packing. The same ids
     * either way, so the two runs differ only in the packing.
     */
    public static Result run(ModelConfig cfg, Parallel par, int batch, int block, int steps, int warmup,
                             boolean gradientCheckpointing, LoraSpec lora, int neatPackingDocTokens, Consumer<String> log) {
        if (batch < 1 || block < 1 || steps < 1 || warmup < 0)
            throw new IllegalArgumentException("batch, block and steps must be positive, warmup non-negative");
        Gemm gemm = new Gemm(par);
        FamilyTrainable.Spec spec = new FamilyTrainable.Spec(0, batch, block, gradientCheckpointing,
                lora == null ? 0 : lora.rank(), lora == null ? 0 : lora.scaling(),
                lora == null ? 0 : lora.dropout(), lora == null ? List.of() : lora.targets(),
                lora == null ? List.of() : lora.modulesToSave(), false, lora != null && lora.baseBf16(), 1234);
        FamilyTrainable model = FamilyTrainable.fromScratch(cfg, spec, gemm, par, m -> {});
        ModelConfig trained = model.config();   // untied when peft would untie
        PhaseProfile prof = model.model().profile();
        float[] p = model.params(), g = model.grads();
        AdamW opt = AdamW.forModel(model, LR, LR, WEIGHT_DECAY, BETA1, BETA2, EPS);

        SplittableRandom r = new SplittableRandom(42);
        int[] ids = new int[batch * block];
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(cfg.vocabSize());
        int[] starts = neatPackingDocTokens > 0 ? docStarts(batch, block, neatPackingDocTokens, new SplittableRandom(7)) : null;
        float loss = Float.NaN;
        long t0 = 0;
        for (int s = 0; s < warmup + steps; s++) {
            if (s == warmup) {
                t0 = System.nanoTime();
                prof.reset();
            }
            long st = System.nanoTime();
            prof.begin();
            opt.zeroGrads(g);
            prof.lap(PhaseProfile.Phase.GRAD_ZERO);
            loss = (float) (starts == null ? model.forwardBackward(ids, batch, block, 1f, s)
                    : model.forwardBackward(ids, starts, batch, block, 1f, s));
            double norm = GradClip.clip(g, opt.segments(), MAX_NORM, par);
            prof.lap(PhaseProfile.Phase.GRAD_NORM);
            opt.step(p, g, 1.0, par);
            prof.lap(PhaseProfile.Phase.OPTIMIZER);
            prof.countStep();
            if (log != null)
                log.accept(String.format("step %d%s loss %.4f grad-norm %.3f %.0f ms", s + 1, s < warmup ? " (warmup)" : "",
                        loss, norm, (System.nanoTime() - st) / 1e6));
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        if (PhaseProfile.ENABLED) System.err.print(prof.report());
        long tokens = (long) batch * block * steps;
        ModelFamily fam = trained.family();
        ParamLayout full = fam.layout(trained);
        long P = full.size();
        // Frozen matrices (LoRA's base, a frozen head) skip their weight-gradient product: 2 FLOPs per weight less.
        long frozenMatrix = 0;
        for (ParamLayout.View w : full.views()) {
            boolean matrix = fam.bf16Storable(w.name()) || w.name().equals(fam.outputHead())
                    || (w.name().equals(fam.tokenEmbedding()) && trained.tieWordEmbeddings());
            if (matrix && !model.isTrainable(w.name())) frozenMatrix += w.size();
        }
        double flops = (6.0 * P - 2.0 * frozenMatrix + 12.0 * trained.numLayers() * fam.attentionWidth(trained) * block) * tokens;
        double gflops = flops / secs / 1e9;
        double peak = gemm.measurePeakGflops();
        long trainable = 0;   // what the optimizer updates (LoRA's A and B, saved modules), to compare with peft's count
        for (ParamLayout.View v : model.layout().views()) if (model.isTrainable(v.name())) trainable += v.size();
        return new Result(tokens / secs, PeakMemory.rssMb(), gflops, gflops / peak, peak, secs * 1000 / steps, loss, P, trainable);
    }
}
