package dev.cpt4j.tensor.cpu;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.tensor.Parallel;
import org.junit.jupiter.api.Test;

/** The backend choice: parsing, and {@code new Gemm(par)} honouring {@value Backend#PROPERTY} (run in both surefire executions). */
class BackendTest {
    @Test
    void theGemmEveryLayerBuildsUsesThePropertysBackend() {
        try (Parallel par = new Parallel(1)) {
            String want = switch (Backend.fromProperty()) {
                case JAVA -> "java";
                case NATIVE -> "native";
                case AUTO -> OpenBlas.available() ? "native" : "java";
            };
            assertThat(new Gemm(par).backend()).isEqualTo(want);
            assertThat(new Gemm(par).describe()).startsWith(want);
        }
    }

    @Test
    void parsesTheThreeNamesAndRejectsOthers() {
        assertThat(Backend.parse("Native")).isEqualTo(Backend.NATIVE);
        assertThat(Backend.parse("java")).isEqualTo(Backend.JAVA);
        assertThat(Backend.parse("auto")).isEqualTo(Backend.AUTO);
        assertThatThrownBy(() -> Backend.parse("cuda")).hasMessage("unknown backend 'cuda'; use auto, java or native");
    }
}
