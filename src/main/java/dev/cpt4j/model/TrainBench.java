package dev.cpt4j.model;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Training-throughput benchmark: random weights of a config, random token ids, whole training steps (forward,
 * backward, global grad-norm clip to 1.0, a plain AdamW over the flat buffer). Reports tokens/s, achieved
 * GFLOP/s, peak RSS and MFU against this machine's GEMM peak measured in the same process.
 *
 * <p>FLOPs are counted as nanoGPT's estimate_mfu does (PaLM appendix B): per token 6·P for the parameter
 * matmuls (P = all parameters) plus 12·L·C·T for attention; recomputation under gradient checkpointing is not
 * counted (model FLOPs, not hardware FLOPs).
 */
public final class TrainBench {
    private TrainBench() {}

    /** What one benchmark run measured. */
    public record Result(double tokensPerS, double peakRssMb, double gflops, double mfu, double peakGflops,
                         double msPerStep, float lastLoss, long params) {}

    /**
     * Runs {@code warmup} untimed and {@code steps} timed training steps on (batch, block) random ids.
     *
     * @param log receives one line per step (may be null)
     */
    public static Result run(Gpt2Config cfg, Parallel par, int batch, int block, int steps, int warmup,
                             boolean gradientCheckpointing, Consumer<String> log) {
        if (batch < 1 || block < 1 || steps < 1 || warmup < 0)
            throw new IllegalArgumentException("batch, block and steps must be positive, warmup non-negative");
        Gemm gemm = new Gemm(par);
        Gpt2Model model = new Gpt2Model(cfg, gemm, par, batch, block, gradientCheckpointing);
        model.initRandom(1234);
        SplittableRandom r = new SplittableRandom(42);
        int[] ids = new int[batch * block];
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(cfg.vocabSize());
        float[] p = model.params(), g = model.grads();
        float[] m = new float[p.length], v = new float[p.length];
        float loss = Float.NaN;
        long t0 = 0;
        for (int s = 0; s < warmup + steps; s++) {
            if (s == warmup) t0 = System.nanoTime();
            long st = System.nanoTime();
            model.zeroGrad();
            loss = model.forward(ids, batch, block, true, s);
            model.backward();
            double norm = gradNorm(par, g);
            float clip = norm > 1.0 ? (float) (1.0 / (norm + 1e-6)) : 1f;
            adamw(par, p, g, m, v, s + 1, 1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, clip);
            if (log != null)
                log.accept(String.format("step %d%s loss %.4f grad-norm %.3f %.0f ms", s + 1, s < warmup ? " (warmup)" : "",
                        loss, norm, (System.nanoTime() - st) / 1e6));
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        long tokens = (long) batch * block * steps;
        long P = p.length;
        double flops = (6.0 * P + 12.0 * cfg.nLayer() * cfg.nEmbd() * block) * tokens;
        double gflops = flops / secs / 1e9;
        double peak = gemm.measurePeakGflops();
        return new Result(tokens / secs, peakRssMb(), gflops, gflops / peak, peak, secs * 1000 / steps, loss, P);
    }

    private static final int BLOCKS = 256;

    /** Global L2 norm of the gradient, summed in fixed blocks (deterministic). */
    static double gradNorm(Parallel par, float[] g) {
        double[] partial = new double[BLOCKS];
        int n = g.length;
        par.forRange(BLOCKS, (b0, b1) -> {
            for (int b = b0; b < b1; b++) {
                int s = (int) ((long) n * b / BLOCKS), e = (int) ((long) n * (b + 1) / BLOCKS);
                double acc = 0;
                for (int i = s; i < e; i++) acc += g[i] * g[i];
                partial[b] = acc;
            }
        });
        double t = 0;
        for (double x : partial) t += x;
        return Math.sqrt(t);
    }

    /** torch.optim.AdamW over the flat buffer, gradients multiplied by {@code gradMul} (the clip factor). */
    static void adamw(Parallel par, float[] p, float[] g, float[] m, float[] v, int t, float lr, float b1, float b2,
                      float eps, float wd, float gradMul) {
        float bc1 = (float) (1 - Math.pow(b1, t)), bc2Sqrt = (float) Math.sqrt(1 - Math.pow(b2, t));
        float stepSize = lr / bc1;
        int n = p.length;
        var S = jdk.incubator.vector.FloatVector.SPECIES_PREFERRED;
        par.forRange(BLOCKS, (b0, b1x) -> {
            int s = (int) ((long) n * b0 / BLOCKS), e = (int) ((long) n * b1x / BLOCKS);
            int i = s, ub = s + S.loopBound(e - s);
            float decay = 1 - lr * wd;
            for (; i < ub; i += S.length()) {
                var gi = jdk.incubator.vector.FloatVector.fromArray(S, g, i).mul(gradMul);
                var mi = jdk.incubator.vector.FloatVector.fromArray(S, m, i).mul(b1).add(gi.mul(1 - b1));
                var vi = jdk.incubator.vector.FloatVector.fromArray(S, v, i).mul(b2).add(gi.mul(gi).mul(1 - b2));
                var denom = vi.sqrt().div(bc2Sqrt).add(eps);
                var pi = jdk.incubator.vector.FloatVector.fromArray(S, p, i).mul(decay).sub(mi.mul(stepSize).div(denom));
                mi.intoArray(m, i);
                vi.intoArray(v, i);
                pi.intoArray(p, i);
            }
            for (; i < e; i++) {
                float gi = g[i] * gradMul;
                p[i] *= decay;
                m[i] = b1 * m[i] + (1 - b1) * gi;
                v[i] = b2 * v[i] + (1 - b2) * gi * gi;
                p[i] -= stepSize * m[i] / ((float) Math.sqrt(v[i]) / bc2Sqrt + eps);
            }
        });
    }

    /** Peak resident set size of this process in MiB (VmHWM), or NaN where /proc is unavailable. */
    public static double peakRssMb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith("VmHWM:")) return Long.parseLong(line.replaceAll("[^0-9]", "")) / 1024.0;
        } catch (IOException | RuntimeException e) {
            return Double.NaN;
        }
        return Double.NaN;
    }
}
