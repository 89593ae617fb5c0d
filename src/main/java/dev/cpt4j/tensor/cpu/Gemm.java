package dev.cpt4j.tensor.cpu;

import dev.cpt4j.tensor.Parallel;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.SplittableRandom;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Packed single-precision GEMM on the Vector API: {@code C = beta·C + op(A)·op(B)}, row-major, every layer of the
 * engine runs on it.
 *
 * <p>Design (Goto/BLIS, "Anatomy of High-Performance Matrix Multiplication", Goto &amp; van de Geijn 2008): K is cut
 * into blocks of about {@code kc}; for each K block a KC×NC panel of op(B) is packed into NR-wide column strips and an
 * MC×KC block of op(A) into MR-tall row strips, so the micro-kernel reads both contiguously whatever the transposes
 * were — packing absorbs them. The micro-kernel keeps an MR×NR tile of C (NR = 2 vectors) in vector registers and
 * does one broadcast-FMA per row and vector per k. MR is picked once per JVM from the vector width and the ISA's
 * register count ({@link #MR}, see {@link #tileRows}); each MR has its own kernel method with every vector op
 * inline (a helper taking FloatVector arguments made C2 box them: 3 GFLOP/s).
 *
 * <p>Threads: the output is split into contiguous runs of whole MR-row strips (or NR-column strips when N is larger
 * than M, so the larger operand is packed only once). Every element of C is summed in the same order (K blocks in
 * order, k in order inside a block) whatever the split, so results are bitwise identical for any thread count.
 *
 * <p>Small M (generation: M ≤ {@value #SMALL_M}, or ≤ {@value #SMALL_M_NT} when B is transposed, where packing B is a
 * transpose): packing would cost more than it saves, so A is used in place and the
 * work is split over N ("GEMV-like" path).
 *
 * <p>bf16 mode ({@link Bf16}, {@code --bf16}): built with {@link Bf16.Mode#NATIVE} or {@link Bf16.Mode#EMULATED}, every
 * product rounds both inputs to bf16 and accumulates in fp32 — oneDNN's matmul ({@link Dnnl}) or the fp32 path on
 * rounded copies — so the layers calling it compute as torch's CPU autocast without a change of their own.
 *
 * <p>What it is not: thread-safe. One instance holds per-thread packing buffers (grown once, then reused, so steady
 * state makes no garbage); give each concurrent caller its own instance.
 */
public final class Gemm {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;
    /** Vector lanes: 8 with AVX2 (some of this project's Zen 4 VMs expose only AVX2: MaxVectorSize 32), 16 with AVX-512, 4 with NEON. */
    private static final int L = S.length();
    /** Vector registers of the ISA: 32 with AVX-512 and with AArch64 NEON/SVE, 16 with AVX2 and SSE. */
    static final int REGISTERS = registers(L, System.getProperty("os.arch", ""));
    /** The micro-tiles a Gemm can be built with (rows; each has its own kernel method). */
    static final int[] TILES = {8, 12};
    /**
     * The micro-tile rows this JVM uses: {@link #tileRows}, or {@code -Dcpt4j.gemm.tile=8|12} (a tuning knob for A/B
     * measurements, e.g. whole training steps on either tile).
     */
    static final int MR = Integer.getInteger("cpt4j.gemm.tile", tileRows(L, REGISTERS));
    /** Micro-tile columns: two vectors. */
    static final int NR = 2 * L;
    /** Row counts up to this use the unpacked small-M path. */
    static final int SMALL_M = 8;
    /** Same for transB (the output head's x·Wteᵀ): its dot-product path reads each row of B once for all M rows. */
    static final int SMALL_M_NT = 16;

    private static final int DEFAULT_MC = 128;       // A block 128×KC in L2 (rounded up to a multiple of MR)
    private static final int DEFAULT_KC = 256;       // B micro-panel KC×NR (16 KiB) stays in L1
    private static final int DEFAULT_NC = 4096;        // B panel KC×NC streamed from L3

    private final Parallel par;
    /** This instance's micro-tile rows: one of {@link #TILES}. */
    private final int mr;
    /** The native library computing the fp32 products, or null for the Java kernels. */
    private final OpenBlas blas;
    /** How products are computed: fp32, or with bf16-rounded inputs ({@link Bf16}). */
    private final Bf16.Mode bf16;
    /** The native bf16 library of {@link Bf16.Mode#NATIVE}, else null. */
    private final Dnnl dnnl;
    // bf16 mode: the rounded operands (native memory for oneDNN, fp32 arrays when emulated) and oneDNN's fp32 result.
    private MemorySegment bfA = MemorySegment.NULL, bfB = MemorySegment.NULL, bfC = MemorySegment.NULL;
    private float[] roundedA = new float[0], roundedB = new float[0];
    private final int mcBlock, kcBlock, ncBlock;
    // Per-worker buffers, grown once to the largest size a call needed.
    private final float[][] packA, packB, tile;
    private float[] smallA = new float[0];
    private float[] smallB = new float[0];   // op(B) of a small-M bf16 product, widened to fp32

    /**
     * A GEMM that splits its work across {@code par}'s threads, on the backend the {@value Backend#PROPERTY} system
     * property names ({@code auto} when unset): the one construction point every layer, trainer and decoder uses.
     *
     * @throws IllegalStateException when the property says {@code native} and the library does not load
     */
    public Gemm(Parallel par) {
        this(par, Backend.fromProperty(), Bf16.Mode.fromProperty());
    }

    /** A GEMM on a given backend ({@link Backend#AUTO}: native when OpenBLAS loads, else the Java kernels), fp32. */
    public Gemm(Parallel par, Backend backend) {
        this(par, backend, Bf16.Mode.OFF);
    }

    /**
     * A GEMM on a given backend and bf16 mode ({@link Bf16}).
     *
     * @throws IllegalStateException for {@link Bf16.Mode#NATIVE} when oneDNN does not load (the message says why)
     */
    public Gemm(Parallel par, Backend backend, Bf16.Mode bf16) {
        this(par, MR, DEFAULT_MC, DEFAULT_KC, DEFAULT_NC, backend.resolvesToNative() ? OpenBlas.get() : null, bf16);
    }

    /** The Java kernels with block sizes for tuning: mc is rounded up to a multiple of MR, nc to a multiple of NR. */
    Gemm(Parallel par, int mc, int kc, int nc) {
        this(par, MR, mc, kc, nc, null, Bf16.Mode.OFF);
    }

    /** The Java kernels with a given micro-tile (one of {@link #TILES}): tests and benchmarks reach every tile on any CPU. */
    Gemm(Parallel par, int tileRows, int mc, int kc, int nc) {
        this(par, tileRows, mc, kc, nc, null, Bf16.Mode.OFF);
    }

    /** The Java kernels with a given micro-tile and the default blocks. */
    static Gemm withTile(Parallel par, int tileRows) {
        return new Gemm(par, tileRows, DEFAULT_MC, DEFAULT_KC, DEFAULT_NC);
    }

    private Gemm(Parallel par, int tileRows, int mc, int kc, int nc, OpenBlas blas, Bf16.Mode bf16) {
        if (mc < 1 || kc < 1 || nc < 1) throw new IllegalArgumentException("block sizes must be positive");
        if (tileRows != 8 && tileRows != 12) throw new IllegalArgumentException("no " + tileRows + "-row micro-kernel");
        this.par = par;
        this.blas = blas;
        this.bf16 = bf16;
        if (bf16 == Bf16.Mode.NATIVE && Bf16.nativeUnavailableReason() != null)
            throw new IllegalStateException("--bf16: " + Bf16.nativeUnavailableReason());
        this.dnnl = bf16 == Bf16.Mode.NATIVE ? Dnnl.get() : null;
        this.mr = tileRows;
        this.mcBlock = ceilDiv(mc, mr) * mr;
        this.kcBlock = kc;
        this.ncBlock = ceilDiv(nc, NR) * NR;
        int t = par.threads();
        packA = new float[t][0];
        packB = new float[t][0];
        tile = new float[t][mr * NR];
    }

    /**
     * C = beta·C + op(A)·op(B), row-major. op(A) is M×K: {@code A[aOff + i*lda + k]}, or if transA
     * {@code A[aOff + k*lda + i]}. op(B) is K×N: {@code B[bOff + k*ldb + j]}, or if transB {@code B[bOff + j*ldb + k]}.
     * {@code C[cOff + i*ldc + j]}; elements of C outside the M×N window are not touched. beta is 0 (overwrite; C's old
     * values, even NaN, are ignored) or 1 (accumulate).
     */
    public void sgemm(boolean transA, boolean transB, int M, int N, int K,
                      float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                      float beta, float[] C, int cOff, int ldc) {
        checkArgs(transA, transB, M, N, K, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
        if (bf16 != Bf16.Mode.OFF && M > 0 && N > 0 && K > 0) {
            bf16Product(transA, transB, M, N, K, A, aOff, lda, B, null, bOff, ldb, beta, C, cOff, ldc);
            return;
        }
        // Small-M products (a decode step's rows) stay on the Java path, which streams B once with dot products:
        // one single-threaded OpenBLAS call per worker measured slower there (SmolLM2 bench generate, 2 threads,
        // idle 2-vCPU AVX-512 Xeon: 45.1 tokens/s native vs 71.0 java).
        if (blas != null && M > (transB ? SMALL_M_NT : SMALL_M) && N > 0 && K > 0)
            nativeRun(transA, transB, M, N, K, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
        else run(transA, transB, M, N, K, A, aOff, lda, B, null, bOff, ldb, beta, C, cOff, ldc);
    }

    /**
     * The native product, split over this instance's workers as the Java path splits it: contiguous runs of whole
     * 64-column (or 16-row, when M is larger) pieces of C, one single-threaded OpenBLAS call per worker. Measured
     * against OpenBLAS's own thread pool set to the same count (2 threads, 3·(512×768×2304) products, loaded 2-core
     * Zen 4): 95–141 GFLOP/s split vs 41–130 pool (its workers spin or sleep on their own schedule and lose to our
     * layers' threads), Java 65–123.
     */
    private void nativeRun(boolean transA, boolean transB, int M, int N, int K, float[] A, int aOff, int lda,
                           float[] B, int bOff, int ldb, float beta, float[] C, int cOff, int ldc) {
        int t = par.threads();
        boolean byN = N >= M;
        int unit = byN ? 64 : 16, units = ceilDiv(byN ? N : M, unit), workers = Math.min(t, units);
        if (workers == 1) {
            blas.sgemm(transA, transB, M, N, K, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc);
            return;
        }
        par.forRange(workers, (w0, w1) -> {
            for (int w = w0; w < w1; w++) {
                int s = (int) ((long) units * w / workers) * unit, e = Math.min(byN ? N : M, (int) ((long) units * (w + 1) / workers) * unit);
                if (byN) blas.sgemm(transA, transB, M, e - s, K, A, aOff, lda, B, transB ? bOff + s * ldb : bOff + s, ldb, beta, C, cOff + s, ldc);
                else blas.sgemm(transA, transB, e - s, N, K, A, transA ? aOff + s : aOff + s * lda, lda, B, bOff, ldb, beta, C, cOff + s * ldc, ldc);
            }
        });
    }

    /**
     * {@link #sgemm} with op(B) stored as bfloat16 ({@code B16[i]} holds the upper 16 bits of an fp32 value, as
     * {@code torch.bfloat16}): the weight operand of a frozen base kept in bf16, e.g. y = x·W ({@code transB} false)
     * and dX = dY·Wᵀ ({@code transB} true). Each value is widened to fp32 exactly while op(B) is packed, so the result
     * is bitwise the one {@link #sgemm} gives on the widened matrix, and no fp32 copy of B is ever made (the small-M
     * path widens only the K×N window it reads, into a reused scratch).
     */
    public void sgemmBf16(boolean transA, boolean transB, int M, int N, int K,
                          float[] A, int aOff, int lda, short[] B16, int bOff, int ldb,
                          float beta, float[] C, int cOff, int ldc) {
        checkArgs(transA, transB, M, N, K, A, aOff, lda, B16.length, bOff, ldb, beta, C, cOff, ldc);
        if (bf16 != Bf16.Mode.OFF && M > 0 && N > 0 && K > 0) {
            bf16Product(transA, transB, M, N, K, A, aOff, lda, null, B16, bOff, ldb, beta, C, cOff, ldc);
            return;
        }
        run(transA, transB, M, N, K, A, aOff, lda, null, B16, bOff, ldb, beta, C, cOff, ldc);
    }

    /**
     * A product in bf16 mode: op(A) and op(B) rounded to bf16 (B16 is bf16 already), fp32 accumulation, fp32 C.
     * Each operand's window is rounded once into a dense copy in its stored layout; then {@link Bf16.Mode#NATIVE}
     * splits the product over the workers as {@link #nativeRun} does (one single-threaded oneDNN matmul each, into a
     * native fp32 C that each worker copies or adds back), and {@link Bf16.Mode#EMULATED} runs the fp32 path on the
     * rounded copies.
     */
    private void bf16Product(boolean transA, boolean transB, int M, int N, int K, float[] A, int aOff, int lda,
                             float[] B, short[] B16, int bOff, int ldb, float beta, float[] C, int cOff, int ldc) {
        int aRows = transA ? K : M, aCols = transA ? M : K, bRows = transB ? N : K, bCols = transB ? K : N;
        boolean emulated = bf16 == Bf16.Mode.EMULATED;
        if (emulated) {
            if (roundedA.length < aRows * aCols) roundedA = new float[aRows * aCols];
            if (roundedB.length < bRows * bCols) roundedB = new float[bRows * bCols];
        } else {
            bfA = grow(bfA, 2L * aRows * aCols);
            bfB = grow(bfB, 2L * bRows * bCols);
            bfC = grow(bfC, 4L * M * N);
        }
        float[] ra = roundedA, rb = roundedB;
        MemorySegment na = bfA, nb = bfB, nc = bfC;
        par.forRange(aRows + bRows, (u0, u1) -> {
            for (int u = u0; u < u1; u++) {
                if (u < aRows) {
                    if (emulated) Bf16.round(A, aOff + u * lda, ra, u * aCols, aCols);
                    else Bf16.round(A, aOff + u * lda, na, 2L * u * aCols, aCols);
                    continue;
                }
                int r = u - aRows, src = bOff + r * ldb;
                if (B != null && emulated) Bf16.round(B, src, rb, r * bCols, bCols);
                else if (B != null) Bf16.round(B, src, nb, 2L * r * bCols, bCols);
                else if (emulated) widen(B16, src, rb, r * bCols, bCols);
                else MemorySegment.copy(B16, src, nb, ValueLayout.JAVA_SHORT, 2L * r * bCols, bCols);
            }
        });
        if (emulated) {
            if (blas != null && M > (transB ? SMALL_M_NT : SMALL_M))
                nativeRun(transA, transB, M, N, K, ra, 0, aCols, rb, 0, bCols, beta, C, cOff, ldc);
            else run(transA, transB, M, N, K, ra, 0, aCols, rb, null, 0, bCols, beta, C, cOff, ldc);
            return;
        }
        boolean byN = N >= M, add = beta == 1f;
        int unit = byN ? 64 : 16, units = ceilDiv(byN ? N : M, unit), workers = Math.min(par.threads(), units);
        par.forRange(workers, (w0, w1) -> {
            for (int w = w0; w < w1; w++) {
                int s = (int) ((long) units * w / workers) * unit, e = Math.min(byN ? N : M, (int) ((long) units * (w + 1) / workers) * unit);
                if (byN) {
                    dnnl.matmul(transA, transB, M, e - s, K, na, aCols, nb.asSlice(transB ? 2L * s * bCols : 2L * s), bCols,
                            nc.asSlice(4L * s), N);
                    for (int i = 0; i < M; i++) copyBack(nc, 4L * (i * N + s), C, cOff + i * ldc + s, e - s, add);
                } else {
                    dnnl.matmul(transA, transB, e - s, N, K, na.asSlice(transA ? 2L * s : 2L * s * aCols), aCols, nb, bCols,
                            nc.asSlice(4L * s * N), N);
                    for (int i = s; i < e; i++) copyBack(nc, 4L * i * N, C, cOff + i * ldc, N, add);
                }
            }
        });
    }

    /** Native memory of at least {@code bytes}, reusing {@code seg} when it is large enough (grown by half again). */
    private static MemorySegment grow(MemorySegment seg, long bytes) {
        if (seg.byteSize() >= bytes) return seg;
        return Arena.ofAuto().allocate(Math.max(bytes, seg.byteSize() + seg.byteSize() / 2), 64);
    }

    /** {@code C[c..c+n)} = (or +=) the n floats at byte offset {@code off} of native memory. */
    private static void copyBack(MemorySegment src, long off, float[] C, int c, int n, boolean add) {
        if (!add) {
            MemorySegment.copy(src, ValueLayout.JAVA_FLOAT, off, C, c, n);
            return;
        }
        int j = 0;
        for (int ub = n - n % L; j < ub; j += L)
            FloatVector.fromMemorySegment(S, src, off + 4L * j, ByteOrder.nativeOrder()).add(FloatVector.fromArray(S, C, c + j)).intoArray(C, c + j);
        for (; j < n; j++) C[c + j] += src.get(ValueLayout.JAVA_FLOAT, off + 4L * j);
    }

    /** The product with op(B) in {@code B} (fp32) or, when that is null, in {@code B16} (bf16). */
    private void run(boolean transA, boolean transB, int M, int N, int K,
                     float[] A, int aOff, int lda, float[] B, short[] B16, int bOff, int ldb,
                     float beta, float[] C, int cOff, int ldc) {
        if (M == 0 || N == 0) return;
        boolean accumulate = beta == 1f;
        if (K == 0) {
            if (!accumulate) for (int i = 0; i < M; i++) Arrays.fill(C, cOff + i * ldc, cOff + i * ldc + N, 0f);
            return;
        }
        if (M <= (transB ? SMALL_M_NT : SMALL_M)) {
            if (B == null && transB) {          // x·Wᵀ with W (N, K) in bf16, e.g. a decode step: widen a few rows at a time
                smallNTBf16(transA, M, N, K, A, aOff, lda, B16, bOff, ldb, accumulate, C, cOff, ldc);
            } else if (B == null) {             // widen the window of B that is read, keeping its strides
                int rows = transB ? N : K, cols = transB ? K : N, n = (rows - 1) * ldb + cols;
                if (smallB.length < n) smallB = new float[n];
                for (int r = 0; r < rows; r++) {
                    int src = bOff + r * ldb, dst = r * ldb;
                    for (int c = 0; c < cols; c++) smallB[dst + c] = bf16(B16[src + c]);
                }
                smallM(transA, transB, M, N, K, A, aOff, lda, smallB, 0, ldb, accumulate, C, cOff, ldc);
            } else {
                smallM(transA, transB, M, N, K, A, aOff, lda, B, bOff, ldb, accumulate, C, cOff, ldc);
            }
            return;
        }
        int mStrips = ceilDiv(M, mr), nStrips = ceilDiv(N, NR), t = par.threads();
        // Split the larger dimension: each worker packs all of the other operand, so this packs the smaller one twice.
        boolean byN = nStrips >= t && (N > M || mStrips < t);
        int units = byN ? nStrips : mStrips;
        int workers = Math.min(t, units);
        if (workers == 1) {
            blocked(0, transA, transB, 0, M, 0, N, K, A, aOff, lda, B, B16, bOff, ldb, accumulate, C, cOff, ldc);
            return;
        }
        par.forRange(workers, (w0, w1) -> {
            for (int w = w0; w < w1; w++) {
                int s = (int) ((long) units * w / workers), e = (int) ((long) units * (w + 1) / workers);
                if (byN) {
                    blocked(w, transA, transB, 0, M, s * NR, Math.min(N, e * NR), K,
                            A, aOff, lda, B, B16, bOff, ldb, accumulate, C, cOff, ldc);
                } else {
                    blocked(w, transA, transB, s * mr, Math.min(M, e * mr), 0, N, K,
                            A, aOff, lda, B, B16, bOff, ldb, accumulate, C, cOff, ldc);
                }
            }
        });
    }

    /** The worker's share: rows [m0, m1) × columns [n0, n1) of C, all of K. B is fp32, or if null B16 is bf16. */
    private void blocked(int w, boolean transA, boolean transB, int m0, int m1, int n0, int n1, int K,
                         float[] A, int aOff, int lda, float[] B, short[] B16, int bOff, int ldb,
                         boolean accumulate, float[] C, int cOff, int ldc) {
        // K blocks of near-equal size (K = 600 → 3×200, not 256+256+88) so no block is a sliver.
        int kBlocks = ceilDiv(K, kcBlock);
        int kcMax = ceilDiv(K, kBlocks);
        int mcMax = Math.min(mcBlock, ceilDiv(m1 - m0, mr) * mr);
        int ncMax = Math.min(ncBlock, ceilDiv(n1 - n0, NR) * NR);
        float[] ap = packA[w], bp = packB[w], tl = tile[w];
        if (ap.length < mcMax * kcMax) packA[w] = ap = new float[mcMax * kcMax];
        if (bp.length < ncMax * kcMax) packB[w] = bp = new float[ncMax * kcMax];
        for (int jc = n0; jc < n1; jc += ncBlock) {
            int nc = Math.min(ncBlock, n1 - jc);
            for (int kb = 0; kb < kBlocks; kb++) {
                int pc = (int) ((long) K * kb / kBlocks), kc = (int) ((long) K * (kb + 1) / kBlocks) - pc;
                if (B != null) packB(transB, B, bOff, ldb, pc, kc, jc, nc, bp);
                else packB16(transB, B16, bOff, ldb, pc, kc, jc, nc, bp);
                boolean add = accumulate || kb > 0;
                for (int ic = m0; ic < m1; ic += mcBlock) {
                    int mc = Math.min(mcBlock, m1 - ic);
                    packA(mr, transA, A, aOff, lda, ic, mc, pc, kc, ap);
                    macro(mr, mc, nc, kc, ap, bp, C, cOff + ic * ldc + jc, ldc, add, tl);
                }
            }
        }
    }

    private static void macro(int tr, int mc, int nc, int kc, float[] ap, float[] bp, float[] C, int cBase, int ldc,
                              boolean add, float[] tl) {
        for (int jr = 0; jr < nc; jr += NR) {
            int nr = Math.min(NR, nc - jr);
            for (int ir = 0; ir < mc; ir += tr) {
                int mr = Math.min(tr, mc - ir);
                int co = cBase + ir * ldc + jr;
                if (mr == tr && nr == NR) {
                    if (tr == 12) kernel12(kc, ap, ir * kc, bp, jr * kc, C, co, ldc, add);
                    else kernel(kc, ap, ir * kc, bp, jr * kc, C, co, ldc, add);
                } else {
                    // Edge tile: same arithmetic into a scratch tile, then the valid part is added or copied.
                    if (tr == 12) kernel12(kc, ap, ir * kc, bp, jr * kc, tl, 0, NR, false);
                    else kernel(kc, ap, ir * kc, bp, jr * kc, tl, 0, NR, false);
                    for (int r = 0; r < mr; r++) {
                        int c = co + r * ldc, t = r * NR;
                        if (add) for (int j = 0; j < nr; j++) C[c + j] = tl[t + j] + C[c + j];
                        else System.arraycopy(tl, t, C, c, nr);
                    }
                }
            }
        }
    }

    /** The 8×NR micro-kernel: c[co + r*ldc + j] (+)= Σ_k ap[ao + k*8 + r] · bp[bo + k*NR + j]. */
    static void kernel(int kc, float[] ap, int ao, float[] bp, int bo, float[] c, int co, int ldc,
                               boolean add) {
        FloatVector z = FloatVector.zero(S);
        FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z, c40 = z, c41 = z, c50 = z, c51 = z, c60 = z, c61 = z, c70 = z, c71 = z;
        FloatVector b0, b1, x;
        // One k per iteration: measured faster than unrolling by 4 (training step 92-99 vs 80-87 tokens/s, alternated
        // builds), and no remainder loop. A remainder loop that only some shapes run (K blocks not a multiple of the
        // unroll) made C2 compile a slower kernel for every shape afterwards: 41-46 vs 51-64 GFLOP/s on 512×768·768×3072.
        for (int k = 0; k < kc; k++) {
            int a = ao + k * 8, b = bo + k * NR;
            b0 = FloatVector.fromArray(S, bp, b);
            b1 = FloatVector.fromArray(S, bp, b + L);
            x = FloatVector.broadcast(S, ap[a + 0]); c00 = x.fma(b0, c00); c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, ap[a + 1]); c10 = x.fma(b0, c10); c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, ap[a + 2]); c20 = x.fma(b0, c20); c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, ap[a + 3]); c30 = x.fma(b0, c30); c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, ap[a + 4]); c40 = x.fma(b0, c40); c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, ap[a + 5]); c50 = x.fma(b0, c50); c51 = x.fma(b1, c51);
            x = FloatVector.broadcast(S, ap[a + 6]); c60 = x.fma(b0, c60); c61 = x.fma(b1, c61);
            x = FloatVector.broadcast(S, ap[a + 7]); c70 = x.fma(b0, c70); c71 = x.fma(b1, c71);
        }
        if (add) {
            c00 = c00.add(FloatVector.fromArray(S, c, co + 0 * ldc)); c01 = c01.add(FloatVector.fromArray(S, c, co + 0 * ldc + L));
            c10 = c10.add(FloatVector.fromArray(S, c, co + 1 * ldc)); c11 = c11.add(FloatVector.fromArray(S, c, co + 1 * ldc + L));
            c20 = c20.add(FloatVector.fromArray(S, c, co + 2 * ldc)); c21 = c21.add(FloatVector.fromArray(S, c, co + 2 * ldc + L));
            c30 = c30.add(FloatVector.fromArray(S, c, co + 3 * ldc)); c31 = c31.add(FloatVector.fromArray(S, c, co + 3 * ldc + L));
            c40 = c40.add(FloatVector.fromArray(S, c, co + 4 * ldc)); c41 = c41.add(FloatVector.fromArray(S, c, co + 4 * ldc + L));
            c50 = c50.add(FloatVector.fromArray(S, c, co + 5 * ldc)); c51 = c51.add(FloatVector.fromArray(S, c, co + 5 * ldc + L));
            c60 = c60.add(FloatVector.fromArray(S, c, co + 6 * ldc)); c61 = c61.add(FloatVector.fromArray(S, c, co + 6 * ldc + L));
            c70 = c70.add(FloatVector.fromArray(S, c, co + 7 * ldc)); c71 = c71.add(FloatVector.fromArray(S, c, co + 7 * ldc + L));
        }
        c00.intoArray(c, co + 0 * ldc); c01.intoArray(c, co + 0 * ldc + L);
        c10.intoArray(c, co + 1 * ldc); c11.intoArray(c, co + 1 * ldc + L);
        c20.intoArray(c, co + 2 * ldc); c21.intoArray(c, co + 2 * ldc + L);
        c30.intoArray(c, co + 3 * ldc); c31.intoArray(c, co + 3 * ldc + L);
        c40.intoArray(c, co + 4 * ldc); c41.intoArray(c, co + 4 * ldc + L);
        c50.intoArray(c, co + 5 * ldc); c51.intoArray(c, co + 5 * ldc + L);
        c60.intoArray(c, co + 6 * ldc); c61.intoArray(c, co + 6 * ldc + L);
        c70.intoArray(c, co + 7 * ldc); c71.intoArray(c, co + 7 * ldc + L);
    }

    /**
     * The 12×NR micro-kernel (24 accumulators, for ISAs with 32 vector registers): the same sums as {@link #kernel}
     * with four more rows per packed B load. Written out like {@link #kernel}: no vector crosses a method call.
     */
    static void kernel12(int kc, float[] ap, int ao, float[] bp, int bo, float[] c, int co, int ldc, boolean add) {
        FloatVector z = FloatVector.zero(S);
        FloatVector c00a = z, c00b = z, c01a = z, c01b = z, c02a = z, c02b = z, c03a = z, c03b = z, c04a = z, c04b = z, c05a = z, c05b = z, c06a = z, c06b = z, c07a = z, c07b = z, c08a = z, c08b = z, c09a = z, c09b = z, c10a = z, c10b = z, c11a = z, c11b = z;
        FloatVector b0, b1, x;
        for (int k = 0; k < kc; k++) {
            int a = ao + k * 12, b = bo + k * NR;
            b0 = FloatVector.fromArray(S, bp, b);
            b1 = FloatVector.fromArray(S, bp, b + L);
            x = FloatVector.broadcast(S, ap[a + 0]); c00a = x.fma(b0, c00a); c00b = x.fma(b1, c00b);
            x = FloatVector.broadcast(S, ap[a + 1]); c01a = x.fma(b0, c01a); c01b = x.fma(b1, c01b);
            x = FloatVector.broadcast(S, ap[a + 2]); c02a = x.fma(b0, c02a); c02b = x.fma(b1, c02b);
            x = FloatVector.broadcast(S, ap[a + 3]); c03a = x.fma(b0, c03a); c03b = x.fma(b1, c03b);
            x = FloatVector.broadcast(S, ap[a + 4]); c04a = x.fma(b0, c04a); c04b = x.fma(b1, c04b);
            x = FloatVector.broadcast(S, ap[a + 5]); c05a = x.fma(b0, c05a); c05b = x.fma(b1, c05b);
            x = FloatVector.broadcast(S, ap[a + 6]); c06a = x.fma(b0, c06a); c06b = x.fma(b1, c06b);
            x = FloatVector.broadcast(S, ap[a + 7]); c07a = x.fma(b0, c07a); c07b = x.fma(b1, c07b);
            x = FloatVector.broadcast(S, ap[a + 8]); c08a = x.fma(b0, c08a); c08b = x.fma(b1, c08b);
            x = FloatVector.broadcast(S, ap[a + 9]); c09a = x.fma(b0, c09a); c09b = x.fma(b1, c09b);
            x = FloatVector.broadcast(S, ap[a + 10]); c10a = x.fma(b0, c10a); c10b = x.fma(b1, c10b);
            x = FloatVector.broadcast(S, ap[a + 11]); c11a = x.fma(b0, c11a); c11b = x.fma(b1, c11b);
        }
        if (add) {
            c00a = c00a.add(FloatVector.fromArray(S, c, co + 0 * ldc)); c00b = c00b.add(FloatVector.fromArray(S, c, co + 0 * ldc + L));
            c01a = c01a.add(FloatVector.fromArray(S, c, co + 1 * ldc)); c01b = c01b.add(FloatVector.fromArray(S, c, co + 1 * ldc + L));
            c02a = c02a.add(FloatVector.fromArray(S, c, co + 2 * ldc)); c02b = c02b.add(FloatVector.fromArray(S, c, co + 2 * ldc + L));
            c03a = c03a.add(FloatVector.fromArray(S, c, co + 3 * ldc)); c03b = c03b.add(FloatVector.fromArray(S, c, co + 3 * ldc + L));
            c04a = c04a.add(FloatVector.fromArray(S, c, co + 4 * ldc)); c04b = c04b.add(FloatVector.fromArray(S, c, co + 4 * ldc + L));
            c05a = c05a.add(FloatVector.fromArray(S, c, co + 5 * ldc)); c05b = c05b.add(FloatVector.fromArray(S, c, co + 5 * ldc + L));
            c06a = c06a.add(FloatVector.fromArray(S, c, co + 6 * ldc)); c06b = c06b.add(FloatVector.fromArray(S, c, co + 6 * ldc + L));
            c07a = c07a.add(FloatVector.fromArray(S, c, co + 7 * ldc)); c07b = c07b.add(FloatVector.fromArray(S, c, co + 7 * ldc + L));
            c08a = c08a.add(FloatVector.fromArray(S, c, co + 8 * ldc)); c08b = c08b.add(FloatVector.fromArray(S, c, co + 8 * ldc + L));
            c09a = c09a.add(FloatVector.fromArray(S, c, co + 9 * ldc)); c09b = c09b.add(FloatVector.fromArray(S, c, co + 9 * ldc + L));
            c10a = c10a.add(FloatVector.fromArray(S, c, co + 10 * ldc)); c10b = c10b.add(FloatVector.fromArray(S, c, co + 10 * ldc + L));
            c11a = c11a.add(FloatVector.fromArray(S, c, co + 11 * ldc)); c11b = c11b.add(FloatVector.fromArray(S, c, co + 11 * ldc + L));
        }
        c00a.intoArray(c, co + 0 * ldc); c00b.intoArray(c, co + 0 * ldc + L);
        c01a.intoArray(c, co + 1 * ldc); c01b.intoArray(c, co + 1 * ldc + L);
        c02a.intoArray(c, co + 2 * ldc); c02b.intoArray(c, co + 2 * ldc + L);
        c03a.intoArray(c, co + 3 * ldc); c03b.intoArray(c, co + 3 * ldc + L);
        c04a.intoArray(c, co + 4 * ldc); c04b.intoArray(c, co + 4 * ldc + L);
        c05a.intoArray(c, co + 5 * ldc); c05b.intoArray(c, co + 5 * ldc + L);
        c06a.intoArray(c, co + 6 * ldc); c06b.intoArray(c, co + 6 * ldc + L);
        c07a.intoArray(c, co + 7 * ldc); c07b.intoArray(c, co + 7 * ldc + L);
        c08a.intoArray(c, co + 8 * ldc); c08b.intoArray(c, co + 8 * ldc + L);
        c09a.intoArray(c, co + 9 * ldc); c09b.intoArray(c, co + 9 * ldc + L);
        c10a.intoArray(c, co + 10 * ldc); c10b.intoArray(c, co + 10 * ldc + L);
        c11a.intoArray(c, co + 11 * ldc); c11b.intoArray(c, co + 11 * ldc + L);
    }

    /** Packs op(A)[ic:ic+mc, pc:pc+kc] as tr-row strips (tr = the tile's rows), each k-major (tr values per k), rows past mc zero. */
    private static void packA(int tr, boolean transA, float[] A, int aOff, int lda, int ic, int mc, int pc, int kc,
                              float[] ap) {
        int full = mc - mc % tr;
        if (transA) {
            // Row k of A holds column k of op(A): read the mc values contiguously, tr into each strip.
            for (int k = 0; k < kc; k++) {
                int src = aOff + (pc + k) * lda + ic;
                for (int ir = 0; ir < full; ir += tr) {
                    int dst = ir * kc + k * tr;
                    for (int r = 0; r < tr; r++) ap[dst + r] = A[src + ir + r];
                }
                int dst = full * kc + k * tr;
                for (int r = 0; r < mc - full; r++) ap[dst + r] = A[src + full + r];
            }
        } else {
            // Eight rows at a time, k outer: every store is contiguous (8 values per k), the eight source rows are
            // eight sequential read streams. Measured 20-25 % faster than one row at a time with stride-MR stores
            // (PackBench, the head's 256×21128 dX operand: 5.0 → 4.0 ms).
            for (int ir = 0; ir < full && tr != 8; ir += tr) {     // other tiles: the same order, rows in a loop
                int s0 = aOff + (ic + ir) * lda + pc, dst = ir * kc;
                for (int k = 0; k < kc; k++) {
                    int d = dst + k * tr;
                    for (int r = 0; r < tr; r++) ap[d + r] = A[s0 + r * lda + k];
                }
            }
            for (int ir = 0; ir < full && tr == 8; ir += tr) {
                int s0 = aOff + (ic + ir) * lda + pc, s1 = s0 + lda, s2 = s1 + lda, s3 = s2 + lda;
                int s4 = s3 + lda, s5 = s4 + lda, s6 = s5 + lda, s7 = s6 + lda, dst = ir * kc;
                for (int k = 0; k < kc; k++) {
                    int d = dst + k * tr;
                    ap[d] = A[s0 + k];
                    ap[d + 1] = A[s1 + k];
                    ap[d + 2] = A[s2 + k];
                    ap[d + 3] = A[s3 + k];
                    ap[d + 4] = A[s4 + k];
                    ap[d + 5] = A[s5 + k];
                    ap[d + 6] = A[s6 + k];
                    ap[d + 7] = A[s7 + k];
                }
            }
            for (int i = full; i < mc; i++) {
                int src = aOff + (ic + i) * lda + pc, dst = full * kc + i % tr;
                for (int k = 0; k < kc; k++) ap[dst + k * tr] = A[src + k];
            }
        }
        if (full < mc) {
            int mr = mc - full;
            for (int k = 0; k < kc; k++) Arrays.fill(ap, full * kc + k * tr + mr, full * kc + (k + 1) * tr, 0f);
        }
    }

    /** Packs op(B)[pc:pc+kc, jc:jc+nc] as NR-column strips, each k-major (NR values per k), columns past nc zero. */
    private static void packB(boolean transB, float[] B, int bOff, int ldb, int pc, int kc, int jc, int nc,
                              float[] bp) {
        int full = nc - nc % NR;
        if (transB) {
            // Row j of B is column j of op(B): read it contiguously, scatter with stride NR inside its strip. (Whole
            // strips k-outer with contiguous stores, as packA does, measured ~60 % slower here: 16 read streams.)
            for (int j = 0; j < nc; j++) {
                int src = bOff + (jc + j) * ldb + pc, dst = (j - j % NR) * kc + j % NR;
                for (int k = 0; k < kc; k++) bp[dst + k * NR] = B[src + k];
            }
        } else {
            // Row by row of B (contiguous reads; one row of a wide matrix per page touched), whole strips first.
            for (int k = 0; k < kc; k++) {
                int src = bOff + (pc + k) * ldb + jc;
                for (int jr = 0; jr < full; jr += NR) {
                    int dst = jr * kc + k * NR;
                    FloatVector.fromArray(S, B, src + jr).intoArray(bp, dst);
                    FloatVector.fromArray(S, B, src + jr + L).intoArray(bp, dst + L);
                }
                if (full < nc) System.arraycopy(B, src + full, bp, full * kc + k * NR, nc - full);
            }
        }
        if (full < nc) {
            int nr = nc - full;
            for (int k = 0; k < kc; k++) Arrays.fill(bp, full * kc + k * NR + nr, full * kc + (k + 1) * NR, 0f);
        }
    }

    /** {@link #packB} from bf16 storage: the same packed panel, each value widened exactly. */
    private static void packB16(boolean transB, short[] B, int bOff, int ldb, int pc, int kc, int jc, int nc,
                                float[] bp) {
        int full = nc - nc % NR;
        if (transB) {
            for (int j = 0; j < nc; j++) {
                int src = bOff + (jc + j) * ldb + pc, dst = (j - j % NR) * kc + j % NR;
                for (int k = 0; k < kc; k++) bp[dst + k * NR] = bf16(B[src + k]);
            }
        } else {
            for (int k = 0; k < kc; k++) {
                int src = bOff + (pc + k) * ldb + jc;
                for (int jr = 0; jr < full; jr += NR) {
                    int dst = jr * kc + k * NR;
                    for (int t = 0; t < NR; t++) bp[dst + t] = bf16(B[src + jr + t]);
                }
                int dst = full * kc + k * NR;
                for (int t = 0; t < nc - full; t++) bp[dst + t] = bf16(B[src + full + t]);
            }
        }
        if (full < nc) {
            int nr = nc - full;
            for (int k = 0; k < kc; k++) Arrays.fill(bp, full * kc + k * NR + nr, full * kc + (k + 1) * NR, 0f);
        }
    }

    /** The fp32 value of bfloat16 bits (exact: bf16 is fp32's upper half). */
    static float bf16(short h) {
        return Float.intBitsToFloat((h & 0xFFFF) << 16);
    }

    // ---- small M: no packing, split over N ----

    private void smallM(boolean transA, boolean transB, int M, int N, int K, float[] A, int aOff, int lda,
                        float[] B, int bOff, int ldb, boolean accumulate, float[] C, int cOff, int ldc) {
        float[] fa = transA ? rowMajorA(M, K, A, aOff, lda) : A;
        int fao = transA ? 0 : aOff, fla = transA ? K : lda;
        if (transB) {
            int groups = ceilDiv(N, 4);
            par.forRange(groups, (s, e) -> smallNT(M, Math.min(N, e * 4), K, fa, fao, fla, B, bOff, ldb,
                    accumulate, C, cOff, ldc, s * 4));
        } else {
            int w = 4 * L, blocks = ceilDiv(N, w);
            par.forRange(blocks, (s, e) -> smallNN(M, s * w, Math.min(N, e * w), K, fa, fao, fla, B, bOff, ldb,
                    accumulate, C, cOff, ldc));
        }
    }

    /** op(A) of a small-M product with transA, copied row-major (M×K) into {@code smallA}: cheap next to reading B. */
    private float[] rowMajorA(int M, int K, float[] A, int aOff, int lda) {
        if (smallA.length < M * K) smallA = new float[M * K];
        for (int k = 0; k < K; k++) for (int i = 0; i < M; i++) smallA[i * K + k] = A[aOff + k * lda + i];
        return smallA;
    }

    /** Rows of a bf16 B widened together by {@link #smallNTBf16}: 8 × K floats stay in L2 while every row of A reads them. */
    private static final int BF16_ROWS = 8;

    /**
     * C = op(A)·Bᵀ for small M with B (N, K) stored as bf16: each task widens BF16_ROWS rows of B at a time into its
     * own scratch and runs {@link #smallNT} on them, so every weight is read once and widened once (a decode step
     * streams the weights; the fp32 copy never exceeds BF16_ROWS·K floats per task).
     */
    private void smallNTBf16(boolean transA, int M, int N, int K, float[] A, int aOff, int lda, short[] B16, int bOff,
                             int ldb, boolean accumulate, float[] C, int cOff, int ldc) {
        float[] fa = transA ? rowMajorA(M, K, A, aOff, lda) : A;
        int fao = transA ? 0 : aOff, fla = transA ? K : lda;
        int groups = ceilDiv(N, BF16_ROWS);
        par.forRange(groups, (g0, g1) -> {
            float[] w = new float[BF16_ROWS * K];
            for (int g = g0; g < g1; g++) {
                int j0 = g * BF16_ROWS, n = Math.min(BF16_ROWS, N - j0);
                for (int r = 0; r < n; r++) widen(B16, bOff + (j0 + r) * ldb, w, r * K, K);
                smallNT(M, n, K, fa, fao, fla, w, 0, K, accumulate, C, cOff + j0, ldc, 0);
            }
        });
    }

    private static final jdk.incubator.vector.VectorSpecies<Short> S16 =
            jdk.incubator.vector.VectorSpecies.of(short.class, jdk.incubator.vector.VectorShape.forBitSize(L * 16));
    private static final jdk.incubator.vector.VectorSpecies<Integer> SI = jdk.incubator.vector.IntVector.SPECIES_PREFERRED;

    /** dst[d..d+n) = the fp32 values of bf16 src[s..s+n) (exact: bf16 is fp32's upper half). */
    static void widen(short[] src, int s, float[] dst, int d, int n) {
        int i = 0;
        if (SI.length() == L) {
            for (int ub = n - n % L; i < ub; i += L)
                ((jdk.incubator.vector.IntVector) jdk.incubator.vector.ShortVector.fromArray(S16, src, s + i)
                        .convertShape(jdk.incubator.vector.VectorOperators.S2I, SI, 0))
                        .lanewise(jdk.incubator.vector.VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, d + i);
        }
        for (; i < n; i++) dst[d + i] = bf16(src[s + i]);
    }

    /** Columns [j0, j1) of C = A·B, A row-major M×K, B row-major K×N. */
    private static void smallNN(int M, int j0, int j1, int K, float[] A, int aOff, int lda, float[] B, int bOff,
                                int ldb, boolean add, float[] C, int cOff, int ldc) {
        int m4 = M - M % 4;
        for (int i = 0; i < m4; i += 4) {
            smallNN4(j0, j1, K, A, aOff + i * lda, lda, B, bOff, ldb, add, C, cOff + i * ldc, ldc);
        }
        // Leftover rows one at a time, four vectors wide (four independent FMA chains).
        int j = j0;
        for (; j + 4 * L <= j1; j += 4 * L) {
            for (int i = m4; i < M; i++) {
                FloatVector c0 = FloatVector.zero(S), c1 = c0, c2 = c0, c3 = c0;
                int ar = aOff + i * lda;
                for (int k = 0; k < K; k++) {
                    FloatVector a = FloatVector.broadcast(S, A[ar + k]);
                    int b = bOff + k * ldb + j;
                    c0 = a.fma(FloatVector.fromArray(S, B, b), c0);
                    c1 = a.fma(FloatVector.fromArray(S, B, b + L), c1);
                    c2 = a.fma(FloatVector.fromArray(S, B, b + 2 * L), c2);
                    c3 = a.fma(FloatVector.fromArray(S, B, b + 3 * L), c3);
                }
                int c = cOff + i * ldc + j;
                if (add) {
                    c0 = c0.add(FloatVector.fromArray(S, C, c));
                    c1 = c1.add(FloatVector.fromArray(S, C, c + L));
                    c2 = c2.add(FloatVector.fromArray(S, C, c + 2 * L));
                    c3 = c3.add(FloatVector.fromArray(S, C, c + 3 * L));
                }
                c0.intoArray(C, c);
                c1.intoArray(C, c + L);
                c2.intoArray(C, c + 2 * L);
                c3.intoArray(C, c + 3 * L);
            }
        }
        for (; j < j1; j += L) {
            VectorMask<Float> m = S.indexInRange(j, j1);
            for (int i = m4; i < M; i++) {
                FloatVector c0 = FloatVector.zero(S);
                int ar = aOff + i * lda;
                for (int k = 0; k < K; k++) {
                    c0 = FloatVector.broadcast(S, A[ar + k]).fma(FloatVector.fromArray(S, B, bOff + k * ldb + j, m), c0);
                }
                int c = cOff + i * ldc + j;
                if (add) c0 = c0.add(FloatVector.fromArray(S, C, c, m));
                c0.intoArray(C, c, m);
            }
        }
    }

    /** Four rows × two vectors per step: B is read once for four rows of A. */
    private static void smallNN4(int j0, int j1, int K, float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                                 boolean add, float[] C, int cOff, int ldc) {
        int a0 = aOff, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
        for (int j = j0; j < j1; j += 2 * L) {
            VectorMask<Float> m0 = S.indexInRange(j, j1), m1 = S.indexInRange(j + L, j1);
            boolean full = j + 2 * L <= j1;
            FloatVector z = FloatVector.zero(S);
            FloatVector c00 = z, c01 = z, c10 = z, c11 = z, c20 = z, c21 = z, c30 = z, c31 = z;
            for (int k = 0; k < K; k++) {
                int b = bOff + k * ldb + j;
                FloatVector b0, b1;
                if (full) {
                    b0 = FloatVector.fromArray(S, B, b);
                    b1 = FloatVector.fromArray(S, B, b + L);
                } else {
                    b0 = FloatVector.fromArray(S, B, b, m0);
                    b1 = FloatVector.fromArray(S, B, b + L, m1);
                }
                FloatVector x = FloatVector.broadcast(S, A[a0 + k]);
                c00 = x.fma(b0, c00);
                c01 = x.fma(b1, c01);
                x = FloatVector.broadcast(S, A[a1 + k]);
                c10 = x.fma(b0, c10);
                c11 = x.fma(b1, c11);
                x = FloatVector.broadcast(S, A[a2 + k]);
                c20 = x.fma(b0, c20);
                c21 = x.fma(b1, c21);
                x = FloatVector.broadcast(S, A[a3 + k]);
                c30 = x.fma(b0, c30);
                c31 = x.fma(b1, c31);
            }
            store2(c00, c01, C, cOff + j, m0, m1, add);
            store2(c10, c11, C, cOff + ldc + j, m0, m1, add);
            store2(c20, c21, C, cOff + 2 * ldc + j, m0, m1, add);
            store2(c30, c31, C, cOff + 3 * ldc + j, m0, m1, add);
        }
    }

    private static void store2(FloatVector v0, FloatVector v1, float[] C, int c, VectorMask<Float> m0,
                               VectorMask<Float> m1, boolean add) {
        if (add) {
            v0 = v0.add(FloatVector.fromArray(S, C, c, m0));
            v1 = v1.add(FloatVector.fromArray(S, C, c + L, m1));
        }
        v0.intoArray(C, c, m0);
        v1.intoArray(C, c + L, m1);
    }

    /** Columns [j0, j1) of C = A·Bᵀ, A row-major M×K, B row-major N×K: dot products along K. */
    private static void smallNT(int M, int j1, int K, float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                                boolean add, float[] C, int cOff, int ldc, int j0) {
        int kv = K - K % L;
        int j = j0;
        for (; j + 4 <= j1; j += 4) {
            int b0 = bOff + j * ldb, b1 = b0 + ldb, b2 = b1 + ldb, b3 = b2 + ldb;
            for (int i = 0; i < M; i++) {
                int ar = aOff + i * lda;
                FloatVector s0 = FloatVector.zero(S), s1 = s0, s2 = s0, s3 = s0;
                for (int k = 0; k < kv; k += L) {
                    FloatVector a = FloatVector.fromArray(S, A, ar + k);
                    s0 = a.fma(FloatVector.fromArray(S, B, b0 + k), s0);
                    s1 = a.fma(FloatVector.fromArray(S, B, b1 + k), s1);
                    s2 = a.fma(FloatVector.fromArray(S, B, b2 + k), s2);
                    s3 = a.fma(FloatVector.fromArray(S, B, b3 + k), s3);
                }
                // VecMath.hsum, not reduceLanes(ADD): the latter sums in a different order once the JIT compiles
                // it, so a repeated call could change the last bit (Gpt2ModelTest.repeatedStepsAreBitwiseIdentical).
                float d0 = VecMath.hsum(s0), d1 = VecMath.hsum(s1);
                float d2 = VecMath.hsum(s2), d3 = VecMath.hsum(s3);
                for (int k = kv; k < K; k++) {
                    float a = A[ar + k];
                    d0 += a * B[b0 + k];
                    d1 += a * B[b1 + k];
                    d2 += a * B[b2 + k];
                    d3 += a * B[b3 + k];
                }
                int c = cOff + i * ldc + j;
                if (add) {
                    d0 += C[c];
                    d1 += C[c + 1];
                    d2 += C[c + 2];
                    d3 += C[c + 3];
                }
                C[c] = d0;
                C[c + 1] = d1;
                C[c + 2] = d2;
                C[c + 3] = d3;
            }
        }
        for (; j < j1; j++) {
            int b0 = bOff + j * ldb;
            for (int i = 0; i < M; i++) {
                int ar = aOff + i * lda;
                FloatVector s0 = FloatVector.zero(S);
                for (int k = 0; k < kv; k += L) {
                    s0 = FloatVector.fromArray(S, A, ar + k).fma(FloatVector.fromArray(S, B, b0 + k), s0);
                }
                float d0 = VecMath.hsum(s0);
                for (int k = kv; k < K; k++) d0 += A[ar + k] * B[b0 + k];
                int c = cOff + i * ldc + j;
                C[c] = add ? d0 + C[c] : d0;
            }
        }
    }

    /**
     * Vector registers the ISA has: AVX-512 (16 float lanes on x86) and AArch64 (NEON, SVE) have 32, AVX2 and SSE 16.
     */
    static int registers(int lanes, String osArch) {
        boolean arm = osArch.equals("aarch64") || osArch.equals("arm64");
        return arm || lanes >= 16 ? 32 : 16;
    }

    /**
     * The micro-tile rows for a vector width and register count: an MR×(2 vectors) tile needs 2·MR accumulators,
     * 2 B vectors and a broadcast. 16 registers (AVX2): 8 rows (16 accumulators; C2 folds the B loads into the FMAs),
     * measured faster there than 6×16, 4×24, 12×16 and 8×24 (docs/PERFORMANCE-gemm.md). 32 registers: 12 rows
     * (27 registers). On AVX-512 (Zen 4, 2 vCPUs, loaded, 8×32 vs 12×32 alternated): bare kernel 1 thread medians
     * 140 vs 160 GFLOP/s, 2 threads 84 vs 93 (12 ahead in every round); 512×768·768×2304 GEMM a tie (109 vs 111 on
     * 1 thread, 129 vs 130 on 2); GPT-2 110M full fine-tuning steps 145–167 vs 153–177 tokens/s. NEON (4 lanes, 32
     * registers) takes 12 rows by the same count, unmeasured.
     */
    static int tileRows(int lanes, int registers) {
        return registers >= 32 ? 12 : 8;
    }

    /** This JVM's float lanes per vector (4 with NEON or {@code -XX:MaxVectorSize=16}, 8 with AVX2, 16 with AVX-512). */
    static int lanes() {
        return L;
    }

    /** This instance's micro-tile and what it was chosen from, e.g. {@code 12x32 (16 lanes, 32 registers)}. */
    public String tile() {
        return mr + "x" + NR + " (" + L + " lanes, " + REGISTERS + " registers)";
    }

    /** The Java micro-tile alone, e.g. {@code 12x32} (the fp32 products' on the java backend, the bf16 ones' on both). */
    public String tileShape() {
        return mr + "x" + NR;
    }

    /** {@code native} or {@code java}: what computes this instance's fp32 products. */
    public String backend() {
        return blas != null ? "native" : "java";
    }

    /** {@code fp32}, {@code bf16} (oneDNN) or {@code bf16-emulated}: how this instance computes its products ({@link Bf16}). */
    public String precision() {
        return switch (bf16) {
            case OFF -> "fp32";
            case NATIVE -> "bf16";
            case EMULATED -> "bf16-emulated";
        };
    }

    /**
     * One line for reports: the backend, the native library's build, the Java tile (bf16-stored weights use it), and
     * in bf16 mode what computes the products (oneDNN and the kernel it picks for a 512×768·768×768 product).
     */
    public String describe() {
        String fp32 = blas != null ? "native (" + blas.description() + "); java tile " + tile() + " for bf16-stored weights"
                : "java, tile " + tile();
        return switch (bf16) {
            case OFF -> fp32;
            case NATIVE -> fp32 + "; bf16 products on " + dnnl.description() + " (" + dnnl.kernel(512, 768, 768) + ")";
            case EMULATED -> fp32 + "; bf16 products emulated (inputs rounded to bf16, fp32 kernels)";
        };
    }

    /**
     * Measures this machine's sgemm GFLOP/s with this instance's threads on 1024×1024×1024 products, for MFU reports.
     * Rounds of five products are repeated until a round's best is within 2 % of the previous one (the micro-kernel
     * takes the JIT a few seconds to compile), at most about 6 s; the best product of the last round is reported.
     */
    public double measurePeakGflops() {
        int n = 1024;
        float[] a = new float[n * n], b = new float[n * n], c = new float[n * n];
        SplittableRandom rnd = new SplittableRandom(1234);
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) rnd.nextDouble(-1, 1);
            b[i] = (float) rnd.nextDouble(-1, 1);
        }
        long deadline = System.nanoTime() + 6_000_000_000L;
        double previous = 0, best = 0;
        for (int round = 0; round < 2 || System.nanoTime() < deadline; round++) {
            best = 0;
            for (int r = 0; r < 5; r++) {
                long t0 = System.nanoTime();
                sgemm(false, false, n, n, n, a, 0, n, b, 0, n, r == 0 ? 0f : 1f, c, 0, n);
                best = Math.max(best, 2.0 * n * n * n / (System.nanoTime() - t0));
            }
            if (round > 0 && best <= previous * 1.02) break;
            previous = Math.max(previous, best);
        }
        return Math.max(best, previous);
    }

    static void checkArgs(boolean transA, boolean transB, int M, int N, int K,
                          float[] A, int aOff, int lda, float[] B, int bOff, int ldb,
                          float beta, float[] C, int cOff, int ldc) {
        checkArgs(transA, transB, M, N, K, A, aOff, lda, B == null ? 0 : B.length, bOff, ldb, beta, C, cOff, ldc);
    }

    /** {@link #checkArgs} with only B's length known (B in another element type). */
    static void checkArgs(boolean transA, boolean transB, int M, int N, int K,
                          float[] A, int aOff, int lda, int bLength, int bOff, int ldb,
                          float beta, float[] C, int cOff, int ldc) {
        if (M < 0 || N < 0 || K < 0) throw new IllegalArgumentException("negative size M=" + M + " N=" + N + " K=" + K);
        if (beta != 0f && beta != 1f) throw new IllegalArgumentException("beta must be 0 or 1, got " + beta);
        if (M == 0 || N == 0) return;
        checkMatrix("A", A.length, aOff, lda, transA ? K : M, transA ? M : K);
        checkMatrix("B", bLength, bOff, ldb, transB ? N : K, transB ? K : N);
        checkMatrix("C", C.length, cOff, ldc, M, N);
    }

    private static void checkMatrix(String name, int length, int off, int ld, int rows, int cols) {
        if (rows == 0 || cols == 0) return;
        if (off < 0 || ld < cols || off + (long) (rows - 1) * ld + cols > length) {
            throw new IllegalArgumentException(name + ": " + rows + "×" + cols + " at offset " + off + " with ld " + ld
                    + " does not fit an array of " + length);
        }
    }

    private static int ceilDiv(int a, int b) {
        return (a + b - 1) / b;
    }
}
