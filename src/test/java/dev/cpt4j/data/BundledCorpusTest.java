package dev.cpt4j.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;

class BundledCorpusTest {
    @TempDir
    Path tmp;

    @Test
    void excerptIsAValidCorpusWithItsLicence() throws IOException {
        Path dir = BundledCorpus.extractTo(tmp.resolve("c"));
        assertThat(Files.readString(dir.resolve(BundledCorpus.LICENSE))).contains("MIT").contains("chinese-poetry");
        long bytes = 0;
        for (String f : BundledCorpus.FILES) bytes += Files.size(dir.resolve(f));
        assertThat(bytes).isBetween(500_000L, 1_000_000L);
        // Prepared strictly (invalid UTF-8 would fail): ~300k CJK characters → hundreds of blocks.
        try (TokenStore s = Prepare.run(PrepareOptions.of(List.of(dir), tmp.resolve("o"), 512).withValidationFraction(0.001).withWorkers(2),
                new CodePointTokenizer(40_000), m -> {})) {
            assertThat(s.manifest().sources()).extracting(Manifest.Source::name).containsExactlyElementsOf(BundledCorpus.FILES);
            assertThat(s.manifest().counts().lines()).isEqualTo(1914 + 2401);
            assertThat(s.manifest().counts().skippedLines()).isZero();
            assertThat(s.train().blockCount()).isGreaterThan(500);
            assertThat(s.validation().blockCount()).isEqualTo(1); // ceil(0.001 × ~600)
        }
    }
}
