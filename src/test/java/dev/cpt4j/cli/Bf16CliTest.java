package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.tensor.cpu.Backend;
import dev.cpt4j.tensor.cpu.Bf16;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code --bf16} and {@code --bf16-emulated}: bench train's JSON, and one line with exit 2 where bf16 cannot run natively. */
class Bf16CliTest {
    private String backendBefore, bf16Before, cpuinfoBefore;
    private Path cfg;

    @BeforeEach
    void save(@TempDir Path dir) throws Exception {
        backendBefore = System.getProperty(Backend.PROPERTY);
        bf16Before = System.getProperty(Bf16.PROPERTY);
        cpuinfoBefore = System.getProperty("cpt4j.cpuinfo");
        cfg = dir.resolve("config.json");
        Files.writeString(cfg, "{\"model_type\":\"gpt2\",\"vocab_size\":50,\"n_positions\":16,\"n_embd\":24,\"n_layer\":2,\"n_head\":3}");
    }

    @AfterEach
    void restore() {
        set(Backend.PROPERTY, backendBefore);
        set(Bf16.PROPERTY, bf16Before);
        set("cpt4j.cpuinfo", cpuinfoBefore);
    }

    private static void set(String key, String value) {
        if (value == null) System.clearProperty(key);
        else System.setProperty(key, value);
    }

    private BenchCommandTest.Run bench(String... extra) {
        String[] base = {"bench", "train", "--config", cfg.toString(), "--batch", "2", "--block", "8", "--steps", "2",
                "--warmup", "0", "--threads", "2", "--json"};
        String[] args = java.util.Arrays.copyOf(base, base.length + extra.length);
        System.arraycopy(extra, 0, args, base.length, extra.length);
        System.clearProperty(Bf16.PROPERTY);
        return BenchCommandTest.run(args);
    }

    private static JsonNode json(BenchCommandTest.Run r) throws Exception {
        String[] lines = r.out().strip().split("\n");
        return new ObjectMapper().readTree(lines[lines.length - 1]);
    }

    @Test
    void benchTrainReportsPrecisionBackendTileAndFinalLoss() throws Exception {
        BenchCommandTest.Run fp32 = bench("--backend", "java");
        assertThat(fp32.code()).as(fp32.err()).isZero();
        JsonNode f = json(fp32);
        assertThat(f.get("precision").asText()).isEqualTo("fp32");
        assertThat(f.get("backend").asText()).isEqualTo("java");
        assertThat(f.get("tile").asText()).matches("(8|12)x(8|16|32)");
        double lossFp32 = f.get("final_loss").asDouble();
        assertThat(lossFp32).isBetween(3.0, 5.0);                      // ln 50 = 3.9 on random ids
        assertThat(f.get("adamw_ms").asDouble()).isPositive();
        assertThat(f.get("bandwidth_gbs").asDouble()).isPositive();
        assertThat(f.get("adamw_bound_ms").asDouble()).isPositive().isLessThan(f.get("ms_per_step").asDouble());

        BenchCommandTest.Run emu = bench("--backend", "java", "--bf16-emulated");
        assertThat(emu.code()).as(emu.err()).isZero();
        JsonNode e = json(emu);
        assertThat(e.get("precision").asText()).isEqualTo("bf16-emulated");
        assertThat(e.get("final_loss").asDouble()).isCloseTo(lossFp32, org.assertj.core.data.Percentage.withPercentage(1))
                .isNotEqualTo(lossFp32);

        if (!Bf16.cpuInstructions().isEmpty()) {    // this CPU runs --bf16 natively (the others are the test below)
            BenchCommandTest.Run nat = bench("--bf16");
            assertThat(nat.code()).as(nat.err()).isZero();
            assertThat(json(nat).get("precision").asText()).isEqualTo("bf16");
            assertThat(json(nat).get("final_loss").asDouble()).isCloseTo(lossFp32, org.assertj.core.data.Percentage.withPercentage(1));
        }
    }

