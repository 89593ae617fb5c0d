package dev.cpt4j.tensor.cpu;

/**
 * The bare micro-kernel on L1-resident panels (no packing, no memory traffic), interleaved with a full
 * 512×768·768×2304 GEMM, both by thread CPU time: separates compute limits from cache/memory limits.
 */
public final class KernelBench {
    public static void main(String[] args) {
        int kc = 256, reps = 20000;
        float[] ap = HeadBench.random(Gemm.MR * kc, 1), bp = HeadBench.random(Gemm.NR * kc, 2), c = new float[Gemm.MR * Gemm.NR];
        try (var par = new dev.cpt4j.tensor.Parallel(1)) {
            Gemm g = new Gemm(par);
            float[] ra = HeadBench.random(512 * 768, 3), rb = HeadBench.random(768 * 2304, 4), rc = new float[512 * 2304];
            for (int round = 0; round < 6; round++) {
                double k = HeadBench.gf(2.0 * Gemm.MR * Gemm.NR * kc * reps, () -> {
                    for (int i = 0; i < reps; i++) Gemm.kernel(kc, ap, 0, bp, 0, c, 0, Gemm.NR, true);
                });
                double ref = HeadBench.gf(2.0 * 512 * 768 * 2304, () -> g.sgemm(false, false, 512, 2304, 768, ra, 0, 768, rb, 0, 2304, 0f, rc, 0, 2304));
                System.out.printf("kernel %.1f | gemm 512x768x2304 %.1f GFLOP/s%n", k, ref);
            }
        }
    }
}
