package dev.cpt4j.tensor.cpu;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * No kernel result depends on JIT compilation: {@link KernelDeterminismProbe} runs GEMM, layernorm backward, the
 * grad-norm clip, attention and the fused head + cross-entropy once in a fresh interpreted JVM ({@code -Xint}) and
 * many times in a fresh JVM that compiles with C2 early ({@code -XX:-TieredCompilation -XX:CompileThreshold=100
 * -Xbatch}); every output must be the same bits. {@code FloatVector.reduceLanes(ADD)} in any of them fails this
 * (C2 sums the lanes in another order than the interpreter).
 */
class KernelDeterminismTest {
    @TempDir
    Path tmp;

    @Test
    void interpretedAndCompiledKernelsAgreeBitForBit() throws Exception {
        Path interpreted = tmp.resolve("xint"), compiled = tmp.resolve("c2");
        probe(interpreted, 1, "-Xint");
        probe(compiled, 400, "-XX:-TieredCompilation", "-XX:CompileThreshold=100", "-Xbatch");
        byte[] xint = Files.readAllBytes(Path.of(interpreted + ".first"));
        byte[] c2First = Files.readAllBytes(Path.of(compiled + ".first"));
        byte[] c2Last = Files.readAllBytes(Path.of(compiled + ".last"));
        assertThat(xint.length).isGreaterThan(10_000);
        assertThat(firstDifference(xint, c2First)).as("-Xint vs the compiled JVM's first pass").isEqualTo(-1);
        assertThat(firstDifference(xint, c2Last)).as("-Xint vs the compiled JVM's 400th pass (C2)").isEqualTo(-1);
    }

    private static int firstDifference(byte[] a, byte[] b) {
        if (a.length != b.length) return Math.min(a.length, b.length);
        for (int i = 0; i < a.length; i++) if (a[i] != b[i]) return i;
        return -1;
    }

    private static void probe(Path out, int iterations, String... jvmFlags) throws Exception {
        List<String> cmd = new ArrayList<>();
        cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        cmd.add("--add-modules");
        cmd.add("jdk.incubator.vector");
        cmd.add("--enable-native-access=ALL-UNNAMED");
        cmd.addAll(List.of(jvmFlags));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), KernelDeterminismProbe.class.getName(),
                out.toString(), Integer.toString(iterations)));
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] log;
        try (var in = p.getInputStream()) {
            log = in.readAllBytes();
        }
        assertThat(p.waitFor(5, TimeUnit.MINUTES)).isTrue();
        assertThat(p.exitValue()).as(new String(log)).isZero();
    }
}