    @Test
    void bf16WithoutBf16InstructionsIsOneLineUnlessEmulationIsAsked(@TempDir Path dir) throws Exception {
        Path cpuinfo = dir.resolve("cpuinfo");
        Files.writeString(cpuinfo, "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n");
        System.setProperty("cpt4j.cpuinfo", cpuinfo.toString());
        BenchCommandTest.Run r = bench("--bf16");
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip().lines()).hasSize(1);
        assertThat(r.err().strip()).startsWith("cpt4j: --bf16: this CPU has no bf16 instructions")
                .contains("emulated and slower than fp32").endsWith("or pass --bf16-emulated for bf16 numbers anyway");
        assertThat(System.getProperty(Bf16.PROPERTY)).isNull();
    }

    /**
     * In a JVM whose oneDNN is held to AVX2 ({@code ONEDNN_MAX_CPU_ISA=AVX2}: what an AVX2-only CPU gets, where oneDNN
     * has no bf16 matmul), on this CPU with bf16 instructions: {@code --bf16} is one line and exit 2 and names the way
     * out; {@code --bf16-emulated} runs.
     */
    @Test
    void bf16WhereOneDnnHasNoBf16MatmulIsOneLine() throws Exception {
        for (String flag : new String[] {"--bf16", "--bf16-emulated"}) {
            java.util.List<String> cmd = java.util.List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED", "-cp",
                    System.getProperty("java.class.path"), Main.class.getName(), "bench", "train", "--config", cfg.toString(),
                    "--batch", "1", "--block", "4", "--steps", "1", "--warmup", "0", "--threads", "1", flag, "--json");
            ProcessBuilder pb = new ProcessBuilder(cmd);
            pb.environment().put("ONEDNN_MAX_CPU_ISA", "AVX2");
            Process p = pb.start();
            String out, err;
            try (var o = p.getInputStream(); var e = p.getErrorStream()) {
                out = new String(o.readAllBytes());
                err = new String(e.readAllBytes());
            }
            assertThat(p.waitFor(2, java.util.concurrent.TimeUnit.MINUTES)).isTrue();
            java.util.List<String> lines = err.lines().filter(l -> !l.startsWith("WARNING")).toList();
            if (flag.equals("--bf16-emulated")) {
                assertThat(p.exitValue()).as(err + out).isZero();
                assertThat(out).contains("\"precision\":\"bf16-emulated\"");
            } else if (Bf16.cpuInstructions().isEmpty()) {   // a CPU without bf16 instructions says that first
                assertThat(p.exitValue()).as(err + out).isEqualTo(2);
                assertThat(lines).singleElement().asString().startsWith("cpt4j: --bf16: this CPU has no bf16 instructions");
            } else {
                assertThat(p.exitValue()).as(err + out).isEqualTo(2);
                assertThat(lines).as(err).hasSize(1);
                assertThat(lines.getFirst()).matches("cpt4j: --bf16: oneDNN [0-9.]+ has no bf16 matmul for this CPU; "
                        + "use --bf16-emulated \\(bf16 numbers on the fp32 kernels, slower\\) or drop --bf16");
            }
        }
    }

    @Test
    void conflictingChoicesAreOneLine() {
        BenchCommandTest.Run java = bench("--bf16", "--backend", "java");
        assertThat(java.code()).isEqualTo(2);
        assertThat(java.err().strip()).isEqualTo("cpt4j: --bf16 computes on oneDNN, which --backend java excludes; "
                + "use --bf16-emulated for the Java kernels, or --backend auto");
        BenchCommandTest.Run both = bench("--bf16", "--bf16-emulated");
        assertThat(both.code()).isEqualTo(2);
        assertThat(both.err().strip()).isEqualTo("cpt4j: --bf16 and --bf16-emulated exclude each other; pass one");
    }
}
