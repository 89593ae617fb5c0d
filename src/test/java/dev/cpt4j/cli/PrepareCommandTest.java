package dev.cpt4j.cli;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** Bad input to {@code cpt4j prepare}: one line on stderr, exit 2, nothing created or changed. */
class PrepareCommandTest {
    @TempDir
    Path tmp;

    private String err;

    private int run(String... args) {
        PrintStream old = System.err;
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        System.setErr(new PrintStream(buf, true, StandardCharsets.UTF_8));
        try {
            return Main.execute(args);
        } finally {
            System.setErr(old);
            err = buf.toString(StandardCharsets.UTF_8);
        }
    }

    private Path tokenizerFile() throws IOException {
        Path t = tmp.resolve("tokenizer.json");
        Files.writeString(t, "{}");
        return t;
    }

    @Test
    void emptyOrMissingDatasetDirectory() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        Path out = tmp.resolve("out");
        assertThat(run("prepare", "--tokenizer", tokenizerFile().toString(), "--dataset_dir", empty.toString(),
                "--block_size", "8", "--output", out.toString())).isEqualTo(2);
        assertThat(err.strip()).contains("no *.txt or *.jsonl files").doesNotContain("\n");
        assertThat(run("prepare", "--tokenizer", tokenizerFile().toString(), "--dataset-dir", tmp.resolve("nope").toString(),
                "--block-size", "8", "--data_cache_dir", out.toString())).isEqualTo(2);
        assertThat(err).contains("does not exist");
        assertThat(Files.exists(out)).isFalse();
    }

    @Test
    void blockSizeZeroAndFractionAbove1() throws IOException {
        Path data = Files.createDirectories(tmp.resolve("d"));
        Files.writeString(data.resolve("a.txt"), "hello\n");
        assertThat(run("prepare", "--tokenizer", tokenizerFile().toString(), "--dataset_dir", data.toString(),
                "--block_size", "0", "--output", tmp.resolve("o").toString())).isEqualTo(2);
        assertThat(err.strip()).startsWith("cpt4j: --block_size must be at least 1").doesNotContain("\n");
        assertThat(run("prepare", "--tokenizer", tokenizerFile().toString(), "--dataset_dir", data.toString(),
                "--block_size", "8", "--validation_split_percentage", "10", "--output", tmp.resolve("o").toString())).isEqualTo(2);
        assertThat(err).contains("is a fraction");
        assertThat(Files.exists(tmp.resolve("o"))).isFalse();
    }

    @Test
    void outputHoldingSomethingElseIsRefusedUntouched() throws IOException {
        Path data = Files.createDirectories(tmp.resolve("d"));
        Files.writeString(data.resolve("a.txt"), "hello\n");
        Path out = Files.createDirectories(tmp.resolve("o"));
        Files.writeString(out.resolve("thesis.tex"), "precious");
        assertThat(run("prepare", "--tokenizer", tokenizerFile().toString(), "--dataset_dir", data.toString(),
                "--block_size", "8", "--output", out.toString())).isEqualTo(2);
        assertThat(err.strip()).contains("not a cpt4j token store (e.g. thesis.tex)").doesNotContain("\n");
        try (var l = Files.list(out)) {
            assertThat(l.toList()).containsExactly(out.resolve("thesis.tex"));
        }
        assertThat(Files.readString(out.resolve("thesis.tex"))).isEqualTo("precious");
    }

    @Test
    void missingTokenizer() throws IOException {
        Path data = Files.createDirectories(tmp.resolve("d"));
        Files.writeString(data.resolve("a.txt"), "hello\n");
        assertThat(run("prepare", "--tokenizer", tmp.resolve("none").toString(), "--dataset_dir", data.toString(),
                "--block_size", "8", "--output", tmp.resolve("o").toString())).isEqualTo(2);
        assertThat(err).contains("tokenizer").contains("does not exist");
        assertThat(Files.exists(tmp.resolve("o"))).isFalse();
    }
}
