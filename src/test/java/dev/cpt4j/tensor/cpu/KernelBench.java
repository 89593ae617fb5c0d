package dev.cpt4j.tensor.cpu;

/**
 * The bare micro-kernel on L1-resident panels (no packing, no memory traffic), interleaved with a full
 * 512×768·768×2304 GEMM, both by thread CPU time: separates compute limits from cache/memory limits. Every tile
 * {@link Gemm#TILES} is measured in turn, round after round (A/B alternated, so load on a shared machine hits both).
 * Args: [rounds] [threads] [GEMM kc, default 256].
 */
public final class KernelBench {
    public static void main(String[] args) {
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 6, threads = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        int gemmKc = args.length > 2 ? Integer.parseInt(args[2]) : 256;
        int kc = 256, reps = 20000;
        float[] ra = HeadBench.random(512 * 768, 3), rb = HeadBench.random(768 * 2304, 4), rc = new float[512 * 2304];
        System.out.printf("lanes %d, registers %d, this JVM's tile %d rows; %d threads for the GEMM%n", Gemm.NR / 2, Gemm.REGISTERS, Gemm.MR, threads);
        try (var par = new dev.cpt4j.tensor.Parallel(threads)) {
            for (int round = 0; round < rounds; round++) {
                for (int mr : Gemm.TILES) {
                    float[] ap = HeadBench.random(mr * kc, 1), bp = HeadBench.random(Gemm.NR * kc, 2), c = new float[mr * Gemm.NR];
                    Gemm g = new Gemm(par, mr, 128, gemmKc, 4096);
                    double k = HeadBench.gf(2.0 * mr * Gemm.NR * kc * reps, () -> {
                        for (int i = 0; i < reps; i++) {
                            if (mr == 12) Gemm.kernel12(kc, ap, 0, bp, 0, c, 0, Gemm.NR, true);
                            else Gemm.kernel(kc, ap, 0, bp, 0, c, 0, Gemm.NR, true);
                        }
                    });
                    double ref = 0, flops = 2.0 * 512 * 768 * 2304;
                    Runnable gemm = () -> g.sgemm(false, false, 512, 2304, 768, ra, 0, 768, rb, 0, 2304, 0f, rc, 0, 2304);
                    for (int r = 0; r < 3; r++) ref = Math.max(ref, threads == 1 ? HeadBench.gf(flops, gemm) : wall(flops, gemm));
                    System.out.printf("round %d tile %dx%d: kernel %.1f | gemm 512x768x2304 (kc %d) %.1f GFLOP/s%n", round, mr, Gemm.NR, k, gemmKc, ref);
                }
            }
        }
    }

    /** GFLOP/s by wall time (several threads: thread CPU time would count only the caller's share). */
    private static double wall(double flops, Runnable r) {
        long t0 = System.nanoTime();
        r.run();
        return flops / (System.nanoTime() - t0);
    }
}
