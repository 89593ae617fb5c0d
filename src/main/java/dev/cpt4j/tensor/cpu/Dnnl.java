package dev.cpt4j.tensor.cpu;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * oneDNN's matmul primitive bound through the FFM API: the bf16 products of {@link Gemm}'s bf16 mode
 * ({@code dst_f32 = src_bf16 · weights_bf16}, fp32 accumulation), on the CPU's bf16 dot-product or AMX instructions
 * where it has them (oneDNN picks its kernel at run time: {@link #kernel}).
 *
 * <p>Where the library comes from: the {@code org.bytedeco:dnnl} platform jar ({@code libdnnl.so.3} and the OpenMP
 * runtime it links, {@code libgomp.so.1}) and {@code org.bytedeco:opencl} ({@code libOpenCL.so.1}, the ICD loader
 * bytedeco's build links for its GPU engine, never used here), copied once to a cache directory ({@link NativeLibs}) and
 * opened dependencies first. JavaCPP's loader is not used.
 *
 * <p>Threads: every calling thread sets its OpenMP thread count to 1 ({@code omp_set_num_threads}, a per-thread
 * setting) the first time it calls, and {@link Gemm} splits each product over its own workers, one single-threaded
 * primitive each, as it does with OpenBLAS: no OpenMP team spins against our workers between products. Each thread
 * builds and keeps its own primitives (keyed by shape, strides and transposes) and its own stream: oneDNN's default
 * scratchpad is per thread, so a primitive must run on the thread that created it.
 *
 * <p>Operands are native memory (a primitive keeps its buffers' addresses across calls, which a heap array cannot give):
 * {@link Gemm} rounds A and B to bf16 into native buffers and copies C back.
 *
 * <p>What it is not: a general oneDNN binding (one primitive kind, plain strided layouts, no post-ops).
 */
final class Dnnl {
    private static final int DT_BF16 = 2, DT_F32 = 3, ENGINE_CPU = 1, STREAM_DEFAULT = 1, QUERY_IMPL_INFO = 8;
    private static final int ARG_SRC = 1, ARG_DST = 17, ARG_WEIGHTS = 33, MAX_DIMS = 12;
    /** Loaded in this order: each one's dependencies before it (by soname, so the copies here are used). */
    private static final List<String> DNNL_LIBRARIES = List.of("libgomp.so.1", "libdnnl.so.3");
    /** One {@code dnnl_exec_arg_t}: {int arg; dnnl_memory_t memory;}. */
    private static final MemoryLayout EXEC_ARG = MemoryLayout.structLayout(JAVA_INT.withName("arg"),
            MemoryLayout.paddingLayout(4), ADDRESS.withName("memory"));

    private final MethodHandle streamCreate, mdCreate, mdDestroy, matmulPd, pdDestroy, pdQuery, primCreate, memCreate,
            memSetHandle, execute, streamWait, ompSetThreads;
    private final MemorySegment engine;
    private final String description;

    private Dnnl(SymbolLookup gomp, SymbolLookup lib) throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle engineCreate = handle(linker, lib, "dnnl_engine_create", ADDRESS, JAVA_INT, JAVA_LONG);
        streamCreate = handle(linker, lib, "dnnl_stream_create", ADDRESS, ADDRESS, JAVA_INT);
        mdCreate = handle(linker, lib, "dnnl_memory_desc_create_with_strides", ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS);
        mdDestroy = handle(linker, lib, "dnnl_memory_desc_destroy", ADDRESS);
        matmulPd = handle(linker, lib, "dnnl_matmul_primitive_desc_create", ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS);
        pdDestroy = handle(linker, lib, "dnnl_primitive_desc_destroy", ADDRESS);
        pdQuery = handle(linker, lib, "dnnl_primitive_desc_query", ADDRESS, JAVA_INT, JAVA_INT, ADDRESS);
        primCreate = handle(linker, lib, "dnnl_primitive_create", ADDRESS, ADDRESS);
        memCreate = handle(linker, lib, "dnnl_memory_create", ADDRESS, ADDRESS, ADDRESS, ADDRESS);
        memSetHandle = handle(linker, lib, "dnnl_memory_set_data_handle", ADDRESS, ADDRESS);
        execute = handle(linker, lib, "dnnl_primitive_execute", ADDRESS, ADDRESS, JAVA_INT, ADDRESS);
        streamWait = handle(linker, lib, "dnnl_stream_wait", ADDRESS);
        ompSetThreads = linker.downcallHandle(gomp.findOrThrow("omp_set_num_threads"), FunctionDescriptor.ofVoid(JAVA_INT));
        MethodHandle version = linker.downcallHandle(lib.findOrThrow("dnnl_version"), FunctionDescriptor.of(ADDRESS));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment out = a.allocate(ADDRESS);
            check((int) engineCreate.invokeExact(out, ENGINE_CPU, 0L), "dnnl_engine_create");
            engine = out.get(ADDRESS, 0);
        }
        MemorySegment v = ((MemorySegment) version.invokeExact()).reinterpret(12);
        description = "oneDNN " + v.get(JAVA_INT, 0) + "." + v.get(JAVA_INT, 4) + "." + v.get(JAVA_INT, 8);
    }

    private static MethodHandle handle(Linker linker, SymbolLookup lib, String name, MemoryLayout... args) {
        return linker.downcallHandle(lib.findOrThrow(name), FunctionDescriptor.of(JAVA_INT, args));
    }

    private static void check(int status, String what) {
        if (status != 0) throw new IllegalStateException(what + " failed: oneDNN status " + status);
    }

    private record Loaded(Dnnl lib, String error) {}

    /** Loaded on first use, once per JVM. */
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
    static Dnnl get() {
        if (!available()) throw new IllegalStateException(loadError());
        return Holder.LOADED.lib;
    }

    /** e.g. {@code oneDNN 3.8.1}. */
    String description() {
        return description;
    }

    private static Loaded load() {
        try {
            List<Path> libs = new ArrayList<>(NativeLibs.extract("opencl", List.of("libOpenCL.so.1"), "libOpenCL.so.1"));
            libs.addAll(NativeLibs.extract("dnnl", DNNL_LIBRARIES, "libdnnl.so.3"));
            SymbolLookup gomp = null, last = null;
            for (Path p : libs) {
                last = SymbolLookup.libraryLookup(p, Arena.global());
                if (p.getFileName().toString().startsWith("libgomp")) gomp = last;
            }
            if (gomp == null) throw new IOException("libgomp.so.1 is missing from org.bytedeco:dnnl");
            return new Loaded(new Dnnl(gomp, last), null);
        } catch (Throwable e) {
            String why = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
            return new Loaded(null, "the native bf16 library (oneDNN) did not load: " + why);
        }
    }

    /** A primitive for one shape with its memory objects (their data handles are set per call). */
    private record Prim(MemorySegment primitive, MemorySegment src, MemorySegment wei, MemorySegment dst, String kernel) {}

    private record Key(boolean transA, boolean transB, int m, int n, int k, int lda, int ldb, int ldc) {}

    /** A thread's stream, primitives and argument block. */
    private final class PerThread {
        final Arena arena = Arena.ofAuto();
        final Map<Key, Prim> prims = new HashMap<>();
        final MemorySegment stream, args = arena.allocate(EXEC_ARG, 3);

        PerThread() throws Throwable {
            ompSetThreads.invokeExact(1);
            MemorySegment out = arena.allocate(ADDRESS);
            check((int) streamCreate.invokeExact(out, engine, STREAM_DEFAULT), "dnnl_stream_create");
            stream = out.get(ADDRESS, 0);
            args.set(JAVA_INT, 0, ARG_SRC);
            args.set(JAVA_INT, EXEC_ARG.byteSize(), ARG_WEIGHTS);
            args.set(JAVA_INT, 2 * EXEC_ARG.byteSize(), ARG_DST);
        }

        Prim prim(Key key) throws Throwable {
            Prim p = prims.get(key);
            if (p == null) prims.put(key, p = create(key));
            return p;
        }

        private Prim create(Key k) throws Throwable {
            try (Arena a = Arena.ofConfined()) {
                MemorySegment src = md(a, DT_BF16, k.m, k.k, k.transA ? 1 : k.lda, k.transA ? k.lda : 1);
                MemorySegment wei = md(a, DT_BF16, k.k, k.n, k.transB ? 1 : k.ldb, k.transB ? k.ldb : 1);
                MemorySegment dst = md(a, DT_F32, k.m, k.n, k.ldc, 1);
                MemorySegment out = a.allocate(ADDRESS);
                check((int) matmulPd.invokeExact(out, engine, src, wei, MemorySegment.NULL, dst, MemorySegment.NULL),
                        "dnnl_matmul_primitive_desc_create");
                MemorySegment pd = out.get(ADDRESS, 0);
                MemorySegment name = a.allocate(ADDRESS);
                String kernel = (int) pdQuery.invokeExact(pd, QUERY_IMPL_INFO, 0, name) == 0
                        ? name.get(ADDRESS, 0).reinterpret(256).getString(0) : "?";
                check((int) primCreate.invokeExact(out, pd), "dnnl_primitive_create");
                MemorySegment prim = out.get(ADDRESS, 0);
                check((int) pdDestroy.invokeExact(pd), "dnnl_primitive_desc_destroy");
                Prim p = new Prim(prim, memory(a, src), memory(a, wei), memory(a, dst), kernel);
                for (MemorySegment md : List.of(src, wei, dst)) check((int) mdDestroy.invokeExact(md), "dnnl_memory_desc_destroy");
                return p;
            }
        }

        private MemorySegment md(Arena a, int type, long rows, long cols, long rowStride, long colStride) throws Throwable {
            // A size-1 dimension's stride is made the outermost: oneDNN 3.8 computed a 1×K transposed source
            // (strides {1, lda}, lda > 1) wrongly.
            if (rows == 1) rowStride = Math.max(rowStride, cols * colStride);
            if (cols == 1) colStride = Math.max(colStride, rows * rowStride);
            MemorySegment dims = a.allocate(JAVA_LONG, MAX_DIMS), strides = a.allocate(JAVA_LONG, MAX_DIMS);
            dims.setAtIndex(JAVA_LONG, 0, rows);
            dims.setAtIndex(JAVA_LONG, 1, cols);
            strides.setAtIndex(JAVA_LONG, 0, rowStride);
            strides.setAtIndex(JAVA_LONG, 1, colStride);
            MemorySegment out = a.allocate(ADDRESS);
            check((int) mdCreate.invokeExact(out, 2, dims, type, strides), "dnnl_memory_desc_create_with_strides");
            return out.get(ADDRESS, 0);
        }

        private MemorySegment memory(Arena a, MemorySegment md) throws Throwable {
            MemorySegment out = a.allocate(ADDRESS);
            check((int) memCreate.invokeExact(out, md, engine, MemorySegment.NULL), "dnnl_memory_create");
            return out.get(ADDRESS, 0);
        }
    }

    private final ThreadLocal<PerThread> perThread = ThreadLocal.withInitial(() -> {
        try {
            return new PerThread();
        } catch (Throwable t) {
            throw new IllegalStateException("oneDNN: could not set up a stream for this thread", t);
        }
    });

    /**
     * {@code C = op(A)·op(B)} on this thread, single-threaded: A and B bf16, C fp32, all row-major native memory.
     * op(A) is M×K at {@code a} ({@code a[i*lda + k]}, or if transA {@code a[k*lda + i]}), op(B) K×N at {@code b}
     * likewise, C M×N at {@code c} with row stride ldc (overwritten).
     */
    void matmul(boolean transA, boolean transB, int M, int N, int K, MemorySegment a, int lda, MemorySegment b, int ldb,
                MemorySegment c, int ldc) {
        try {
            PerThread t = perThread.get();
            Prim p = t.prim(new Key(transA, transB, M, N, K, lda, ldb, ldc));
            check((int) memSetHandle.invokeExact(p.src, a), "dnnl_memory_set_data_handle");
            check((int) memSetHandle.invokeExact(p.wei, b), "dnnl_memory_set_data_handle");
            check((int) memSetHandle.invokeExact(p.dst, c), "dnnl_memory_set_data_handle");
            t.args.set(ADDRESS, 8, p.src);
            t.args.set(ADDRESS, EXEC_ARG.byteSize() + 8, p.wei);
            t.args.set(ADDRESS, 2 * EXEC_ARG.byteSize() + 8, p.dst);
            check((int) execute.invokeExact(p.primitive, t.stream, 3, t.args), "dnnl_primitive_execute");
            check((int) streamWait.invokeExact(t.stream), "dnnl_stream_wait");
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("oneDNN matmul failed", e);
        }
    }

    private volatile Boolean bf16Supported;

    /** Whether oneDNN has a bf16 matmul for this CPU (it answers "unimplemented" below AVX-512); asked once. */
    boolean bf16Supported() {
        Boolean s = bf16Supported;
        if (s == null) {
            try {
                perThread.get().prim(new Key(false, false, 16, 16, 16, 16, 16, 16));
                s = true;
            } catch (Throwable e) {
                s = false;
            }
            bf16Supported = s;
        }
        return s;
    }

    /** The implementation oneDNN picks for a bf16 matmul of this shape on this CPU, e.g. {@code brg_matmul:avx512_core_amx}. */
    String kernel(int M, int N, int K) {
        try {
            return perThread.get().prim(new Key(false, false, M, N, K, K, N, N)).kernel;
        } catch (Throwable e) {
            return "?";
        }
    }
}
