package dev.cpt4j.train;

import dev.cpt4j.UserError;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.HfConfigs;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.model.Gpt2Model;
import dev.cpt4j.model.LinearHook;
import dev.cpt4j.model.Lora;
import dev.cpt4j.model.VocabResize;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;
import dev.cpt4j.tensor.cpu.Gemm;
import java.nio.file.Path;
import java.util.EnumSet;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A GPT-2 (+ optional LoRA) as the {@link Trainer} sees it, and the model preparation of
 * {@code run_clm_pt_with_peft.py}: base weights from an HF folder (or random from a config), embeddings resized to
 * the tokenizer, LoRA attached, the base frozen except {@code modules_to_save}.
 *
 * <p>With LoRA, peft's {@code modules_to_save} wraps each named module in a trainable copy; on a tied base that
 * makes {@code transformer.wte} and {@code lm_head} two independent tensors (peft's default, it warns about it).
 * The model is therefore built untied in that case, {@code lm_head.weight} starting as a copy of {@code wte};
 * {@code ensure_weight_tying} keeps the one tied tensor. Full fine-tuning (no LoRA) trains every tensor and keeps
 * the base's tying.
 */
public final class Gpt2Trainable implements TrainableModel {
    private final Gpt2Model model;
    private final Lora lora;                   // null for full fine-tuning
    private final Gpt2Config baseConfig;       // the base as loaded (before resize/untie)
    private final Set<String> trainable;
    private final Spec spec;

    /**
     * What to build.
     *
     * @param vocabSize       embedding rows wanted (the tokenizer's size, padded); 0 = keep the base's
     * @param loraRank        0 = full fine-tuning
     * @param loraTargets     canonical module names ({@code attn.c_attn}, …)
     * @param modulesToSave   canonical ({@code transformer.wte}, {@code lm_head}, {@code transformer.wpe}, {@code transformer.ln_f})
     * @param baseBf16        frozen base in bf16: Conv1D weights stored in bf16, the other frozen tensors rounded
     *                        through bf16 (numerics of a bf16 base)
     */
    public record Spec(int vocabSize, int maxBatch, int maxT, boolean gradientCheckpointing, int loraRank,
                       double loraScaling, double loraDropout, List<String> loraTargets, List<String> modulesToSave,
                       boolean ensureWeightTying, boolean baseBf16, long seed) {
        public Spec {
            loraTargets = List.copyOf(loraTargets);
            modulesToSave = List.copyOf(modulesToSave);
        }

        public boolean lora() {
            return loraRank > 0;
        }

        /** True when peft would give wte and lm_head separate trainable copies of a tied base. */
        boolean unties(Gpt2Config base) {
            return lora() && base.tieWordEmbeddings() && !ensureWeightTying
                    && (modulesToSave.contains("transformer.wte") || modulesToSave.contains("lm_head"));
        }

        /** The spec a {@link TrainOptions} asks for, with {@code vocabSize} and {@code maxT} resolved by the caller. */
        public static Spec of(TrainOptions o, int vocabSize, int maxT) {
            return new Spec(vocabSize, Math.max(o.perDeviceTrainBatchSize(), o.perDeviceEvalBatchSize()), maxT,
                    o.gradientCheckpointing(), o.loraRank(), o.loraScaling(), o.loraDropout(), o.trainable(),
                    o.modulesToSave(), o.ensureWeightTying(), o.baseDtype() == TrainOptions.BaseDtype.BF16, o.seed());
        }
    }

    private Gpt2Trainable(Gpt2Model model, Lora lora, Gpt2Config baseConfig, Set<String> trainable, Spec spec) {
        this.model = model;
        this.lora = lora;
        this.baseConfig = baseConfig;
        this.trainable = trainable;
        this.spec = spec;
    }

    /** Loads {@code modelDir} (config.json + weights) and prepares it per {@code spec}. */
    public static Gpt2Trainable fromPretrained(Path modelDir, Spec spec, Gemm gemm, Parallel par, Consumer<String> log) {
        Gpt2Config base = gpt2(HfCheckpoints.readModelConfig(modelDir), modelDir.resolve(HfCheckpoints.CONFIG));
        ParamLayout baseLayout = Gpt2Layout.of(base);
        // Tensor by tensor into the model's own storage: no full fp32 copy of the base is ever held (with a bf16
        // base the model keeps half of it), so the peak is the model's, not model + checkpoint.
        Gpt2Trainable t;
        try (var src = HfCheckpoints.openWeights(modelDir)) {
            t = build(base, baseLayout, sink -> HfCheckpoints.stream(src, base, baseLayout, (v, data) -> sink.put(v, data, 0)), spec, gemm, par, log);
        }
        collectBeforeTraining();
        return t;
    }

    /** The base's weights, handed over one tensor at a time to {@code sink}: (view of the base layout, values, offset). */
    @FunctionalInterface
    interface BaseWeights {
        void each(BaseTensor sink);
    }

    @FunctionalInterface
    interface BaseTensor {
        void put(ParamLayout.View view, float[] data, int offset);
    }

    /**
     * Loading leaves garbage in the old generation (the read buffer, a random init's base copy, the parsed config and
     * tokenizer). Collecting it once now lets the gradients, optimizer moments and activations allocated next reuse
     * that memory instead of growing the heap past it: on the seed's LoRA run (checkpointing, bf16 base) the peak RSS
     * of {@code train} fell from 1436 to about 1040 MiB with this one collection.
     */
    private static void collectBeforeTraining() {
        System.gc();
    }

    /** Random weights of {@code config} (HF init, seeded by {@code spec.seed()}), prepared per {@code spec}. */
    public static Gpt2Trainable fromScratch(Gpt2Config config, Spec spec, Gemm gemm, Parallel par, Consumer<String> log) {
        int V = spec.vocabSize() > 0 ? spec.vocabSize() : config.vocabSize();
        Gpt2Config cfg = config.withVocabSize(V);
        Gpt2Model tmp = new Gpt2Model(cfg, gemm, par, 1, 1, false);
        tmp.initRandom(spec.seed());
        if (V != config.vocabSize()) log.accept("vocabulary: " + V + " rows (the tokenizer's size; config.json says " + config.vocabSize() + ")");
        Gpt2Trainable t = build(cfg, tmp.layout(), tmp.params(), spec, gemm, par, log);
        tmp = null;
        collectBeforeTraining();
        return t;
    }

    /** Reads a config.json for {@link #fromScratch}. */
    public static Gpt2Config readConfig(Path configJson) {
        return gpt2(HfConfigs.read(configJson), configJson);
    }

    /** Training builds GPT-2 models today; another family is refused with one line. */
    static Gpt2Config gpt2(dev.cpt4j.model.ModelConfig c, Path where) {
        if (c instanceof Gpt2Config g) return g;
        throw new UserError(where + ": cpt4j train runs model_type gpt2 for now (this is " + c.modelType()
                + "); eval, generate, compare and bench already run it");
    }

    /** Builds the trainable model from base weights {@code baseParams} (laid out by {@code baseLayout} for {@code base}). */
    public static Gpt2Trainable build(Gpt2Config base, ParamLayout baseLayout, float[] baseParams, Spec spec, Gemm gemm,
                                      Parallel par, Consumer<String> log) {
        return build(base, baseLayout, sink -> {
            for (ParamLayout.View v : baseLayout.views()) sink.put(v, baseParams, v.offset());
        }, spec, gemm, par, log);
    }

    private static Gpt2Trainable build(Gpt2Config base, ParamLayout baseLayout, BaseWeights weights, Spec spec, Gemm gemm,
                                       Parallel par, Consumer<String> log) {
        if (spec.maxT() > base.nPositions())
            throw new UserError("--block_size " + spec.maxT() + " is beyond the model's context of " + base.nPositions()
                    + " positions; use --block_size " + base.nPositions() + " or less");
        int V = spec.vocabSize() > 0 ? spec.vocabSize() : base.vocabSize();
        boolean untie = spec.unties(base);
        Gpt2Config cfg = base.withVocabSize(V).withTiedEmbeddings(base.tieWordEmbeddings() && !untie);
        Set<Lora.Site> sites = EnumSet.noneOf(LinearHook.Site.class);
        for (String t : spec.loraTargets()) sites.add(Lora.site(t));
        ParamLayout layout = Gpt2Layout.of(cfg);
        if (spec.lora()) Lora.extend(layout, cfg, sites, spec.loraRank());
        Set<String> trainable = new HashSet<>();
        if (spec.lora()) {
            trainable.addAll(Lora.viewNames(cfg, sites));
            for (String m : spec.modulesToSave()) {
                List<String> views = Lora.moduleViews(m, cfg);
                if (views == null) throw new UserError("--modules_to_save '" + m + "' is not supported");
                trainable.addAll(views);
            }
        } else {
            for (ParamLayout.View v : layout.views()) trainable.add(v.name());
        }
        // --base_dtype bf16: the frozen Conv1D weights (the bulk of the base) are stored in bf16 (the GEMM widens
        // them while packing); the other frozen tensors are small and only rounded through bf16 below.
        Gpt2Model model = new Gpt2Model(cfg, layout, gemm, par, spec.maxBatch(), spec.maxT(), spec.gradientCheckpointing(),
                n -> spec.baseBf16() && !trainable.contains(n) && Gpt2Model.isConv1dWeight(n));
        float[] p = model.params();
        int C = cfg.nEmbd();
        weights.each((v, data, off) -> {
            if (v.name().equals(Gpt2Layout.WTE) || v.name().equals(Gpt2Layout.LM_HEAD))
                VocabResize.copyResized(data, off, base.vocabSize(), p, model.paramOffset(v.name()), V, C);
            else model.writeView(v.name(), data, off);
        });
        if (V != base.vocabSize())
            log.accept("resized the embeddings from " + base.vocabSize() + " to " + V + " rows (new rows = mean of the old "
                    + "rows, as transformers' resize_token_embeddings)");
        String frozenRows = frozenResizedRows(base, V, cfg, trainable);
        if (frozenRows != null)
            log.accept("warning: the vocabulary grows from " + base.vocabSize() + " to " + V + " rows but " + frozenRows
                    + ": the new rows keep their initial value and are not saved in the adapter (peft "
                    + "does the same); add --modules_to_save transformer.wte,lm_head to learn them");
        if (untie) {
            System.arraycopy(p, model.paramOffset(Gpt2Layout.WTE), p, model.paramOffset(Gpt2Layout.LM_HEAD), V * C);
            log.accept("modules_to_save on a tied base: transformer.wte and lm_head are trained as two separate copies, "
                    + "as peft does (--ensure_weight_tying keeps them tied)");
        }
        Lora lora = null;
        if (spec.lora()) {
            lora = new Lora(model, sites, spec.loraRank(), (float) spec.loraScaling(), (float) spec.loraDropout(), gemm, par);
            lora.init(spec.seed());
            model.setLinearHook(lora);
        }
        // an untied wte's gradient only has the rows of the batch's tokens: keep those (saves a dense (V, C) buffer)
        model.setSparseTokenEmbeddingGrad(true);
        model.setFrozen(n -> !trainable.contains(n));
        if (spec.baseBf16()) {
            for (ParamLayout.View v : model.storageLayout().views()) {
                if (trainable.contains(v.name())) continue;
                for (int i = v.offset(), e = v.offset() + v.size(); i < e; i++)
                    p[i] = DType.bf16ToFloat(DType.floatToBf16(p[i]));
            }
        }
        return new Gpt2Trainable(model, lora, base, trainable, spec);
    }

    public Gpt2Model model() {
        return model;
    }

    /** The LoRA hook, or null for full fine-tuning. */
    public Lora lora() {
        return lora;
    }

    /**
     * Which embedding tensors gained rows from a vocabulary resize but stay frozen (LoRA without them in
     * modules_to_save), as a clause ("lm_head is not trained"), or null: such rows never learn and the adapter does
     * not carry them.
     */
    static String frozenResizedRows(Gpt2Config base, int V, Gpt2Config cfg, Set<String> trainable) {
        if (V <= base.vocabSize() || trainable.contains(Gpt2Layout.WTE) && (cfg.tieWordEmbeddings()
                || trainable.contains(Gpt2Layout.LM_HEAD))) return null;
        if (cfg.tieWordEmbeddings()) return "transformer.wte (tied to lm_head) is not trained";
        if (!trainable.contains(Gpt2Layout.WTE) && !trainable.contains(Gpt2Layout.LM_HEAD))
            return "neither transformer.wte nor lm_head is trained";
        return (trainable.contains(Gpt2Layout.WTE) ? "lm_head" : "transformer.wte") + " is not trained";
    }

    /** The base model's config as loaded (its vocabulary and tying before any resize/untie). */
    public Gpt2Config baseConfig() {
        return baseConfig;
    }

    /** The config of the trained model (resized vocabulary; untied when peft would untie). */
    public Gpt2Config config() {
        return model.config();
    }

    public Spec spec() {
        return spec;
    }

    /** The layout of {@link #params()}: the model's {@link Gpt2Model#storageLayout()} (bf16-stored views absent). */
    @Override
    public ParamLayout layout() {
        return model.storageLayout();
    }

    @Override
    public float[] params() {
        return model.params();
    }

    @Override
    public float[] grads() {
        return model.grads();
    }

    @Override
    public int gradOffset(String view) {
        return model.gradOffset(view);
    }

    @Override
    public RowSparseGrad sparseGrad(String view) {
        return model.sparseGrad(view);
    }

    @Override
    public boolean isTrainable(String view) {
        return trainable.contains(view);
    }

    @Override
    public boolean isEmbedding(String view) {
        return view.equals(Gpt2Layout.WTE) || view.equals(Gpt2Layout.WPE) || view.equals(Gpt2Layout.LM_HEAD);
    }

    @Override
    public int maxSequenceLength() {
        return model.maxT();
    }

    @Override
    public double forwardBackward(int[] tokens, int batch, int seqLen, float gradScale, long dropoutSeed) {
        model.setGradScale(gradScale);
        float loss = model.forward(tokens, batch, seqLen, true, dropoutSeed);
        model.backward();
        return loss;
    }

    @Override
    public double loss(int[] tokens, int batch, int seqLen) {
        return model.evalLoss(tokens, batch, seqLen);
    }
}
