package dev.cpt4j.train;

import dev.cpt4j.model.CausalLm;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;

/**
 * Any family's {@link CausalLm} as the {@link Trainer} sees it, built through its {@link ModelFamily}: full
 * fine-tuning of every tensor, the family's embeddings on {@code --embedding_learning_rate}.
 */
public final class FamilyTrainable implements TrainableModel {
    private final CausalLm model;

    private FamilyTrainable(CausalLm model) {
        this.model = model;
    }

    /** Random weights of {@code config} (the family's HF init, seeded), every tensor trained. */
    public static FamilyTrainable fromScratch(ModelConfig config, int maxBatch, int maxT, boolean gradientCheckpointing,
                                              long seed, Gemm gemm, Parallel par) {
        CausalLm m = config.family().newModel(config, gemm, par, maxBatch, maxT, gradientCheckpointing);
        m.initRandom(seed);
        m.setFrozen(n -> false);
        return new FamilyTrainable(m);
    }

    public CausalLm model() {
        return model;
    }

    public ModelConfig config() {
        return model.config();
    }

    @Override
    public ParamLayout layout() {
        return model.layout();
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
    public boolean isTrainable(String view) {
        return true;
    }

    @Override
    public boolean isEmbedding(String view) {
        return model.config().family().isEmbedding(view);
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
