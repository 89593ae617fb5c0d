package dev.cpt4j.tokenizer;

import java.nio.charset.StandardCharsets;

/** GPT-2's reversible byte ↔ printable-character map ({@code bytes_to_unicode} in openai/gpt-2 encoder.py). */
final class ByteLevelCodec {
    private ByteLevelCodec() {}

    static final char[] BYTE_TO_CHAR = new char[256];
    static final int[] CHAR_TO_BYTE = new int[324];

    static {
        int n = 0;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            BYTE_TO_CHAR[b] = printable ? (char) b : (char) (256 + n++);
        }
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        for (int b = 0; b < 256; b++) CHAR_TO_BYTE[BYTE_TO_CHAR[b]] = b;
    }

    /** The byte-level form of {@code s[start, end)}: one char per UTF-8 byte. */
    static String encode(String s, int start, int end) {
        char[] out = new char[(end - start) * 3];
        int k = 0;
        for (int i = start; i < end; i++) {
            char c = s.charAt(i);
            if (c < 0x80) {
                out[k++] = BYTE_TO_CHAR[c];
            } else if (c < 0x800) {
                out[k++] = BYTE_TO_CHAR[0xC0 | (c >> 6)];
                out[k++] = BYTE_TO_CHAR[0x80 | (c & 0x3F)];
            } else if (Character.isHighSurrogate(c) && i + 1 < end && Character.isLowSurrogate(s.charAt(i + 1))) {
                if (k + 4 > out.length) out = java.util.Arrays.copyOf(out, out.length + 8);
                int cp = Character.toCodePoint(c, s.charAt(++i));
                out[k++] = BYTE_TO_CHAR[0xF0 | (cp >> 18)];
                out[k++] = BYTE_TO_CHAR[0x80 | ((cp >> 12) & 0x3F)];
                out[k++] = BYTE_TO_CHAR[0x80 | ((cp >> 6) & 0x3F)];
                out[k++] = BYTE_TO_CHAR[0x80 | (cp & 0x3F)];
            } else {
                if (Character.isSurrogate(c)) c = 0xFFFD;   // a lone surrogate cannot be UTF-8: encode U+FFFD
                out[k++] = BYTE_TO_CHAR[0xE0 | (c >> 12)];
                out[k++] = BYTE_TO_CHAR[0x80 | ((c >> 6) & 0x3F)];
                out[k++] = BYTE_TO_CHAR[0x80 | (c & 0x3F)];
            }
        }
        return new String(out, 0, k);
    }

    /** Bytes of a byte-level token string; chars outside the map are UTF-8 encoded as themselves (as HF does). */
    static void decodeTo(String token, java.io.ByteArrayOutputStream out) {
        for (int i = 0; i < token.length(); i++) {
            char c = token.charAt(i);
            int b = c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
            if (b >= 0) out.write(b);
            else {
                int end = i + (Character.isHighSurrogate(c) && i + 1 < token.length() ? 2 : 1);
                out.writeBytes(token.substring(i, end).getBytes(StandardCharsets.UTF_8));
                i = end - 1;
            }
        }
    }
}
