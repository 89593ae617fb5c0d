package dev.cpt4j.data;

import dev.cpt4j.io.AtomicFiles;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;

/**
 * The small corpus inside the jar ({@code /corpus/}): about 0.9 MB of Song ci and Tang shi from the npm package
 * {@code chinese-poetry@2.0.1} (MIT; licence and attribution in {@code /corpus/LICENSE-chinese-poetry}), one poem a
 * line, made by {@code tools/fetch-corpus.sh --excerpt}. It lets the demo run offline; the full corpora come from
 * {@code tools/fetch-corpus.sh}.
 */
public final class BundledCorpus {
    /** The corpus files, in the order a directory walk reads them. */
    public static final List<String> FILES = List.of("song-ci-excerpt.txt", "tang-shi-excerpt.txt");
    /** The licence and attribution that travel with the files. */
    public static final String LICENSE = "LICENSE-chinese-poetry";

    private BundledCorpus() {}

    /** Copies the bundled corpus and its licence into {@code dir} (created if missing) and returns {@code dir}. */
    public static Path extractTo(Path dir) {
        try {
            Files.createDirectories(dir);
            for (String name : concat(FILES, LICENSE)) {
                Path dst = dir.resolve(name);
                Path tmp = dir.resolve("." + name + ".tmp");
                try (InputStream in = BundledCorpus.class.getResourceAsStream("/corpus/" + name)) {
                    if (in == null) throw new IllegalStateException("the jar lacks /corpus/" + name);
                    Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                }
                AtomicFiles.move(tmp, dst);
            }
            return dir;
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write the bundled corpus to " + dir + ": " + e.getMessage(), e);
        }
    }

    private static List<String> concat(List<String> a, String b) {
        return java.util.stream.Stream.concat(a.stream(), java.util.stream.Stream.of(b)).toList();
    }
}
