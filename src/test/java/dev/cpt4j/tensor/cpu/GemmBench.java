package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import java.util.SplittableRandom;

/**
 * GEMM throughput on the shapes GPT-2 110M training and generation run (B·T = 512 rows, C = 768, 3C = 2304,
 * 4C = 3072, a 256-row × 21133-token vocabulary chunk), at 1 and 2 threads, plus {@link Gemm#measurePeakGflops()}.
 * A program, not a unit test: {@code java --add-modules jdk.incubator.vector -cp target/classes:target/test-classes
 * dev.cpt4j.tensor.cpu.GemmBench}. Takes under a minute.
 */
public final class GemmBench {
    record Shape(String name, boolean ta, boolean tb, int m, int n, int k, float beta) {
    }

    static final Shape[] SHAPES = {
        new Shape("square 1024³ NN", false, false, 1024, 1024, 1024, 0f),
        new Shape("square 1024³ TT", true, true, 1024, 1024, 1024, 0f),
        new Shape("qkv fwd X·W (NN) 512×768·768×2304", false, false, 512, 2304, 768, 0f),
        new Shape("mlp fwd X·W (NN) 512×768·768×3072", false, false, 512, 3072, 768, 0f),
        new Shape("mlp proj fwd (NN) 512×3072·3072×768", false, false, 512, 768, 3072, 0f),
        new Shape("qkv bwd dX=dY·Wᵀ (NT) 512×2304·2304×768", false, true, 512, 768, 2304, 0f),
        new Shape("qkv bwd dW+=Xᵀ·dY (TN, beta=1) 768×512·512×2304", true, false, 768, 2304, 512, 1f),
        new Shape("head logits=X·Wteᵀ (NT) 256×768·768×21133", false, true, 256, 21133, 768, 0f),
        new Shape("head bwd dX=dL·Wte (NN) 256×21133·21133×768", false, false, 256, 768, 21133, 0f),
        new Shape("head bwd dWte+=dLᵀ·X (TN, beta=1) 21133×256·256×768", true, false, 21133, 768, 256, 1f),
        new Shape("gen M=1 X·W (NN) 1×768·768×2304", false, false, 1, 2304, 768, 0f),
        new Shape("gen M=1 logits (NT) 1×768·768×21133", false, true, 1, 21133, 768, 0f),
        new Shape("gen M=8 X·W (NN) 8×768·768×2304", false, false, 8, 2304, 768, 0f),
        new Shape("gen M=8 logits (NT) 8×768·768×21133", false, true, 8, 21133, 768, 0f),
    };

    public static void main(String[] args) {
        double seconds = args.length > 0 ? Double.parseDouble(args[0]) : 0.8;
        int[] blocks = args.length > 3
                ? new int[] {Integer.parseInt(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3])} : null;
        String only = args.length > 4 ? args[4] : null;
        System.out.printf("%-58s %10s %10s%n", "shape", "1 thread", "2 threads");
        try (Parallel p1 = new Parallel(1); Parallel p2 = new Parallel(2)) {
            Gemm g1 = blocks == null ? new Gemm(p1) : new Gemm(p1, blocks[0], blocks[1], blocks[2]);
            Gemm g2 = blocks == null ? new Gemm(p2) : new Gemm(p2, blocks[0], blocks[1], blocks[2]);
            warmUp(g2);
            for (Shape s : SHAPES) {
                if (only != null && !s.name().contains(only)) continue;
                System.out.printf("%-58s %10.1f %10.1f%n", s.name(), run(g1, s, seconds), run(g2, s, seconds));
            }
            System.out.printf("%-58s %10.1f %10.1f%n", "measurePeakGflops()", g1.measurePeakGflops(),
                    g2.measurePeakGflops());
        }
    }

    /** Gets the micro-kernel, every packing path and the small-M path compiled before anything is timed. */
    static void warmUp(Gemm g) {
        long end = System.nanoTime() + 4_000_000_000L;
        int n = 384;
        float[] a = random(n * n, 3), b = random(n * n, 4), c = new float[n * n];
        for (int i = 0; System.nanoTime() < end; i++) {
            boolean ta = (i & 1) != 0, tb = (i & 2) != 0;
            float beta = (i & 4) != 0 ? 1f : 0f;
            g.sgemm(ta, tb, n, n, n, a, 0, n, b, 0, n, beta, c, 0, n);
            g.sgemm(ta, tb, 1 + i % 8, n, n, a, 0, n, b, 0, n, beta, c, 0, n);
        }
    }

    /** Best GFLOP/s over repeated calls within about {@code seconds} (the first third is warm-up). */
    static double run(Gemm g, Shape s, double seconds) {
        int rowsA = s.ta() ? s.k() : s.m(), colsA = s.ta() ? s.m() : s.k();
        int rowsB = s.tb() ? s.n() : s.k(), colsB = s.tb() ? s.k() : s.n();
        float[] a = random(rowsA * colsA, 1), b = random(rowsB * colsB, 2), c = new float[s.m() * s.n()];
        long warm = System.nanoTime() + (long) (seconds / 3 * 1e9), end = System.nanoTime() + (long) (seconds * 1e9);
        long best = Long.MAX_VALUE;
        int calls = 0;
        while (calls < 3 || System.nanoTime() < end) {
            long t0 = System.nanoTime();
            g.sgemm(s.ta(), s.tb(), s.m(), s.n(), s.k(), a, 0, colsA, b, 0, colsB, s.beta(), c, 0, s.n());
            long t1 = System.nanoTime();
            if (t0 > warm) best = Math.min(best, t1 - t0);
            calls++;
            if (calls > 1000 && t1 > end) break;
        }
        if (best == Long.MAX_VALUE) best = 1;
        return 2.0 * s.m() * s.n() * s.k() / best;
    }

    static float[] random(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = (float) r.nextDouble(-1, 1);
        return x;
    }
}
