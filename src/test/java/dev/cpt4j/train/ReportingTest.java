package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import javax.imageio.ImageIO;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Metrics JSONL, loss PNG, progress bar, NaN guard. */
class ReportingTest {

    @Test
    void lossPlotDecodesWithTheRequestedSizeAndDrawsBothCurves(@TempDir Path dir) throws Exception {
        List<LossPlot.Point> train = new ArrayList<>(), eval = new ArrayList<>();
        for (int s = 1; s <= 200; s++) train.add(new LossPlot.Point(s, 5 * Math.exp(-s / 50.0) + 1));
        for (int s = 50; s <= 200; s += 50) eval.add(new LossPlot.Point(s, 5 * Math.exp(-s / 50.0) + 1.2));
        Path png = dir.resolve("loss.png");
        LossPlot.write(png, train, eval, 640, 400);
        BufferedImage img = ImageIO.read(png.toFile());
        assertThat(img).isNotNull();
        assertThat(img.getWidth()).isEqualTo(640);
        assertThat(img.getHeight()).isEqualTo(400);
        boolean blue = false, red = false;
        for (int y = 0; y < img.getHeight(); y++)
            for (int x = 0; x < img.getWidth(); x++) {
                int rgb = img.getRGB(x, y) & 0xFFFFFF;
                blue |= rgb == 0x1f77b4;
                red |= rgb == 0xd62728;
            }
        assertThat(blue).as("train curve drawn").isTrue();
        assertThat(red).as("eval curve drawn").isTrue();
        assertThat(Files.list(dir)).extracting(p -> p.getFileName().toString()).containsExactly("loss.png");
    }

    @Test
    void plotSurvivesDegenerateInput() {
        BufferedImage img = LossPlot.render(List.of(new LossPlot.Point(1, Double.NaN)), List.of(), 300, 200);
        assertThat(img.getWidth()).isEqualTo(300);
        img = LossPlot.render(List.of(new LossPlot.Point(3, 2.0)), List.of(), 300, 200);
        assertThat(img.getHeight()).isEqualTo(200);
    }

    @Test
    void metricsResumeDropsLinesPastTheCheckpoint(@TempDir Path dir) throws Exception {
        try (MetricsLog log = MetricsLog.open(dir, -1)) {
            for (int s = 1; s <= 5; s++) log.log(new MetricsLog.Train(s, 3.0 / s, 1e-4, 0.5, 1000, s));
            log.log(new MetricsLog.Eval(4, Math.log(20)));
        }
        Files.writeString(dir.resolve(MetricsLog.FILE), "{\"step\":6,\"lo", java.nio.file.StandardOpenOption.APPEND); // torn by kill -9
        try (MetricsLog log = MetricsLog.open(dir, 4)) {
            log.log(new MetricsLog.Train(5, 0.61, 1e-4, 0.5, 1000, 9));
        }
        var lines = MetricsLog.read(dir.resolve(MetricsLog.FILE));
        assertThat(lines).extracting(j -> j.get("step").asLong()).containsExactly(1L, 2L, 3L, 4L, 4L, 5L);
        assertThat(lines.get(4).get("eval_ppl").asDouble()).isCloseTo(20.0, org.assertj.core.data.Offset.offset(1e-9));
        assertThat(lines.get(5).get("loss").asDouble()).isEqualTo(0.61);
        try (MetricsLog log = MetricsLog.open(dir, -1)) { /* a new run starts a new log */ }
        assertThat(MetricsLog.read(dir.resolve(MetricsLog.FILE))).isEmpty();
    }

    @Test
    void progressBarShowsStepLossLrGradNormAndThroughput() {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        try (Progress p = Progress.console(new PrintStream(buf, true, StandardCharsets.UTF_8))) {
            p.start(0, 10);
            p.step(3, 2.5, 1.5e-4, 0.75, 1234);
            p.message("step 3: eval loss 2.6");
        }
        String s = buf.toString(StandardCharsets.UTF_8);
        assertThat(s).contains("train").contains("3/10").contains("loss 2.5000").contains("lr 1.50e-04")
                .contains("|g| 0.750").contains("1234 tok/s").contains("step 3: eval loss 2.6");
    }

    @Test
    void nonFiniteNamesStepAndCheckpoint() {
        assertThat(Finite.require(1.5, "loss", 3, null)).isEqualTo(1.5);
        assertThatThrownBy(() -> Finite.require(Double.NaN, "loss", 42, Path.of("out/checkpoint-40")))
                .isInstanceOf(UserError.class).hasMessageContaining("loss became NaN at step 42")
                .hasMessageContaining("out/checkpoint-40");
        assertThatThrownBy(() -> Finite.require(Double.POSITIVE_INFINITY, "gradient norm", 1, null))
                .isInstanceOf(UserError.class).hasMessageContaining("infinite at step 1");
    }
}
