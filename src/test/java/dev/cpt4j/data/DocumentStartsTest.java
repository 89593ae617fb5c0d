package dev.cpt4j.data;

import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

/** Document boundaries recorded at prepare time (one input line or JSONL record = one document), for neat packing. */
class DocumentStartsTest {
    @TempDir
    Path tmp;

    private final List<String> log = new ArrayList<>();
    private final CodePointTokenizer tok = CodePointTokenizer.recording(1000);

    private Path corpus(String name, String text) throws IOException {
        Path dir = tmp.resolve("corpus");
        Files.createDirectories(dir);
        Files.writeString(dir.resolve(name), text);
        return dir;
    }

    @Test
    void everyLineAndRecordStartsADocumentAcrossBlocksAndFiles() throws IOException {
        // a.txt: "abc" → 1 97 98 99 2 (5), "d" → 1 100 2 (3); b.jsonl: {"text":"ef"} → 1 101 102 2 (4): 12 ids
        Path dir = corpus("a.txt", "abc\n\nd\n");
        Files.writeString(dir.resolve("b.jsonl"), "{\"text\":\"ef\"}\n");
        PrepareOptions o = PrepareOptions.of(List.of(dir), tmp.resolve("out"), 5).withValidationFraction(0).withWorkers(2);
        try (TokenStore s = Prepare.run(o, tok, log::add)) {
            assertThat(s.hasDocumentStarts()).isTrue();
            TokenBlocks b = s.train();
            assertThat(b.blockCount()).isEqualTo(2);
            int[] st = new int[5];
            b.readDocStarts(0, st, 0);        // 1 97 98 99 2 | one document
            assertThat(st).containsExactly(0, 0, 0, 0, 0);
            b.readDocStarts(1, st, 0);        // 1 100 2 | 1 101 : documents at 0 and 3
            assertThat(b.readBlock(1)).containsExactly(1, 100, 2, 1, 101);
            assertThat(st).containsExactly(0, 0, 0, 3, 3);
            assertThat(Files.size(s.dir().resolve(Manifest.TRAIN_DOCS_FILE))).isEqualTo(2);
        }
    }

    @Test
    void aDocumentContinuingFromTheLastBlockStartsAtZero() throws IOException {
        Path dir = corpus("a.txt", "abcdefg\nh\n"); // 1 a..g 2 (9) | 1 h 2 (3)
        PrepareOptions o = PrepareOptions.of(List.of(dir), tmp.resolve("out"), 4).withValidationFraction(0).withWorkers(1);
        try (TokenStore s = Prepare.run(o, tok, log::add)) {
            int[] st = new int[12];
            BatchCursor c = new BatchCursor(s.train(), 3, 1, false);
            int[] ids = new int[12];
            c.next(ids, st);
            // blocks: [1 a b c] [d e f g] [2 1 h 2]: the third holds the end of the first line, then the second
            assertThat(st).containsExactly(0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1);
        }
    }

    @Test
    void anOlderStoreWithoutBoundariesLoadsAndNeatPackingPreparesItAgain() throws IOException {
        Path dir = corpus("a.txt", "abc\nde\nfgh\n");
        Path out = tmp.resolve("out");
        PrepareOptions o = PrepareOptions.of(List.of(dir), out, 4).withValidationFraction(0).withWorkers(1);
        Prepare.run(o, tok, log::add).close();
        // make it what an older cpt4j wrote: no documentStarts in the manifest, no bitmaps
        ObjectNode m = (ObjectNode) Manifest.JSON.readTree(out.resolve(Manifest.FILE).toFile());
        m.remove("documentStarts");
        Files.writeString(out.resolve(Manifest.FILE), m.toString());
        Files.delete(out.resolve(Manifest.TRAIN_DOCS_FILE));
        Files.delete(out.resolve(Manifest.VALIDATION_DOCS_FILE));
        try (TokenStore s = TokenStore.open(out)) {
            assertThat(s.hasDocumentStarts()).isFalse();
            assertThat(s.train().blockCount()).isEqualTo(3);
        }
        log.clear();
        try (TokenStore s = Prepare.run(o, tok, log::add)) {       // plain packing: reused as it is
            assertThat(s.hasDocumentStarts()).isFalse();
        }
        assertThat(log).anyMatch(l -> l.startsWith("using prepared data"));
        log.clear();
        try (TokenStore s = Prepare.run(o.withDocumentStarts(true), tok, log::add)) {
            assertThat(s.hasDocumentStarts()).isTrue();
            int[] st = new int[4];
            s.train().readDocStarts(1, st, 0); // 1 a b c | 2 1 d e | ...: block 1 = [2 1 d e]
            assertThat(st).containsExactly(0, 1, 1, 1);
        }
        assertThat(log).anyMatch(l -> l.contains("document boundaries not recorded"));
    }
}
