package dev.cpt4j.cli;

import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

import static org.assertj.core.api.Assertions.assertThat;

/** Bad input to serve: one clear line on stderr, exit 2, no server left running. */
class ServeCommandTest {
    static final String MODEL = "src/test/resources/golden/generate/tiny_wp";
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

    private String fails(String... args) {
        int code = Main.execute(args);
        String msg = err.toString(StandardCharsets.UTF_8).strip();
        err.reset();
        assertThat(code).as(msg).isEqualTo(2);
        assertThat(msg.lines().count()).as(msg).isEqualTo(1);
        return msg;
    }

    @Test
    void badFlagsAndDirectories() throws Exception {
        assertThat(fails("serve", "--model", dir.resolve("nope").toString())).contains("--model").contains("not a directory");
        assertThat(fails("serve", "--model", MODEL, "--lora-modules", "poem")).contains("NAME=DIR");
        assertThat(fails("serve", "--model", MODEL, "--lora-modules", "poem=" + dir.resolve("none")))
                .contains("poem=").contains("adapter_config.json");
        assertThat(fails("serve", "--model", MODEL, "--max-n", "40")).contains("--max-n");
        assertThat(fails("serve", "--model", MODEL, "--port", "70000")).contains("--port");
        assertThat(fails("serve", "--model", MODEL, "--max-model-len", "4096")).contains("--max-model-len");
        try (ServerSocket taken = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            assertThat(fails("serve", "--model", MODEL, "--port", String.valueOf(taken.getLocalPort())))
                    .contains("cannot listen").contains("--port");
        }
    }
}
