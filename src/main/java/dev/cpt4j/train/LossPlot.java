package dev.cpt4j.train;

import dev.cpt4j.UserError;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.FontMetrics;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.geom.Path2D;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import javax.imageio.ImageIO;

/**
 * Renders the loss curve (train, and eval when present) against the step as a PNG with java.awt, headless.
 * Not a plotting library: linear axes, ~5 ticks each, two series.
 */
public final class LossPlot {
    /** A point of a curve. */
    public record Point(double step, double value) {}

    private static final Color TRAIN = new Color(0x1f77b4), EVAL = new Color(0xd62728), GRID = new Color(0xe6e6e6);

    private LossPlot() {}

    /** Draws the curves into a {@code width × height} image. */
    public static BufferedImage render(List<Point> train, List<Point> eval, int width, int height) {
        System.setProperty("java.awt.headless", "true");
        if (width < 200 || height < 150) throw new IllegalArgumentException("plot too small: " + width + "x" + height);
        BufferedImage img = new BufferedImage(width, height, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = img.createGraphics();
        try {
            g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
            g.setRenderingHint(RenderingHints.KEY_TEXT_ANTIALIASING, RenderingHints.VALUE_TEXT_ANTIALIAS_ON);
            g.setColor(Color.WHITE);
            g.fillRect(0, 0, width, height);
            g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
            FontMetrics fm = g.getFontMetrics();
            int left = 70, right = 20, top = 36, bottom = 50;
            int pw = width - left - right, ph = height - top - bottom;

            double x0 = Double.POSITIVE_INFINITY, x1 = Double.NEGATIVE_INFINITY;
            double y0 = Double.POSITIVE_INFINITY, y1 = Double.NEGATIVE_INFINITY;
            for (List<Point> s : List.of(train, eval))
                for (Point p : s) {
                    if (!Double.isFinite(p.value())) continue;
                    x0 = Math.min(x0, p.step());
                    x1 = Math.max(x1, p.step());
                    y0 = Math.min(y0, p.value());
                    y1 = Math.max(y1, p.value());
                }
            if (x0 > x1) { x0 = 0; x1 = 1; y0 = 0; y1 = 1; }
            if (x1 == x0) x1 = x0 + 1;
            if (y1 == y0) { y0 -= 0.5; y1 += 0.5; }
            double pad = (y1 - y0) * 0.05;
            y0 -= pad;
            y1 += pad;

            // grid, ticks and labels
            g.setStroke(new BasicStroke(1f));
            for (int i = 0; i <= 5; i++) {
                double yv = y0 + (y1 - y0) * i / 5, xv = x0 + (x1 - x0) * i / 5;
                int py = top + ph - (int) Math.round(ph * (double) i / 5), px = left + (int) Math.round(pw * (double) i / 5);
                g.setColor(GRID);
                g.drawLine(left, py, left + pw, py);
                g.drawLine(px, top, px, top + ph);
                g.setColor(Color.DARK_GRAY);
                String yl = String.format(Locale.ROOT, "%.3g", yv), xl = String.format(Locale.ROOT, "%.0f", xv);
                g.drawString(yl, left - 6 - fm.stringWidth(yl), py + fm.getAscent() / 2 - 1);
                g.drawString(xl, px - fm.stringWidth(xl) / 2, top + ph + 4 + fm.getAscent());
            }
            g.setColor(Color.BLACK);
            g.drawRect(left, top, pw, ph);
            g.drawString("step", left + pw / 2 - fm.stringWidth("step") / 2, height - 12);
            var old = g.getTransform();
            g.rotate(-Math.PI / 2);
            g.drawString("loss", -(top + ph / 2) - fm.stringWidth("loss") / 2, 16);
            g.setTransform(old);
            g.setFont(g.getFont().deriveFont(Font.BOLD, 14f));
            g.drawString("cpt4j training loss", left, 22);
            g.setFont(g.getFont().deriveFont(Font.PLAIN, 12f));

            drawSeries(g, train, TRAIN, x0, x1, y0, y1, left, top, pw, ph);
            drawSeries(g, eval, EVAL, x0, x1, y0, y1, left, top, pw, ph);

            // legend
            int lx = left + pw - 110, ly = top + 8;
            g.setColor(TRAIN);
            g.fillRect(lx, ly + 4, 14, 3);
            g.setColor(Color.BLACK);
            g.drawString("train", lx + 20, ly + 10);
            if (!eval.isEmpty()) {
                g.setColor(EVAL);
                g.fillRect(lx, ly + 20, 14, 3);
                g.setColor(Color.BLACK);
                g.drawString("eval", lx + 20, ly + 26);
            }
        } finally {
            g.dispose();
        }
        return img;
    }

    /** Renders and writes {@code png} atomically (through {@link dev.cpt4j.io.AtomicFiles}). */
    public static void write(Path png, List<Point> train, List<Point> eval, int width, int height) {
        BufferedImage img = render(train, eval, width, height);
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        try {
            if (!ImageIO.write(img, "png", bytes)) throw new IOException("no PNG writer");
        } catch (IOException e) {
            throw new UserError("cannot render " + png + ": " + e.getMessage(), e);
        }
        dev.cpt4j.io.AtomicFiles.write(png, bytes.toByteArray());
    }

    private static void drawSeries(Graphics2D g, List<Point> s, Color c, double x0, double x1, double y0, double y1,
                                   int left, int top, int pw, int ph) {
        Path2D.Double path = new Path2D.Double();
        boolean started = false;
        for (Point p : s) {
            if (!Double.isFinite(p.value())) continue;
            double px = left + (p.step() - x0) / (x1 - x0) * pw, py = top + ph - (p.value() - y0) / (y1 - y0) * ph;
            if (!started) path.moveTo(px, py);
            else path.lineTo(px, py);
            started = true;
        }
        g.setColor(c);
        g.setStroke(new BasicStroke(2f, BasicStroke.CAP_ROUND, BasicStroke.JOIN_ROUND));
        g.draw(path);
        if (s.size() <= 40)
            for (Point p : s) {
                if (!Double.isFinite(p.value())) continue;
                int px = (int) Math.round(left + (p.step() - x0) / (x1 - x0) * pw);
                int py = (int) Math.round(top + ph - (p.value() - y0) / (y1 - y0) * ph);
                g.fillOval(px - 3, py - 3, 6, 6);
            }
    }
}
