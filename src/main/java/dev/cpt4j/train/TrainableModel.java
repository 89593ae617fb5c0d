package dev.cpt4j.train;

import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.RowSparseGrad;

/**
 * What the trainer needs from a model: one flat parameter buffer and a gradient buffer with the same
 * {@link ParamLayout}, which views train, and a fused forward+backward over a batch of token blocks.
 * Every family's engine (+ LoRA) is adapted to this ({@code FamilyTrainable}); tests use tiny models.
 */
public interface TrainableModel {
    /** Layout of {@link #params()} (LoRA tensors included when training an adapter). */
    ParamLayout layout();

    /** All parameters, flat. The optimizer updates the trainable views in place. */
    float[] params();

    /**
     * Gradients: view {@code v}'s at {@link #gradOffset(String)}. The trainer zeroes the trainable views before each
     * optimizer step; backward ADDS. Fetched once per run, after the model is set up.
     */
    float[] grads();

    /**
     * Where a trainable view's gradient starts in {@link #grads()}; by default the parameter offset (a gradient
     * buffer laid out like the parameters). A model may pack only the trainable views' gradients.
     */
    default int gradOffset(String view) {
        return layout().get(view).offset();
    }

    /**
     * A trainable view whose gradient is kept row-sparse instead of in {@link #grads()} (its {@link #gradOffset} is
     * then −1), or null (the default: every gradient is dense). The trainer zeroes it with {@link RowSparseGrad#zero()};
     * backward adds into it.
     */
    default RowSparseGrad sparseGrad(String view) {
        return null;
    }

    /** True for the views the optimizer updates (LoRA A/B and modules_to_save; everything for full fine-tuning). */
    boolean isTrainable(String view);

    /** True for the views trained with {@code --embedding_learning_rate} (wte, wpe, lm_head). */
    boolean isEmbedding(String view);

    /** True for the views AdamW does not decay (biases and norm weights: the family's rule, HF Trainer's). */
    default boolean noDecay(String view) {
        return AdamW.defaultNoDecay(view);
    }

    /** The longest block the model accepts (n_positions). */
    int maxSequenceLength();

    /**
     * Forward and backward on {@code batch} blocks of {@code seqLen} tokens ({@code tokens} is (batch, seqLen),
     * labels = inputs shifted by one inside the model, as HF's causal-LM loss). Adds {@code gradScale ×} the
     * gradient of the mean token loss into {@link #grads()} and returns that mean loss (unscaled).
     * {@code dropoutSeed} seeds every dropout mask of this call, so a resumed run draws the same masks.
     */
    double forwardBackward(int[] tokens, int batch, int seqLen, float gradScale, long dropoutSeed);

    /**
     * As {@link #forwardBackward(int[], int, int, float, long)} for rows at global token {@code firstToken} of a
     * batch split over ranks: the dropout masks are those the whole batch draws at these rows. The default serves
     * only {@code firstToken} 0 (a whole batch).
     */
    default double forwardBackward(int[] tokens, int batch, int seqLen, float gradScale, long dropoutSeed,
                                   long firstToken) {
        if (firstToken != 0)
            throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot place dropout masks in a split batch");
        return forwardBackward(tokens, batch, seqLen, gradScale, dropoutSeed);
    }

    /** Mean token loss without gradients and without dropout (evaluation). */
    double loss(int[] tokens, int batch, int seqLen);

    /**
     * As {@link #forwardBackward(int[], int, int, float, long)} with documents packed in each block (neat packing):
     * {@code docStarts} (batch, seqLen) holds each token's document start in its block (see
     * {@code CausalLm#forward(int[], int[], int[], int, int, boolean, long)}); the loss is the mean over the trained
     * positions. Null: plain blocks. A model that cannot pack refuses non-null starts.
     */
    default double forwardBackward(int[] tokens, int[] docStarts, int batch, int seqLen, float gradScale, long dropoutSeed) {
        if (docStarts != null) throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot pack documents");
        return forwardBackward(tokens, batch, seqLen, gradScale, dropoutSeed);
    }

    /** As {@link #loss(int[], int, int)} with packed documents (null: plain blocks). */
    default double loss(int[] tokens, int[] docStarts, int batch, int seqLen) {
        if (docStarts != null) throw new UnsupportedOperationException(getClass().getSimpleName() + " cannot pack documents");
        return loss(tokens, batch, seqLen);
    }
}
