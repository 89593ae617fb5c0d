package dev.cpt4j.model;

import java.util.List;

/**
 * A LoRA adapter as a decoder applies it without merging (continuous batching over shared base weights): the
 * low-rank pairs of the per-layer projections, and the full copies of the token embedding and the output head that
 * peft's {@code modules_to_save} trains. Built from PEFT files by the hf package; prepared for one decoder by
 * {@link StepModel#prepareAdapter}.
 *
 * @param embedding the adapter's token embedding {@code (V, C)}, or null: the base's
 * @param head      the adapter's output head {@code (V, C)}, or null: the base's
 */
public record UnmergedAdapter(String name, List<Delta> deltas, float[] embedding, float[] head) {
    public UnmergedAdapter {
        deltas = List.copyOf(deltas);
    }

    /**
     * {@code y += scale · (x·Aᵀ)·Bᵀ} on projection {@code site} ({@link ModelFamily#loraSites()} index) of block
     * {@code layer}; A {@code [r, in]}, B {@code [out, r]} as peft stores them.
     */
    public record Delta(int layer, int site, int rank, float scale, float[] a, float[] b, int in, int out) {
        public Delta {
            if (a.length != rank * in || b.length != out * rank)
                throw new IllegalArgumentException("LoRA pair of layer " + layer + " site " + site + ": A has " + a.length
                        + " floats, B " + b.length + "; expected " + rank + "×" + in + " and " + out + "×" + rank);
        }
    }
}
