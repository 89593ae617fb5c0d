package dev.cpt4j.model;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.io.DType;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.WeightStore;
import dev.cpt4j.tensor.cpu.Gemm;

import java.util.List;

/**
 * One architecture family, the only place that knows it: its {@code config.json} (parsed and written), its HF tensor
 * names and shapes (the {@link ParamLayout}, stored as HF stores them, so import and export never transpose), tying,
 * which tensors are embeddings and which get no weight decay, the training engine and the KV-cache decoder (both
 * over the same layout). Code above the model package ({@code hf}, {@code train}, {@code generate}, {@code cli})
 * reaches a family only through {@link ModelFamilies} and this interface.
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

    /** A KV-cache decoder over {@code params} laid out by {@link #layout}. */
    StepModel decoder(ModelConfig c, float[] params, ParamLayout layout, int maxSeqs, int maxLength, Parallel par);

    /**
     * A KV-cache decoder over tensors stored one by one ({@link WeightStore}: fp32 or bf16, no limit on the model's
     * size beyond one tensor per array, where the family's decoder supports it).
     */
    StepModel decoder(ModelConfig c, WeightStore weights, int maxSeqs, int maxLength, Parallel par);

    /** The sizes that fix the tensor shapes, for messages ("vocab_size 97, hidden_size 36, …"). */
    String describe(ModelConfig c);
}
