/**
 * Data-parallel training across processes: the {@link dev.cpt4j.dist.Collective} operations the trainer needs
 * (sum all-reduce, all-gather, broadcast, barrier, abort), one implementation for a single process and one over MPI
 * ({@link dev.cpt4j.dist.Mpi}: Open MPI's C API bound at run time through the FFM API, only when the process was
 * started by {@code mpirun}; single-process cpt4j never loads it). Knows no model and no file format; upstream of
 * {@code train}, where the data-parallel step (split batches, gradient all-reduce, ZeRO-1 sharding of AdamW) lives.
 */
package dev.cpt4j.dist;
