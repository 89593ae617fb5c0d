package dev.cpt4j.tokenizer;

/**
 * Character classes exactly as Hugging Face tokenizers (Rust) define them: Rust's {@code char::is_whitespace}
 * (the Unicode White_Space property, which differs from {@link Character#isWhitespace}), the BERT "Chinese character"
 * ranges of tokenizers' {@code bert.rs}, and the general-category tests of the {@code unicode_categories} crate.
 */
final class Unicode {
    private Unicode() {}

    /** Rust {@code char::is_whitespace}: the White_Space property. */
    static boolean isWhitespace(int c) {
        if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
        if (c < 0x85) return false;
        return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029
                || c == 0x202F || c == 0x205F || c == 0x3000;
    }

    /** tokenizers {@code bert.rs is_chinese_char}: the CJK ideograph blocks BERT splits into single-character words. */
    static boolean isChineseChar(int c) {
        return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF)
                || (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF)
                || (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
    }

    /** Unicode punctuation (Pc, Pd, Ps, Pe, Pi, Pf, Po) or ASCII punctuation: BERT's {@code is_bert_punc}. */
    static boolean isBertPunctuation(int c) {
        if (c < 0x80) {
            return (c >= 0x21 && c <= 0x2F) || (c >= 0x3A && c <= 0x40) || (c >= 0x5B && c <= 0x60) || (c >= 0x7B && c <= 0x7E);
        }
        return isPunctuation(c);
    }

    /**
     * Punctuation in the JDK's Unicode version but not in tokenizers' older table (so not split off by BERT), and the
     * two code points that were punctuation there but are not now. Measured against tokenizers 0.36 (DJL) over every
     * code point by {@code UnicodeSweep} (test scope).
     */
    private static final int[] NOT_HF_PUNCTUATION = {
            0x61D, 0x9FD, 0xA76, 0xC77, 0xC84, 0x1B4E, 0x1B4F, 0x1B7D, 0x1B7E, 0x1B7F, 0x2E43, 0x2E44, 0x2E45,
            0x2E46, 0x2E47, 0x2E48, 0x2E49, 0x2E4A, 0x2E4B, 0x2E4C, 0x2E4D, 0x2E4E, 0x2E4F, 0x2E52, 0x2E53,
            0x2E54, 0x2E55, 0x2E56, 0x2E57, 0x2E58, 0x2E59, 0x2E5A, 0x2E5B, 0x2E5C, 0x2E5D, 0x10D6E, 0x10EAD,
            0x10F55, 0x10F56, 0x10F57, 0x10F58, 0x10F59, 0x10F86, 0x10F87, 0x10F88, 0x10F89, 0x113D4, 0x113D5,
            0x113D7, 0x113D8, 0x1144B, 0x1144C, 0x1144D, 0x1144E, 0x1144F, 0x1145A, 0x1145B, 0x1145D, 0x11660,
            0x11661, 0x11662, 0x11663, 0x11664, 0x11665, 0x11666, 0x11667, 0x11668, 0x11669, 0x1166A, 0x1166B,
            0x1166C, 0x116B9, 0x1183B, 0x11944, 0x11945, 0x11946, 0x119E2, 0x11A3F, 0x11A40, 0x11A41, 0x11A42,
            0x11A43, 0x11A44, 0x11A45, 0x11A46, 0x11A9A, 0x11A9B, 0x11A9C, 0x11A9E, 0x11A9F, 0x11AA0, 0x11AA1,
            0x11AA2, 0x11B00, 0x11B01, 0x11B02, 0x11B03, 0x11B04, 0x11B05, 0x11B06, 0x11B07, 0x11B08, 0x11B09,
            0x11BE1, 0x11C41, 0x11C42, 0x11C43, 0x11C44, 0x11C45, 0x11C70, 0x11C71, 0x11EF7, 0x11EF8, 0x11F43,
            0x11F44, 0x11F45, 0x11F46, 0x11F47, 0x11F48, 0x11F49, 0x11F4A, 0x11F4B, 0x11F4C, 0x11F4D, 0x11F4E,
            0x11F4F, 0x11FFF, 0x12FF1, 0x12FF2, 0x16D6D, 0x16D6E, 0x16D6F, 0x16E97, 0x16E98, 0x16E99, 0x16E9A,
            0x16FE2, 0x1E5FF, 0x1E95E, 0x1E95F
    };

    static boolean isPunctuation(int c) {
        if (c == 0x111C9 || c == 0x166D) return true;
        if (c >= 0x61D && java.util.Arrays.binarySearch(NOT_HF_PUNCTUATION, c) >= 0) return false;
        return switch (Character.getType(c)) {
            case Character.CONNECTOR_PUNCTUATION, Character.DASH_PUNCTUATION, Character.START_PUNCTUATION,
                 Character.END_PUNCTUATION, Character.INITIAL_QUOTE_PUNCTUATION, Character.FINAL_QUOTE_PUNCTUATION,
                 Character.OTHER_PUNCTUATION -> true;
            default -> false;
        };
    }

    /**
     * What BertNormalizer's clean_text drops (besides NUL and U+FFFD): tokenizers' {@code is_control}, i.e. the
     * {@code unicode_categories} crate's Cc, Cf, Cs, Co tables. Measured against tokenizers over every code point:
     * unassigned code points (Cn) are kept, and so are the 20 format characters newer than that crate's tables.
     */
    static boolean isOther(int c) {
        return switch (Character.getType(c)) {
            case Character.CONTROL, Character.SURROGATE, Character.PRIVATE_USE -> true;
            case Character.FORMAT -> !(c == 0x890 || c == 0x891 || c == 0x8E2 || c == 0x110CD || (c >= 0x13430 && c <= 0x1343F));
            default -> false;
        };
    }

    /** Mn: what BertNormalizer's strip-accents removes after NFD. */
    static boolean isNonSpacingMark(int c) {
        return Character.getType(c) == Character.NON_SPACING_MARK;
    }

    /** Rust {@code char::is_alphanumeric}: Alphabetic or Numeric (Nd, Nl, No). */
    static boolean isAlphanumeric(int c) {
        return Character.isAlphabetic(c) || switch (Character.getType(c)) {
            case Character.DECIMAL_DIGIT_NUMBER, Character.LETTER_NUMBER, Character.OTHER_NUMBER -> true;
            default -> false;
        };
    }

    /**
     * Characters written without spaces between them in Chinese/Japanese text: ideographs, CJK punctuation, kana,
     * full-width forms. Used by decoding to avoid HF's "我 爱 你" spacing. Hangul is excluded (Korean uses spaces).
     */
    static boolean isCjkNoSpace(int c) {
        return isChineseChar(c) || (c >= 0x3000 && c <= 0x30FF) || (c >= 0x31F0 && c <= 0x31FF)
                || (c >= 0xFF00 && c <= 0xFFEF) || (c >= 0xFE30 && c <= 0xFE4F) || (c >= 0x2E80 && c <= 0x2FDF)
                || (c >= 0x3100 && c <= 0x312F) || (c >= 0x3200 && c <= 0x33FF) || (c >= 0xFE10 && c <= 0xFE1F)
                || (c >= 0x2CEB0 && c <= 0x323AF);
    }
}
