package dev.cpt4j.generate;

import dev.cpt4j.model.CausalLm;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;

import java.util.SplittableRandom;

/**
 * {@code cpt4j bench generate}: new tokens per second of sampling (top-k 50 as HF's default, top-p) with the KV-cache
 * decoder on randomly initialised weights, N sequences together, no early stop. The counterpart for transformers is
 * {@code tools/bench/generate_python.py}, which times {@code model.generate} the same way (prefill included).
 */
public final class GenerateBench {
    private GenerateBench() {}

    /**
     * @param tokensPerSecond new tokens over all sequences per wall-clock second (prefill included)
     */
    public record Result(double tokensPerSecond, long newTokens, double seconds, int threads) {}

    /**
     * Times one generation of {@code maxNewTokens} for {@code numSeq} sequences from a random prompt of
     * {@code promptTokens} tokens, after a short warm-up run (JIT).
     */
    public static Result run(ModelConfig cfg, int promptTokens, int maxNewTokens, int numSeq, float topP, long seed,
                             Parallel par) {
        CausalLm init = cfg.family().newModel(cfg, new Gemm(par), par, 1, 1, false); // HF's init of the family
        init.initRandom(seed);
        ParamLayout layout = init.layout();
        float[] params = init.params();
        SplittableRandom rng = new SplittableRandom(seed + 1);
        int[] prompt = new int[promptTokens];
        for (int i = 0; i < promptTokens; i++) prompt[i] = rng.nextInt(cfg.vocabSize());
        StepModel dec = cfg.family().decoder(cfg, params, layout, numSeq, promptTokens + maxNewTokens, par);
        // no eos: every sequence runs to the end, as the Python side does
        GenerationConfig gen = new GenerationConfig(true, 1f, 50, topP, 1f, numSeq, GenerationConfig.UNSET,
                maxNewTokens, 0, new int[0], 0, seed);
        GenerationConfig warm = new GenerationConfig(true, 1f, 50, topP, 1f, numSeq, GenerationConfig.UNSET,
                Math.min(4, maxNewTokens), 0, new int[0], 0, seed);
        Generator.generate(dec, prompt, warm, new SplittableRandom(seed), Generator.TokenListener.NONE);
        long t0 = System.nanoTime();
        Generator.Result r = Generator.generate(dec, prompt, gen, new SplittableRandom(seed), Generator.TokenListener.NONE);
        double s = (System.nanoTime() - t0) / 1e9;
        long tokens = 0;
        for (int[] t : r.tokens()) tokens += t.length;
        return new Result(tokens / s, tokens, s, par.threads());
    }
}
