package dev.cpt4j.data;

import dev.cpt4j.UserError;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.GZIPOutputStream;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

class PrepareTest {
    @TempDir
    Path tmp;

    private final List<String> log = new ArrayList<>();
    private final CodePointTokenizer tok = CodePointTokenizer.recording(1000);

    private Path corpus(String... nameThenText) throws IOException {
        Path dir = tmp.resolve("corpus");
        Files.createDirectories(dir);
        for (int i = 0; i < nameThenText.length; i += 2) {
            Path f = dir.resolve(nameThenText[i]);
            Files.createDirectories(f.getParent());
            Files.writeString(f, nameThenText[i + 1]);
        }
        return dir;
    }

    private PrepareOptions opts(Path dataset, int blockSize) {
        return PrepareOptions.of(List.of(dataset), tmp.resolve("out"), blockSize).withValidationFraction(0).withWorkers(2);
    }

    private TokenStore prepare(PrepareOptions o) {
        return Prepare.run(o, tok, log::add);
    }

    private static List<int[]> blocks(TokenBlocks b) {
        List<int[]> out = new ArrayList<>();
        for (long i = 0; i < b.blockCount(); i++) out.add(b.readBlock(i));
        return out;
    }

    @Test
    void concatenatesAcrossFilesAndDropsTheRemainderOnceAtTheEnd() throws IOException {
        // a.txt → 1 97 98 99 2 (5 ids), b/c.txt → 1 100 101 2 (4 ids): 9 ids → 3 blocks of 3, nothing dropped.
        // (The seed's per-file group_texts would make 1 + 1 blocks and drop 2 + 1 ids.)
        Path dir = corpus("a.txt", "abc\n", "b/c.txt", "de\n");
        try (TokenStore s = prepare(opts(dir, 3))) {
            assertThat(blocks(s.train())).containsExactly(new int[]{1, 97, 98}, new int[]{99, 2, 1}, new int[]{100, 101, 2});
            assertThat(s.manifest().counts()).isEqualTo(new Manifest.Counts(2, 9, 3, 3, 0, 0, 0));
        }
    }

    @Test
    void handCheckedBlocksWithRemainderAndSortedRecursiveOrder() throws IOException {
        // Files are read in sorted relative-path order: a.txt, sub/b.txt, z.txt. Empty/blank lines are skipped.
        Path dir = corpus("z.txt", "z\n", "sub/b.txt", "cd\n\n   \n", "a.txt", "ab");
        try (TokenStore s = prepare(opts(dir, 4))) {
            // ids: 1 97 98 2 | 1 99 100 2 | 1 122 2 → 11 ids, 2 blocks, 3 dropped
            assertThat(blocks(s.train())).containsExactly(new int[]{1, 97, 98, 2}, new int[]{1, 99, 100, 2});
            Manifest.Counts c = s.manifest().counts();
            assertThat(c.lines()).isEqualTo(3);
            assertThat(c.tokens()).isEqualTo(11);
            assertThat(c.droppedTokens()).isEqualTo(3);
            assertThat(s.manifest().sources()).extracting(Manifest.Source::name).containsExactly("a.txt", "sub/b.txt", "z.txt");
            assertThat(s.dtype()).isEqualTo(TokenDtype.U16);
            assertThat(Files.size(s.dir().resolve("train.bin"))).isEqualTo(2 * 4 * 2);
        }
    }

