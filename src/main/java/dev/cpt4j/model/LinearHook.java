package dev.cpt4j.model;

/**
 * Extra computation attached to a family's per-layer projections (GPT-2's Conv1D layers, the LLaMA family's seven
 * {@code nn.Linear}s) — the single place an adapter such as LoRA plugs in. The model calls {@link #forward} right
 * after each base {@code y = x·W + b} (before any residual dropout) and {@link #backward} right after the base
 * layer's backward, with the same input x. With gradient checkpointing forward is called again for a block during
 * backward, with identical arguments. {@code site} is the projection's index in {@link ModelFamily#loraSites()}.
 */
public interface LinearHook {
    /** The Conv1D layers of a GPT-2 block, with their HF module names, in {@link Gpt2Family#loraSites()} order. */
    enum Site {
        ATTN_QKV("attn.c_attn"), ATTN_PROJ("attn.c_proj"), MLP_FC("mlp.c_fc"), MLP_PROJ("mlp.c_proj");

        private final String hfName;

        Site(String hfName) {
            this.hfName = hfName;
        }

        /** e.g. {@code attn.c_attn}; the full module is {@code transformer.h.<layer>.<hfName>}. */
        public String hfName() {
            return hfName;
        }
    }

    /** y (N, out) += extra(x (N, in)). {@code dropoutSeed} is the step's seed when training (dropout allowed). */
    void forward(int layer, int site, float[] x, int xOff, float[] y, int yOff, int n, int in, int out,
                 boolean training, long dropoutSeed);

    /**
     * The global index of the next batch's first token in a batch split over ranks ({@link CausalLm#setDropoutOrigin});
     * a hook with dropout draws its masks there. By default the hook has no dropout and ignores it.
     */
    default void setDropoutOrigin(long firstToken) {}

    /** dx (N, in) += the extra path's input gradient given dy (N, out); accumulates the hook's own gradients. */
    void backward(int layer, int site, float[] x, int xOff, float[] dy, int dyOff, float[] dx, int dxOff,
                  int n, int in, int out);
}
