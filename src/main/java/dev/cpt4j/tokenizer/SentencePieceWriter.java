package dev.cpt4j.tokenizer;

import dev.cpt4j.tokenizer.SentencePieceLoader.Piece;
import dev.cpt4j.tokenizer.SentencePieceLoader.Proto;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * An extended SentencePiece {@code tokenizer.model}: the base {@code ModelProto}'s bytes with new pieces inserted
 * after its last piece, as Chinese-LLaMA-Alpaca's {@code merge_tokenizers.py} appends them with the protobuf classes.
 * Every other field is kept byte for byte, except {@code self_test_data} (field 4): sentencepiece re-encodes those
 * samples on load and refuses the model when a new piece changes one. This is not a general protobuf writer.
 */
final class SentencePieceWriter {
    private SentencePieceWriter() {}

    /** {@code base} (the bytes of {@code file}) with {@code added} appended to its pieces. */
    static byte[] appendPieces(byte[] base, Path file, List<Piece> added) {
        Proto p = new Proto(ByteBuffer.wrap(base), file);
        List<int[]> fields = new ArrayList<>();       // {field, start, end} of each top-level field
        try {
            while (p.more()) {
                int start = p.b.position();
                long tag = p.varint();
                p.skip((int) (tag & 7));
                fields.add(new int[] {(int) (tag >>> 3), start, p.b.position()});
            }
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            throw p.corrupt();
        }
        int lastPiece = -1;
        for (int i = 0; i < fields.size(); i++) if (fields.get(i)[0] == 1) lastPiece = i;
        if (lastPiece < 0) throw new dev.cpt4j.UserError("tokenizer file " + file + " has no pieces; it is not a SentencePiece model");
        ByteArrayOutputStream out = new ByteArrayOutputStream(base.length + added.size() * 16);
        for (int i = 0; i < fields.size(); i++) {
            int[] f = fields.get(i);
            if (f[0] != 4) out.write(base, f[1], f[2] - f[1]);
            if (i == lastPiece) for (Piece pc : added) piece(out, pc);
        }
        return out.toByteArray();
    }

    /** ModelProto.pieces (field 1): SentencePiece {piece = 1, score = 2 (float), type = 3 (omitted when NORMAL)}. */
    static void piece(ByteArrayOutputStream out, Piece pc) {
        ByteArrayOutputStream m = new ByteArrayOutputStream();
        byte[] text = pc.text().getBytes(StandardCharsets.UTF_8);
        m.write(1 << 3 | 2);
        varint(m, text.length);
        m.writeBytes(text);
        m.write(2 << 3 | 5);
        int bits = Float.floatToRawIntBits(pc.score());
        for (int k = 0; k < 4; k++) m.write(bits >>> (8 * k) & 0xFF);
        if (pc.type() != SentencePieceLoader.NORMAL) {
            m.write(3 << 3);
            varint(m, pc.type());
        }
        out.write(1 << 3 | 2);
        varint(out, m.size());
        out.writeBytes(m.toByteArray());
    }

    static void varint(ByteArrayOutputStream out, long v) {
        while ((v & ~0x7FL) != 0) {
            out.write((int) (v & 0x7F) | 0x80);
            v >>>= 7;
        }
        out.write((int) v);
    }
}
