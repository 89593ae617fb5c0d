package dev.cpt4j.generate;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class CompareReportTest {
    static CompareReport report() {
        return new CompareReport("models/wenzhong", "out/adapter", "data/prepared", 12, 6144,
                Math.log(40.0), Math.log(30.0), "top-p 0.9, top-k 50, max-length 128",
                List.of(new CompareReport.PromptSamples("眼角斜瞥着柳翎那略微有些阴沉的脸庞。萧炎", 42,
                                List.of("萧炎，男，1964年生", "<script>alert(1)</script> a|b"),
                                List.of("萧炎淡淡的道。", "line one\nline two & \"quotes\"")),
                        new CompareReport.PromptSamples("西湖的景色", 42, List.of("很美"), List.of("美不胜收"))));
    }

    @Test
    void perplexityNumbers() {
        CompareReport r = report();
        assertThat(r.perplexityBefore()).isCloseTo(40.0, org.assertj.core.data.Offset.offset(1e-9));
        assertThat(r.perplexityAfter()).isCloseTo(30.0, org.assertj.core.data.Offset.offset(1e-9));
        assertThat(r.perplexityChange()).isCloseTo(-0.25, org.assertj.core.data.Offset.offset(1e-12));
    }

    @Test
    void markdownHasBothTablesAndEscapesCells() {
        String md = report().toMarkdown();
        assertThat(md).contains("| perplexity | 40.0000 | 30.0000 | -25.0 % |")
                .contains("| 1 | 萧炎，男，1964年生 | 萧炎淡淡的道。 |")
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; a\\|b")
                .contains("line one<br>line two &amp; &quot;quotes&quot;")
                .contains("### Prompt 2 (seed 42)")
                .doesNotContain("<script>");
        // every sample row of the first table has exactly 3 unescaped cell separators + borders
        for (String line : md.split("\n"))
            if (line.startsWith("| 2 |")) assertThat(line.replace("\\|", "").chars().filter(c -> c == '|').count()).isEqualTo(4);
    }

    @Test
    void htmlIsEscapedUtf8AndSideBySide() {
        String html = report().toHtml();
        assertThat(html).startsWith("<!DOCTYPE html>").contains("<meta charset=\"utf-8\">")
                .contains("<td class=\"text\">萧炎，男，1964年生</td><td class=\"text\">萧炎淡淡的道。</td>")
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; a|b")
                .contains("line one\nline two &amp; &quot;quotes&quot;")
                .doesNotContain("<script>");
        assertThat(html.split("<tr>", -1).length - 1).isEqualTo(2 + 1 + 3 + 2); // perplexity table + 2 sample tables
    }

    @Test
    void writesBothFilesAtomically(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("report");
        report().write(out);
        try (var files = Files.list(out)) {
            assertThat(files.map(p -> p.getFileName().toString()).sorted().toList()).containsExactly("report.html", "report.md");
        }
        assertThat(Files.readString(out.resolve("report.md"), StandardCharsets.UTF_8)).contains("西湖的景色");
    }
}
