package dev.cpt4j.generate;

import java.util.Arrays;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Turns one sequence's tokens into text as they arrive, for a terminal. Like transformers' {@code TextStreamer} it
 * re-decodes the whole sequence (so word pieces join and CJK characters get no spaces, whatever the tokenizer's
 * clean decode does) and emits only the part that can no longer change: everything up to the last space, or all of
 * it when the text ends with a newline or a CJK character. A trailing U+FFFD is held back, since it is the decoding
 * of an incomplete UTF-8 byte sequence (byte-level BPE) that the next token will complete.
 */
public final class TextStreamer implements Generator.TokenListener {
    private final Function<int[], String> decode;
    private final Consumer<String> sink;
    private final int sequence;
    private int[] ids;
    private int count;
    private int printed; // chars of the decoded text already emitted

    /**
     * @param decode   ids → clean text (the tokenizer's decode: special tokens skipped)
     * @param prompt   emitted first, as text
     * @param sequence which sequence of the batch to follow
     */
    public TextStreamer(Function<int[], String> decode, int[] prompt, int sequence, Consumer<String> sink) {
        this.decode = decode;
        this.sink = sink;
        this.sequence = sequence;
        this.ids = Arrays.copyOf(prompt, prompt.length + 64);
        this.count = prompt.length;
        emit(false);
    }

    @Override
    public void onToken(int seq, int token) {
        if (seq != sequence) return;
        if (count == ids.length) ids = Arrays.copyOf(ids, ids.length * 2);
        ids[count++] = token;
        emit(false);
    }

    /** Emits whatever is left (call once generation ended). */
    public void finish() {
        emit(true);
    }

    private void emit(boolean all) {
        String text = decode.apply(Arrays.copyOf(ids, count));
        if (printed > text.length()) printed = text.length(); // the decode shrank (rare); never re-emit
        int end;
        if (all) {
            end = text.length();
        } else {
            end = text.length();
            while (end > printed && text.charAt(end - 1) == '\uFFFD') end--;
            if (end > printed && !(text.charAt(end - 1) == '\n' || isCjk(text.codePointBefore(end)))) {
                int space = text.lastIndexOf(' ', end - 1);
                end = space >= printed ? space + 1 : printed;
            }
        }
        if (end > printed) {
            sink.accept(text.substring(printed, end));
            printed = end;
        }
    }

    /** The CJK ranges of HF's {@code TextStreamer._is_chinese_char} (the same as BERT's). */
    static boolean isCjk(int cp) {
        return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF)
                || (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F)
                || (cp >= 0x2B820 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
    }
}
