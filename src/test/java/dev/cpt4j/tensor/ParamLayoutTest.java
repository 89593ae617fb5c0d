package dev.cpt4j.tensor;

import dev.cpt4j.UserError;
import org.junit.jupiter.api.Test;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** A layout past one flat buffer still names and shapes every tensor (for per-tensor storage) but refuses a flat size. */
class ParamLayoutTest {
    @Test
    void layoutsBeyondOneBufferNameTensorsButRefuseAFlatBuffer() {
        ParamLayout p = new ParamLayout();
        p.add("embed", 128256, 4096);        // 525 M
        p.add("a", 14336, 4096);             // 58.7 M
        for (int i = 0; i < 28; i++) p.add("m" + i, 14336, 4096);
        p.add("head", 128256, 4096);
        assertThat(p.totalSize()).isEqualTo(2L * 128256 * 4096 + 29L * 14336 * 4096);
        assertThat(p.get("embed").offset()).isZero();
        assertThat(p.get("a").offset()).isEqualTo(128256 * 4096);
        assertThat(p.get("head").offset()).isEqualTo(-1);
        assertThat(p.get("head").shape()).containsExactly(128256, 4096);
        assertThatThrownBy(p::size).isInstanceOf(UserError.class).hasMessageContaining("more than one fp32 buffer holds")
                .hasMessageContaining("bench load");
        ParamLayout small = new ParamLayout();
        small.add("x", 3, 5);
        assertThat(small.size()).isEqualTo(15);
    }
}
