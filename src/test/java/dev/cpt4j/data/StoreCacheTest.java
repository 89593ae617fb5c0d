package dev.cpt4j.data;

import dev.cpt4j.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** Reuse, rebuild reasons, crash/restart and the output-directory rules of {@link Prepare}. */
class StoreCacheTest {
    @TempDir
    Path tmp;

    private final List<String> log = new ArrayList<>();

    private Path corpus() throws IOException {
        Path dir = tmp.resolve("corpus");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve("a.txt"), "a1 first file\na2 more\n");
        Files.writeString(dir.resolve("b.txt"), "b1 second file\nb2 boom\nb3 after\n");
        Files.writeString(dir.resolve("c.txt"), "c1 third file\n");
        return dir;
    }

    private PrepareOptions opts(Path dir, int t) {
        return PrepareOptions.of(List.of(dir), tmp.resolve("out"), t).withValidationFraction(0.2).withWorkers(2);
    }

    private byte[] run(PrepareOptions o, CodePointTokenizer tok) throws IOException {
        try (TokenStore s = Prepare.run(o, tok, log::add)) {
            return Files.readAllBytes(s.dir().resolve("train.bin"));
        }
    }

    private String lastLog() {
        return log.getLast().startsWith("prepared") ? log.get(log.size() - 2) : log.getLast();
    }

    @Test
    void reusesWhenEverythingMatchesAndSaysWhyItRebuilds() throws IOException {
        Path dir = corpus();
        CodePointTokenizer tok = new CodePointTokenizer(1000);
        byte[] first = run(opts(dir, 4), tok);
        long calls = tok.calls.get();

        assertThat(run(opts(dir, 4), tok)).isEqualTo(first);
        assertThat(tok.calls.get()).isEqualTo(calls);
        assertThat(log.getLast()).startsWith("using prepared data in");

        // Touched but identical: the content hash decides, no rebuild.
        PrepareTest.touch(dir.resolve("a.txt"), 5_000);
        run(opts(dir, 4), tok);
        assertThat(log.getLast()).startsWith("using prepared data in");
        long mtime = Files.getLastModifiedTime(dir.resolve("a.txt")).toMillis();
        assertThat(TokenStore.readValid(tmp.resolve("out")).sources().getFirst().mtimeMillis()).isEqualTo(mtime);

        run(opts(dir, 3), tok);
        assertThat(lastLog()).contains("block size 4 → 3");

        run(opts(dir, 3), new CodePointTokenizer(1000, "-v2", t -> false));
        assertThat(lastLog()).contains("tokenizer changed");

        run(opts(dir, 3).withValidationFraction(0.5), new CodePointTokenizer(1000, "-v2", t -> false));
        assertThat(lastLog()).contains("validation split 0.2 → 0.5");

        Files.writeString(dir.resolve("a.txt"), "a1 edited\n");
        run(opts(dir, 3).withValidationFraction(0.5), new CodePointTokenizer(1000, "-v2", t -> false));
        assertThat(lastLog()).contains("file a.txt changed");

        Files.writeString(dir.resolve("d.txt"), "d1\n");
        Files.delete(dir.resolve("c.txt"));
        run(opts(dir, 3).withValidationFraction(0.5), new CodePointTokenizer(1000, "-v2", t -> false));
        assertThat(lastLog()).contains("file d.txt added").contains("file c.txt removed");
        assertThat(Files.exists(tmp.resolve("out/" + Prepare.BUILD_DIR))).isFalse();
    }

    @Test
    void restartAfterACrashReTokenizesOnlyUnfinishedFiles() throws IOException {
        Path dir = corpus();
        byte[] clean = run(PrepareOptions.of(List.of(dir), tmp.resolve("clean"), 4).withValidationFraction(0.2),
                new CodePointTokenizer(1000));

        // The "crash": the tokenizer dies on a line of b.txt, after a.txt was finished.
        CodePointTokenizer crashing = new CodePointTokenizer(1000, "", t -> t.contains("boom"));
        assertThatThrownBy(() -> Prepare.run(opts(dir, 4), crashing, log::add, PrepareProgress.none(), 8))
                .hasMessageContaining("simulated crash");
        Path out = tmp.resolve("out");
        assertThat(Files.exists(out.resolve(Manifest.FILE))).isFalse();
        assertThatThrownBy(() -> TokenStore.open(out)).isInstanceOf(UserError.class).hasMessageContaining("no complete");

        CodePointTokenizer counting = CodePointTokenizer.recording(1000);
        assertThat(run(opts(dir, 4), counting)).isEqualTo(clean);
        assertThat(log).anyMatch(l -> l.contains("resuming the unfinished preparation"));
        assertThat(log).anyMatch(l -> l.contains("reusing the tokens of 1 of 3 files"));
        assertThat(counting.seen).containsExactlyInAnyOrder("b1 second file", "b2 boom", "b3 after", "c1 third file");
    }

    @Test
    void aPartialStoreWithoutManifestIsRebuiltNotTrusted() throws IOException {
        Path dir = corpus();
        Path out = tmp.resolve("out");
        byte[] good = run(opts(dir, 4), new CodePointTokenizer(1000));
        // A crash between the token files' rename and the manifest's: stale train.bin, no manifest, stray shards.
        Files.delete(out.resolve(Manifest.FILE));
        Files.write(out.resolve(Manifest.TRAIN_FILE), new byte[]{1, 2, 3});
        Files.createDirectories(out.resolve(Prepare.BUILD_DIR).resolve("shards"));
        Files.write(out.resolve(Prepare.BUILD_DIR).resolve("shards/0123.tok.partial"), new byte[]{9, 9});
        Files.writeString(out.resolve(Prepare.BUILD_DIR).resolve("shards/0123.done.json"), "{not json");
        assertThat(run(opts(dir, 4), new CodePointTokenizer(1000))).isEqualTo(good);
        assertThat(Files.exists(out.resolve(Prepare.BUILD_DIR))).isFalse();

        // A manifest whose sizes do not match its files is no store either.
        Files.write(out.resolve(Manifest.VALIDATION_FILE), new byte[]{1});
        assertThat(TokenStore.readValid(out)).isNull();
        assertThat(run(opts(dir, 4), new CodePointTokenizer(1000))).isEqualTo(good);
    }

    @Test
    void refusesAnOutputDirectoryHoldingSomethingElseAndTouchesNothing() throws IOException {
        Path dir = corpus();
        Path out = tmp.resolve("out");
        Files.createDirectories(out);
        Files.writeString(out.resolve("notes.md"), "mine");
        assertThatThrownBy(() -> Prepare.run(opts(dir, 4), new CodePointTokenizer(1000), log::add))
                .isInstanceOf(UserError.class)
                .hasMessageContaining("not a cpt4j token store (e.g. notes.md)");
        try (var l = Files.list(out)) {
            assertThat(l.map(p -> p.getFileName().toString()).toList()).containsExactly("notes.md");
        }
        // The corpus directory itself is not an output either.
        PrepareOptions intoCorpus = PrepareOptions.of(List.of(dir), dir, 4);
        assertThatThrownBy(() -> Prepare.check(intoCorpus)).isInstanceOf(UserError.class).hasMessageContaining("is or contains the dataset");
        // A file named like ours without our marker is not ours.
        Path other = tmp.resolve("other");
        Files.createDirectories(other);
        Files.writeString(other.resolve("train.bin"), "user data");
        assertThatThrownBy(() -> Prepare.check(PrepareOptions.of(List.of(dir), other, 4))).isInstanceOf(UserError.class);
        assertThat(Files.readString(other.resolve("train.bin"))).isEqualTo("user data");
    }

    @Test
    void badDatasetsAndOptionsAreOneLineUserErrors() throws IOException {
        Path empty = tmp.resolve("empty");
        Files.createDirectories(empty);
        Files.writeString(empty.resolve("readme.md"), "not a corpus");
        assertThatThrownBy(() -> Prepare.check(PrepareOptions.of(List.of(empty), tmp.resolve("o"), 4)))
                .isInstanceOf(UserError.class).hasMessageContaining("no *.txt or *.jsonl files");
        assertThatThrownBy(() -> Prepare.check(PrepareOptions.of(List.of(tmp.resolve("missing")), tmp.resolve("o"), 4)))
                .isInstanceOf(UserError.class).hasMessageContaining("does not exist");
        assertThatThrownBy(() -> PrepareOptions.of(List.of(empty), tmp.resolve("o"), 0))
                .isInstanceOf(UserError.class).hasMessageContaining("--block_size must be at least 1");
        assertThatThrownBy(() -> PrepareOptions.of(List.of(empty), tmp.resolve("o"), 2048).withMaxBlockSize(1024))
                .isInstanceOf(UserError.class).hasMessageContaining("larger than the model's context of 1024");
        assertThatThrownBy(() -> PrepareOptions.of(List.of(empty), tmp.resolve("o"), 4).withValidationFraction(5))
                .isInstanceOf(UserError.class).hasMessageContaining("0.001 = 0.1 %");
        // A corpus shorter than one block.
        Path tiny = tmp.resolve("tiny");
        Files.createDirectories(tiny);
        Files.writeString(tiny.resolve("a.txt"), "ab\n");
        assertThatThrownBy(() -> Prepare.run(PrepareOptions.of(List.of(tiny), tmp.resolve("o"), 64), new CodePointTokenizer(1000), log::add))
                .isInstanceOf(UserError.class).hasMessageContaining("only 4 tokens");
        assertThat(Files.exists(tmp.resolve("o"))).isTrue(); // holds only our own build directory
        Prepare.check(PrepareOptions.of(List.of(tiny), tmp.resolve("o"), 64)); // still accepted as ours
    }
}
