package dev.cpt4j.model;

import java.lang.management.ManagementFactory;
import java.lang.management.ThreadMXBean;
import java.util.Locale;

/**
 * Opt-in per-phase timer of a training step ({@code -Dcpt4j.profile=true}): for each phase the wall time, the CPU
 * time of the calling thread and the CPU time of the whole process (all worker threads; on a shared machine the CPU
 * times are the reliable numbers, wall time includes waiting for a core). Phases are consecutive laps: {@link #lap}
 * charges everything since the previous lap to one phase. Off, every call is a single branch.
 *
 * <p>What it is not: thread-safe, or a sampler — it sees only the laps the model marks.
 */
public final class PhaseProfile {
    public static final boolean ENABLED = Boolean.getBoolean("cpt4j.profile");

    public enum Phase {
        EMBED_FWD, LN_FWD, QKV_FWD, ATTN_FWD, PROJ_FWD, FC_FWD, ACT_FWD, FCPROJ_FWD, RESID_DROP_FWD, LNF_FWD,
        HEAD, LNF_BWD, RECOMPUTE, FCPROJ_BWD, ACT_BWD, FC_BWD, LN_BWD, PROJ_BWD, ATTN_BWD, QKV_BWD, ZERO_FILL,
        EMBED_BWD, GRAD_ZERO, GRAD_NORM, OPTIMIZER
    }

    private static final Phase[] PHASES = Phase.values();
    private final long[] wall = new long[PHASES.length], cpu = new long[PHASES.length], proc = new long[PHASES.length];
    private final ThreadMXBean threads = ManagementFactory.getThreadMXBean();
    private final com.sun.management.OperatingSystemMXBean os =
            ManagementFactory.getPlatformMXBean(com.sun.management.OperatingSystemMXBean.class);
    private long lastWall, lastCpu, lastProc;
    private int steps;

    /** Starts a lap at the beginning of a step. */
    public void begin() {
        if (!ENABLED) return;
        lastWall = System.nanoTime();
        lastCpu = threads.getCurrentThreadCpuTime();
        lastProc = os.getProcessCpuTime();
    }

    /** Charges the time since the previous lap to {@code p}. */
    public void lap(Phase p) {
        if (!ENABLED) return;
        long w = System.nanoTime(), c = threads.getCurrentThreadCpuTime(), pr = os.getProcessCpuTime();
        wall[p.ordinal()] += w - lastWall;
        cpu[p.ordinal()] += c - lastCpu;
        proc[p.ordinal()] += pr - lastProc;
        lastWall = w;
        lastCpu = c;
        lastProc = pr;
    }

    public void countStep() {
        steps++;
    }

    public void reset() {
        java.util.Arrays.fill(wall, 0);
        java.util.Arrays.fill(cpu, 0);
        java.util.Arrays.fill(proc, 0);
        steps = 0;
    }

    /** A table of ms per step per phase (wall, caller-thread CPU, process CPU) and each phase's share. */
    public String report() {
        StringBuilder sb = new StringBuilder();
        int n = Math.max(1, steps);
        long tw = 0, tc = 0, tp = 0;
        for (int i = 0; i < PHASES.length; i++) {
            tw += wall[i];
            tc += cpu[i];
            tp += proc[i];
        }
        sb.append(String.format(Locale.ROOT, "profile over %d steps, ms per step:%n%-15s %9s %9s %9s %6s%n", steps,
                "phase", "wall", "thread-cpu", "proc-cpu", "%cpu"));
        for (int i = 0; i < PHASES.length; i++) {
            if (wall[i] == 0 && proc[i] == 0) continue;
            sb.append(String.format(Locale.ROOT, "%-15s %9.1f %9.1f %9.1f %5.1f%%%n", PHASES[i].name().toLowerCase(Locale.ROOT),
                    wall[i] / 1e6 / n, cpu[i] / 1e6 / n, proc[i] / 1e6 / n, 100.0 * proc[i] / Math.max(1, tp)));
        }
        sb.append(String.format(Locale.ROOT, "%-15s %9.1f %9.1f %9.1f%n", "total", tw / 1e6 / n, tc / 1e6 / n, tp / 1e6 / n));
        return sb.toString();
    }
}
