package dev.cpt4j.train;

import dev.cpt4j.UserError;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.HfConfigs;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.CausalLm;
import dev.cpt4j.model.Lora;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.model.VocabResize;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;
import dev.cpt4j.tensor.cpu.Gemm;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Any family's causal LM (+ optional LoRA) as the {@link Trainer} sees it, and the model preparation of
 * {@code run_clm_pt_with_peft.py}, all through the {@link ModelFamily}: base weights from an HF folder (or random
 * from a config), embeddings resized to the tokenizer (transformers' mean resizing, embedding and untied head),
 * LoRA attached to the family's projections, the base frozen except {@code modules_to_save}, the frozen projection
 * weights optionally stored in bf16.
 *
 * <p>With LoRA, peft's {@code modules_to_save} wraps each named module in a trainable copy; on a tied base that
 * makes the token embedding and {@code lm_head} two independent tensors (peft's default, it warns about it). The
 * model is therefore built untied in that case, {@code lm_head.weight} starting as a copy of the embedding;
 * {@code ensure_weight_tying} keeps the one tied tensor. Full fine-tuning (no LoRA) trains every tensor and keeps
 * the base's tying. A config whose vocabulary is larger than the tokenizer (Qwen pads it) is never resized down.
 */
public final class FamilyTrainable implements TrainableModel {
    private final CausalLm model;
    private final ModelConfig baseConfig;      // the base as loaded (before resize/untie)
    private final Set<String> trainable;
    private final Spec spec;
    private final List<String> loraSites, savedModules;
    private final int[] tokenIds;              // trainable-token rows (peft trainable_token_indices), or empty
    private String embDelta, headDelta;        // their delta views (headDelta null when tied)

    /**
     * What to build.
     *
     * @param vocabSize       embedding rows wanted (the tokenizer's size, padded); 0 or less than the base's = keep the base's
     * @param loraRank        0 = full fine-tuning
     * @param loraTargets     {@code --trainable} as given (resolved by the family; empty = peft's default for it)
     * @param modulesToSave   {@code --modules_to_save} as given (resolved by the family)
     * @param baseBf16        frozen base in bf16: projection weights stored in bf16, the other frozen tensors rounded
     *                        through bf16 (numerics of a bf16 base)
     */
    public record Spec(int vocabSize, int maxBatch, int maxT, boolean gradientCheckpointing, int loraRank,
                       double loraScaling, double loraDropout, List<String> loraTargets, List<String> modulesToSave,
                       boolean ensureWeightTying, boolean baseBf16, long seed, String tokenIndices) {
        public Spec {
            loraTargets = List.copyOf(loraTargets);
            modulesToSave = List.copyOf(modulesToSave);
        }

        /** Without trainable tokens. */
        public Spec(int vocabSize, int maxBatch, int maxT, boolean gradientCheckpointing, int loraRank,
                    double loraScaling, double loraDropout, List<String> loraTargets, List<String> modulesToSave,
                    boolean ensureWeightTying, boolean baseBf16, long seed) {
            this(vocabSize, maxBatch, maxT, gradientCheckpointing, loraRank, loraScaling, loraDropout, loraTargets,
                    modulesToSave, ensureWeightTying, baseBf16, seed, null);
        }

        /**
         * The token ids whose embedding (and untied head) rows train, in peft's order; empty without
         * {@code --trainable_token_indices}. {@code new} is every row the resize from {@code base} adds.
         */
        public List<Integer> tokenIds(ModelConfig base) {
            if (tokenIndices == null || !lora()) return List.of();
            int V = trainedConfig(base).vocabSize(), baseV = base.vocabSize();
            if (tokenIndices.equals("new")) {
                if (V == baseV)
                    throw new UserError("--trainable_token_indices new: the tokenizer adds no rows to the model's "
                            + baseV + "; list the token ids to train instead");
                List<Integer> ids = new java.util.ArrayList<>();
                for (int v = baseV; v < V; v++) ids.add(v);
                return ids;
            }
            List<Integer> ids = TrainOptions.tokenIds(tokenIndices);
            for (int id : ids)
                if (id >= V)
                    throw new UserError("--trainable_token_indices: token id " + id + " is beyond the vocabulary of " + V
                            + " rows (ids 0.." + (V - 1) + ")");
            return ids;
        }

        public boolean lora() {
            return loraRank > 0;
        }

        /** The spec a {@link TrainOptions} asks for, with {@code vocabSize} and {@code maxT} resolved by the caller. */
        public static Spec of(TrainOptions o, int vocabSize, int maxT) {
            return new Spec(vocabSize, Math.max(o.perDeviceTrainBatchSize(), o.perDeviceEvalBatchSize()), maxT,
                    o.gradientCheckpointing(), o.loraRank(), o.loraScaling(), o.loraDropout(), o.trainable(),
                    o.modulesToSave(), o.ensureWeightTying(), o.baseDtype() == TrainOptions.BaseDtype.BF16, o.seed(),
                    o.trainableTokenIndices());
        }

        /** The LoRA sites ({@link ModelFamily#loraSites()} names) of this spec on {@code f}; empty without LoRA. */
        public List<String> sites(ModelFamily f) {
            if (!lora()) return List.of();
            return f.resolveLoraSites(loraTargets.isEmpty() ? f.defaultLoraSites() : loraTargets);
        }

        /** The modules_to_save ({@link ModelFamily.SavedModule#module()} paths) of this spec on {@code f}. */
        public List<String> modules(ModelFamily f) {
            return lora() ? f.resolveSavedModules(modulesToSave) : List.of();
        }

        /** The config of the trained model: resized vocabulary, untied when peft would untie. */
        public ModelConfig trainedConfig(ModelConfig base) {
            int V = Math.max(vocabSize, base.vocabSize());
            return base.withVocabSize(V).withTiedEmbeddings(base.tieWordEmbeddings() && !unties(base));
        }

        /** True when peft would give the embedding and lm_head separate trainable copies of a tied base. */
        boolean unties(ModelConfig base) {
            if (!lora() || !base.tieWordEmbeddings() || ensureWeightTying) return false;
            List<String> m = modules(base.family());
            return m.contains(embeddingModule(base)) || m.contains("lm_head");
        }

        /** Checks what only the family can check: its module names. */
        void validate(ModelConfig base) {
            sites(base.family());
            List<String> m = modules(base.family());
            if (!tokenIds(base).isEmpty() && (m.contains(embeddingModule(base)) || m.contains("lm_head")))
                throw new UserError("--trainable_token_indices trains rows of " + embeddingModule(base) + " and lm_head, "
                        + "--modules_to_save trains them whole; give one of the two");
        }

        /** {@code train}'s rule: {@code --ensure_weight_tying} needs both the embedding and lm_head in modules_to_save. */
        void requireTyingPair(ModelConfig base) {
            List<String> m = modules(base.family());
            if (ensureWeightTying && lora() && !(m.contains(embeddingModule(base)) && m.contains("lm_head")))
                throw new UserError("--ensure_weight_tying keeps trained " + embeddingModule(base) + " and lm_head tied; "
                        + "it needs --modules_to_save " + embeddingModule(base) + ",lm_head");
        }
    }

    /** The family's module path of the token embedding ({@code transformer.wte}, {@code model.embed_tokens}). */
    static String embeddingModule(ModelConfig c) {
        String emb = c.family().tokenEmbedding();
        for (ModelFamily.SavedModule m : c.family().savableModules(c))
            if (m.parameters().contains(emb)) return m.module();
        throw new IllegalStateException(c.family().displayName() + " has no savable token embedding");
    }

    /** peft's name of the trainable-tokens delta of a module: {@code <module>.token_adapter.trainable_tokens_delta}. */
    public static String tokenDelta(String module) {
        return module + ".token_adapter.trainable_tokens_delta";
    }

    private FamilyTrainable(CausalLm model, ModelConfig baseConfig, Set<String> trainable, Spec spec,
                            List<String> loraSites, List<String> savedModules, List<Integer> tokenIds) {
        this.tokenIds = tokenIds.stream().mapToInt(Integer::intValue).toArray();
        this.model = model;
        this.baseConfig = baseConfig;
        this.trainable = trainable;
        this.spec = spec;
        this.loraSites = loraSites;
        this.savedModules = savedModules;
    }

    /** Loads {@code modelDir} (config.json + weights) and prepares it per {@code spec}. */
    public static FamilyTrainable fromPretrained(Path modelDir, Spec spec, Gemm gemm, Parallel par, Consumer<String> log) {
        ModelConfig base = HfCheckpoints.readModelConfig(modelDir);
        ParamLayout baseLayout = base.family().layout(base);
        // Tensor by tensor into the model's own storage: no full fp32 copy of the base is ever held (with a bf16
        // base the model keeps half of it), so the peak is the model's, not model + checkpoint.
        FamilyTrainable t;
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

    /** Random weights of {@code config} (the family's HF init, seeded by {@code spec.seed()}), prepared per {@code spec}. */
    public static FamilyTrainable fromScratch(ModelConfig config, Spec spec, Gemm gemm, Parallel par, Consumer<String> log) {
        int V = Math.max(spec.vocabSize(), config.vocabSize());
        ModelConfig cfg = config.withVocabSize(V);
        CausalLm tmp = cfg.family().newModel(cfg, gemm, par, 1, 1, false);
        tmp.initRandom(spec.seed());
        if (V != config.vocabSize()) log.accept("vocabulary: " + V + " rows (the tokenizer's size; config.json says " + config.vocabSize() + ")");
        FamilyTrainable t = build(cfg, tmp.layout(), tmp.params(), spec, gemm, par, log);
        tmp = null;
        collectBeforeTraining();
        return t;
    }

    /** Full fine-tuning of random weights of {@code config}: what {@code bench train} times for any family. */
    public static FamilyTrainable fromScratch(ModelConfig config, int maxBatch, int maxT, boolean gradientCheckpointing,
                                              long seed, Gemm gemm, Parallel par) {
        return fromScratch(config, new Spec(0, maxBatch, maxT, gradientCheckpointing, 0, 0, 0, List.of(), List.of(),
                false, false, seed), gemm, par, m -> {});
    }

    /** Reads a config.json for {@link #fromScratch}. */
    public static ModelConfig readConfig(Path configJson) {
        return HfConfigs.read(configJson);
    }

    /** Builds the trainable model from base weights {@code baseParams} (laid out by {@code baseLayout} for {@code base}). */
    public static FamilyTrainable build(ModelConfig base, ParamLayout baseLayout, float[] baseParams, Spec spec, Gemm gemm,
                                        Parallel par, Consumer<String> log) {
        return build(base, baseLayout, sink -> {
            for (ParamLayout.View v : baseLayout.views()) sink.put(v, baseParams, v.offset());
        }, spec, gemm, par, log);
    }

    private static FamilyTrainable build(ModelConfig base, ParamLayout baseLayout, BaseWeights weights, Spec spec, Gemm gemm,
                                         Parallel par, Consumer<String> log) {
        if (spec.maxT() > base.contextLength())
            throw new UserError("--block_size " + spec.maxT() + " is beyond the model's context of " + base.contextLength()
                    + " positions; use --block_size " + base.contextLength() + " or less");
        spec.validate(base);
        ModelFamily fam = base.family();
        boolean untie = spec.unties(base);
        ModelConfig cfg = spec.trainedConfig(base);
        int V = cfg.vocabSize(), C = cfg.hiddenSize();
        List<String> sites = spec.sites(fam), modules = spec.modules(fam);
        ParamLayout layout = fam.layout(cfg);
        if (spec.lora()) Lora.extend(layout, cfg, sites, spec.loraRank());
        Set<String> trainable = new HashSet<>();
        if (spec.lora()) {
            trainable.addAll(Lora.viewNames(cfg, sites));
            for (String m : modules) trainable.addAll(moduleViews(cfg, m));
        } else {
            for (ParamLayout.View v : layout.views()) trainable.add(v.name());
        }
        // trainable tokens: (n, C) deltas the optimizer updates; the engine computes the embedding's (and an untied
        // head's) gradient, whose rows of those ids become the deltas' gradient (peft: W.index_copy(0, ids, delta))
        List<Integer> tokenIds = spec.tokenIds(base);
        Set<String> computed = new HashSet<>(trainable);
        String embModule0 = embeddingModule(cfg);
        String embDelta = null, headDelta = null;
        if (!tokenIds.isEmpty()) {
            embDelta = tokenDelta(embModule0);
            layout.add(embDelta, tokenIds.size(), C);
            trainable.add(embDelta);
            computed.add(embDelta);
            computed.add(fam.tokenEmbedding());
            if (!cfg.tieWordEmbeddings()) {
                headDelta = tokenDelta("lm_head");
                layout.add(headDelta, tokenIds.size(), C);
                trainable.add(headDelta);
                computed.add(headDelta);
                computed.add(fam.outputHead());
            }
        }
        // --base_dtype bf16: the frozen projection weights (the bulk of the base) are stored in bf16 (the GEMM widens
        // them while packing); the other frozen tensors are small and only rounded through bf16 below.
        CausalLm model = fam.newModel(cfg, layout, gemm, par, spec.maxBatch(), spec.maxT(), spec.gradientCheckpointing(),
                n -> spec.baseBf16() && !computed.contains(n) && fam.bf16Storable(n));
        float[] p = model.params();
        String emb = fam.tokenEmbedding(), head = fam.outputHead();
        weights.each((v, data, off) -> {
            if (v.name().equals(emb) || v.name().equals(head))
                VocabResize.copyResized(data, off, base.vocabSize(), p, model.paramOffset(v.name()), V, C);
            else model.writeView(v.name(), data, off);
        });
        String embModule = embeddingModule(cfg);
        if (V != base.vocabSize())
            log.accept("resized the embeddings from " + base.vocabSize() + " to " + V + " rows (new rows = mean of the old "
                    + "rows, as transformers' resize_token_embeddings)");
        String frozenRows = frozenResizedRows(base, V, cfg, trainable);
        if (frozenRows != null && !tokenIds.containsAll(newRows(base.vocabSize(), V)))
            log.accept("warning: the vocabulary grows from " + base.vocabSize() + " to " + V + " rows but " + frozenRows
                    + ": the new rows keep their initial value and are not saved in the adapter (peft "
                    + "does the same); add --modules_to_save " + embModule + ",lm_head to learn them");
        if (untie) {
            System.arraycopy(p, model.paramOffset(emb), p, model.paramOffset(head), V * C);
            log.accept("modules_to_save on a tied base: " + embModule + " and lm_head are trained as two separate copies, "
                    + "as peft does (--ensure_weight_tying keeps them tied)");
        }
        if (spec.lora()) {
            Lora lora = new Lora(model, sites, spec.loraRank(), (float) spec.loraScaling(), (float) spec.loraDropout(), gemm, par);
            lora.init(spec.seed());
            model.setLinearHook(lora);
        }
        // an untied embedding's gradient only has the rows of the batch's tokens: keep those (saves a dense (V, C) buffer)
        model.setSparseTokenEmbeddingGrad(tokenIds.isEmpty());
        model.setFrozen(n -> !computed.contains(n));
        if (spec.baseBf16()) {
            for (ParamLayout.View v : model.storageLayout().views()) {
                if (computed.contains(v.name())) continue;
                for (int i = v.offset(), e = v.offset() + v.size(); i < e; i++)
                    p[i] = DType.bf16ToFloat(DType.floatToBf16(p[i]));
            }
        }
        FamilyTrainable t = new FamilyTrainable(model, base, trainable, spec, sites, modules, tokenIds);
        t.embDelta = embDelta;
        t.headDelta = headDelta;
        t.gatherRows(fam.tokenEmbedding(), embDelta, p, p);   // deltas start as the rows (peft: originals)
        t.gatherRows(fam.outputHead(), headDelta, p, p);
        return t;
    }

    private static List<Integer> newRows(int from, int to) {
        List<Integer> r = new java.util.ArrayList<>();
        for (int v = from; v < to; v++) r.add(v);
        return r;
    }

    /** delta (n, C) = src's rows of the token ids (view {@code full} (V, C) read from {@code src}, written to {@code dst}). */
    private void gatherRows(String full, String delta, float[] src, float[] dst) {
        if (delta == null) return;
        int C = config().hiddenSize(), from = model.paramOffset(full), to = model.paramOffset(delta);
        for (int j = 0; j < tokenIds.length; j++) System.arraycopy(src, from + tokenIds[j] * C, dst, to + j * C, C);
    }

    /** The trained rows into the embedding (and untied head) before a forward: W.index_copy(0, ids, delta). */
    private void scatterTokens() {
        if (tokenIds.length == 0) return;
        float[] p = model.params();
        int C = config().hiddenSize();
        ModelFamily fam = config().family();
        for (String[] pair : new String[][] {{fam.tokenEmbedding(), embDelta}, {fam.outputHead(), headDelta}}) {
            if (pair[1] == null) continue;
            int w = model.paramOffset(pair[0]), d = model.paramOffset(pair[1]);
            for (int j = 0; j < tokenIds.length; j++) System.arraycopy(p, d + j * C, p, w + tokenIds[j] * C, C);
        }
    }

    /** After a backward: delta gradient += the full gradient's rows of the ids; the full gradient is then cleared. */
    private void gatherTokenGrads() {
        if (tokenIds.length == 0) return;
        float[] g = model.grads();
        int C = config().hiddenSize();
        ModelFamily fam = config().family();
        for (String[] pair : new String[][] {{fam.tokenEmbedding(), embDelta}, {fam.outputHead(), headDelta}}) {
            if (pair[1] == null) continue;
            int w = model.gradOffset(pair[0]), d = model.gradOffset(pair[1]);
            for (int j = 0; j < tokenIds.length; j++)
                for (int c = 0; c < C; c++) g[d + j * C + c] += g[w + tokenIds[j] * C + c];
            java.util.Arrays.fill(g, w, w + config().vocabSize() * C, 0f);
        }
    }

    /**
     * peft's {@code trainable_token_indices} of this run by module name ({@code embed_tokens}, and {@code lm_head}
     * when untied); empty without trainable tokens.
     */
    public java.util.Map<String, List<Integer>> trainableTokens() {
        java.util.Map<String, List<Integer>> m = new java.util.LinkedHashMap<>();
        if (tokenIds.length == 0) return m;
        List<Integer> ids = java.util.Arrays.stream(tokenIds).boxed().toList();
        String emb = null;
        for (ModelFamily.LoraTarget t : config().family().loraTargets(config()))
            if (t.storage() == ModelFamily.LoraStorage.EMBEDDING) emb = t.peftName();
        m.put(emb, ids);
        if (headDelta != null) m.put("lm_head", ids);
        return m;
    }

    /** The layout views a modules_to_save entry trains in full (a tied head is the embedding). */
    static List<String> moduleViews(ModelConfig cfg, String module) {
        for (ModelFamily.SavedModule m : cfg.family().savableModules(cfg))
            if (m.module().equals(module)) return m.views();
        throw new UserError("--modules_to_save '" + module + "' is not supported");
    }

    public CausalLm model() {
        return model;
    }

    /**
     * Which embedding tensors gained rows from a vocabulary resize but stay frozen (LoRA without them in
     * modules_to_save), as a clause ("lm_head is not trained"), or null: such rows never learn and the adapter does
     * not carry them.
     */
    static String frozenResizedRows(ModelConfig base, int V, ModelConfig cfg, Set<String> trainable) {
        String emb = cfg.family().tokenEmbedding(), head = cfg.family().outputHead(), embModule = embeddingModule(cfg);
        if (V <= base.vocabSize() || trainable.contains(emb) && (cfg.tieWordEmbeddings()
                || trainable.contains(head))) return null;
        if (cfg.tieWordEmbeddings()) return embModule + " (tied to lm_head) is not trained";
        if (!trainable.contains(emb) && !trainable.contains(head))
            return "neither " + embModule + " nor lm_head is trained";
        return (trainable.contains(emb) ? "lm_head" : embModule) + " is not trained";
    }

    /** The base model's config as loaded (its vocabulary and tying before any resize/untie). */
    public ModelConfig baseConfig() {
        return baseConfig;
    }

    /** The config of the trained model (resized vocabulary; untied when peft would untie). */
    public ModelConfig config() {
        return model.config();
    }

    public Spec spec() {
        return spec;
    }

    /** The LoRA sites trained ({@link ModelFamily#loraSites()} names), empty for full fine-tuning. */
    public List<String> loraSites() {
        return loraSites;
    }

    /** The modules_to_save trained in full beside LoRA ({@link ModelFamily.SavedModule#module()} paths). */
    public List<String> savedModules() {
        return savedModules;
    }

    /**
     * Continues an adapter ({@code --peft_path}): its LoRA matrices and modules_to_save copies replace this model's
     * freshly initialised ones, so training starts from the adapter's function. Every tensor this model trains must be
     * in the adapter with this model's shape, and the adapter may hold nothing else; anything else is one
     * {@link UserError} naming the tensor. Call it on a model built from the adapter's own config
     * ({@link Trainer} does).
     */
    public void loadAdapter(Path dir, dev.cpt4j.hf.PeftAdapters.Adapter adapter) {
        java.util.Map<String, ParamLayout.View> want = dev.cpt4j.hf.PeftExport.keyViews(config(), layout(), loraSites, savedModules);
        java.util.Set<String> extra = new java.util.TreeSet<>(adapter.tensors().keySet());
        extra.removeAll(want.keySet());
        if (!extra.isEmpty())
            throw new UserError("--peft_path " + dir + ": the adapter holds " + extra.size() + " tensor(s) this run does not "
                    + "train (" + extra.iterator().next() + (extra.size() > 1 ? ", …" : "") + "); its adapter_config.json "
                    + "does not describe its weights, or the base model is another one");
        float[] p = model.params();
        for (var e : want.entrySet()) {
            dev.cpt4j.hf.PeftAdapters.Tensor t = adapter.tensors().get(e.getKey());
            ParamLayout.View v = e.getValue();
            if (t == null)
                throw new UserError("--peft_path " + dir + ": the adapter has no tensor " + e.getKey() + ", which its "
                        + "adapter_config.json asks for; is it a complete peft adapter?");
            if (!java.util.Arrays.equals(t.shape(), v.shape()))
                throw new UserError("--peft_path " + dir + ": " + e.getKey() + " has shape " + java.util.Arrays.toString(t.shape())
                        + " but this run's is " + java.util.Arrays.toString(v.shape()) + "; continue the adapter on the base "
                        + "model and with the tokenizer it was trained with (--model_name_or_path, --tokenizer_name_or_path)");
            System.arraycopy(t.data(), 0, p, v.offset(), v.size());
        }
    }

    /** The layout of {@link #params()}: the model's storage layout (bf16-stored views absent). */
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
        return model.config().family().isEmbedding(view) || view.equals(embDelta) || view.equals(headDelta);
    }

    @Override
    public boolean noDecay(String view) {
        return model.config().family().noDecay(view);
    }

    @Override
    public int maxSequenceLength() {
        return model.maxT();
    }

    @Override
    public double forwardBackward(int[] tokens, int batch, int seqLen, float gradScale, long dropoutSeed) {
        return forwardBackward(tokens, null, batch, seqLen, gradScale, dropoutSeed, 0);
    }

    @Override
    public double forwardBackward(int[] tokens, int batch, int seqLen, float gradScale, long dropoutSeed,
                                  long firstToken) {
        return forwardBackward(tokens, null, batch, seqLen, gradScale, dropoutSeed, firstToken);
    }

    @Override
    public double forwardBackward(int[] tokens, int[] docStarts, int batch, int seqLen, float gradScale, long dropoutSeed) {
        return forwardBackward(tokens, docStarts, batch, seqLen, gradScale, dropoutSeed, 0);
    }

    /** With document starts (null: plain blocks) and the rows' first global token (a rank's share; 0: the whole batch). */
    public double forwardBackward(int[] tokens, int[] docStarts, int batch, int seqLen, float gradScale, long dropoutSeed,
                                  long firstToken) {
        if (docStarts != null && dev.cpt4j.model.CausalLm.trainedPositions(docStarts, batch, seqLen) == 0)
            throw new dev.cpt4j.UserError("--neat_packing: every document in this batch of " + batch + " blocks is a "
                    + "single token, so no position has a next token of its own document to learn; documents (lines) "
                    + "need at least 2 tokens: check the corpus, or train without --neat_packing");
        model.setDropoutOrigin(firstToken);
        scatterTokens();
        model.setGradScale(gradScale);
        float loss = model.forward(tokens, null, docStarts, batch, seqLen, true, dropoutSeed);
        model.backward();
        gatherTokenGrads();
        return loss;
    }

    @Override
    public double loss(int[] tokens, int batch, int seqLen) {
        scatterTokens();
        return model.evalLoss(tokens, batch, seqLen);
    }

    @Override
    public double loss(int[] tokens, int[] docStarts, int batch, int seqLen) {
        scatterTokens();
        return model.forward(tokens, null, docStarts, batch, seqLen, false, 0L);
    }
}
