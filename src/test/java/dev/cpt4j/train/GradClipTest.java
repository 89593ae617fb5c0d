package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.data.Offset.offset;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.tensor.Parallel;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class GradClipTest {

    /** torch.nn.utils.clip_grad_norm_ on three tensors; fixture from tools/golden/make_train_golden.py. */
    @Test
    void matchesTorchClipGradNorm() {
        for (JsonNode c : Golden.load("clip.json").get("cases")) {
            List<float[]> parts = new ArrayList<>();
            c.get("grads").forEach(a -> parts.add(Golden.floats(a)));
            List<AdamW.Segment> segs = new ArrayList<>();
            int n = 0;
            for (float[] p : parts) {
                segs.add(new AdamW.Segment(n + 3, p.length, n, 0)); // a gap of 3 frozen elements before each
                n += p.length + 3;
            }
            float[] g = new float[n];
            for (int i = 0; i < parts.size(); i++) System.arraycopy(parts.get(i), 0, g, segs.get(i).offset(), parts.get(i).length);
            double norm = GradClip.clip(g, segs, c.get("max_norm").asDouble(), null);
            assertThat(norm).isCloseTo(c.get("norm").asDouble(), offset(1e-6 * Math.max(1, norm)));
            for (int i = 0; i < parts.size(); i++) {
                float[] want = Golden.floats(c.get("clipped").get(i));
                for (int j = 0; j < want.length; j++)
                    assertThat(g[segs.get(i).offset() + j]).isCloseTo(want[j], offset(1e-6f * Math.max(1f, Math.abs(want[j]))));
            }
        }
    }

    @Test
    void vectorNormEqualsNaiveAndIgnoresFrozen() {
        for (int n : new int[] {1, 7, 33, 4095, 4097, 70_001}) {
            Random r = new Random(n);
            float[] g = new float[n + 10];
            for (int i = 0; i < g.length; i++) g[i] = (float) r.nextGaussian();
            List<AdamW.Segment> segs = List.of(new AdamW.Segment(5, n, 0, 0));
            try (Parallel par = new Parallel(2)) {
                double fast = GradClip.globalNorm(g, segs, par), serial = GradClip.globalNorm(g, segs, null);
                assertThat(fast).isEqualTo(serial); // thread-count independent
                assertThat(fast).isCloseTo(GradClip.globalNormNaive(g, segs), offset(1e-6 * fast));
            }
        }
    }

    @Test
    void zeroMaxNormMeasuresOnly() {
        float[] g = {3, 4};
        double norm = GradClip.clip(g, List.of(new AdamW.Segment(0, 2, 0, 0)), 0, null);
        assertThat(norm).isEqualTo(5.0);
        assertThat(g).containsExactly(3, 4);
    }
}
