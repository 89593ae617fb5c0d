package dev.cpt4j.tokenizer;

import java.util.List;
import java.util.regex.Pattern;

/**
 * Text normalization, as Hugging Face tokenizers' normalizers (tokenizers/src/normalizers). Only the resulting text is
 * kept (no offset alignment): cpt4j needs ids, not character spans.
 */
interface Normalizer {
    String normalize(String s);

    /** tokenizers {@code BertNormalizer}: clean text, isolate CJK ideographs, strip accents, lowercase, in that order. */
    record Bert(boolean cleanText, boolean handleChineseChars, boolean stripAccents, boolean lowercase) implements Normalizer {
        @Override
        public String normalize(String s) {
            StringBuilder b = new StringBuilder(s.length() + 16);
            for (int i = 0; i < s.length(); ) {
                int c = s.codePointAt(i);
                i += Character.charCount(c);
                if (cleanText) {
                    if (c == 0 || c == 0xFFFD || (c != '\t' && c != '\n' && c != '\r' && Unicode.isOther(c))) continue;
                    if (Unicode.isWhitespace(c)) c = ' ';
                }
                if (handleChineseChars && Unicode.isChineseChar(c)) {
                    b.append(' ').appendCodePoint(c).append(' ');
                } else {
                    b.appendCodePoint(c);
                }
            }
            String r = b.toString();
            if (stripAccents) r = StripAccents.strip(r);
            if (lowercase) r = Lowercase.lower(r);
            return r;
        }
    }

    /** NFD, then drop non-spacing marks (Mn). */
    record StripAccents() implements Normalizer {
        @Override
        public String normalize(String s) { return strip(s); }

        static String strip(String s) {
            String d = java.text.Normalizer.normalize(s, java.text.Normalizer.Form.NFD);
            StringBuilder b = null;
            for (int i = 0; i < d.length(); ) {
                int c = d.codePointAt(i);
                int n = Character.charCount(c);
                if (Unicode.isNonSpacingMark(c)) {
                    if (b == null) b = new StringBuilder(d.length()).append(d, 0, i);
                } else if (b != null) {
                    b.appendCodePoint(c);
                }
                i += n;
            }
            return b == null ? d : b.toString();
        }
    }

    /** Per-character full lowercase, as Rust's {@code char::to_lowercase} (no context-dependent final sigma). */
    record Lowercase() implements Normalizer {
        @Override
        public String normalize(String s) { return lower(s); }

        static String lower(String s) {
            StringBuilder b = new StringBuilder(s.length());
            for (int i = 0; i < s.length(); ) {
                int c = s.codePointAt(i);
                i += Character.charCount(c);
                if (c == 0x130) b.append("i\u0307");   // the one unconditional multi-char lowercase mapping
                else b.appendCodePoint(Character.toLowerCase(c));
            }
            return b.toString();
        }
    }

    record UnicodeForm(java.text.Normalizer.Form form) implements Normalizer {
        @Override
        public String normalize(String s) { return java.text.Normalizer.normalize(s, form); }
    }

    /** Replace every match of a literal string or a regex with {@code content}. */
    record Replace(String literal, Pattern regex, String content) implements Normalizer {
        @Override
        public String normalize(String s) {
            if (literal != null) return literal.isEmpty() ? s : s.replace(literal, content);
            return regex.matcher(s).replaceAll(java.util.regex.Matcher.quoteReplacement(content));
        }
    }

    /** Prepend to non-empty text (the LLaMA "▁" prefix). */
    record Prepend(String prepend) implements Normalizer {
        @Override
        public String normalize(String s) { return s.isEmpty() ? s : prepend + s; }
    }

    record Strip(boolean left, boolean right) implements Normalizer {
        @Override
        public String normalize(String s) {
            int a = 0, e = s.length();
            if (left) while (a < e && Unicode.isWhitespace(s.codePointAt(a))) a += Character.charCount(s.codePointAt(a));
            if (right) while (e > a && Unicode.isWhitespace(s.codePointBefore(e))) e -= Character.charCount(s.codePointBefore(e));
            return s.substring(a, e);
        }
    }

    record Sequence(List<Normalizer> normalizers) implements Normalizer {
        @Override
        public String normalize(String s) {
            for (Normalizer n : normalizers) s = n.normalize(s);
            return s;
        }
    }
}
