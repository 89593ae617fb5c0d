package dev.cpt4j.cli;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * Issue 14 item 1: the launcher's stderr filter drops the JVM's incubator warning and passes everything else at once,
 * so a progress bar's carriage-return updates are not held back until a newline, and plain lines arrive whole.
 */
class LauncherTest {
    @Test
    void stderrFilterDropsTheWarningAndHoldsNothingBack() throws Exception {
        String launcher = Files.readString(Path.of("cpt4j"));
        int from = launcher.indexOf("drop_incubator_warning() {"), to = launcher.indexOf("\n}\n", from) + 3;
        assertThat(from).isPositive();
        String script = launcher.substring(from, to)
                + "{ printf 'WARNING: Using incubator modules: jdk.incubator.vector\\ncpt4j: first line\\n\\rtrain 10%%';"
                + " sleep 3; printf '\\rtrain 20%%\\nstep 2/2: saved out\\n'; } | drop_incubator_warning\n";
        Process p = new ProcessBuilder("bash", "-c", script).redirectErrorStream(true).start();
        InputStream in = p.getInputStream();
        StringBuilder early = new StringBuilder();
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(2000);
        while (System.nanoTime() < deadline && !early.toString().endsWith("train 10%")) {
            if (in.available() > 0) early.append((char) in.read());
            else Thread.sleep(20);
        }
        assertThat(early.toString()).as("before the writer's next newline").isEqualTo("cpt4j: first line\n\rtrain 10%");
        String rest = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        assertThat(p.waitFor(10, TimeUnit.SECONDS)).isTrue();
        assertThat(rest).isEqualTo("\rtrain 20%\nstep 2/2: saved out\n");
    }

    @Test
    void launcherTellsTheJvmWhetherStderrIsATerminal() throws Exception {
        String launcher = Files.readString(Path.of("cpt4j"));
        assertThat(launcher).contains("[ -t 2 ]").contains("-D" + dev.cpt4j.train.Progress.TERMINAL_PROPERTY + "=\"$STDERR_TERMINAL\"");
    }
}
