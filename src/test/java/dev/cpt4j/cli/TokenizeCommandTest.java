package dev.cpt4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

class TokenizeCommandTest {
    record Run(int code, String out, String err) {}

    static Run run(String... args) {
        PrintStream o = System.out, e = System.err;
        ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
        try {
            int code = Main.execute(args);
            return new Run(code, out.toString(StandardCharsets.UTF_8), err.toString(StandardCharsets.UTF_8));
        } finally {
            System.setOut(o);
            System.setErr(e);
        }
    }

    static Path bge(Path dir) throws Exception {
        try (InputStream in = TokenizeCommandTest.class.getClassLoader().getResourceAsStream("bge-small-zh-v1.5-q-tokenizer.json")) {
            Path f = dir.resolve("tokenizer.json");
            Files.copy(in, f);
            return f;
        }
    }

    @Test
    void oneJsonArrayPerLine(@TempDir Path dir) throws Exception {
        Path tok = bge(dir);
        Path in = Files.writeString(dir.resolve("in.txt"), "你好，世界！\nhello world\r\n\n[SEP]x");
        Run r = run("tokenize", "--tokenizer", tok.toString(), "--input", in.toString());
        assertThat(r.code()).as(r.err()).isZero();
        // ids from HF tokenizers (bge-small-zh-v1.5 tokenizer.json): '\r' is whitespace to BERT, kept in the line
        assertThat(r.out()).isEqualTo("[101, 872, 1962, 8024, 686, 4518, 8013, 102]\n[101, 8701, 8572, 102]\n[101, 102]\n[101, 102, 166, 102]\n");
        Run n = run("tokenize", "--tokenizer", dir.toString(), "--input", in.toString(), "--no-special-tokens");
        assertThat(n.out()).startsWith("[872, 1962, 8024, 686, 4518, 8013]\n[8701, 8572]\n[]\n");
    }

    @Test
    void badTokenizerFileIsOneLine(@TempDir Path dir) throws Exception {
        Path in = Files.writeString(dir.resolve("in.txt"), "x\n");
        Path bad = Files.writeString(dir.resolve("tokenizer.json"), "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}, \"pre_tokenizer\": {\"type\": \"UnicodeScripts\"}}");
        Run r = run("tokenize", "--tokenizer", bad.toString(), "--input", in.toString());
        assertThat(r.code()).isEqualTo(2);
        assertThat(r.err().strip()).doesNotContain("\n").contains(bad.toString()).contains("'pre_tokenizer.type' is 'UnicodeScripts'")
                .contains("supported: BertPreTokenizer");
    }

    @Test
    void tokenizerExtendAndTrainReport(@TempDir Path dir) throws Exception {
        Path tok = bge(dir);
        Path corpus = Files.createDirectories(dir.resolve("corpus"));
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < 400; i++) b.append("北京大学的学生在北京学习自然语言处理。第").append(i).append("行\n");
        Files.writeString(corpus.resolve("a.txt"), b);
        Run r = run("tokenizer", "extend", "--base", tok.toString(), "--corpus", corpus.toString(), "--add", "20", "--output", dir.resolve("ext").toString());
        assertThat(r.code()).as(r.err()).isZero();
        // a repetitive corpus runs out of pairs seen twice before 20 merges: fewer new tokens, never more
        assertThat(r.out()).containsPattern("vocabulary: 21128 -> 211[3-4]\\d ids").contains("tokens per 1,000 chars");
        assertThat(Files.exists(dir.resolve("ext/tokenizer.json"))).isTrue();
        Run t = run("tokenizer", "train", "--corpus", corpus.toString(), "--type", "wordpiece", "--vocab-size", "200", "--output", dir.resolve("tr").toString());
        assertThat(t.code()).as(t.err()).isZero();
        Run again = run("tokenizer", "train", "--corpus", corpus.toString(), "--vocab-size", "300", "--output", dir.resolve("tr").toString());
        assertThat(again.code()).isEqualTo(2);
        assertThat(again.err()).contains("already has a tokenizer.json");
    }
}
