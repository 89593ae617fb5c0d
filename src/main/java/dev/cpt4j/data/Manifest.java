package dev.cpt4j.data;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.cpt4j.io.AtomicFiles;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code manifest.json} of a prepared token store: what was prepared (tokenizer, block size, split, every source file)
 * and what came out (counts, file sizes). It is written last, so a directory with a manifest whose file sizes match
 * holds a complete store; anything else is rebuilt.
 *
 * @param format               always {@value #FORMAT}
 * @param formatVersion        {@value #VERSION}; a store of another version is rebuilt
 * @param tokenizerFingerprint {@code Tokenizer.fingerprint()} of the tokenizer used
 * @param vocabSize            {@code Tokenizer.vocabSize()}
 * @param blockSize            tokens per block (the training sequence length)
 * @param dtype                "u16" or "u32", little-endian
 * @param validationFraction   fraction of blocks held out (0.001 = 0.1 %)
 * @param seed                 seed of the validation split
 * @param skipInvalidLines     whether invalid lines were skipped instead of failing
 * @param sources              every corpus file, in corpus order
 * @param counts               totals
 * @param documentStarts       whether {@value #TRAIN_DOCS_FILE} and {@value #VALIDATION_DOCS_FILE} record where each
 *                             document (input line or JSONL record) starts: per block ⌈T/8⌉ bytes, bit t (byte t/8,
 *                             bit t%8) set when token t starts one. Absent (false) in stores written before cpt4j
 *                             recorded them; those still load, and {@code --neat_packing} prepares them again.
 */
public record Manifest(String format, int formatVersion, String tokenizerFingerprint, int vocabSize, int blockSize,
                       String dtype, double validationFraction, long seed, boolean skipInvalidLines,
                       List<Source> sources, Counts counts, boolean documentStarts) {
    public static final String FORMAT = "cpt4j-token-store";
    public static final int VERSION = 1;
    public static final String FILE = "manifest.json";
    public static final String TRAIN_FILE = "train.bin";
    public static final String VALIDATION_FILE = "validation.bin";
    public static final String TRAIN_DOCS_FILE = "train.docs.bin";
    public static final String VALIDATION_DOCS_FILE = "validation.docs.bin";

    /** Bytes of one block's document-start bitmap. */
    public static int docBytes(int blockSize) {
        return (blockSize + 7) / 8;
    }

    /**
     * One corpus file.
     *
     * @param path          absolute path
     * @param name          the name messages use
     * @param size          size in bytes as stored
     * @param mtimeMillis   last-modified time, milliseconds since the epoch
     * @param sha256        SHA-256 of the file's bytes as stored
     * @param lines         examples tokenized (non-blank, valid lines)
     * @param tokens        ids produced, special tokens included
     * @param skippedLines  invalid lines skipped (only with skipInvalidLines)
     */
    public record Source(String path, String name, long size, long mtimeMillis, String sha256, long lines,
                         long tokens, long skippedLines) {}

    /**
     * Totals of a store.
     *
     * @param lines            examples tokenized
     * @param tokens           ids produced over the whole corpus
     * @param blocks           {@code tokens / blockSize}
     * @param trainBlocks      blocks in {@code train.bin}
     * @param validationBlocks blocks in {@code validation.bin}
     * @param droppedTokens    the remainder {@code tokens % blockSize}, dropped once at the end of the corpus
     * @param skippedLines     invalid lines skipped
     */
    public record Counts(long lines, long tokens, long blocks, long trainBlocks, long validationBlocks,
                         long droppedTokens, long skippedLines) {}

    public TokenDtype tokenDtype() {
        return TokenDtype.fromId(dtype);
    }

    static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    static Manifest read(Path file) throws IOException {
        return JSON.readValue(file.toFile(), Manifest.class);
    }

    void write(Path file) throws IOException {
        AtomicFiles.writeString(file, JSON.writeValueAsString(this) + "\n");
    }
}
