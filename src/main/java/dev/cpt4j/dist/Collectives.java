package dev.cpt4j.dist;

import java.util.Map;

/** Picks the group this process belongs to: MPI's world when {@code mpirun} started it, else {@link Collective#SINGLE}. */
public final class Collectives {
    private Collectives() {}

    /** {@link Mpi#init} under mpirun ({@link Mpi#launched}), else the group of one. */
    public static Collective fromEnvironment() {
        return fromEnvironment(System.getenv());
    }

    /** As {@link #fromEnvironment()} with an explicit environment. */
    public static Collective fromEnvironment(Map<String, String> env) {
        return Mpi.launched(env) ? Mpi.init(env) : Collective.SINGLE;
    }
}
