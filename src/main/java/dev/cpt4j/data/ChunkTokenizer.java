package dev.cpt4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.UserError;
import dev.cpt4j.tokenizer.Tokenizer;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * Turns a chunk of raw lines into token ids (runs on a worker thread). Each non-blank line is one example, decoded as
 * strict UTF-8 and tokenized with special tokens, as the seed's {@code tokenizer(examples["text"])} does; the ids of
 * the chunk's examples are concatenated in line order and written little-endian in the store's dtype.
 * Lines end at {@code '\n'}; a {@code '\r'} before it is dropped (CRLF files). Empty and whitespace-only lines are
 * skipped (they would only add a bare bos/eos pair). A line that is not valid UTF-8 (or, in JSON Lines, not an object
 * with a string {@code text} field) is an error naming the file and line, or, with {@code skipInvalid}, is counted
 * and skipped.
 */
final class ChunkTokenizer {
    /**
     * Tokens of one chunk, encoded; {@code firstSkippedLine} is 0 when nothing was skipped; {@code docLengths} holds
     * the token count of each example (one per tokenized line, in order: the document boundaries).
     */
    record Result(byte[] tokenBytes, int length, long lines, long tokens, long skipped, long firstSkippedLine,
                  int[] docLengths) {}

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Tokenizer tokenizer;
    private final TokenDtype dtype;
    private final boolean skipInvalid;
    private final int vocabSize;

    ChunkTokenizer(Tokenizer tokenizer, TokenDtype dtype, boolean skipInvalid) {
        this.tokenizer = tokenizer;
        this.dtype = dtype;
        this.skipInvalid = skipInvalid;
        this.vocabSize = tokenizer.vocabSize();
    }

    Result tokenize(CorpusSource source, ChunkReader.Chunk chunk) {
        byte[] d = chunk.data();
        int end = chunk.end();
        // About one token per 1–3 UTF-8 bytes of text; grown on demand.
        byte[] out = new byte[Math.max(64, (end - chunk.start()) * dtype.bytes() / 2)];
        int pos = 0;
        long lines = 0, tokens = 0, skipped = 0, firstSkipped = 0;
        long lineNo = chunk.firstLine();
        int[] docs = new int[64];
        int i = chunk.start();
        while (i < end) {
            int nl = i;
            while (nl < end && d[nl] != '\n') nl++;
            int lineEnd = nl;
            if (lineEnd > i && d[lineEnd - 1] == '\r') lineEnd--;
            String text = decode(d, i, lineEnd);
            String why = null;
            if (text == null) {
                why = "is not valid UTF-8";
            } else if (source.jsonl() && !text.isBlank()) {
                text = jsonText(text);
                if (text == null) why = "is not a JSON object with a string \"text\" field";
            }
            if (why != null) {
                if (!skipInvalid) {
                    throw new UserError(source.name() + " line " + lineNo + " " + why
                            + "; fix the file or pass --skip-invalid-lines to skip such lines");
                }
                skipped++;
                if (firstSkipped == 0) firstSkipped = lineNo;
            } else if (!text.isBlank()) {
                int[] ids = tokenizer.encode(text, true);
                int need = pos + ids.length * dtype.bytes();
                if (need > out.length) out = java.util.Arrays.copyOf(out, Math.max(need, out.length * 2));
                pos = put(out, pos, ids);
                if (lines == docs.length) docs = java.util.Arrays.copyOf(docs, docs.length * 2);
                docs[(int) lines] = ids.length;
                lines++;
                tokens += ids.length;
            }
            lineNo++;
            i = nl + 1;
        }
        return new Result(out, pos, lines, tokens, skipped, firstSkipped, java.util.Arrays.copyOf(docs, (int) lines));
    }

    private int put(byte[] out, int pos, int[] ids) {
        for (int id : ids) {
            if (id < 0 || id >= vocabSize) {
                throw new IllegalStateException("tokenizer returned id " + id + " outside its vocabulary of " + vocabSize);
            }
            out[pos++] = (byte) id;
            out[pos++] = (byte) (id >>> 8);
            if (dtype == TokenDtype.U32) {
                out[pos++] = (byte) (id >>> 16);
                out[pos++] = (byte) (id >>> 24);
            }
        }
        return pos;
    }

    /** Strictly decoded text, or null if the bytes are not valid UTF-8. */
    private static String decode(byte[] d, int from, int to) {
        String s = new String(d, from, to - from, StandardCharsets.UTF_8);
        // The String constructor replaces bad sequences with U+FFFD; only then pay for a strict decode, because
        // U+FFFD can also be genuine text.
        if (s.indexOf('\uFFFD') < 0) return s;
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(d, from, to - from)).toString();
        } catch (CharacterCodingException e) {
            return null;
        }
    }

    private static String jsonText(String line) {
        try {
            JsonNode node = JSON.readTree(line);
            if (node == null || !node.isObject()) return null;
            JsonNode t = node.get("text");
            return t != null && t.isTextual() ? t.asText() : null;
        } catch (java.io.IOException e) {
            return null;
        }
    }
}
