package dev.cpt4j.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * Token strings → text, as tokenizers' decoders ({@code decode_chain} then concatenation), except that the WordPiece
 * decoder writes no space between CJK characters (HF writes "我 爱 你"; Chinese text has no spaces).
 */
interface Decoder {
    List<String> decodeChain(List<String> tokens);

    default String decode(List<String> tokens) {
        return String.join("", decodeChain(tokens));
    }

    static String utf8Lossy(byte[] bytes) {
        return new String(bytes, StandardCharsets.UTF_8);   // malformed sequences become U+FFFD, as from_utf8_lossy
    }

    record ByteLevel() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            ByteArrayOutputStream b = new ByteArrayOutputStream();
            for (String t : tokens) ByteLevelCodec.decodeTo(t, b);
            return List.of(utf8Lossy(b.toByteArray()));
        }
    }

    /** WordPiece: strip the prefix from continuation pieces, space elsewhere — but none next to CJK — then clean up. */
    record WordPiece(String prefix, boolean cleanup) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> r = new ArrayList<>(tokens.size());
            String prev = null;
            for (String t : tokens) {
                String out;
                if (prev == null) out = t;
                else if (t.startsWith(prefix)) out = t.substring(prefix.length());
                else if (!t.isEmpty() && !prev.isEmpty()
                        && (Unicode.isCjkNoSpace(prev.codePointBefore(prev.length())) || Unicode.isCjkNoSpace(t.codePointAt(0)))) out = t;
                else out = " " + t;
                r.add(out);
                prev = t;
            }
            return r;
        }

        /** Cleans up the joined text, as transformers' {@code clean_up_tokenization} does on the whole string. */
        @Override
        public String decode(List<String> tokens) {
            String s = String.join("", decodeChain(tokens));
            return cleanup ? cleanup(s) : s;
        }

        /** tokenizers' {@code wordpiece::cleanup}: no space before Latin punctuation and English contractions. */
        static String cleanup(String s) {
            return s.replace(" .", ".").replace(" ?", "?").replace(" !", "!").replace(" ,", ",").replace(" ' ", "'")
                    .replace(" n't", "n't").replace(" 'm", "'m").replace(" do not", " don't").replace(" 's", "'s")
                    .replace(" 've", "'ve").replace(" 're", "'re");
        }
    }

    record Metaspace(char replacement, boolean stripFirst) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> r = new ArrayList<>(tokens.size());
            for (int i = 0; i < tokens.size(); i++) {
                String t = tokens.get(i).replace(replacement, ' ');
                if (i == 0 && stripFirst && t.startsWith(" ")) t = t.substring(1);
                r.add(t);
            }
            return r;
        }
    }

    record Replace(String pattern, String content) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> r = new ArrayList<>(tokens.size());
            for (String t : tokens) r.add(t.replace(pattern, content));
            return r;
        }
    }

    /** {@code <0xXX>} tokens become bytes; a run that is not valid UTF-8 becomes one U+FFFD per byte (as HF). */
    record ByteFallback() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> r = new ArrayList<>(tokens.size());
            ByteArrayOutputStream pending = new ByteArrayOutputStream();
            for (String t : tokens) {
                int b = byteToken(t);
                if (b >= 0) {
                    pending.write(b);
                    continue;
                }
                flush(pending, r);
                r.add(t);
            }
            flush(pending, r);
            return r;
        }

        private static void flush(ByteArrayOutputStream pending, List<String> r) {
            if (pending.size() == 0) return;
            byte[] bytes = pending.toByteArray();
            pending.reset();
            try {
                r.add(StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                        .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString());
            } catch (CharacterCodingException e) {
                for (int i = 0; i < bytes.length; i++) r.add("\uFFFD");
            }
        }

        static int byteToken(String t) {
            if (t.length() != 6 || !t.startsWith("<0x") || t.charAt(5) != '>') return -1;
            try {
                return Integer.parseInt(t.substring(3, 5), 16);
            } catch (NumberFormatException e) {
                return -1;
            }
        }
    }

    record Fuse() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) { return List.of(String.join("", tokens)); }
    }

    record Strip(String content, int start, int stop) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> r = new ArrayList<>(tokens.size());
            for (String t : tokens) {
                int a = 0, e = t.length();
                for (int i = 0; i < start && t.startsWith(content, a) && a < e; i++) a += content.length();
                for (int i = 0; i < stop && e - content.length() >= a && t.startsWith(content, e - content.length()); i++) e -= content.length();
                r.add(t.substring(a, e));
            }
            return r;
        }
    }

    /** BPE end-of-word suffix (e.g. {@code </w>}) becomes a space. */
    record BpeSuffix(String suffix) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            List<String> r = new ArrayList<>(tokens.size());
            for (int i = 0; i < tokens.size(); i++) r.add(tokens.get(i).replace(suffix, i == tokens.size() - 1 ? "" : " "));
            return r;
        }
    }

    record Sequence(List<Decoder> steps) implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) {
            for (Decoder d : steps) tokens = d.decodeChain(tokens);
            return tokens;
        }
    }

    /** No decoder in the file: tokens joined as they are. */
    record Plain() implements Decoder {
        @Override
        public List<String> decodeChain(List<String> tokens) { return tokens; }
    }
}
