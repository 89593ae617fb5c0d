package dev.cpt4j.tokenizer;

import dev.cpt4j.UserError;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * SentencePiece {@code tokenizer.model} (a {@code ModelProto} protobuf, parsed by hand) for BPE models, turned into
 * the pipeline transformers' LLaMA converter builds: spaces → ▁ with a dummy-prefix ▁, BPE with byte fallback over
 * the pieces, merges ordered by the merged piece's score (as transformers' {@code SentencePieceExtractor}), &lt;s&gt;
 * first. User-defined pieces are matched after normalization, as sentencepiece does. Unigram models and
 * non-identity normalization rules (precompiled charsmaps, e.g. nmt_nfkc) are refused.
 */
final class SentencePieceLoader {
    private SentencePieceLoader() {}

    static final int NORMAL = 1, UNKNOWN = 2, CONTROL = 3, USER_DEFINED = 4, UNUSED = 5, BYTE = 6;

    record Piece(String text, float score, int type) {}

    /** A minimal protobuf reader: varints, fixed32/64, length-delimited fields. */
    static final class Proto {
        final ByteBuffer b;
        final Path file;

        Proto(ByteBuffer b, Path file) {
            this.b = b.order(ByteOrder.LITTLE_ENDIAN);
            this.file = file;
        }

        boolean more() { return b.hasRemaining(); }

        long varint() {
            long r = 0;
            for (int shift = 0; shift < 64; shift += 7) {
                if (!b.hasRemaining()) throw corrupt();
                byte x = b.get();
                r |= (long) (x & 0x7F) << shift;
                if (x >= 0) return r;
            }
            throw corrupt();
        }

        UserError corrupt() {
            return new UserError("tokenizer file " + file + " is not a valid SentencePiece model (truncated or corrupt protobuf); re-download tokenizer.model");
        }

        ByteBuffer bytes() {
            int n = (int) varint();
            if (n < 0 || n > b.remaining()) throw corrupt();
            ByteBuffer s = b.slice(b.position(), n);
            b.position(b.position() + n);
            return s;
        }

        void skip(int wire) {
            switch (wire) {
                case 0 -> varint();
                case 1 -> b.position(b.position() + 8);
                case 2 -> bytes();
                case 5 -> b.position(b.position() + 4);
                default -> throw corrupt();
            }
        }
    }

    static String utf8(ByteBuffer bb) {
        byte[] a = new byte[bb.remaining()];
        bb.get(a);
        return new String(a, StandardCharsets.UTF_8);
    }

    /** The parts of a {@code ModelProto} cpt4j uses. */
    record ModelProto(List<Piece> pieces, int modelType, boolean byteFallback, String normName, int charsmapLen,
                      boolean addDummyPrefix, boolean removeExtraWs) {}

    static byte[] read(Path file) {
        try {
            return Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UserError("cannot read tokenizer file " + file + ": " + e.getMessage());
        }
    }

    static Tokenizer load(Path file, Path dir) {
        return build(parse(read(file), file), file, dir);
    }

    /** Parses the protobuf; refuses nothing but corrupt bytes (see {@link #checkSupported}). */
    static ModelProto parse(byte[] data, Path file) {
        List<Piece> pieces = new ArrayList<>();
        int modelType = 1;                 // TrainerSpec.model_type default UNIGRAM
        boolean byteFallback = false;
        String normName = "";
        int charsmapLen = 0;
        boolean addDummyPrefix = true, removeExtraWs = true;
        Proto p = new Proto(ByteBuffer.wrap(data), file);
        try {
            while (p.more()) {
                long tag = p.varint();
                int field = (int) (tag >>> 3), wire = (int) (tag & 7);
                if (field == 1 && wire == 2) {            // SentencePiece
                    Proto q = new Proto(p.bytes(), file);
                    String text = "";
                    float score = 0;
                    int type = NORMAL;
                    while (q.more()) {
                        long t = q.varint();
                        int f = (int) (t >>> 3), w = (int) (t & 7);
                        if (f == 1 && w == 2) text = utf8(q.bytes());
                        else if (f == 2 && w == 5) score = q.b.getFloat();
                        else if (f == 3 && w == 0) type = (int) q.varint();
                        else q.skip(w);
                    }
                    pieces.add(new Piece(text, score, type));
                } else if (field == 2 && wire == 2) {     // TrainerSpec
                    Proto q = new Proto(p.bytes(), file);
                    while (q.more()) {
                        long t = q.varint();
                        int f = (int) (t >>> 3), w = (int) (t & 7);
                        if (f == 3 && w == 0) modelType = (int) q.varint();
                        else if (f == 35 && w == 0) byteFallback = q.varint() != 0;
                        else q.skip(w);
                    }
                } else if (field == 3 && wire == 2) {     // NormalizerSpec
                    Proto q = new Proto(p.bytes(), file);
                    while (q.more()) {
                        long t = q.varint();
                        int f = (int) (t >>> 3), w = (int) (t & 7);
                        if (f == 1 && w == 2) normName = utf8(q.bytes());
                        else if (f == 2 && w == 2) charsmapLen = q.bytes().remaining();
                        else if (f == 3 && w == 0) addDummyPrefix = q.varint() != 0;
                        else if (f == 4 && w == 0) removeExtraWs = q.varint() != 0;
                        else q.skip(w);
                    }
                } else {
                    p.skip(wire);
                }
            }
        } catch (IndexOutOfBoundsException | IllegalArgumentException e) {
            throw p.corrupt();
        }
        if (pieces.isEmpty()) throw new UserError("tokenizer file " + file + " has no pieces; it is not a SentencePiece model");
        return new ModelProto(pieces, modelType, byteFallback, normName, charsmapLen, addDummyPrefix, removeExtraWs);
    }

