package dev.cpt4j.dist;

/**
 * The collective operations data-parallel training uses, over a fixed group of {@link #size()} processes ("ranks").
 * Every rank calls the same operations in the same order with the same counts (MPI's rule); the calls block until
 * all ranks have made them. Results are identical on every rank. Not thread-safe: one thread calls them.
 *
 * <p>Sums are exact to fp32/fp64 rounding but their order is the implementation's (for two ranks {@code a + b},
 * the same on both); a run repeated with the same ranks gives the same bits.
 */
public interface Collective extends AutoCloseable {
    /** This process's index, 0 ≤ rank &lt; size. */
    int rank();

    /** Number of ranks. */
    int size();

    /** True on rank 0, the one that writes files and logs. */
    default boolean isRoot() {
        return rank() == 0;
    }

    /** {@code a[off, off+len)} ← the element-wise sum of that range over all ranks. */
    void allReduceSum(float[] a, int off, int len);

    /** {@code a} ← the element-wise sum over all ranks. */
    void allReduceSum(double[] a);

    /** {@code a} ← the element-wise maximum over all ranks. */
    void allReduceMax(long[] a);

    /** {@code recv[recvOff + r·count, …+count)} ← rank r's {@code send[sendOff, sendOff+count)}, for every r. */
    void allGather(float[] send, int sendOff, int count, float[] recv, int recvOff);

    /** As {@link #allGather(float[], int, int, float[], int)} for ints. */
    void allGather(int[] send, int sendOff, int count, int[] recv, int recvOff);

    /** {@code a} ← rank {@code root}'s {@code a} (same length on every rank). */
    void broadcast(byte[] a, int root);

    /** Returns once every rank has called it. */
    void barrier();

    /** Ends every rank of the group at once with {@code code} (after this rank said why); does not return. */
    void abort(int code);

    /** One line for logs, e.g. "Open MPI v4.1.4, 2 ranks". */
    String describe();

    /** Leaves the group (MPI_Finalize); the single-process one does nothing. */
    @Override
    void close();

    /** The group of one: every operation is the identity. */
    Collective SINGLE = new Collective() {
        @Override public int rank() { return 0; }
        @Override public int size() { return 1; }
        @Override public void allReduceSum(float[] a, int off, int len) {}
        @Override public void allReduceSum(double[] a) {}
        @Override public void allReduceMax(long[] a) {}
        @Override public void allGather(float[] send, int sendOff, int count, float[] recv, int recvOff) {
            System.arraycopy(send, sendOff, recv, recvOff, count);
        }
        @Override public void allGather(int[] send, int sendOff, int count, int[] recv, int recvOff) {
            System.arraycopy(send, sendOff, recv, recvOff, count);
        }
        @Override public void broadcast(byte[] a, int root) {}
        @Override public void barrier() {}
        @Override public void abort(int code) { Runtime.getRuntime().halt(code); }
        @Override public String describe() { return "one process"; }
        @Override public void close() {}
    };
}
