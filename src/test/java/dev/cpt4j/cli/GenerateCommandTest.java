package dev.cpt4j.cli;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** Bad input to generate/compare: one clear line on stderr, exit 2, before anything is loaded. */
class GenerateCommandTest {
    @TempDir
    Path dir;
    private final ByteArrayOutputStream err = new ByteArrayOutputStream();
    private PrintStream oldErr;

    @BeforeEach
    void captureErr() {
        oldErr = System.err;
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @AfterEach
    void restoreErr() {
        System.setErr(oldErr);
    }

    private String run(String... args) {
        int code = Main.execute(args);
        String msg = err.toString(StandardCharsets.UTF_8).strip();
        assertThat(code).as(msg).isEqualTo(2);
        assertThat(msg.lines().count()).as(msg).isEqualTo(1);
        return msg;
    }

    @Test
    void emptyPrompt() {
        assertThat(run("generate", "--model", dir.toString(), "--prompt", "  ")).contains("prompt is empty");
    }

    @Test
    void emptyPromptFile() throws Exception {
        Path f = Files.writeString(dir.resolve("p.txt"), "\n");
        assertThat(run("generate", "--model", dir.toString(), "--prompt-file", f.toString())).contains("prompt is empty");
    }

    @Test
    void conflictingLengths() {
        assertThat(run("generate", "--model", dir.toString(), "--prompt", "西湖", "--max-length", "128",
                "--max_new_tokens", "20")).contains("--max-length and --max-new-tokens");
    }

    @Test
    void greedyWithSeveralSequences() {
        assertThat(run("generate", "--model", dir.toString(), "--prompt", "西湖", "--num-return-sequences", "5"))
                .contains("--do-sample true");
    }

    @Test
    void promptAndPromptFileTogether() {
        assertThat(run("generate", "--model", dir.toString(), "--prompt", "a", "--prompt-file", "b")).contains("mutually exclusive");
    }

    @Test
    void missingModelDirectory() {
        assertThat(run("generate", "--model", dir.resolve("nope").toString(), "--prompt", "西湖"))
                .contains("--model").contains("does not exist");
    }

    @Test
    void badTopP() {
        assertThat(run("generate", "--model", dir.toString(), "--prompt", "x", "--do-sample", "true", "--top_p", "2"))
                .contains("--top-p");
    }

    @Test
    void compareNeedsPrompts() throws Exception {
        Path prompts = Files.writeString(dir.resolve("prompts.txt"), "\n \n");
        assertThat(run("compare", "--model", dir.toString(), "--adapter", dir.toString(), "--text-file",
                prompts.toString(), "--prompts", prompts.toString())).contains("no prompts");
    }

    @Test
    void compareNeedsOneDataSource() {
        assertThat(run("compare", "--model", dir.toString(), "--adapter", dir.toString(), "--prompts", "p"))
                .contains("--data").contains("--text-file");
    }
}
