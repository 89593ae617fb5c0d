package dev.cpt4j.data;

import dev.cpt4j.UserError;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.FileVisitOption;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * One corpus file: {@code *.txt} (one example per line, as the seed's {@code load_dataset("text")}), {@code *.jsonl}
 * (one JSON object per line, its {@code text} field is the example), or either compressed with gzip ({@code .gz}).
 *
 * @param path    absolute, normalized path of the file
 * @param name    how messages and the manifest name it: the path as given or relative to the directory given
 * @param jsonl   true for JSON Lines, false for plain text
 * @param gzip    true when the file is gzip-compressed
 */
public record CorpusSource(Path path, String name, boolean jsonl, boolean gzip) {

    /** True if a file name has one of the extensions a corpus file may have. */
    public static boolean isCorpusFile(String fileName) {
        String n = fileName.toLowerCase(Locale.ROOT);
        if (n.endsWith(".gz")) n = n.substring(0, n.length() - 3);
        return n.endsWith(".txt") || n.endsWith(".jsonl");
    }

    /**
     * Finds the corpus files under {@code inputs} (directories are walked recursively; hidden files and directories
     * and anything under {@code exclude} are skipped), in a stable order: inputs in the order given, files of a
     * directory sorted by their relative path. Throws {@link UserError} when an input is missing or nothing is found.
     */
    public static List<CorpusSource> find(List<Path> inputs, Path exclude) {
        if (inputs.isEmpty()) throw new UserError("no dataset given; pass --dataset_dir DIR (a directory of *.txt/*.jsonl files, or files)");
        Path excl = exclude == null ? null : exclude.toAbsolutePath().normalize();
        LinkedHashSet<Path> seen = new LinkedHashSet<>();
        List<CorpusSource> out = new ArrayList<>();
        for (Path input : inputs) {
            Path abs = input.toAbsolutePath().normalize();
            if (!Files.exists(abs)) {
                throw new UserError("dataset path " + input + " does not exist; pass --dataset_dir with a directory of *.txt/*.jsonl files");
            }
            if (Files.isDirectory(abs)) {
                List<Path> files;
                try (Stream<Path> walk = Files.walk(abs, FileVisitOption.FOLLOW_LINKS)) {
                    files = walk.filter(p -> !p.equals(abs))
                            .filter(p -> excl == null || !p.startsWith(excl))
                            .filter(p -> !isHidden(abs.relativize(p)))
                            .filter(Files::isRegularFile)
                            .filter(p -> isCorpusFile(p.getFileName().toString()))
                            .sorted(Comparator.comparing(p -> relName(abs, p)))
                            .toList();
                } catch (IOException | UncheckedIOException e) {
                    throw new UserError("cannot read dataset directory " + input + ": " + e.getMessage(), e);
                }
                for (Path f : files) {
                    if (seen.add(f)) out.add(of(f, relName(abs, f)));
                }
            } else {
                if (!isCorpusFile(abs.getFileName().toString())) {
                    throw new UserError("dataset file " + input + " is not *.txt, *.jsonl or a .gz of either; rename it or pass its directory");
                }
                if (seen.add(abs)) out.add(of(abs, input.toString()));
            }
        }
        if (out.isEmpty()) {
            throw new UserError("no *.txt or *.jsonl files (or .gz of them) found in " + inputs
                    + "; put the corpus there, one example per line");
        }
        return out;
    }

    static CorpusSource of(Path file, String name) {
        String n = file.getFileName().toString().toLowerCase(Locale.ROOT);
        boolean gz = n.endsWith(".gz");
        if (gz) n = n.substring(0, n.length() - 3);
        return new CorpusSource(file.toAbsolutePath().normalize(), name, n.endsWith(".jsonl"), gz);
    }

    private static String relName(Path root, Path p) {
        // '/' on every platform so the order and the manifest do not depend on the OS.
        return root.relativize(p).toString().replace('\\', '/');
    }

    private static boolean isHidden(Path rel) {
        for (Path part : rel) if (part.toString().startsWith(".")) return true;
        return false;
    }
}
