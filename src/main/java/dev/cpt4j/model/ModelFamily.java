package dev.cpt4j.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.io.DType;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.WeightStore;
import dev.cpt4j.tensor.cpu.Gemm;

import java.util.List;
import java.util.function.Predicate;

/**
 * One architecture family, the only place that knows it: its {@code config.json} (parsed and written), its HF tensor
 * names and shapes (the {@link ParamLayout}, stored as HF stores them, so import and export never transpose), tying,
 * which tensors are embeddings and which get no weight decay, the training engine and the KV-cache decoder (both
 * over the same layout). Code above the model package ({@code hf}, {@code train}, {@code generate}, {@code cli})
 * reaches a family only through {@link ModelFamilies} and this interface — PEFT adapter files included: which modules
 * LoRA can adapt and how their weights are stored ({@link #loraTargets}), which modules {@code modules_to_save} can
 * copy ({@link #savableModules}).
 */
public interface ModelFamily {
    /** Short name for messages ("GPT-2", "LLaMA"). */
    String displayName();

    /** The {@code model_type} values of config.json this family reads. */
    List<String> modelTypes();

    /** Parses a config.json whose model_type is one of {@link #modelTypes()}; problems are one line naming {@code where}. */
    ModelConfig readConfig(ObjectNode json, String where);

    /** config.json for {@code c}: {@code base}'s other keys (may be null) plus every field, {@code dtype} (may be null). */
    ObjectNode writeConfig(ModelConfig c, ObjectNode base, DType dtype);

    /** The parameter layout of {@code c}: HF names, HF shapes, state-dict order; no head view when tied. */
    ParamLayout layout(ModelConfig c);

    /**
     * The layout name of a tensor found in a checkpoint (a base-model save lacks the causal-LM prefix), or null for
     * a stored buffer that is not a parameter (causal masks, rotary inv_freq) and is skipped.
     */
    String canonicalName(String fileName);

    /** Name of the token-embedding view. */
    String tokenEmbedding();

    /** Name of the untied output head's view (absent from the layout when tied). */
    String outputHead();

    /** True for tensors AdamW must not decay (biases and norm weights: HF Trainer's rule). */
    boolean noDecay(String name);

    /** True for embedding tensors (trained with {@code --embedding_learning_rate}). */
    boolean isEmbedding(String name);

    /** The training engine for {@code c} (parameters zero until loaded or {@link CausalLm#initRandom}). */
    CausalLm newModel(ModelConfig c, Gemm gemm, Parallel par, int maxBatch, int maxT, boolean gradientCheckpointing);

    /**
     * The training engine over {@code layout}: {@link #layout}(c) followed by extra views the model ignores (LoRA's A
     * and B, see {@link Lora#extend}); the views for which {@code storedBf16} is true (each a
     * {@link #bf16Storable} matrix) are frozen and kept in bfloat16 outside {@link CausalLm#params()}.
     */
    CausalLm newModel(ModelConfig c, ParamLayout layout, Gemm gemm, Parallel par, int maxBatch, int maxT,
                      boolean gradientCheckpointing, Predicate<String> storedBf16);

    /** True for the frozen weights {@code --base_dtype bf16} stores in bf16: the per-layer projection matrices. */
    boolean bf16Storable(String view);

    /**
     * Bytes of the activation and scratch buffers {@link #newModel} allocates for (maxBatch, maxT), before allocating
     * them (the trainer refuses a batch the heap cannot hold). Parameters, gradients and optimizer state excluded.
     */
    long activationBytes(ModelConfig c, int maxBatch, int maxT, boolean gradientCheckpointing);

    /**
     * True when {@link CausalLm#setSparseTokenEmbeddingGrad} keeps a trainable untied token embedding's gradient
     * row-sparse (no dense (V, C) buffer); false when the engine ignores the request.
     */
    default boolean sparseTokenEmbeddingGrad() {
        return false;
    }

    /** A KV-cache decoder over {@code params} laid out by {@link #layout}. */
    StepModel decoder(ModelConfig c, float[] params, ParamLayout layout, int maxSeqs, int maxLength, Parallel par);

    /**
     * A KV-cache decoder over tensors stored one by one ({@link WeightStore}: fp32 or bf16, no limit on the model's
     * size beyond one tensor per array, where the family's decoder supports it).
     */
    StepModel decoder(ModelConfig c, WeightStore weights, int maxSeqs, int maxLength, Parallel par);

    /** The width attention works in per layer, NH·hd (the query projection's output; GPT-2: n_embd). */
    default int attentionWidth(ModelConfig c) {
        return c.hiddenSize();
    }

