package dev.cpt4j.dist;

import dev.cpt4j.UserError;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Map;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * {@link Collective} over Open MPI's C API, bound at run time through the FFM API (java.lang.foreign) — no Java
 * bindings, no build-time dependency: single-process cpt4j never touches it. Used when the process was started by
 * Open MPI's {@code mpirun} ({@link #launched}).
 *
 * <p>Open MPI's handles are the addresses of exported structs ({@code mpi.h}: {@code #define MPI_COMM_WORLD
 * OMPI_PREDEFINED_GLOBAL(MPI_Comm, ompi_mpi_comm_world)}, likewise {@code ompi_mpi_float}, {@code ompi_mpi_op_sum},
 * {@code ompi_mpi_errors_return}), so each one is a symbol lookup; {@code MPI_IN_PLACE} is {@code (void *) 1}.
 * (MPICH's handles are integers: this binding is Open MPI's, ABI {@code libmpi.so.40}, Open MPI 3 to 5.) The
 * library is opened with {@code dlopen(RTLD_NOW | RTLD_GLOBAL)} first, as Open MPI's own Java bindings do, because its
 * plugins (the {@code mca_*.so} components it loads) resolve symbols of {@code libmpi} globally.
 *
 * <p>Errors: the world communicator returns errors ({@code MPI_ERRORS_RETURN}) instead of aborting, so a failed
 * call (a rank died, a link broke) becomes a {@link UserError} saying which operation failed on which rank; Open MPI's
 * {@code mpirun} then ends the other ranks. Buffers: the Java arrays are copied through one off-heap staging buffer
 * in buckets of {@value #BUCKET_BYTES} bytes (MPI counts are {@code int}; a blocking downcall must not pin the heap).
 * Threads: {@code MPI_THREAD_SERIALIZED}; one thread calls at a time ({@link #abort} may come from a shutdown hook).
 */
public final class Mpi implements Collective {
    /** The shared object opened, unless {@code CPT4J_MPI_LIB} or {@code -Dcpt4j.mpi} names another. */
    public static final String LIBRARY = "libmpi.so.40";
    static final int BUCKET_BYTES = 32 << 20;
    private static final int MPI_THREAD_SERIALIZED = 2, RTLD_NOW = 2, RTLD_GLOBAL = 0x100;
    private static final MemorySegment IN_PLACE = MemorySegment.ofAddress(1);

    private final MethodHandle allreduce, allgather, bcast, barrierH, abortH, finalizeH, errorString;
    private final MemorySegment world, tFloat, tDouble, tInt, tLong, tByte, opSum, opMax;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment buf;
    private final int rank, size;
    private final String version;
    private boolean closed;

    /**
     * True when this process was started by Open MPI's {@code mpirun}/{@code mpiexec} (it sets
     * {@code OMPI_COMM_WORLD_SIZE}) or another PMIx launcher ({@code PMIX_RANK}, e.g. {@code srun --mpi=pmix}).
     */
    public static boolean launched(Map<String, String> env) {
        return env.containsKey("OMPI_COMM_WORLD_SIZE") || env.containsKey("PMIX_RANK");
    }

    /**
     * The world group of this job: MPI initialised (once per process). Throws {@link UserError} when Open MPI
     * cannot be loaded or initialised.
     */
    public static Mpi init(Map<String, String> env) {
        String lib = System.getProperty("cpt4j.mpi", env.getOrDefault("CPT4J_MPI_LIB", LIBRARY));
        Linker linker = Linker.nativeLinker();
        SymbolLookup libc = linker.defaultLookup();
        MemorySegment handle;
        try (Arena a = Arena.ofConfined()) {
            MethodHandle dlopen = linker.downcallHandle(libc.findOrThrow("dlopen"),
                    FunctionDescriptor.of(ADDRESS, ADDRESS, JAVA_INT));
            MethodHandle dlerror = linker.downcallHandle(libc.findOrThrow("dlerror"), FunctionDescriptor.of(ADDRESS));
            handle = (MemorySegment) dlopen.invokeExact(a.allocateFrom(lib), RTLD_NOW | RTLD_GLOBAL);
            if (handle.equals(MemorySegment.NULL)) {
                MemorySegment err = (MemorySegment) dlerror.invokeExact();
                throw new UserError("this process runs under mpirun (" + launchedBy(env) + ") but Open MPI's library "
                        + lib + " does not load (" + cString(err) + "); install Open MPI 4 (Debian/Ubuntu: apt-get "
                        + "install openmpi-bin) on every machine, or point CPT4J_MPI_LIB at its libmpi.so.40");
            }
        } catch (UserError e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("dlopen " + lib + " failed", t);
        }
        return new Mpi(SymbolLookup.libraryLookup(lib, Arena.global()), env);
    }

    private static String launchedBy(Map<String, String> env) {
        return env.containsKey("OMPI_COMM_WORLD_SIZE") ? "OMPI_COMM_WORLD_SIZE=" + env.get("OMPI_COMM_WORLD_SIZE")
                : "PMIX_RANK=" + env.get("PMIX_RANK");
    }

    private Mpi(SymbolLookup lib, Map<String, String> env) {
        Linker l = Linker.nativeLinker();
        MethodHandle initThread = l.downcallHandle(lib.findOrThrow("MPI_Init_thread"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS));
        MethodHandle commRank = l.downcallHandle(lib.findOrThrow("MPI_Comm_rank"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        MethodHandle commSize = l.downcallHandle(lib.findOrThrow("MPI_Comm_size"), FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        MethodHandle setErr = l.downcallHandle(lib.findOrThrow("MPI_Comm_set_errhandler"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        MethodHandle libVersion = l.downcallHandle(lib.findOrThrow("MPI_Get_library_version"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        allreduce = l.downcallHandle(lib.findOrThrow("MPI_Allreduce"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        allgather = l.downcallHandle(lib.findOrThrow("MPI_Allgather"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS));
        bcast = l.downcallHandle(lib.findOrThrow("MPI_Bcast"),
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS));
        barrierH = l.downcallHandle(lib.findOrThrow("MPI_Barrier"), FunctionDescriptor.of(JAVA_INT, ADDRESS));
        abortH = l.downcallHandle(lib.findOrThrow("MPI_Abort"), FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        finalizeH = l.downcallHandle(lib.findOrThrow("MPI_Finalize"), FunctionDescriptor.of(JAVA_INT));
        errorString = l.downcallHandle(lib.findOrThrow("MPI_Error_string"),
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
        world = lib.findOrThrow("ompi_mpi_comm_world");
        tFloat = lib.findOrThrow("ompi_mpi_float");
        tDouble = lib.findOrThrow("ompi_mpi_double");
        tInt = lib.findOrThrow("ompi_mpi_int");
        tLong = lib.findOrThrow("ompi_mpi_long");
        tByte = lib.findOrThrow("ompi_mpi_byte");
        opSum = lib.findOrThrow("ompi_mpi_op_sum");
        opMax = lib.findOrThrow("ompi_mpi_op_max");
        MemorySegment errorsReturn = lib.findOrThrow("ompi_mpi_errors_return");
        try (Arena a = Arena.ofConfined()) {
            MemorySegment provided = a.allocate(JAVA_INT), out = a.allocate(JAVA_INT);
            int rc = (int) initThread.invokeExact(MemorySegment.NULL, MemorySegment.NULL, MPI_THREAD_SERIALIZED, provided);
            if (rc != 0) throw new UserError("MPI_Init_thread failed (error " + rc + ") under mpirun ("
                    + launchedBy(env) + "); check that every rank runs the same Open MPI as mpirun");
            if (provided.get(JAVA_INT, 0) < MPI_THREAD_SERIALIZED)
                throw new UserError("Open MPI provides thread level " + provided.get(JAVA_INT, 0) + ", cpt4j needs "
                        + "MPI_THREAD_SERIALIZED (2); use an Open MPI built with thread support (Debian's is)");
            check((int) setErr.invokeExact(world, errorsReturn), "MPI_Comm_set_errhandler");
            check((int) commRank.invokeExact(world, out), "MPI_Comm_rank");
            rank = out.get(JAVA_INT, 0);
            check((int) commSize.invokeExact(world, out), "MPI_Comm_size");
            size = out.get(JAVA_INT, 0);
            MemorySegment v = a.allocate(8192);
            check((int) libVersion.invokeExact(v, out), "MPI_Get_library_version");
            String s = v.getString(0).strip();
            int comma = s.indexOf(',');
            version = comma > 0 ? s.substring(0, comma) : s;
        } catch (UserError e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException("MPI initialisation failed", t);
        }
        buf = arena.allocate(BUCKET_BYTES, 64);
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String describe() {
        return version + ", " + size + " ranks";
    }

    @Override
    public synchronized void allReduceSum(float[] a, int off, int len) {
        int bucket = BUCKET_BYTES / 4;
        for (int k = 0; k < len; k += bucket) {
            int n = Math.min(bucket, len - k);
            MemorySegment.copy(a, off + k, buf, ValueLayout.JAVA_FLOAT, 0, n);
            allreduce(n, tFloat, opSum, "MPI_Allreduce(float, sum)");
            MemorySegment.copy(buf, ValueLayout.JAVA_FLOAT, 0, a, off + k, n);
        }
    }

    @Override
    public synchronized void allReduceSum(double[] a) {
        int bucket = BUCKET_BYTES / 8;
        for (int k = 0; k < a.length; k += bucket) {
            int n = Math.min(bucket, a.length - k);
            MemorySegment.copy(a, k, buf, ValueLayout.JAVA_DOUBLE, 0, n);
            allreduce(n, tDouble, opSum, "MPI_Allreduce(double, sum)");
            MemorySegment.copy(buf, ValueLayout.JAVA_DOUBLE, 0, a, k, n);
        }
    }

    @Override
    public synchronized void allReduceMax(long[] a) {
        int bucket = BUCKET_BYTES / 8;
        for (int k = 0; k < a.length; k += bucket) {
            int n = Math.min(bucket, a.length - k);
            MemorySegment.copy(a, k, buf, ValueLayout.JAVA_LONG, 0, n);
            allreduce(n, tLong, opMax, "MPI_Allreduce(long, max)");
            MemorySegment.copy(buf, ValueLayout.JAVA_LONG, 0, a, k, n);
        }
    }

    private void allreduce(int n, MemorySegment type, MemorySegment op, String what) {
        int rc;
        try {
            rc = (int) allreduce.invokeExact(IN_PLACE, buf, n, type, op, world);
        } catch (Throwable t) {
            throw new IllegalStateException(what, t);
        }
        check(rc, what);
    }

    @Override
    public synchronized void allGather(float[] send, int sendOff, int count, float[] recv, int recvOff) {
        int chunk = Math.max(1, BUCKET_BYTES / 4 / (size + 1));
        for (int k = 0; k < count; k += chunk) {
            int n = Math.min(chunk, count - k);
            MemorySegment s = buf.asSlice(0, 4L * n), r = buf.asSlice(4L * n, 4L * n * size);
            MemorySegment.copy(send, sendOff + k, s, ValueLayout.JAVA_FLOAT, 0, n);
            gather(s, r, n, tFloat, "MPI_Allgather(float)");
            for (int q = 0; q < size; q++)
                MemorySegment.copy(r, ValueLayout.JAVA_FLOAT, 4L * n * q, recv, recvOff + q * count + k, n);
        }
    }

    @Override
    public synchronized void allGather(int[] send, int sendOff, int count, int[] recv, int recvOff) {
        int chunk = Math.max(1, BUCKET_BYTES / 4 / (size + 1));
        for (int k = 0; k < count; k += chunk) {
            int n = Math.min(chunk, count - k);
            MemorySegment s = buf.asSlice(0, 4L * n), r = buf.asSlice(4L * n, 4L * n * size);
            MemorySegment.copy(send, sendOff + k, s, ValueLayout.JAVA_INT, 0, n);
            gather(s, r, n, tInt, "MPI_Allgather(int)");
            for (int q = 0; q < size; q++)
                MemorySegment.copy(r, ValueLayout.JAVA_INT, 4L * n * q, recv, recvOff + q * count + k, n);
        }
    }

    private void gather(MemorySegment s, MemorySegment r, int n, MemorySegment type, String what) {
        int rc;
        try {
            rc = (int) allgather.invokeExact(s, n, type, r, n, type, world);
        } catch (Throwable t) {
            throw new IllegalStateException(what, t);
        }
        check(rc, what);
    }

    @Override
    public synchronized void broadcast(byte[] a, int root) {
        for (int k = 0; k < a.length; k += BUCKET_BYTES) {
            int n = Math.min(BUCKET_BYTES, a.length - k);
            MemorySegment.copy(a, k, buf, ValueLayout.JAVA_BYTE, 0, n);
            int rc;
            try {
                rc = (int) bcast.invokeExact(buf, n, tByte, root, world);
            } catch (Throwable t) {
                throw new IllegalStateException("MPI_Bcast", t);
            }
            check(rc, "MPI_Bcast");
            MemorySegment.copy(buf, ValueLayout.JAVA_BYTE, 0, a, k, n);
        }
    }

    @Override
    public synchronized void barrier() {
        int rc;
        try {
            rc = (int) barrierH.invokeExact(world);
        } catch (Throwable t) {
            throw new IllegalStateException("MPI_Barrier", t);
        }
        check(rc, "MPI_Barrier");
    }

    /** Not synchronized: it must get through while another thread waits in a collective. */
    @Override
    public void abort(int code) {
        System.err.flush();
        try {
            int rc = (int) abortH.invokeExact(world, code);
        } catch (Throwable ignored) {
            // fall through to halt
        }
        Runtime.getRuntime().halt(code);
    }

    @Override
    public synchronized void close() {
        if (closed) return;
        closed = true;
        try {
            int rc = (int) finalizeH.invokeExact();
        } catch (Throwable ignored) {
            // the process is ending
        }
        arena.close();
    }

    private void check(int rc, String what) {
        if (rc == 0) return;
        String msg = "error " + rc;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment s = a.allocate(512), len = a.allocate(JAVA_INT);
            if ((int) errorString.invokeExact(rc, s, len) == 0) msg = s.getString(0);
        } catch (Throwable ignored) {
            // keep the number
        }
        throw new UserError(what + " failed on rank " + rank + " of " + size + " (" + msg + "): another rank has "
                + "probably stopped; see its output above, fix that, and resume from the last checkpoint");
    }

    private static String cString(MemorySegment p) {
        return p.equals(MemorySegment.NULL) ? "no reason given" : p.reinterpret(4096).getString(0);
    }
}
