package dev.cpt4j.generate;

import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Function;

import static org.assertj.core.api.Assertions.assertThat;

/** Incremental text for the terminal: nothing printed twice, nothing printed broken. */
class TextStreamerTest {

    /** A WordPiece-like vocabulary: CJK characters, words, "##" continuations, and special tokens skipped. */
    static final String[] VOCAB = {"[PAD]", "西", "湖", "的", "景", "色", "hello", "world", "##s", "。", "<|endoftext|>", "wor", "##ld"};

    static String wordPieceDecode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        int prevCp = -1;
        for (int id : ids) {
            String t = VOCAB[id];
            if (t.equals("[PAD]") || t.equals("<|endoftext|>")) continue;
            if (t.startsWith("##")) {
                sb.append(t.substring(2));
            } else {
                int cp = t.codePointAt(0);
                boolean glue = sb.isEmpty() || TextStreamer.isCjk(cp) || TextStreamer.isCjk(prevCp) || t.equals("。");
                if (!glue) sb.append(' ');
                sb.append(t);
            }
            prevCp = sb.codePointBefore(sb.length());
        }
        return sb.toString();
    }

    @Test
    void chineseStreamsWithoutSpacesAndEnglishWaitsForWordEnds() {
        List<String> out = new ArrayList<>();
        TextStreamer st = new TextStreamer(TextStreamerTest::wordPieceDecode, new int[] {1, 2}, 0, out::add);
        assertThat(String.join("", out)).isEqualTo("西湖");
        int[] gen = {3, 4, 5, 9, 6, 11, 12, 8, 10, 0, 0};
        for (int t : gen) st.onToken(0, t);
        st.onToken(1, 7); // another sequence: ignored
        st.finish();
        // the stream adds up to the clean decode of the whole sequence
        assertThat(String.join("", out)).isEqualTo(wordPieceDecode(new int[] {1, 2, 3, 4, 5, 9, 6, 11, 12, 8, 10, 0, 0}))
                .isEqualTo("西湖的景色。 hello worlds");
        // "wor" was never printed on its own: the word was held back until it could not change
        assertThat(out).doesNotContain("wor", " wor").allSatisfy(s -> assertThat(s).doesNotContain("[PAD]", "<|endoftext|>"));
        assertThat(out).contains("的", "景", "色");
    }

    @Test
    void partialUtf8IsHeldBack() {
        // byte-level vocabulary: each id is one byte; decode as lossy UTF-8 (an incomplete tail becomes U+FFFD)
        byte[] bytes = "好a😀".getBytes(StandardCharsets.UTF_8);
        Function<int[], String> decode = ids -> {
            byte[] b = new byte[ids.length];
            for (int i = 0; i < ids.length; i++) b[i] = bytes[ids[i]];
            return new String(b, StandardCharsets.UTF_8);
        };
        List<String> out = new ArrayList<>();
        TextStreamer st = new TextStreamer(decode, new int[0], 0, out::add);
        for (int i = 0; i < bytes.length; i++) {
            st.onToken(0, i);
            assertThat(String.join("", out)).doesNotContain("\uFFFD");
            if (i == 2) assertThat(String.join("", out)).isEqualTo("好");
        }
        st.finish();
        assertThat(String.join("", out)).isEqualTo("好a😀");
    }
}
