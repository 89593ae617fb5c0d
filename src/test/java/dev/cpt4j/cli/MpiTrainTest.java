package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.train.Checkpoints;
import dev.cpt4j.train.MetricsLog;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;

/**
 * Data-parallel training under Open MPI's {@code mpirun} (issue 17), with real processes on this machine (loopback
 * TCP, {@code --oversubscribe}): 2 ranks × per-device batch b against one process × batch 2b on the tiny GPT-2 with
 * dropout everywhere (embeddings, attention, residuals, LoRA inputs) and a trained, row-sparse token embedding —
 * every step's loss and the held-out loss within 1e-4 relative; two 2-rank runs bit-identical; the token store
 * prepared with its files split over the ranks is the single process's, byte for byte; only rank 0 writes;
 * a killed rank makes the job end within seconds with a line saying so, and its last checkpoint resumes.
 *
 * <p>Needs {@code mpirun} (Debian's openmpi-bin: {@code tools/install-mpi.sh}, which {@code ./test} runs); fails, does
 * not skip, without it.
 */
class MpiTrainTest {
    private static final double REL = 1e-4;

    /** mpirun on PATH, or a failure that says how to get it. */
    static String mpirun() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            Path p = Path.of(dir.isEmpty() ? "." : dir, "mpirun");
            if (Files.isExecutable(p)) return p.toString();
        }
        throw new AssertionError("mpirun is not on PATH: run tools/install-mpi.sh (Debian's openmpi-bin) first");
    }

    /** {@code mpirun -np ranks} of cpt4j in child JVMs (this test's class path), output into {@code log}. */
    static Process mpi(int ranks, Path log, String... cpt4jArgs) throws IOException {
        String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>(List.of(mpirun(), "--allow-run-as-root", "--oversubscribe", "-np",
                Integer.toString(ranks), "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo",
                "--mca", "oob_tcp_if_include", "lo", "--bind-to", "none",
                java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-Xmx384m",
                "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp, Main.class.getName()));
        cmd.addAll(List.of(cpt4jArgs));
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("OMPI_MCA_rmaps_base_oversubscribe", "1");
        return pb.start();
    }

    private static int runMpi(int ranks, Path log, String... args) throws Exception {
        Process p = mpi(ranks, log, args);
        try {
            assertThat(p.waitFor(240, TimeUnit.SECONDS)).as("mpirun finished in time: " + read(log)).isTrue();
            return p.exitValue();
        } finally {
            p.destroyForcibly();
        }
    }

    private static String read(Path f) {
        try {
            return Files.readString(f, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        }
    }

    private static String[] args(Path model, Path data, Path cache, Path out, int batch, int steps) {
        String[] a = TrainEndToEndTest.seedArgs(model, data, cache, out);
        a = TrainEndToEndTest.with(a, "--max_steps", Integer.toString(steps));
        a = TrainEndToEndTest.with(a, "--per_device_train_batch_size", Integer.toString(batch));
        a = TrainEndToEndTest.with(a, "--logging_steps", "1");
        a = TrainEndToEndTest.with(a, "--eval_steps", "0");              // the final evaluation only
        a = TrainEndToEndTest.with(a, "--save_steps", "3");
        a = TrainEndToEndTest.with(a, "--save_total_limit", "0");
        a = TrainEndToEndTest.with(a, "--trainable", "c_attn,c_fc");
        return a;
    }

    private static List<Double> losses(Path out) {
        List<Double> l = new ArrayList<>();
        for (JsonNode j : MetricsLog.read(out.resolve(MetricsLog.FILE))) if (j.has("loss")) l.add(j.get("loss").asDouble());
        return l;
    }

    private static double evalLoss(Path out) {
        double e = Double.NaN;
        for (JsonNode j : MetricsLog.read(out.resolve(MetricsLog.FILE))) if (j.has("eval_loss")) e = j.get("eval_loss").asDouble();
        return e;
    }

    @Test
    @Timeout(600)
    void twoRanksEqualOneProcessWithTheDoubleBatchAndRepeatBitForBit(@TempDir Path tmp) throws Exception {
        Path model = TrainDeterminismTest.modelWithDropout(tmp.resolve("model"));
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        for (int f = 1; f <= 2; f++) {           // three files of different sizes, for the split preparation
            List<String> lines = Files.readAllLines(data.resolve("corpus.txt"));
            Files.write(data.resolve("more-" + f + ".txt"), lines.subList(0, lines.size() / (f + 1)));
        }
        Path cache = tmp.resolve("cache"), cache2 = tmp.resolve("cache2");
        int steps = 6;
        Path one = tmp.resolve("one");
        TrainEndToEndTest.Run r = TrainEndToEndTest.run(args(model, data, cache, one, 4, steps));
        assertThat(r.code()).as(r.err()).isZero();

        Path a = tmp.resolve("a"), b = tmp.resolve("b"), logA = tmp.resolve("a.log"), logB = tmp.resolve("b.log");
        // the first 2-rank run prepares its own cache, its files split over the ranks: the same store
        assertThat(runMpi(2, logA, args(model, data, cache2, a, 2, steps))).as(read(logA)).isZero();
        try (var files = Files.list(cache)) {
            for (Path f : files.filter(Files::isRegularFile).toList())
                assertThat(Files.readAllBytes(cache2.resolve(f.getFileName()))).as("prepared " + f.getFileName())
                        .isEqualTo(Files.readAllBytes(f));
        }
        assertThat(runMpi(2, logB, args(model, data, cache, b, 2, steps))).as(read(logB)).isZero();
        String said = read(logA);
        assertThat(said).contains("data parallel over Open MPI").contains("2 ranks");
        assertThat(said).as("only rank 0 speaks").containsOnlyOnce("trainable of");

        List<Double> ref = losses(one), got = losses(a);
        assertThat(got).hasSameSizeAs(ref).hasSize(steps);
        for (int s = 0; s < steps; s++)
            assertThat(Math.abs(got.get(s) - ref.get(s)) / Math.abs(ref.get(s))).as("step " + (s + 1) + ": " + got.get(s)
                    + " vs " + ref.get(s)).isLessThan(REL);
        assertThat(Math.abs(evalLoss(a) - evalLoss(one)) / evalLoss(one)).as("held-out loss " + evalLoss(a) + " vs "
                + evalLoss(one)).isLessThan(REL);

        // two 2-rank runs: the same bytes and the same logged numbers
        assertThat(Files.readAllBytes(a.resolve(PeftAdapters.SAFETENSORS)))
                .isEqualTo(Files.readAllBytes(b.resolve(PeftAdapters.SAFETENSORS)));
        assertThat(TrainDeterminismTest.logged(a)).containsExactlyElementsOf(TrainDeterminismTest.logged(b));
        // ZeRO-1: each rank's share of the AdamW moments in its own file; no full optimizer file
        Path ck = a.resolve("checkpoint-" + steps);
        assertThat(ck.resolve(Checkpoints.OPTIMIZER)).doesNotExist();
        for (int rank = 0; rank < 2; rank++) {
            String f = Checkpoints.shardFile(rank, 2);
            assertThat(Files.readAllBytes(ck.resolve(f))).isEqualTo(Files.readAllBytes(b.resolve("checkpoint-" + steps).resolve(f)));
        }
        assertThat(said).containsPattern("peak memory \\(VmHWM\\) per rank: \\d+, \\d+ MiB; AdamW moments per rank");

        // resume with the same 2 ranks from checkpoint-3: the uninterrupted run's bytes and numbers
        Path logC = tmp.resolve("c.log");
        String[] resume = TrainEndToEndTest.with(args(model, data, cache, b, 2, steps), "--resume_from_checkpoint",
                b.resolve("checkpoint-3").toString());
        assertThat(runMpi(2, logC, resume)).as(read(logC)).isZero();
        assertThat(read(logC)).contains("resumed from " + b.resolve("checkpoint-3"));
        assertThat(Files.readAllBytes(b.resolve(PeftAdapters.SAFETENSORS)))
                .as("resumed: the final adapter").isEqualTo(Files.readAllBytes(a.resolve(PeftAdapters.SAFETENSORS)));
        for (String f : List.of(Checkpoints.WEIGHTS, Checkpoints.shardFile(0, 2), Checkpoints.shardFile(1, 2)))
            assertThat(Files.readAllBytes(b.resolve("checkpoint-" + steps).resolve(f))).as("resumed: " + f)
                    .isEqualTo(Files.readAllBytes(ck.resolve(f)));
        assertThat(TrainDeterminismTest.logged(b)).as("resumed: metrics.jsonl")
                .containsExactlyElementsOf(TrainDeterminismTest.logged(a));
        // another number of ranks cannot take the shards, and says what to do
        TrainEndToEndTest.Run single = TrainEndToEndTest.run(TrainEndToEndTest.with(args(model, data, cache, b, 4, steps),
                "--resume_from_checkpoint", b.resolve("checkpoint-3").toString()));
        assertThat(single.code()).isEqualTo(2);
        assertThat(single.err()).contains("holds the optimizer state of 2 ranks").contains("mpirun -np 2");
    }

    /** The pid of the child of {@code mpirun} that is rank {@code rank} (its environment says so). */
    private static Optional<ProcessHandle> rank(Process mpirun, int rank) {
        return mpirun.descendants().filter(h -> {
            try {
                String env = Files.readString(Path.of("/proc/" + h.pid() + "/environ"), StandardCharsets.ISO_8859_1);
                return env.contains("\0OMPI_COMM_WORLD_RANK=" + rank + "\0") && h.info().command().orElse("").endsWith("java");
            } catch (IOException gone) {
                return false;
            }
        }).findFirst();
    }

    @Test
    @Timeout(600)
    void aKilledRankEndsTheJobWithinSecondsAndTheLastCheckpointResumes(@TempDir Path tmp) throws Exception {
        Path model = TrainEndToEndTest.tinyModel(tmp.resolve("model"), 48);
        Path data = TrainEndToEndTest.corpus(tmp.resolve("data"));
        Path cache = tmp.resolve("cache"), out = tmp.resolve("out"), log = tmp.resolve("job.log");
        String[] base = args(model, data, cache, out, 2, 1_000_000);
        base = TrainEndToEndTest.with(base, "--save_steps", "2");
        base = TrainEndToEndTest.with(base, "--lr_scheduler_type", "constant");
        base = TrainEndToEndTest.with(base, "--warmup_ratio", "0");
        Process job = mpi(2, log, base);
        long killedAt;
        try {
            Pattern ck = Pattern.compile("saved (\\S+checkpoint-(\\d+))");
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(180);
            while (true) {
                assertThat(job.isAlive()).as(read(log)).isTrue();
                assertThat(System.nanoTime()).as("a checkpoint in time: " + read(log)).isLessThan(deadline);
                Matcher m = ck.matcher(read(log));
                if (m.find() && Long.parseLong(m.group(2)) >= 2) break;
                Thread.sleep(100);
            }
            ProcessHandle victim = rank(job, 1).orElseThrow(() -> new AssertionError("no rank 1 among " + job.descendants().toList()));
            victim.destroyForcibly();          // SIGKILL
            killedAt = System.nanoTime();
            assertThat(job.waitFor(30, TimeUnit.SECONDS)).as("the job ends after a rank is killed: " + read(log)).isTrue();
        } finally {
            job.descendants().forEach(ProcessHandle::destroyForcibly);
            job.destroyForcibly();
        }
        double seconds = (System.nanoTime() - killedAt) / 1e9;
        String said = read(log);
        assertThat(job.exitValue()).as(said).isNotZero();
        assertThat(seconds).as(said).isLessThan(20);
        assertThat(said).as("a line saying what happened").containsPattern("cpt4j: rank 0 of 2: .*another rank");
        Matcher last = Pattern.compile("saved (\\S+checkpoint-(\\d+))").matcher(said);
        long n = -1;
        while (last.find()) n = Long.parseLong(last.group(2));
        String[] resume = TrainEndToEndTest.with(TrainEndToEndTest.with(base, "--resume_from_checkpoint", "true"),
                "--max_steps", Long.toString(n + 2));
        Path log2 = tmp.resolve("resume.log");
        assertThat(runMpi(2, log2, resume)).as(read(log2)).isZero();
        assertThat(read(log2)).contains("resumed from " + out.resolve("checkpoint-" + n));
        assertThat(out.resolve(PeftAdapters.SAFETENSORS)).isRegularFile();
    }
}