    /** Refuses what cpt4j cannot encode as sentencepiece does: Unigram models and precompiled charsmaps. */
    static void checkSupported(ModelProto m, Path file) {
        if (m.modelType() != 2) {
            throw new UserError("tokenizer file " + file + ": field 'trainer_spec.model_type' is " + (m.modelType() == 1 ? "UNIGRAM" : m.modelType())
                    + "; supported: BPE (convert Unigram models to tokenizer.json with transformers)");
        }
        if (m.charsmapLen() > 0 && !m.normName().equals("identity")) {
            throw new UserError("tokenizer file " + file + ": field 'normalizer_spec.name' is '" + m.normName()
                    + "' (a precompiled charsmap); supported: identity (save the tokenizer as tokenizer.json with transformers instead)");
        }
    }

    /** Piece text → id (the first piece wins on a duplicate, as sentencepiece's map does). */
    static Map<String, Integer> vocab(List<Piece> pieces) {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int i = 0; i < pieces.size(); i++) vocab.putIfAbsent(pieces.get(i).text(), i);
        return vocab;
    }

    /**
     * The BPE merges sentencepiece's encoder implies: every split of a NORMAL piece into two pieces, ordered by the
     * merged piece's score (desc), then left/right id (as transformers' {@code SentencePieceExtractor}).
     */
    static List<String[]> merges(List<Piece> pieces, Map<String, Integer> vocab) {
        List<Object[]> ms = new ArrayList<>();
        for (int i = 0; i < pieces.size(); i++) {
            Piece pc = pieces.get(i);
            if (pc.type() != NORMAL) continue;
            String s = pc.text();
            for (int k = s.offsetByCodePoints(0, 1); k < s.length(); k = s.offsetByCodePoints(k, 1)) {
                Integer l = vocab.get(s.substring(0, k)), r = vocab.get(s.substring(k));
                if (l != null && r != null) ms.add(new Object[] {pc.score(), l, r, s.substring(0, k), s.substring(k)});
            }
        }
        ms.sort(Comparator.<Object[], Float>comparing(o -> -(Float) o[0]).thenComparing(o -> (Integer) o[1]).thenComparing(o -> (Integer) o[2]));
        List<String[]> merges = new ArrayList<>(ms.size());
        for (Object[] o : ms) merges.add(new String[] {(String) o[3], (String) o[4]});
        return merges;
    }

    static Tokenizer build(ModelProto proto, Path file, Path dir) {
        checkSupported(proto, file);
        List<Piece> pieces = proto.pieces();
        boolean byteFallback = proto.byteFallback(), addDummyPrefix = proto.addDummyPrefix(), removeExtraWs = proto.removeExtraWs();
        Map<String, Integer> vocab = vocab(pieces);
        String unk = null;
        List<AddedToken> added = new ArrayList<>();
        for (int i = 0; i < pieces.size(); i++) {
            Piece pc = pieces.get(i);
            if (pc.type() == UNKNOWN) unk = pc.text();
            if (pc.type() == UNKNOWN || pc.type() == CONTROL) added.add(new AddedToken(i, pc.text(), true, false, false, false, false));
            if (pc.type() == USER_DEFINED) added.add(new AddedToken(i, pc.text(), false, false, false, false, true));
        }
        List<String[]> merges = merges(pieces, vocab);
        BpeModel model = new BpeModel(vocab, merges, unk, null, null, true, byteFallback, false);

        List<Normalizer> norm = new ArrayList<>();
        if (removeExtraWs) {
            norm.add(new Normalizer.Replace(null, Pattern.compile("^ +| +$"), ""));
            norm.add(new Normalizer.Replace(null, Pattern.compile(" {2,}"), " "));
        }
        if (addDummyPrefix) norm.add(new Normalizer.Prepend("\u2581"));
        norm.add(new Normalizer.Replace(" ", null, "\u2581"));
        TokenizerLoader.SideFiles side = TokenizerLoader.SideFiles.read(dir);
        String bos = side.token("bos_token", "<s>"), eos = side.token("eos_token", "</s>");
        boolean addBos = side.flag("add_bos_token", true), addEos = side.flag("add_eos_token", false);
        IntList before = new IntList(), after = new IntList();
        if (addBos && vocab.containsKey(bos)) before.add(vocab.get(bos));
        if (addEos && vocab.containsKey(eos)) after.add(vocab.get(eos));
        List<Decoder> dec = new ArrayList<>(List.of(new Decoder.Replace("\u2581", " "), new Decoder.ByteFallback(), new Decoder.Fuse()));
        if (addDummyPrefix) dec.add(new Decoder.Strip(" ", 1, 0));
        return new HfTokenizer(new Normalizer.Sequence(norm), null, model, new PostProcessor.Template(before.toArray(), after.toArray()),
                new Decoder.Sequence(dec), added, TokenizerLoader.fingerprint(file, dir.resolve("tokenizer_config.json")), true);
    }
}