    @Test
    void readsGzipJsonlBomAndCrlfLikePlainText() throws IOException {
        Path plain = corpus("a.txt", "ab\ncd\nxé\ny\n");
        List<int[]> expected;
        try (TokenStore s = prepare(opts(plain, 2))) {
            expected = blocks(s.train());
        }
        Path dir = tmp.resolve("mixed");
        Files.createDirectories(dir);
        Files.write(dir.resolve("1.txt.gz"), gzip("ab\n".getBytes(StandardCharsets.UTF_8)));
        Files.writeString(dir.resolve("2.jsonl"), "{\"text\": \"cd\", \"id\": 1}\n\n{\"text\": \"x\\u00e9\"}\r\n");
        Files.write(dir.resolve("3.txt"), concat(new byte[]{(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, "y\r\n\r\n".getBytes(StandardCharsets.UTF_8)));
        PrepareOptions o = PrepareOptions.of(List.of(dir), tmp.resolve("out2"), 2).withValidationFraction(0);
        try (TokenStore s = prepare(o)) {
            assertThat(blocks(s.train())).containsExactlyElementsOf(expected);
            assertThat(s.manifest().counts().lines()).isEqualTo(4);
        }
        assertThat(tok.seen).contains("y", "xé").doesNotContain("\uFEFFy", "y\r");
    }

    @Test
    void jsonlGzipIsRecognized() throws IOException {
        Path dir = tmp.resolve("j");
        Files.createDirectories(dir);
        Files.write(dir.resolve("a.jsonl.gz"), gzip("{\"text\":\"ab\"}\n".getBytes(StandardCharsets.UTF_8)));
        try (TokenStore s = Prepare.run(PrepareOptions.of(List.of(dir), tmp.resolve("o"), 4).withValidationFraction(0), tok, log::add)) {
            assertThat(blocks(s.train())).containsExactly(new int[]{1, 97, 98, 2});
        }
    }

    @Test
    void invalidUtf8NamesFileAndLineAndCanBeSkippedAndCounted() throws IOException {
        Path dir = tmp.resolve("bad");
        Files.createDirectories(dir);
        Files.write(dir.resolve("bad.txt"), concat("ab\ncd\n".getBytes(StandardCharsets.UTF_8),
                new byte[]{'x', (byte) 0xC3, '(', '\n'}, "ef\n".getBytes(StandardCharsets.UTF_8)));
        PrepareOptions o = PrepareOptions.of(List.of(dir), tmp.resolve("out"), 2).withValidationFraction(0);
        assertThatThrownBy(() -> prepare(o)).isInstanceOf(UserError.class)
                .hasMessageContaining("bad.txt line 3 is not valid UTF-8").hasMessageContaining("--skip-invalid-lines");
        assertThat(Files.exists(tmp.resolve("out/manifest.json"))).isFalse();

        try (TokenStore s = prepare(o.withSkipInvalidLines(true))) {
            assertThat(s.manifest().counts().skippedLines()).isEqualTo(1);
            assertThat(s.manifest().counts().lines()).isEqualTo(3);
            assertThat(s.manifest().counts().tokens()).isEqualTo(12);
        }
        assertThat(log).anyMatch(l -> l.contains("skipped 1 invalid line in bad.txt (first at line 3)"));
    }

    @Test
    void invalidJsonlLineIsAUserError() throws IOException {
        Path dir = corpus("a.jsonl", "{\"text\":\"ab\"}\n{\"txt\":\"cd\"}\n");
        assertThatThrownBy(() -> prepare(opts(dir, 2))).isInstanceOf(UserError.class)
                .hasMessageContaining("a.jsonl line 2 is not a JSON object with a string \"text\" field");
    }

    @Test
    void validationSplitIsSeededDeterministicAndAFraction() throws IOException {
        // 100 lines "l00".."l99" → 100 blocks of 5 ids, each block one distinct line.
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 100; i++) sb.append(String.format("l%02d%n", i));
        Path dir = corpus("a.txt", sb.toString());
        PrepareOptions o = opts(dir, 5).withValidationFraction(0.05).withSeed(7);
        List<int[]> train, val;
        try (TokenStore s = prepare(o)) {
            train = blocks(s.train());
            val = blocks(s.validation());
        }
        assertThat(val).hasSize(5);
        assertThat(train).hasSize(95);
        Set<String> all = new HashSet<>();
        for (int[] b : train) all.add(java.util.Arrays.toString(b));
        for (int[] b : val) all.add(java.util.Arrays.toString(b));
        assertThat(all).hasSize(100);

        // Same inputs and seed in another directory: byte-identical files.
        PrepareOptions o2 = PrepareOptions.of(List.of(dir), tmp.resolve("out-b"), 5).withValidationFraction(0.05).withSeed(7).withWorkers(1);
        try (TokenStore s = Prepare.run(o2, tok, log::add, PrepareProgress.none(), 16)) {
            assertThat(blocks(s.validation())).containsExactlyElementsOf(val);
            assertThat(blocks(s.train())).containsExactlyElementsOf(train);
        }
        // Another seed: another choice.
        try (TokenStore s = prepare(o.withSeed(8))) {
            assertThat(blocks(s.validation())).hasSize(5).isNotEqualTo(val);
        }
        assertThat(log).anyMatch(l -> l.contains("seed 7 → 8"));
    }

    @Test
    void validationCountFollowsTrainTestSplitWithAtLeastOneBlock() {
        assertThat(ValidationSplit.count(10, 0.001)).isEqualTo(1);   // ceil(0.01) — the seed's 0.1 % on a tiny corpus
        assertThat(ValidationSplit.count(10_000, 0.001)).isEqualTo(10);
        assertThat(ValidationSplit.count(30, 0.1)).isEqualTo(3);
        assertThat(ValidationSplit.count(1, 0.5)).isZero();           // one block: nothing to hold out
        assertThat(ValidationSplit.count(2, 0.9)).isEqualTo(1);       // at least one training block stays
        assertThat(ValidationSplit.count(10, 0)).isZero();
    }

    @Test
    void sameResultForAnyWorkerCountAndChunkSize() throws IOException {
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < 500; i++) sb.append("line ").append(i).append(" 漢字\n");
        Path dir = corpus("a.txt", sb.toString(), "b.txt", sb.reverse().toString());
        byte[] one, many;
        PrepareOptions base = PrepareOptions.of(List.of(dir), tmp.resolve("o1"), 7).withValidationFraction(0.01).withWorkers(1);
        try (TokenStore s = Prepare.run(base, tok, log::add, PrepareProgress.none(), 1 << 20)) {
            one = Files.readAllBytes(s.dir().resolve("train.bin"));
        }
        PrepareOptions par = PrepareOptions.of(List.of(dir), tmp.resolve("o4"), 7).withValidationFraction(0.01).withWorkers(4);
        try (TokenStore s = Prepare.run(par, tok, log::add, PrepareProgress.none(), 40)) {
            many = Files.readAllBytes(s.dir().resolve("train.bin"));
        }
        assertThat(many).isEqualTo(one);
    }

