package dev.cpt4j.tensor.cpu;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

/**
 * The micro-tile {@link Gemm} picks from the vector width and the register count, for every ISA family it may run on;
 * and, in the surefire executions that narrow the vectors ({@code -XX:MaxVectorSize=16|32}, see the pom), that the
 * narrowing took effect, so {@link GemmTest} and {@link GemmBf16Test} there run the 4- and 8-lane shapes of every tile
 * (12×8 is the NEON tile) on an x86 machine.
 */
class GemmTileTest {
    @Test
    void tilePerIsa() {
        assertThat(Gemm.registers(8, "amd64")).isEqualTo(16);          // AVX2
        assertThat(Gemm.registers(16, "amd64")).isEqualTo(32);         // AVX-512
        assertThat(Gemm.registers(4, "amd64")).isEqualTo(16);          // SSE (or AVX-512 narrowed to 128 bits)
        assertThat(Gemm.registers(4, "aarch64")).isEqualTo(32);        // NEON
        assertThat(Gemm.registers(8, "aarch64")).isEqualTo(32);        // SVE 256
        assertThat(Gemm.tileRows(8, 16)).isEqualTo(8);                 // AVX2: 8×16
        assertThat(Gemm.tileRows(16, 32)).isEqualTo(12);               // AVX-512: 12×32
        assertThat(Gemm.tileRows(4, 32)).isEqualTo(12);                // NEON: 12×8
        assertThat(Gemm.tileRows(4, 16)).isEqualTo(8);                 // SSE: 8×8
        for (int lanes : new int[] {4, 8, 16})
            for (int regs : new int[] {16, 32}) assertThat(Gemm.TILES).contains(Gemm.tileRows(lanes, regs));
    }

    @Test
    void thisJvmsTileIsOneOfTheTestedOnesAndTheNarrowingTookEffect() {
        assertThat(Gemm.TILES).contains(Gemm.MR);
        assertThat(Gemm.NR).isEqualTo(2 * Gemm.lanes());
        Integer max = Integer.getInteger("cpt4j.test.maxVectorBytes");
        if (max != null) assertThat(4 * Gemm.lanes()).as("-XX:MaxVectorSize=%d", max).isLessThanOrEqualTo(max);
        System.out.println("GemmTileTest: this JVM's tile " + Gemm.withTile(dev.cpt4j.tensor.Parallel.serial(), Gemm.MR).tile());
    }
}
