package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.extension.AfterEachCallback;
import org.junit.jupiter.api.extension.BeforeEachCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Runs {@code cpt4j} commands in-process with stdout and stderr captured for each test
 * ({@code @RegisterExtension final CliCapture cli = new CliCapture();}).
 */
final class CliCapture implements BeforeEachCallback, AfterEachCallback {
    private final ByteArrayOutputStream out = new ByteArrayOutputStream(), err = new ByteArrayOutputStream();
    private PrintStream oldOut, oldErr;

    @Override
    public void beforeEach(ExtensionContext context) {
        oldOut = System.out;
        oldErr = System.err;
        System.setOut(new PrintStream(out, true, StandardCharsets.UTF_8));
        System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
    }

    @Override
    public void afterEach(ExtensionContext context) {
        System.setOut(oldOut);
        System.setErr(oldErr);
    }

    /** Runs a command that must exit 0; returns its stdout lines (stderr is the failure message). */
    List<String> ok(String... args) {
        int code = Main.execute(args);
        assertThat(code).as(err.toString(StandardCharsets.UTF_8)).isZero();
        List<String> lines = out.toString(StandardCharsets.UTF_8).lines().toList();
        out.reset();
        err.reset();
        return lines;
    }

    /** Runs a command that must exit 2 with one line on stderr; returns that line. */
    String fails(String... args) {
        int code = Main.execute(args);
        String msg = err.toString(StandardCharsets.UTF_8).strip();
        err.reset();
        out.reset();
        assertThat(code).as(msg).isEqualTo(2);
        assertThat(msg.lines().count()).as(msg).isEqualTo(1);
        return msg;
    }
}
