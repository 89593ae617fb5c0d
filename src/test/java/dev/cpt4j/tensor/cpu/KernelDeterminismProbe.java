package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.train.AdamW;
import dev.cpt4j.train.GradClip;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The kernels whose results a training step is made of (both GEMM paths, layernorm backward, the grad-norm clip,
 * attention forward and backward with dropout, the fused head + cross-entropy with its gradients), run on fixed
 * seeded inputs; their outputs as raw float bits. Run by {@link KernelDeterminismTest} in fresh JVMs:
 * {@code main(out, iterations)} writes the first iteration's bytes to {@code out.first} and the last one's to
 * {@code out.last} (in a compiled JVM the first runs interpreted, the last C2-compiled).
 */
public final class KernelDeterminismProbe {
    private KernelDeterminismProbe() {}

    public static void main(String[] args) throws IOException {
        Path out = Path.of(args[0]);
        int iterations = Integer.parseInt(args[1]);
        try (Parallel par = new Parallel(2)) {
            Gemm gemm = new Gemm(par);
            byte[] first = runOnce(par, gemm), last = first;
            for (int i = 1; i < iterations; i++) last = runOnce(par, gemm);
            Files.write(Path.of(out + ".first"), first);
            Files.write(Path.of(out + ".last"), last);
        }
    }

    /** One pass over every kernel on the same inputs; the outputs' bits, in a fixed order. */
    static byte[] runOnce(Parallel par, Gemm gemm) {
        SplittableRandom r = new SplittableRandom(7);
        ByteBuffer buf = ByteBuffer.allocate(1 << 20);

        // GEMM: the packed path (two K blocks, edge tiles) in all four transposes, and the small-M path
        // — with this process's GEMM and with every Java micro-tile, whichever this CPU picks
        int M = 37, N = 45, K = 300;
        float[] a = rand(r, M * K), b = rand(r, K * N);
        List<Gemm> gemms = new java.util.ArrayList<>(List.of(gemm));
        for (int tile : Gemm.TILES) gemms.add(Gemm.withTile(par, tile));
        for (Gemm g : gemms) {
            for (int t = 0; t < 4; t++) {
                boolean ta = (t & 1) != 0, tb = (t & 2) != 0;
                float[] c = rand(r, M * N);
                g.sgemm(ta, tb, M, N, K, a, 0, ta ? M : K, b, 0, tb ? K : N, 1f, c, 0, N);
                put(buf, c);
            }
        }
        float[] cs = new float[3 * N];
        gemm.sgemm(false, true, 3, N, K, a, 0, K, b, 0, K, 0f, cs, 0, N);
        put(buf, cs);
        gemm.sgemm(false, false, 3, N, K, a, 0, K, b, 0, N, 0f, cs, 0, N);
        put(buf, cs);

        // LayerNorm forward + backward (dx, dw, db)
        int rows = 9, C = 37;
        float[] x = rand(r, rows * C), w = rand(r, C), bias = rand(r, C), y = new float[rows * C];
        float[] mean = new float[rows], rstd = new float[rows];
        LayerNorm.forward(par, y, 0, mean, rstd, 0, x, 0, w, 0, bias, 0, rows, C, 1e-5f);
        float[] dout = rand(r, rows * C), dx = new float[rows * C], dw = new float[C], db = new float[C];
        LayerNorm.backward(par, dx, 0, dw, 0, db, 0, dout, 0, x, 0, mean, rstd, 0, w, 0, rows, C);
        put(buf, y, mean, rstd, dx, dw, db);

        // global grad-norm clip over several 4096-element blocks, clipping
        float[] g = rand(r, 3 * 4096 + 77);
        double norm = GradClip.clip(g, List.of(new AdamW.Segment(0, g.length, 0, 0)), 0.5, par);
        buf.putDouble(norm);
        put(buf, g);

        // attention forward + backward, with dropout
        int B = 2, T = 19, AC = 16, NH = 2;
        float[] qkv = rand(r, B * T * 3 * AC), att = new float[B * T * AC], lse = new float[B * NH * T];
        Attention.forward(par, att, 0, lse, 0, qkv, 0, B, T, AC, NH, 0.25f, 0.1f, 11, 3);
        float[] datt = rand(r, B * T * AC), dqkv = new float[B * T * 3 * AC];
        Attention.backward(par, dqkv, 0, datt, 0, att, 0, lse, 0, qkv, 0, B, T, AC, NH, 0.25f, 0.1f, 11, 3);
        put(buf, att, lse, dqkv);

        // fused head + cross-entropy, loss and both gradients
        int HN = 13, HC = 16, V = 37, R = 5;
        float[] hx = rand(r, HN * HC), hw = rand(r, V * HC), hdx = new float[HN * HC], hdw = new float[V * HC];
        int[] targets = new int[HN];
        for (int i = 0; i < HN; i++) targets[i] = i == 4 ? -100 : r.nextInt(V);
        float[] scratch = new float[CrossEntropyHead.scratchSize(R, HC, V)];
        double loss = CrossEntropyHead.forward(gemm, par, hx, 0, hw, 0, targets, 0, HN, HC, V, 1f / 12, hdx, 0, hdw, 0, scratch, R);
        buf.putDouble(loss);
        put(buf, hdx, hdw);

        byte[] outBytes = new byte[buf.position()];
        buf.flip().get(outBytes);
        return outBytes;
    }

    private static float[] rand(SplittableRandom r, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) (r.nextDouble() * 2 - 1);
        return a;
    }

    private static void put(ByteBuffer buf, float[]... arrays) {
        for (float[] a : arrays) for (float f : a) buf.putInt(Float.floatToRawIntBits(f));
    }
}
