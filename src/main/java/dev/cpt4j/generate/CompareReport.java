package dev.cpt4j.generate;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The before/after report of {@code cpt4j compare}: perplexity of two models (the base and base + adapter, or any
 * two: {@link Comparison}) on the same held-out blocks, and continuations of the same prompts with the same seeds
 * side by side — the blog's "with and without continued pretraining" comparison, with numbers. Renders to
 * Markdown and to a standalone HTML page (UTF-8, every user string escaped).
 *
 * @param before     the reference model (left column)
 * @param after      the model compared with it (right column)
 * @param evalSource what the perplexity was measured on (a prepared directory or a text file)
 * @param blocks     held-out blocks evaluated
 * @param tokens     tokens scored
 * @param lossBefore mean next-token cross-entropy (nats) of {@code before}
 * @param lossAfter  the same of {@code after}
 * @param settings   the sampling settings, in words
 * @param samples    each prompt's continuations by both models
 * @param general    the general-domain held-out text measured the same way ({@code --general_eval_file}: what the
 *                   adaptation cost there, i.e. forgetting), or null
 */
public record CompareReport(Side before, Side after, String evalSource, int blocks, long tokens,
                            double lossBefore, double lossAfter, String settings, List<PromptSamples> samples,
                            General general) {

    /** Loss of both models on general-domain held-out text. */
    public record General(String source, int blocks, double lossBefore, double lossAfter) {
        public double perplexityBefore() {
            return Math.exp(lossBefore);
        }

        public double perplexityAfter() {
            return Math.exp(lossAfter);
        }

        public double perplexityChange() {
            return perplexityAfter() / perplexityBefore() - 1.0;
        }
    }

    /** A report without general-domain text. */
    public CompareReport(Side before, Side after, String evalSource, int blocks, long tokens, double lossBefore,
                         double lossAfter, String settings, List<PromptSamples> samples) {
        this(before, after, evalSource, blocks, tokens, lossBefore, lossAfter, settings, samples, null);
    }

    /**
     * One of the two models.
     *
     * @param heading its column heading ("base", "base + adapter", a folder name)
     * @param model   its model directory
     * @param adapter its adapter directory, or null
     */
    public record Side(String heading, String model, String adapter) {}

    /** One prompt's continuations; {@code before.get(i)} and {@code after.get(i)} share a seed. */
    public record PromptSamples(String prompt, long seed, List<String> before, List<String> after) {
        public PromptSamples {
            before = List.copyOf(before);
            after = List.copyOf(after);
            if (before.size() != after.size())
                throw new IllegalArgumentException("before has " + before.size() + " samples, after " + after.size());
        }
    }

    public CompareReport {
        samples = List.copyOf(samples);
    }

    /** The classic report: {@code model} (heading "base") vs. {@code model + adapter} ("base + adapter"). */
    public CompareReport(String model, String adapter, String evalSource, int blocks, long tokens, double lossBefore,
                         double lossAfter, String settings, List<PromptSamples> samples) {
        this(new Side("base", model, null), new Side("base + adapter", model, adapter), evalSource, blocks, tokens,
                lossBefore, lossAfter, settings, samples);
    }

    public double perplexityBefore() {
        return Math.exp(lossBefore);
    }

    public double perplexityAfter() {
        return Math.exp(lossAfter);
    }

    /** Relative change of perplexity, e.g. -0.25 for a 25 % drop. */
    public double perplexityChange() {
        return perplexityAfter() / perplexityBefore() - 1.0;
    }

    public String toMarkdown() {
        StringBuilder sb = new StringBuilder();
        sb.append("# cpt4j compare: ").append(cell(before.heading())).append(" vs. ").append(cell(after.heading())).append("\n\n");
        for (Side s : List.of(before, after)) {
            sb.append("- ").append(cell(s.heading())).append(": `").append(code(s.model())).append('`');
            if (s.adapter() != null) sb.append(" + adapter `").append(code(s.adapter())).append('`');
            sb.append('\n');
        }
        sb.append("- held-out data: `").append(code(evalSource)).append("` (").append(blocks).append(" blocks, ")
                .append(tokens).append(" tokens)\n");
        sb.append("- sampling: ").append(cell(settings)).append("\n\n");
        sb.append("## Perplexity\n\n");
        sb.append("| | ").append(cell(before.heading())).append(" | ").append(cell(after.heading()))
                .append(" | change |\n|---|---:|---:|---:|\n");
        sb.append("| loss (nats/token) | ").append(num(lossBefore)).append(" | ").append(num(lossAfter)).append(" | ")
                .append(signed(lossAfter - lossBefore)).append(" |\n");
        sb.append("| perplexity | ").append(num(perplexityBefore())).append(" | ").append(num(perplexityAfter()))
                .append(" | ").append(percent(perplexityChange())).append(" |\n");
        if (general != null)
            sb.append("| general-domain perplexity (`").append(code(general.source())).append("`, ").append(general.blocks())
                    .append(" blocks: forgetting) | ").append(num(general.perplexityBefore())).append(" | ")
                    .append(num(general.perplexityAfter())).append(" | ").append(percent(general.perplexityChange())).append(" |\n");
        sb.append("\n");
        sb.append("## Samples\n");
        int i = 1;
        for (PromptSamples p : samples) {
            sb.append("\n### Prompt ").append(i++).append(" (seed ").append(p.seed()).append(")\n\n");
            sb.append("> ").append(cell(p.prompt())).append("\n\n");
            sb.append("| # | ").append(cell(before.heading())).append(" | ").append(cell(after.heading()))
                    .append(" |\n|---:|---|---|\n");
            for (int k = 0; k < p.before().size(); k++)
                sb.append("| ").append(k + 1).append(" | ").append(cell(p.before().get(k))).append(" | ")
                        .append(cell(p.after().get(k))).append(" |\n");
        }
        return sb.toString();
    }

    public String toHtml() {
        StringBuilder sb = new StringBuilder();
        sb.append("<!DOCTYPE html>\n<html lang=\"zh\">\n<head>\n<meta charset=\"utf-8\">\n")
                .append("<title>cpt4j compare</title>\n<style>\n")
                .append("body{font-family:system-ui,'Noto Sans CJK SC','PingFang SC',sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;line-height:1.5}\n")
                .append("table{border-collapse:collapse;width:100%;table-layout:fixed;margin:1em 0}\n")
                .append("th,td{border:1px solid #ccc;padding:.4em .6em;vertical-align:top;text-align:left}\n")
                .append("td.text{white-space:pre-wrap;word-break:break-word}\n")
                .append("th.n,td.n{width:3em;text-align:right}\n")
                .append("td.num{text-align:right;font-variant-numeric:tabular-nums}\n")
                .append("blockquote{background:#f6f6f6;margin:0;padding:.5em 1em;white-space:pre-wrap}\n")
                .append("</style>\n</head>\n<body>\n");
        sb.append("<h1>cpt4j compare: ").append(html(before.heading())).append(" vs. ").append(html(after.heading()))
                .append("</h1>\n<ul>\n");
        for (Side s : List.of(before, after)) {
            sb.append("<li>").append(html(s.heading())).append(": <code>").append(html(s.model())).append("</code>");
            if (s.adapter() != null) sb.append(" + adapter <code>").append(html(s.adapter())).append("</code>");
            sb.append("</li>\n");
        }
        sb.append("<li>held-out data: <code>").append(html(evalSource)).append("</code> (").append(blocks)
                .append(" blocks, ").append(tokens).append(" tokens)</li>\n");
        sb.append("<li>sampling: ").append(html(settings)).append("</li>\n</ul>\n");
        sb.append("<h2>Perplexity</h2>\n<table>\n<tr><th></th><th>").append(html(before.heading())).append("</th><th>")
                .append(html(after.heading())).append("</th><th>change</th></tr>\n");
        sb.append("<tr><td>loss (nats/token)</td><td class=\"num\">").append(num(lossBefore))
                .append("</td><td class=\"num\">").append(num(lossAfter)).append("</td><td class=\"num\">")
                .append(signed(lossAfter - lossBefore)).append("</td></tr>\n");
        sb.append("<tr><td>perplexity</td><td class=\"num\">").append(num(perplexityBefore()))
                .append("</td><td class=\"num\">").append(num(perplexityAfter())).append("</td><td class=\"num\">")
                .append(percent(perplexityChange())).append("</td></tr>\n");
        if (general != null)
            sb.append("<tr><td>general-domain perplexity (<code>").append(html(general.source())).append("</code>, ")
                    .append(general.blocks()).append(" blocks: forgetting)</td><td class=\"num\">")
                    .append(num(general.perplexityBefore())).append("</td><td class=\"num\">")
                    .append(num(general.perplexityAfter())).append("</td><td class=\"num\">")
                    .append(percent(general.perplexityChange())).append("</td></tr>\n");
        sb.append("</table>\n");
        sb.append("<h2>Samples</h2>\n");
        int i = 1;
        for (PromptSamples p : samples) {
            sb.append("<h3>Prompt ").append(i++).append(" (seed ").append(p.seed()).append(")</h3>\n");
            sb.append("<blockquote>").append(html(p.prompt())).append("</blockquote>\n");
            sb.append("<table>\n<tr><th class=\"n\">#</th><th>").append(html(before.heading())).append("</th><th>")
                    .append(html(after.heading())).append("</th></tr>\n");
            for (int k = 0; k < p.before().size(); k++)
                sb.append("<tr><td class=\"n\">").append(k + 1).append("</td><td class=\"text\">")
                        .append(html(p.before().get(k))).append("</td><td class=\"text\">")
                        .append(html(p.after().get(k))).append("</td></tr>\n");
            sb.append("</table>\n");
        }
        sb.append("</body>\n</html>\n");
        return sb.toString();
    }

    /** Writes {@code report.md} and {@code report.html} into {@code dir} (created if needed), each atomically. */
    public void write(Path dir) {
        try {
            Files.createDirectories(dir);
            atomicWrite(dir.resolve("report.md"), toMarkdown());
            atomicWrite(dir.resolve("report.html"), toHtml());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the report to " + dir + ": " + e.getMessage(), e);
        }
    }

    private static void atomicWrite(Path dst, String text) {
        dev.cpt4j.io.AtomicFiles.writeString(dst, text);
    }

    /** HTML text and attribute escaping. */
    static String html(String s) {
        StringBuilder sb = new StringBuilder(s.length());
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> sb.append("&amp;");
                case '<' -> sb.append("&lt;");
                case '>' -> sb.append("&gt;");
                case '"' -> sb.append("&quot;");
                case '\'' -> sb.append("&#39;");
                default -> sb.append(c);
            }
        }
        return sb.toString();
    }

    /** A Markdown table cell: no raw HTML, no column breaks, line breaks as <br>. */
    static String cell(String s) {
        String e = html(s).replace("\\", "\\\\").replace("|", "\\|").replace("`", "\\`")
                .replace("*", "\\*").replace("_", "\\_");
        return e.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "<br>");
    }

    /** Inside a Markdown code span: backticks and line breaks would end it. */
    private static String code(String s) {
        return s.replace("`", "'").replace("\n", " ").replace("\r", " ");
    }

    private static String num(double v) {
        return String.format(Locale.ROOT, "%.4f", v);
    }

    private static String signed(double v) {
        return String.format(Locale.ROOT, "%+.4f", v);
    }

    private static String percent(double v) {
        return String.format(Locale.ROOT, "%+.1f %%", 100 * v);
    }
}
