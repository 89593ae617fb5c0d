package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.SplittableRandom;

/**
 * The output head's pieces on one thread, timed by thread CPU time and interleaved with a reference GEMM so that
 * their efficiency can be compared on a shared machine: logits (NT), dX (NN), dW (TN) for an R-row chunk, the whole
 * fused {@link CrossEntropyHead#forward} over N rows, and 512×768·768×2304 NN as the reference.
 * A program: {@code java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes
 * dev.cpt4j.tensor.cpu.HeadBench C V N R [rounds]}.
 */
public final class HeadBench {
    static final ThreadMXBean TM = ManagementFactory.getThreadMXBean();

    public static void main(String[] args) {
        int C = Integer.parseInt(args[0]), V = Integer.parseInt(args[1]), N = Integer.parseInt(args[2]);
        int R = Integer.parseInt(args[3]), rounds = args.length > 4 ? Integer.parseInt(args[4]) : 3;
        int threads = args.length > 5 ? Integer.parseInt(args[5]) : 1;
        try (Parallel par = new Parallel(threads)) {
            Gemm g = new Gemm(par);
            float[] x = random(N * C, 1), w = random(V * C, 2), lg = new float[R * V], dx = new float[R * C];
            float[] dw = new float[V * C], dxAll = new float[N * C];
            float[] ra = random(512 * 768, 3), rb = random(768 * 2304, 4), rc = new float[512 * 2304];
            int[] tg = new int[N];
            SplittableRandom r = new SplittableRandom(5);
            for (int i = 0; i < N; i++) tg[i] = r.nextInt(V);
            float[] scratch = new float[CrossEntropyHead.scratchSize(Math.max(R, 512), C, V)];
            double f3 = 2.0 * R * V * C;
            if (System.getProperty("rlist") != null) {
                String[] rs = System.getProperty("rlist").split(",");
                for (int round = 0; round < rounds; round++)
                    for (String rr : rs) {
                        int R2 = Integer.parseInt(rr);
                        double whole = gf(3.0 * 2.0 * (N - N / 128) * V * C, () -> CrossEntropyHead.forward(g, par, x, 0, w, 0, tg, 0, N, C, V,
                                1f / N, dxAll, 0, dw, 0, scratch, R2));
                        System.out.printf("round %d R=%d fused head %.1f GFLOP/s%n", round, R2, whole);
                    }
                return;
            }
            for (int round = 0; round < rounds; round++) {
                double ref = gf(2.0 * 512 * 768 * 2304, () -> g.sgemm(false, false, 512, 2304, 768, ra, 0, 768, rb, 0, 2304, 0f, rc, 0, 2304));
                double lo = gf(f3, () -> g.sgemm(false, true, R, V, C, x, 0, C, w, 0, C, 0f, lg, 0, V));
                double nn = gf(f3, () -> g.sgemm(false, false, R, C, V, lg, 0, V, w, 0, C, 0f, dx, 0, C));
                double tn = gf(f3, () -> g.sgemm(true, false, V, C, R, lg, 0, V, x, 0, C, 1f, dw, 0, C));
                double whole = gf(3.0 * 2.0 * (N - N / 128) * V * C, () -> CrossEntropyHead.forward(g, par, x, 0, w, 0, tg, 0, N, C, V,
                        1f / N, dxAll, 0, dw, 0, scratch, R));
                System.out.printf("C=%d V=%d N=%d R=%d: ref %.1f | logits NT %.1f | dX NN %.1f | dW TN %.1f | fused head %.1f GFLOP/s (thread CPU)%n",
                        C, V, N, R, ref, lo, nn, tn, whole);
            }
        }
    }

    static double gf(double flops, Runnable r) {
        long c0 = TM.getCurrentThreadCpuTime();
        r.run();
        return flops / (TM.getCurrentThreadCpuTime() - c0);
    }

    static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) r.nextDouble(-1, 1);
        return a;
    }
}
