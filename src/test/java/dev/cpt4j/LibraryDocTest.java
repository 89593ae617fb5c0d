package dev.cpt4j;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * docs/LIBRARY.md cannot rot: every {@code java} block in it is compiled against the classes (javax.tools) and the
 * blocks are run in order, each in a method of its own, in a child JVM whose working directory holds the files they
 * name: {@code models/base} (the tiny WordPiece GPT-2 of golden/generate/tiny_wp), {@code corpus/} and
 * {@code test.txt} (its poem lines). A block's {@code import} lines go to the top of the generated file.
 */
class LibraryDocTest {
    private static final Pattern JAVA_BLOCK = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL);

    record Snippets(Set<String> imports, List<String> bodies) {}

    static Snippets extract(String markdown) {
        Set<String> imports = new LinkedHashSet<>();
        List<String> bodies = new ArrayList<>();
        Matcher m = JAVA_BLOCK.matcher(markdown);
        while (m.find()) {
            StringBuilder body = new StringBuilder();
            for (String line : m.group(1).split("\n", -1)) {
                if (line.startsWith("import ")) imports.add(line.strip());
                else body.append(line).append('\n');
            }
            bodies.add(body.toString());
        }
        return new Snippets(imports, bodies);
    }

    static String program(Snippets s) {
        StringBuilder src = new StringBuilder();
        for (String i : s.imports()) src.append(i).append('\n');
        src.append("\npublic class LibrarySnippets {\n");
        for (int i = 0; i < s.bodies().size(); i++)
            src.append("static void snippet").append(i + 1).append("() throws Exception {\n").append(s.bodies().get(i)).append("}\n");
        src.append("public static void main(String[] args) throws Exception {\n");
        for (int i = 0; i < s.bodies().size(); i++)
            src.append("System.out.println(\"--- snippet ").append(i + 1).append("\");\nsnippet").append(i + 1).append("();\n");
        src.append("System.out.println(\"--- done\");\n}\n}\n");
        return src.toString();
    }

    @Test
    void everyJavaExampleCompilesAndRuns(@TempDir Path tmp) throws Exception {
        Snippets s = extract(Files.readString(Path.of("docs/LIBRARY.md"), StandardCharsets.UTF_8));
        assertThat(s.bodies()).as("java blocks in docs/LIBRARY.md").hasSizeGreaterThanOrEqualTo(6);

        Path srcDir = Files.createDirectories(tmp.resolve("src")), classes = Files.createDirectories(tmp.resolve("classes"));
        Path source = Files.writeString(srcDir.resolve("LibrarySnippets.java"), program(s), StandardCharsets.UTF_8);
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
        DiagnosticCollector<JavaFileObject> diags = new DiagnosticCollector<>();
        boolean compiled;
        try (StandardJavaFileManager fm = javac.getStandardFileManager(diags, Locale.ROOT, StandardCharsets.UTF_8)) {
            compiled = javac.getTask(null, fm, diags, List.of("-proc:none", "-cp", cp, "-d", classes.toString()), null,
                    fm.getJavaFileObjects(source)).call();
        }
        StringBuilder errors = new StringBuilder();
        for (Diagnostic<? extends JavaFileObject> d : diags.getDiagnostics())
            if (d.getKind() == Diagnostic.Kind.ERROR)
                errors.append("line ").append(d.getLineNumber()).append(": ").append(d.getMessage(Locale.ROOT)).append('\n');
        assertThat(compiled).as("docs/LIBRARY.md examples do not compile:\n" + errors + "\n" + program(s)).isTrue();

        Path work = Files.createDirectories(tmp.resolve("work"));
        Path golden = Path.of(LibraryDocTest.class.getResource("/golden/generate/tiny_wp").toURI());
        Path model = Files.createDirectories(work.resolve("models/base"));
        for (String f : List.of("config.json", "model.safetensors", "vocab.txt"))
            Files.copy(golden.resolve(f), model.resolve(f));
        List<String> poems = Files.readAllLines(golden.resolve("text.txt"), StandardCharsets.UTF_8);
        List<String> corpus = new ArrayList<>();
        for (int i = 0; i < 8; i++) corpus.addAll(poems);
        Files.write(Files.createDirectories(work.resolve("corpus")).resolve("poems.txt"), corpus, StandardCharsets.UTF_8);
        Files.write(work.resolve("test.txt"), poems, StandardCharsets.UTF_8);

        String java = ProcessHandle.current().info().command().orElse(System.getProperty("java.home") + "/bin/java");
        Path log = tmp.resolve("run.log");
        Process p = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-Xmx1g", "-cp", classes + File.pathSeparator + cp, "LibrarySnippets")
                .directory(work.toFile()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
        boolean finished = p.waitFor(5, TimeUnit.MINUTES);
        if (!finished) p.destroyForcibly().waitFor();
        String out = Files.readString(log, StandardCharsets.UTF_8);
        assertThat(finished).as(out).isTrue();
        assertThat(p.exitValue()).as(out).isZero();
        assertThat(out).contains("--- snippet " + s.bodies().size()).contains("--- done")
                .contains("training blocks").contains("20 steps").contains("perplexity ")
                .contains("base ").contains("checkpoint-10 ").contains("checkpoint-20 ")
                .contains("--top-p must be in [0, 1], got 1.5");
        assertThat(work.resolve("cache")).isDirectory();
        assertThat(work.resolve("out/adapter_config.json")).isRegularFile();
        assertThat(work.resolve("out/checkpoint-10/adapter_model.safetensors")).isRegularFile();
        assertThat(work.resolve("report/report.md")).isRegularFile();
        assertThat(work.resolve("report/report.html")).isRegularFile();
    }
}
