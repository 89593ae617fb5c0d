package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.train.Checkpoints;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Issue 12 items 1 and 8 with real processes: {@code cpt4j train} in a child JVM (this test's class path) holds the
 * output folder's OS lock, so a second run fails at once; SIGTERM ({@link Process#destroy()}) and SIGINT
 * ({@code kill -INT}, what Ctrl-C sends) make it stop at a step boundary, write a checkpoint of that step and say
 * where to resume, exit 143 / 130; resuming that checkpoint ends with the uninterrupted run's adapter; a run killed
 * with SIGKILL leaves no lock behind.
 */
class TrainSignalsTest {

    private static Process start(Path stderr, String... trainArgs) throws IOException {
        return start(stderr, List.of(), trainArgs);
    }

    /** {@code cpt4j} in a child JVM with {@code jvmFlags}, its stdout and stderr into {@code stderr}. */
    static Process start(Path stderr, List<String> jvmFlags, String... trainArgs) throws IOException {
        return launch(stderr, List.of(), jvmFlags, trainArgs);
    }

    /** The child JVM, its command line preceded by {@code launcher} (may be empty). */
    private static Process launch(Path stderr, List<String> launcher, List<String> jvmFlags, String... trainArgs)
            throws IOException {
        String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(launcher);
        cmd.addAll(List.of(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx512m"));
        cmd.addAll(jvmFlags);
        cmd.addAll(List.of("-cp", cp, Main.class.getName()));
        cmd.addAll(List.of(trainArgs));
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(stderr.toFile()).start();
    }

    /** Waits until metrics.jsonl logs a step above {@code step}; returns the last logged step. */
    private static long awaitStep(Path out, long step, Process p, Path log) throws Exception {
        Pattern s = Pattern.compile("\\{\"step\":(\\d+),\"loss\"");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(90);
        while (System.nanoTime() < deadline) {
            assertThat(p.isAlive()).as(() -> readQuietly(log)).isTrue();
            Path f = out.resolve("metrics.jsonl");
            if (Files.exists(f)) {
                long last = -1;
                Matcher m = s.matcher(Files.readString(f));
                while (m.find()) last = Long.parseLong(m.group(1));
                if (last > step) return last;
            }
            Thread.sleep(50);
        }
        throw new AssertionError("no step above " + step + " in time: " + readQuietly(log));
    }

    private static String readQuietly(Path f) {
        try {
            return Files.readString(f, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    @Test
    @Timeout(300)
    void sigtermCheckpointsTheCurrentStepAndLocksNeverOutliveTheirProcess(@TempDir Path tmp) throws Exception {
        Path model = TrainEndToEndTest.tinyModel(tmp.resolve("model"), 48);
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        Path out = tmp.resolve("out");
        String[] base = TrainEndToEndTest.seedArgs(model, data, tmp.resolve("cache"), out);
        base = TrainEndToEndTest.with(base, "--max_steps", "1000000");     // runs until stopped
        base = TrainEndToEndTest.with(base, "--save_steps", "0");          // so the only checkpoint is the one SIGTERM writes
        base = TrainEndToEndTest.with(base, "--logging_steps", "1");
        base = TrainEndToEndTest.with(base, "--eval_steps", "0");
        base = TrainEndToEndTest.with(base, "--save_total_limit", "0");
        // prepare the data cache in this JVM first, so the child only trains
        assertThat(TrainEndToEndTest.run(TrainEndToEndTest.with(TrainEndToEndTest.with(base, "--max_steps", "1"),
                "--output_dir", tmp.resolve("warm").toString())).code()).isZero();

        Path log1 = tmp.resolve("first.log");
        Process first = start(log1, base);
        try {
            awaitStep(out, 2, first, log1);
            // item 1: a second run on the same folder fails at once, naming the holder; it touches nothing
            TrainEndToEndTest.Run second = TrainEndToEndTest.run(base);
            assertThat(second.code()).isEqualTo(2);
            assertThat(second.err()).contains("--output_dir " + out + " is in use by another 'cpt4j train' (pid "
                    + first.pid());
            assertThat(first.isAlive()).isTrue();

            // item 8: SIGTERM
            first.destroy();
            assertThat(first.waitFor(60, TimeUnit.SECONDS)).isTrue();
        } finally {
            first.destroyForcibly();
        }
        String said = Files.readString(log1, StandardCharsets.UTF_8);
        assertThat(first.exitValue()).as(said).isEqualTo(143);
        Matcher m = Pattern.compile("cpt4j: interrupted at step (\\d+); the last checkpoint is (\\S+); resume with "
                + "--resume_from_checkpoint true").matcher(said);
        assertThat(m.find()).as(said).isTrue();
        long n = Long.parseLong(m.group(1));
        assertThat(Path.of(m.group(2))).isEqualTo(out.resolve("checkpoint-" + n));
        for (String f : List.of("cpt4j_state.json", "adapter_model.safetensors", "optimizer.safetensors"))
            assertThat(out.resolve("checkpoint-" + n).resolve(f)).isRegularFile();

        // a resumed run killed with SIGKILL: its lock dies with it, the next resume starts at once
        Path log2 = tmp.resolve("second.log");
        Process killed = start(log2, TrainEndToEndTest.with(base, "--resume_from_checkpoint", "true"));
        try {
            awaitStep(out, n + 1, killed, log2);
            killed.destroyForcibly();
            assertThat(killed.waitFor(60, TimeUnit.SECONDS)).isTrue();
        } finally {
            killed.destroyForcibly();
        }
        assertThat(killed.exitValue()).isEqualTo(137);
        String[] finish = TrainEndToEndTest.with(TrainEndToEndTest.with(base, "--resume_from_checkpoint", "true"),
                "--max_steps", Long.toString(n + 2));
        TrainEndToEndTest.Run resumed = TrainEndToEndTest.run(finish);
        assertThat(resumed.code()).as(resumed.err()).isZero();
        assertThat(resumed.err()).contains("resumed from " + out.resolve("checkpoint-" + n));
        assertThat(out.resolve("adapter_model.safetensors")).isRegularFile();
    }

    /**
     * {@link #start} with SIGINT reset to its default action in the child: a build started in the background by a
     * non-interactive shell runs with SIGINT ignored, and a child would inherit that (a JVM then installs no handler).
     * perl (Debian's essential perl-base) resets the disposition and execs the JVM under the same pid; a POSIX shell
     * cannot undo an ignored signal.
     */
    private static Process startInterruptible(Path stderr, String... trainArgs) throws IOException {
        return launch(stderr, List.of("perl", "-e", "$SIG{INT} = 'DEFAULT'; exec { $ARGV[0] } @ARGV or die \"exec: $!\""),
                List.of(), trainArgs);
    }

    /**
     * Item 8 with SIGINT (Ctrl-C): the run stops at a step boundary, writes a checkpoint of that step, prints the same
     * line as for SIGTERM and exits 130; resuming it gives the uninterrupted run's adapter and logged numbers (a
     * constant learning rate, so the run's planned length does not enter the numbers).
     */
    @Test
    @Timeout(300)
    void sigintCheckpointsTheCurrentStepSaysWhereToResumeAndExits130(@TempDir Path tmp) throws Exception {
        Path model = TrainEndToEndTest.tinyModel(tmp.resolve("model"), 48);
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        Path out = tmp.resolve("out");
        String[] base = TrainEndToEndTest.seedArgs(model, data, tmp.resolve("cache"), out);
        base = TrainEndToEndTest.with(base, "--max_steps", "1000000");
        base = TrainEndToEndTest.with(base, "--lr_scheduler_type", "constant");
        base = TrainEndToEndTest.with(base, "--warmup_ratio", "0");
        base = TrainEndToEndTest.with(base, "--save_steps", "0");
        base = TrainEndToEndTest.with(base, "--logging_steps", "1");
        base = TrainEndToEndTest.with(base, "--eval_steps", "0");
        base = TrainEndToEndTest.with(base, "--save_total_limit", "0");
        assertThat(TrainEndToEndTest.run(TrainEndToEndTest.with(TrainEndToEndTest.with(base, "--max_steps", "1"),
                "--output_dir", tmp.resolve("warm").toString())).code()).isZero();   // the data cache, made here

        Path log = tmp.resolve("child.log");
        Process child = startInterruptible(log, base);
        try {
            awaitStep(out, 2, child, log);
            Process kill = new ProcessBuilder("kill", "-INT", Long.toString(child.pid())).inheritIO().start();
            assertThat(kill.waitFor(30, TimeUnit.SECONDS)).isTrue();
            assertThat(kill.exitValue()).isZero();
            assertThat(child.waitFor(60, TimeUnit.SECONDS)).isTrue();
        } finally {
            child.destroyForcibly();
        }
        String said = Files.readString(log, StandardCharsets.UTF_8);
        assertThat(child.exitValue()).as(said).isEqualTo(130);
        Matcher m = Pattern.compile("cpt4j: interrupted at step (\\d+); the last checkpoint is (\\S+); resume with "
                + "--resume_from_checkpoint true").matcher(said);
        assertThat(m.find()).as(said).isTrue();
        long n = Long.parseLong(m.group(1));
        assertThat(Path.of(m.group(2))).isEqualTo(out.resolve("checkpoint-" + n));
        assertThat(Checkpoints.list(out)).containsExactly(out.resolve("checkpoint-" + n));

        String steps = Long.toString(n + 2);
        TrainEndToEndTest.Run resumed = TrainEndToEndTest.run(TrainEndToEndTest.with(
                TrainEndToEndTest.with(base, "--resume_from_checkpoint", "true"), "--max_steps", steps));
        assertThat(resumed.code()).as(resumed.err()).isZero();
        Path straight = tmp.resolve("straight");
        TrainEndToEndTest.Run r = TrainEndToEndTest.run(TrainEndToEndTest.with(TrainEndToEndTest.with(base, "--max_steps",
                steps), "--output_dir", straight.toString()));
        assertThat(r.code()).as(r.err()).isZero();
        assertThat(Files.readAllBytes(out.resolve("adapter_model.safetensors")))
                .isEqualTo(Files.readAllBytes(straight.resolve("adapter_model.safetensors")));
        assertThat(TrainDeterminismTest.logged(out)).containsExactlyElementsOf(TrainDeterminismTest.logged(straight));
    }
}
