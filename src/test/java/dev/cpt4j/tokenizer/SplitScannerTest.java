package dev.cpt4j.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.assertj.core.api.Assertions.assertThat;

/** The hand-written split scanners against java.util.regex running the same patterns (their naive twin). */
class SplitScannerTest {
    static final String[] ALPHABET = {" ", " ", "\t", "\n", "\r", "a", "B", "é", "1", "٣", "½", "Ⅻ", "'", "s", "S", "ſ", "T", "r", "E",
        "v", "L", "l", "m", "D", "!", "，", "你", "😀", "𠮷", "\u3000", "\u00a0", "\u2028", "\u0085", "\u0301", "\u200b", "-", "(", "\u000b"};

    @Test
    void scannersMatchRegex() {
        Random rnd = new Random(1);
        for (String src : List.of(SplitScanner.GPT2, SplitScanner.QWEN, SplitScanner.LLAMA3)) {
            SplitScanner sc = SplitScanner.forPattern(src);
            Pattern p = Pattern.compile(src, Pattern.UNICODE_CHARACTER_CLASS);
            for (int t = 0; t < 30_000; t++) {
                StringBuilder b = new StringBuilder();
                int len = rnd.nextInt(14);
                for (int i = 0; i < len; i++) b.append(ALPHABET[rnd.nextInt(ALPHABET.length)]);
                String s = b.toString();
                Words w = new Words();
                sc.split(s, 0, s.length(), w);
                List<String> got = new ArrayList<>();
                for (int i = 0; i < w.n; i++) got.add(w.word(i));
                Words r = new Words();
                PreTokenizer.splitOnRegex(s, 0, s.length(), p, PreTokenizer.Behavior.ISOLATED, false, r);
                List<String> want = new ArrayList<>();
                for (int i = 0; i < r.n; i++) want.add(r.word(i));
                assertThat(got).as("pattern %s on %s", src, HfParityTest.escape(s)).isEqualTo(want);
            }
        }
    }
}
