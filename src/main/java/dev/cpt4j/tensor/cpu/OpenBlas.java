package dev.cpt4j.tensor.cpu;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * OpenBLAS's {@code cblas_sgemm} bound through the FFM API (java.lang.foreign): the native backend of {@link Gemm}.
 *
 * <p>Where the library comes from: {@code -Dcpt4j.openblas=/path/to/libopenblas.so} if given, else the
 * {@code org.bytedeco:openblas} platform jar on the class path ({@code org/bytedeco/openblas/<platform>/}, e.g.
 * {@code linux-x86_64}). Its shared objects — {@code libopenblas.so.0} and the Fortran runtime it links
 * ({@code libgfortran.so.5}, {@code libquadmath.so.0}) — are copied once to a cache directory ({@link NativeLibs})
 * and opened from there, dependencies first. JavaCPP's own
 * loader is not used: it would also load its JNI wrappers, and the FFM downcall needs only the C symbol.
 *
 * <p>The downcall is {@link Linker.Option#critical(boolean) critical} with heap access, so {@code float[]} arrays are
 * passed in place (no copy to native memory); the GC waits while a product runs, which is what a GEMM of a training
 * step wants anyway.
 *
 * <p>Threads: OpenBLAS's own count is set to 1 ({@code openblas_set_num_threads(1)}) once at load, and {@link Gemm}
 * splits each product over its {@link dev.cpt4j.tensor.Parallel} workers, one single-threaded call each (OpenBLAS
 * is reentrant): the process runs exactly our thread count, and no OpenBLAS pool spins against our workers between
 * products. Each element of C is computed by one call over all of K, the split depends only on the thread count, so
 * results are deterministic for a given backend and thread count (not bitwise equal across counts: a different
 * split can put an element in an edge tile of another shape).
 *
 * <p>What it is not: a general BLAS binding (sgemm only; the bf16 products stay on the Java kernels).
 */
final class OpenBlas {
    private static final int ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112;
    /** Loaded in this order: each one's dependencies before it (by soname, so the copies here are used). */
    private static final List<String> LINUX_LIBRARIES = List.of("libquadmath.so.0", "libgfortran.so.5", "libopenblas.so.0");

    private final MethodHandle sgemm;
    private final String description;

    private OpenBlas(SymbolLookup lib) {
        Linker linker = Linker.nativeLinker();
        sgemm = linker.downcallHandle(lib.findOrThrow("cblas_sgemm"), FunctionDescriptor.ofVoid(JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, JAVA_FLOAT,
                ADDRESS, JAVA_INT), Linker.Option.critical(true));
        MethodHandle setThreads = linker.downcallHandle(lib.findOrThrow("openblas_set_num_threads"), FunctionDescriptor.ofVoid(JAVA_INT));
        MethodHandle config = linker.downcallHandle(lib.findOrThrow("openblas_get_config"), FunctionDescriptor.of(ADDRESS));
        MethodHandle core = linker.downcallHandle(lib.findOrThrow("openblas_get_corename"), FunctionDescriptor.of(ADDRESS));
        try {
            setThreads.invokeExact(1);
            description = cString((MemorySegment) config.invokeExact()).trim() + ", core " + cString((MemorySegment) core.invokeExact());
        } catch (Throwable t) {
            throw new IllegalStateException("OpenBLAS did not answer openblas_get_config", t);
        }
    }

    private record Loaded(OpenBlas lib, String error) {}

    /** Loaded on first use, once per JVM (a native library cannot be loaded twice anyway). */
    private static final class Holder {
        static final Loaded LOADED = load();
    }

    /** Whether the library loaded. */
    static boolean available() {
        return Holder.LOADED.lib != null;
    }

    /** Why the library did not load (null when it did). */
    static String loadError() {
        return Holder.LOADED.error;
    }

    /** The loaded library; call only when {@link #available()}. */
    static OpenBlas get() {
        if (!available()) throw new IllegalStateException(loadError());
        return Holder.LOADED.lib;
    }

    /** OpenBLAS's build line and the kernel core it picked, e.g. {@code OpenBLAS 0.3.30 DYNAMIC_ARCH … core Zen}. */
    String description() {
        return description;
    }

    /**
     * {@code C = beta·C + op(A)·op(B)} row-major, the arguments as {@link Gemm#sgemm} (already checked), M, N, K ≥ 1; single-threaded, callable from several threads at once.
     */
    void sgemm(boolean transA, boolean transB, int M, int N, int K, float[] A, int aOff, int lda, float[] B, int bOff,
               int ldb, float beta, float[] C, int cOff, int ldc) {
        try {
            sgemm.invokeExact(ROW_MAJOR, transA ? TRANS : NO_TRANS, transB ? TRANS : NO_TRANS, M, N, K, 1f,
                    at(A, aOff), lda, at(B, bOff), ldb, beta, at(C, cOff), ldc);
        } catch (Throwable t) {
            throw new IllegalStateException("cblas_sgemm failed", t);
        }
    }

    private static MemorySegment at(float[] a, int off) {
        MemorySegment s = MemorySegment.ofArray(a);
        return off == 0 ? s : s.asSlice(4L * off);
    }

    private static String cString(MemorySegment p) {
        return p.equals(MemorySegment.NULL) ? "?" : p.reinterpret(4096).getString(0);
    }

    private static Loaded load() {
        try {
            String explicit = System.getProperty("cpt4j.openblas");
            List<Path> libs = explicit != null && !explicit.isBlank() ? List.of(Path.of(explicit))
                    : NativeLibs.extract("openblas", LINUX_LIBRARIES, "libopenblas.so.0");
            SymbolLookup last = null;
            for (Path p : libs) last = SymbolLookup.libraryLookup(p, Arena.global());
            return new Loaded(new OpenBlas(last), null);
        } catch (IOException | RuntimeException | LinkageError e) {
            String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            if (NativeLibs.platform() == null) why += " (pass -Dcpt4j.openblas=/path/to/libopenblas)";
            return new Loaded(null, "the native library (OpenBLAS) did not load: " + why);
        }
    }

}
