package dev.cpt4j.tensor.cpu;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The bf16 compute mode of {@link Gemm}, as torch's CPU autocast computes a matmul: both inputs rounded to bfloat16
 * (round to nearest even, as {@code tensor.to(torch.bfloat16)}), products accumulated in fp32, the result fp32.
 * Weights, gradients, optimizer state, norms, softmax and the loss stay fp32 — they never pass through here.
 *
 * <p>Modes ({@value #PROPERTY}, which {@link Gemm#Gemm(dev.cpt4j.tensor.Parallel)} reads; {@code --bf16} on the CLI):
 * <ul>
 *   <li>{@link Mode#OFF}: fp32 products (the default);</li>
 *   <li>{@link Mode#NATIVE}: the bf16 products run on oneDNN ({@link Dnnl}), on the CPU's bf16 dot-product / AMX
 *       instructions where it has them;</li>
 *   <li>{@link Mode#EMULATED}: the inputs are rounded to bf16 in fp32 arrays and multiplied by the fp32 kernels —
 *       the same numbers (bf16·bf16 products are exact in fp32), no faster than fp32; for CPUs without bf16
 *       instructions and for checking the native path.</li>
 * </ul>
 */
public final class Bf16 {
    private Bf16() {}

    /** The system property {@link Gemm} reads its bf16 mode from: {@code native}, {@code emulated}, or unset (off). */
    public static final String PROPERTY = "cpt4j.bf16";

    /** How a {@link Gemm} computes its products. */
    public enum Mode {
        OFF, NATIVE, EMULATED;

        /** The mode {@value #PROPERTY} names ({@code native}, {@code emulated}, {@code off}); {@link #OFF} when unset. */
        public static Mode fromProperty() {
            String v = System.getProperty(PROPERTY);
            if (v == null || v.isBlank()) return OFF;
            return switch (v.trim().toLowerCase(Locale.ROOT)) {
                case "native" -> NATIVE;
                case "emulated" -> EMULATED;
                case "off", "fp32" -> OFF;
                default -> throw new IllegalArgumentException("unknown bf16 mode '" + v + "'; use native or emulated");
            };
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * Why {@link Mode#NATIVE} cannot run here — oneDNN did not load, or has no bf16 matmul for this CPU (it needs
     * AVX-512 at least) — or null when it can.
     */
    public static String nativeUnavailableReason() {
        if (!Dnnl.available()) return Dnnl.loadError();
        return Dnnl.get().bf16Supported() ? null : Dnnl.get().description() + " has no bf16 matmul for this CPU";
    }

    private static final List<String> X86_FLAGS = List.of("avx512_bf16", "amx_bf16");

    /**
     * The CPU's bf16 arithmetic instructions as /proc/cpuinfo names them ({@code avx512_bf16}, {@code amx_bf16} on
     * x86-64, {@code bf16} on AArch64), empty when it has none or the file cannot be read (not Linux).
     * {@code -Dcpt4j.cpuinfo=FILE} reads another file (tests: a CPU without them).
     */
    public static List<String> cpuInstructions() {
        try (Stream<String> lines = Files.lines(Path.of(System.getProperty("cpt4j.cpuinfo", "/proc/cpuinfo")))) {
            return cpuInstructions(lines.filter(l -> l.startsWith("flags") || l.startsWith("Features")).findFirst().orElse(""));
        } catch (IOException | RuntimeException e) {
            return List.of();
        }
    }

    /** {@link #cpuInstructions()} from one /proc/cpuinfo {@code flags} (x86) or {@code Features} (AArch64) line. */
    static List<String> cpuInstructions(String line) {
        int colon = line.indexOf(':');
        Set<String> flags = Set.of((colon < 0 ? "" : line.substring(colon + 1)).trim().split("\\s+"));
        if (line.startsWith("Features")) return flags.contains("bf16") ? List.of("bf16") : List.of();
        return X86_FLAGS.stream().filter(flags::contains).collect(Collectors.toList());
    }

    /** {@code f} rounded to the nearest bf16 value, ties to even (NaN stays NaN), as an fp32 value. */
    public static float round(float f) {
        return Float.intBitsToFloat(bits(f) << 16);
    }

    /** The bf16 bits of {@code f} rounded to nearest even; a NaN keeps its sign and top payload bits, made quiet. */
    static int bits(float f) {
        int b = Float.floatToRawIntBits(f);
        if (Float.isNaN(f)) return ((b >>> 16) | 0x40) & 0xFFFF;
        return (b + 0x7FFF + ((b >>> 16) & 1)) >>> 16;
    }

    private static final VectorSpecies<Float> SF = FloatVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Integer> SI = IntVector.SPECIES_PREFERRED;
    private static final VectorSpecies<Short> SS = VectorSpecies.of(short.class,
            jdk.incubator.vector.VectorShape.forBitSize(Math.max(64, SF.vectorBitSize() / 2)));
    private static final int L = SF.length();
    private static final boolean VECTOR = SI.length() == L && SS.length() == L;

    /** The rounding of {@link #bits} on a vector of fp32 bits: NaN lanes keep their upper half, made quiet. */
    private static IntVector roundBits(FloatVector v) {
        IntVector b = v.reinterpretAsInts();
        IntVector r = b.add(b.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF).lanewise(VectorOperators.LSHR, 16);
        VectorMask<Integer> nan = v.test(VectorOperators.IS_NAN).cast(SI);
        return r.blend(b.lanewise(VectorOperators.LSHR, 16).or(0x40), nan);
    }

    /** {@code dst[d..d+n)} = {@code src[s..s+n)} rounded to bf16 (still fp32 values). */
    static void round(float[] src, int s, float[] dst, int d, int n) {
        int i = 0;
        for (int ub = n - n % L; i < ub; i += L)
            roundBits(FloatVector.fromArray(SF, src, s + i)).lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats().intoArray(dst, d + i);
        for (; i < n; i++) dst[d + i] = round(src[s + i]);
    }

    /** Writes {@code src[s..s+n)} rounded to bf16 as 16-bit values at byte offset {@code byteOff} of native memory. */
    static void round(float[] src, int s, MemorySegment dst, long byteOff, int n) {
        int i = 0;
        if (VECTOR) {
            for (int ub = n - n % L; i < ub; i += L)
                ((ShortVector) roundBits(FloatVector.fromArray(SF, src, s + i)).convertShape(VectorOperators.I2S, SS, 0))
                        .intoMemorySegment(dst, byteOff + 2L * i, ByteOrder.nativeOrder());
        }
        for (; i < n; i++) dst.set(java.lang.foreign.ValueLayout.JAVA_SHORT, byteOff + 2L * i, (short) bits(src[s + i]));
    }
}
