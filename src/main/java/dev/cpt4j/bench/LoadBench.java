package dev.cpt4j.bench;

import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.train.PeakMemory;

import java.nio.file.Path;
import java.util.SplittableRandom;

/**
 * The inference path for models past one flat buffer, measured: a checkpoint read tensor by tensor with its
 * matrices kept in bf16 ({@link HfCheckpoints#loadStore}), one block's loss from a single prefill, then greedy
 * decoding. Reports the wall time of each phase and the process's peak resident memory (VmHWM).
 */
public final class LoadBench {
    private LoadBench() {}

    public record Result(ModelConfig config, long parameters, long weightBytes, double loadSeconds, double loss,
                         double evalSeconds, int newTokens, double decodeTokensPerSecond, double peakRssMb) {}


    public static Result run(Path modelDir, int block, int newTokens, long seed, Parallel par) {
        long t0 = System.nanoTime();
        // the matrices in bf16 (the family's projections, the embedding and the head); norms and biases in fp32
        ModelFamily f = HfCheckpoints.readModelConfig(modelDir).family();
        HfCheckpoints.Stored st = HfCheckpoints.loadStore(modelDir,
                n -> f.bf16Storable(n) || n.equals(f.tokenEmbedding()) || n.equals(f.outputHead()));
        double load = (System.nanoTime() - t0) / 1e9;
        ModelConfig c = st.config();
        int promptLen = Math.min(32, block);
        StepModel dec = c.family().decoder(c, st.weights(), 1, Math.max(block, promptLen + newTokens), par);
        SplittableRandom r = new SplittableRandom(seed);
        int[] ids = new int[block];
        for (int i = 0; i < block; i++) ids[i] = r.nextInt(c.vocabSize());
        long t1 = System.nanoTime();
        double loss = dec.sequenceLoss(ids);
        double eval = (System.nanoTime() - t1) / 1e9;
        int[] prompt = java.util.Arrays.copyOf(ids, promptLen);
        long t2 = System.nanoTime();
        float[] lg = dec.prefill(prompt, 1);
        for (int i = 0; i < newTokens; i++) {
            int best = 0;
            for (int j = 1; j < dec.vocabSize(); j++) if (lg[j] > lg[best]) best = j;
            if (i + 1 < newTokens) lg = dec.next(new int[] {best}, new boolean[] {true});
        }
        double gen = (System.nanoTime() - t2) / 1e9;
        return new Result(c, st.weights().parameterCount(), st.weights().bytes(), load, loss, eval, newTokens,
                newTokens / gen, PeakMemory.rssMb());
    }
}
