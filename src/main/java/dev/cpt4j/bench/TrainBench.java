package dev.cpt4j.bench;

import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.model.Gpt2Model;
import dev.cpt4j.model.CausalLm;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.PhaseProfile;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.train.AdamW;
import dev.cpt4j.train.GradClip;
import dev.cpt4j.train.FamilyTrainable;
import dev.cpt4j.train.Gpt2Trainable;
import dev.cpt4j.train.PeakMemory;

import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Training-throughput benchmark: random weights of a config, random token ids, whole training steps of exactly what
 * {@code cpt4j train} runs — the model built by {@link Gpt2Trainable} (LoRA, modules_to_save, bf16 base, row-sparse
 * wte gradient), forward and backward, {@link GradClip} to 1.0 and the trainer's {@link AdamW#forModel} (no weight
 * decay on biases and LayerNorm weights). Reports tokens/s, achieved GFLOP/s, peak RSS and MFU against this
 * machine's GEMM peak measured in the same process.
 *
 * <p>FLOPs are counted as nanoGPT's estimate_mfu does (PaLM appendix B): per token 6·P for the parameter
 * matmuls (P = all parameters) plus 12·L·C·T for attention; recomputation under gradient checkpointing is not
 * counted (model FLOPs, not hardware FLOPs).
 *
 * <p>Any other family ({@link #run(ModelConfig, Parallel, int, int, int, int, boolean, Consumer)}: LLaMA, Qwen2/3,
 * Mistral) runs what {@code train} runs for it — the family's {@link CausalLm} built by {@link FamilyTrainable},
 * {@link GradClip}, {@link AdamW#forModel} with the family's no-decay rule — and counts per token
 * {@code 6·P' + 12·L·Q·T}: P' the parameters that enter a matrix product (every parameter, less an untied
 * {@code embed_tokens}, whose forward is a row lookup and whose backward a scatter), Q = NH·hd the query width
 * (attention scores and the weighted sum run per query head, whatever the number of kv heads: 2·2·T·Q forward per
 * token and layer, twice that backward; the causal half is not subtracted, as PaLM). Lives outside {@code train} so that nothing in training imports a
 * benchmark; it may import train and model.
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
    public record LoraSpec(int rank, double alpha, double dropout, List<String> targets, List<String> modulesToSave,
                           boolean baseBf16) {
        public LoraSpec {
            if (rank < 1) throw new IllegalArgumentException("LoRA rank must be positive");
            targets = List.copyOf(targets);
            modulesToSave = List.copyOf(modulesToSave);
        }

        /** An fp32 base. */
        public LoraSpec(int rank, double alpha, double dropout, List<String> targets, List<String> modulesToSave) {
            this(rank, alpha, dropout, targets, modulesToSave, false);
        }
    }

    /** The optimizer settings timed: the recipe's learning rate and weight decay, torch's betas and epsilon. */
    private static final double LR = 1e-4, WEIGHT_DECAY = 0.01, BETA1 = 0.9, BETA2 = 0.999, EPS = 1e-8, MAX_NORM = 1.0;

    /**
     * Full fine-tuning steps of any family's config: GPT-2 as {@link #run(Gpt2Config, Parallel, int, int, int, int,
     * boolean, Consumer)}, the others through {@link FamilyTrainable}.
     */
    public static Result run(ModelConfig cfg, Parallel par, int batch, int block, int steps, int warmup,
                             boolean gradientCheckpointing, Consumer<String> log) {
        if (cfg instanceof Gpt2Config g) return run(g, par, batch, block, steps, warmup, gradientCheckpointing, null, log);
        if (batch < 1 || block < 1 || steps < 1 || warmup < 0)
            throw new IllegalArgumentException("batch, block and steps must be positive, warmup non-negative");
        Gemm gemm = new Gemm(par);
        FamilyTrainable model = FamilyTrainable.fromScratch(cfg, batch, block, gradientCheckpointing, 1234, gemm, par);
        System.gc();   // as train does after loading: the init's garbage is not counted as the run's heap
        float[] p = model.params(), g = model.grads();
        AdamW opt = AdamW.forModel(model, LR, LR, WEIGHT_DECAY, BETA1, BETA2, EPS);
        int[] ids = randomIds(batch * block, cfg.vocabSize());
        float loss = Float.NaN;
        long t0 = 0;
        for (int s = 0; s < warmup + steps; s++) {
            if (s == warmup) t0 = System.nanoTime();
            long st = System.nanoTime();
            opt.zeroGrads(g);
            loss = (float) model.forwardBackward(ids, batch, block, 1f, s);
            double norm = GradClip.clip(g, opt.segments(), MAX_NORM, par);
            opt.step(p, g, 1.0, par);
            if (log != null)
                log.accept(String.format("step %d%s loss %.4f grad-norm %.3f %.0f ms", s + 1, s < warmup ? " (warmup)" : "",
                        loss, norm, (System.nanoTime() - st) / 1e6));
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        long tokens = (long) batch * block * steps;
        ParamLayout layout = model.layout();
        long P = layout.size();
        String embed = cfg.family().tokenEmbedding();
        long matmulP = cfg.tieWordEmbeddings() ? P : P - layout.get(embed).size();
        double flops = (6.0 * matmulP + 12.0 * cfg.numLayers() * queryWidth(cfg) * block) * tokens;
        double gflops = flops / secs / 1e9;
        double peak = gemm.measurePeakGflops();
        return new Result(tokens / secs, PeakMemory.rssMb(), gflops, gflops / peak, peak, secs * 1000 / steps, loss, P);
    }

    /** NH·hd: the width attention works in per layer (the q projection's output). */
    private static long queryWidth(ModelConfig cfg) {
        for (var t : cfg.family().loraTargets(cfg))
            if (t.layer() == 0 && t.module().endsWith("q_proj")) return t.out();
        return cfg.hiddenSize();
    }

    private static int[] randomIds(int n, int vocab) {
        SplittableRandom r = new SplittableRandom(42);
        int[] ids = new int[n];
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(vocab);
        return ids;
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
        Gpt2Trainable.Spec spec = new Gpt2Trainable.Spec(0, batch, block, gradientCheckpointing,
                lora == null ? 0 : lora.rank(), lora == null ? 0 : lora.alpha() / lora.rank(),
                lora == null ? 0 : lora.dropout(), lora == null ? List.of() : lora.targets(),
                lora == null ? List.of() : lora.modulesToSave(), false, lora != null && lora.baseBf16(), 1234);
        Gpt2Trainable model = Gpt2Trainable.fromScratch(cfg, spec, gemm, par, m -> {});
        Gpt2Config trained = model.config();   // untied when peft would untie
        PhaseProfile prof = model.model().profile();
        float[] p = model.params(), g = model.grads();
        AdamW opt = AdamW.forModel(model, LR, LR, WEIGHT_DECAY, BETA1, BETA2, EPS);

        SplittableRandom r = new SplittableRandom(42);
        int[] ids = new int[batch * block];
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(cfg.vocabSize());
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
            loss = (float) model.forwardBackward(ids, batch, block, 1f, s);
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
        long P = Gpt2Layout.of(trained).size();
        // Frozen matrices (LoRA's base, a frozen head) skip their weight-gradient product: 2 FLOPs per weight less.
        long frozenMatrix = 0;
        for (ParamLayout.View w : Gpt2Layout.of(trained).views()) {
            boolean matrix = Gpt2Model.isConv1dWeight(w.name()) || w.name().equals(Gpt2Layout.LM_HEAD)
                    || (w.name().equals(Gpt2Layout.WTE) && trained.tieWordEmbeddings());
            if (matrix && !model.isTrainable(w.name())) frozenMatrix += w.size();
        }
        double flops = (6.0 * P - 2.0 * frozenMatrix + 12.0 * trained.nLayer() * trained.nEmbd() * block) * tokens;
        double gflops = flops / secs / 1e9;
        double peak = gemm.measurePeakGflops();
        return new Result(tokens / secs, PeakMemory.rssMb(), gflops, gflops / peak, peak, secs * 1000 / steps, loss, P);
    }
}