    @Test
    void wideVocabularyIsStoredAsU32() throws IOException {
        CodePointTokenizer wide = new CodePointTokenizer(70_000);
        Path dir = corpus("a.txt", Character.toString(69_999) + "a\n"); // id 69999 needs more than 16 bits
        try (TokenStore s = Prepare.run(opts(dir, 4), wide, log::add)) {
            assertThat(s.dtype()).isEqualTo(TokenDtype.U32);
            assertThat(s.train().readBlock(0)).containsExactly(1, 69_999, 97, 2);
            assertThat(Files.size(s.dir().resolve("train.bin"))).isEqualTo(16);
        }
        Path dir2 = corpus("b/x.txt", "\uFFFFa\n");
        PrepareOptions o = PrepareOptions.of(List.of(dir2.resolve("b")), tmp.resolve("o3"), 4).withValidationFraction(0);
        try (TokenStore s = Prepare.run(o, wide, log::add)) {
            assertThat(s.train().readBlock(0)).containsExactly(1, 0xFFFF, 97, 2); // 65535 still read back unsigned
        }
    }

    private static byte[] gzip(byte[] b) throws IOException {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        try (GZIPOutputStream gz = new GZIPOutputStream(bo)) {
            gz.write(b);
        }
        return bo.toByteArray();
    }

    private static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream bo = new ByteArrayOutputStream();
        for (byte[] p : parts) bo.writeBytes(p);
        return bo.toByteArray();
    }

    static void touch(Path f, long deltaMillis) throws IOException {
        Files.setLastModifiedTime(f, FileTime.fromMillis(Files.getLastModifiedTime(f).toMillis() + deltaMillis));
    }
}
