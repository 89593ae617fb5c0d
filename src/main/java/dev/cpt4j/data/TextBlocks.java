package dev.cpt4j.data;

import dev.cpt4j.UserError;
import dev.cpt4j.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * {@code cpt4j prepare}'s text → blocks rule for one file held in memory (what {@code eval} and {@code compare} do
 * with {@code --text-file}): the file is read as a corpus file is ({@link ChunkReader}: lines end at {@code '\n'},
 * a CRLF's {@code '\r'} dropped, a UTF-8 BOM dropped, {@code .jsonl} takes each object's {@code text}, {@code .gz}
 * is decompressed), every non-blank line is tokenized with special tokens ({@link ChunkTokenizer}), the ids are
 * concatenated and cut into whole blocks, the remainder dropped — so a held-out file gives the blocks
 * {@code prepare} would give it.
 */
public final class TextBlocks {
    private TextBlocks() {}

    private static final int CHUNK_BYTES = 1 << 20;

    /**
     * The ids of every example of {@code file}, in order. {@code flag} names the file in messages (e.g.
     * {@code "--text-file"}).
     */
    public static int[] tokenize(Tokenizer tokenizer, Path file, String flag) {
        return tokenizeDocuments(tokenizer, file, flag).ids();
    }

    /**
     * The ids of a text file and where its documents (non-blank lines, JSONL records) are: {@code docLengths[i]} ids
     * of document i, in order.
     */
    public record Text(int[] ids, int[] docLengths) {}

    /** As {@link #tokenize}, keeping each example's length (the document boundaries neat packing needs). */
    public static Text tokenizeDocuments(Tokenizer tokenizer, Path file, String flag) {
        if (!Files.isRegularFile(file)) throw new UserError(flag + " " + file + " does not exist or is not a file");
        CorpusSource source = CorpusSource.of(file, flag + " " + file);
        ChunkTokenizer tok = new ChunkTokenizer(tokenizer, TokenDtype.U32, false);
        int[] ids = new int[1 << 12], docs = new int[64];
        int n = 0, nd = 0;
        try (ChunkReader reader = new ChunkReader(source, CHUNK_BYTES)) {
            for (ChunkReader.Chunk c; (c = reader.next()) != null; ) {
                ChunkTokenizer.Result r = tok.tokenize(source, c);
                int[] dl = r.docLengths();
                if (nd + dl.length > docs.length) docs = Arrays.copyOf(docs, Math.max(2 * docs.length, nd + dl.length));
                System.arraycopy(dl, 0, docs, nd, dl.length);
                nd += dl.length;
                int count = r.length() / 4;
                if (n + count > ids.length) ids = Arrays.copyOf(ids, Math.max(2 * ids.length, n + count));
                byte[] b = r.tokenBytes();
                for (int i = 0; i < count; i++)
                    ids[n++] = (b[4 * i] & 0xFF) | (b[4 * i + 1] & 0xFF) << 8 | (b[4 * i + 2] & 0xFF) << 16 | (b[4 * i + 3] & 0xFF) << 24;
            }
        } catch (UserError e) {  // prepare's hint names its --skip-invalid-lines, which eval does not have
            throw new UserError(e.getMessage().replace("; fix the file or pass --skip-invalid-lines to skip such lines",
                    "; fix the file (held-out text must be valid UTF-8)"), e);
        }
        return new Text(Arrays.copyOf(ids, n), Arrays.copyOf(docs, nd));
    }

    /**
     * For the first {@code blocks} blocks of {@code blockSize} tokens of a text with documents of {@code docLengths}
     * tokens: each token's document start within its block ({@code (blocks, blockSize)}; a document running on from
     * the previous block starts at 0), as {@link TokenBlocks#readDocStarts} gives it for prepared data.
     */
    public static int[] docStarts(int[] docLengths, long blocks, int blockSize) {
        long n = blocks * blockSize;
        if (n > Integer.MAX_VALUE - 8) throw new IllegalArgumentException("too many tokens: " + n);
        int[] starts = new int[(int) n];
        long left = 0;
        int d = 0;
        for (int i = 0; i < n; i++) {
            int t = i % blockSize;
            int s = t == 0 ? 0 : starts[i - 1];
            if (left == 0) {
                while (d < docLengths.length && docLengths[d] == 0) d++;
                if (d == docLengths.length) throw new IllegalArgumentException("document lengths end before the blocks");
                left = docLengths[d++];
                s = t;
            }
            starts[i] = s;
            left--;
        }
        return starts;
    }

    /** The whole blocks of {@code ids}, row-major (blocks, blockSize), the remainder dropped; {@code where} names the text. */
    public static int[] cut(int[] ids, int blockSize, String where) {
        if (ids.length == 0) throw new UserError(where + " has no text (every line is blank); give a file with held-out text");
        if (blockSize < 2) throw new UserError("--block-size must be at least 2 (a block predicts its tokens 1..N−1), got " + blockSize);
        int blocks = ids.length / blockSize;
        if (blocks == 0)
            throw new UserError(where + " gives only " + ids.length + " tokens, less than one block of " + blockSize
                    + "; use a smaller --block-size or more text");
        return Arrays.copyOf(ids, blocks * blockSize);
    }
}
