package dev.cpt4j.data;

import dev.cpt4j.UserError;
import dev.cpt4j.tokenizer.Tokenizer;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * A prepared token store (made by {@link Prepare}): {@code manifest.json}, {@code train.bin} and
 * {@code validation.bin}, the two token files memory-mapped read-only. Close it to unmap.
 */
public final class TokenStore implements AutoCloseable {
    private final Path dir;
    private final Manifest manifest;
    private final Arena arena;
    private final TokenBlocks train;
    private final TokenBlocks validation;

    private TokenStore(Path dir, Manifest manifest, Arena arena, TokenBlocks train, TokenBlocks validation) {
        this.dir = dir;
        this.manifest = manifest;
        this.arena = arena;
        this.train = train;
        this.validation = validation;
    }

    /**
     * Opens a store written by {@link Prepare}. Throws {@link UserError} when the directory holds no complete store
     * (no manifest, another format version, or token files whose sizes do not match the manifest).
     */
    public static TokenStore open(Path dir) {
        Manifest m = readValid(dir);
        if (m == null) {
            throw new UserError(dir + " holds no complete cpt4j token store; run 'cpt4j prepare --output " + dir + " ...' first");
        }
        Arena arena = Arena.ofShared();
        try {
            TokenDtype dt = m.tokenDtype();
            boolean docs = m.documentStarts();
            TokenBlocks tr = new TokenBlocks(map(dir.resolve(Manifest.TRAIN_FILE), arena), dt, m.blockSize(),
                    docs ? map(dir.resolve(Manifest.TRAIN_DOCS_FILE), arena) : null);
            TokenBlocks va = new TokenBlocks(map(dir.resolve(Manifest.VALIDATION_FILE), arena), dt, m.blockSize(),
                    docs ? map(dir.resolve(Manifest.VALIDATION_DOCS_FILE), arena) : null);
            return new TokenStore(dir, m, arena, tr, va);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw new UserError("cannot open token store " + dir + ": " + e.getMessage() + "; run 'cpt4j prepare' again", e);
        }
    }

    /** The manifest if {@code dir} holds a complete store of this format version, else null. */
    static Manifest readValid(Path dir) {
        Path mf = dir.resolve(Manifest.FILE);
        if (!Files.isRegularFile(mf)) return null;
        try {
            Manifest m = Manifest.read(mf);
            if (!Manifest.FORMAT.equals(m.format()) || m.formatVersion() != Manifest.VERSION || m.counts() == null
                    || m.sources() == null || m.tokenizerFingerprint() == null) return null;
            long blockBytes = (long) m.blockSize() * m.tokenDtype().bytes();
            if (Files.size(dir.resolve(Manifest.TRAIN_FILE)) != m.counts().trainBlocks() * blockBytes) return null;
            if (Files.size(dir.resolve(Manifest.VALIDATION_FILE)) != m.counts().validationBlocks() * blockBytes) return null;
            if (m.documentStarts()) {
                long docBytes = Manifest.docBytes(m.blockSize());
                if (Files.size(dir.resolve(Manifest.TRAIN_DOCS_FILE)) != m.counts().trainBlocks() * docBytes) return null;
                if (Files.size(dir.resolve(Manifest.VALIDATION_DOCS_FILE)) != m.counts().validationBlocks() * docBytes) return null;
            }
            return m;
        } catch (IOException | RuntimeException e) {
            return null;
        }
    }

    private static MemorySegment map(Path file, Arena arena) throws IOException {
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size == 0) return MemorySegment.ofArray(new byte[0]);
            return ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
        }
    }

    public Path dir() {
        return dir;
    }

    public Manifest manifest() {
        return manifest;
    }

    /** Tokens per block (T). */
    public int blockSize() {
        return manifest.blockSize();
    }

    /**
     * Why the ids of this store do not belong to {@code tokenizer} (it was prepared with another one: its
     * fingerprint or vocabulary size differs from the manifest's), or null when they do. A store of another tokenizer
     * with the same vocabulary size would train without any error on ids that mean other tokens.
     */
    public String tokenizerMismatch(Tokenizer tokenizer) {
        java.util.List<String> why = new java.util.ArrayList<>();
        if (!manifest.tokenizerFingerprint().equals(tokenizer.fingerprint()))
            why.add("tokenizer fingerprint " + abbrev(manifest.tokenizerFingerprint()) + ", this tokenizer's is "
                    + abbrev(tokenizer.fingerprint()));
        if (manifest.vocabSize() != tokenizer.vocabSize())
            why.add("a vocabulary of " + manifest.vocabSize() + " tokens, this tokenizer has " + tokenizer.vocabSize());
        return why.isEmpty() ? null : String.join("; ", why);
    }

    private static String abbrev(String fingerprint) {
        return fingerprint.length() > 12 ? fingerprint.substring(0, 12) + "…" : fingerprint;
    }

    /** Whether the store records where documents start (needed by {@code --neat_packing}); older stores do not. */
    public boolean hasDocumentStarts() {
        return manifest.documentStarts();
    }

    public TokenDtype dtype() {
        return manifest.tokenDtype();
    }

    /** The training blocks, in corpus order (shuffle with {@link BatchCursor}). */
    public TokenBlocks train() {
        return train;
    }

    /** The held-out validation blocks, in corpus order. */
    public TokenBlocks validation() {
        return validation;
    }

    @Override
    public void close() {
        arena.close();
    }
}