    /** The sizes that fix the tensor shapes, for messages ("vocab_size 97, hidden_size 36, …"). */
    String describe(ModelConfig c);

    /** config.json's spelling of the residual width, for messages ("n_embd", "hidden_size"). */
    String hiddenSizeKey();

    /** config.json's spelling of the layer count, for messages ("n_layer", "num_hidden_layers"). */
    String numLayersKey();

    // ------------------------------------------------------------ PEFT

    /**
     * How an adapted weight is stored, which fixes peft's LoRA arithmetic (peft {@code lora.Linear},
     * {@code lora.Embedding}; {@code s} the scale, A {@code [r, in]}, B {@code [out, r]}).
     */
    enum LoraStorage {
        /** {@code nn.Linear}, weight {@code [out, in]}: {@code W += s·B·A} (peft {@code fan_in_fan_out} false). */
        LINEAR,
        /** GPT-2's {@code Conv1D}, weight {@code [in, out]}: {@code W += s·(B·A)ᵀ} (peft {@code fan_in_fan_out} true). */
        CONV1D,
        /**
         * {@code nn.Embedding} {@code [V, C]} (in = V, out = C) with {@code lora_embedding_A [r, V]} and
         * {@code lora_embedding_B [C, r]}: {@code W += s·(B·A)ᵀ}.
         */
        EMBEDDING;

        /** True when the weight is stored {@code [in, out]} (peft transposes the delta). */
        public boolean inOut() {
            return this != LINEAR;
        }
    }

    /**
     * A module LoRA can adapt.
     *
     * @param module   its module path, peft's key between {@code base_model.model.} and {@code .lora_A.weight}
     *                 ({@code model.layers.0.self_attn.q_proj})
     * @param layer    the block it belongs to, −1 outside the layer stack (embedding, head)
     * @param peftName its {@code target_modules} entry: a suffix of {@code module} that names only this kind of module
     *                 ({@code q_proj}, {@code c_attn}; GPT-2's {@code attn.c_proj} / {@code mlp.c_proj})
     * @param weight   the layout view its delta is added to (the token embedding for the head of a tied model)
     * @param in       lora_A's columns ({@code [r, in]}); V for an embedding
     * @param out      lora_B's rows ({@code [out, r]}); C for an embedding
     */
    record LoraTarget(String module, int layer, String peftName, String weight, LoraStorage storage, int in, int out) {}

    /**
     * A module peft's {@code modules_to_save} can train in full and store whole.
     *
     * @param module     module path ({@code model.embed_tokens}, {@code lm_head}, {@code transformer.ln_f})
     * @param parameters its HF parameter names: the adapter keys without {@code base_model.model.}
     * @param views      the layout view holding each parameter (a tied head is the token embedding)
     */
    record SavedModule(String module, List<String> parameters, List<String> views) {
        public SavedModule {
            parameters = List.copyOf(parameters);
            views = List.copyOf(views);
            if (parameters.size() != views.size()) throw new IllegalArgumentException("one view per parameter");
        }
    }

    /** Every module of {@code c} LoRA can adapt, in state-dict order. */
    List<LoraTarget> loraTargets(ModelConfig c);

    /**
     * The block index of a module path inside this family's layer stack ({@code model.layers.3.mlp.up_proj} → 3), or
     * −1 for a path outside it — how an adapter made for a deeper model is recognised.
     */
    int layerOf(String module);

    /** Every module of {@code c} that {@code modules_to_save} can name. */
    List<SavedModule> savableModules(ModelConfig c);

    // ------------------------------------------------------------ training flags

    /**
     * The per-layer projections LoRA can train, as module paths inside a block ({@code attn.c_attn},
     * {@code self_attn.q_proj}), in the order the model calls {@link LinearHook} with (the hook's site index).
     */
    List<String> loraSites();

    /** peft's default {@code target_modules} for this family (peft's {@code TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING}). */
    List<String> defaultLoraSites();

    /**
     * {@code --trainable}'s names ({@code c_attn}, {@code q_proj}, {@code self_attn.q_proj}, {@code all-linear}: what
     * peft's {@code target_modules} takes) resolved to {@link #loraSites()}, in that order; a name that is not a
     * projection of this family is one line naming the ones it has.
     */
    List<String> resolveLoraSites(List<String> names);

    /**
     * {@code --modules_to_save}'s names ({@code wte}, {@code embed_tokens}, {@code lm_head}, …) resolved to
     * {@link SavedModule#module()} paths, in the order given; an unknown one is one line naming the ones it has.
     */
    List<String> resolveSavedModules(List<String> names);
}
