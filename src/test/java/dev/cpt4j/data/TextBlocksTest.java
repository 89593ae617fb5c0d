package dev.cpt4j.data;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** eval's --text-file blocks ({@link TextBlocks}) are exactly the blocks {@code prepare} makes of the same file. */
class TextBlocksTest {
    @TempDir
    Path tmp;
    private final CodePointTokenizer tok = new CodePointTokenizer(5000);

    @Test
    void aTextFileGivesTheBlocksPrepareGivesIt() throws IOException {
        // a BOM, CRLF and LF endings, a lone CR inside a line, blank and whitespace-only lines, CJK and emoji
        String text = "\uFEFF床前明月光\r\n疑是地上霜\n\n   \n举头\r望明月 😀\r\n低头思故乡\nlast line without newline";
        Path dir = Files.createDirectories(tmp.resolve("corpus"));
        Path file = Files.writeString(dir.resolve("held_out.txt"), text, StandardCharsets.UTF_8);
        int T = 5;
        int[] blocks = TextBlocks.cut(TextBlocks.tokenize(tok, file, "--text-file"), T, "--text-file " + file);
        try (TokenStore s = Prepare.run(PrepareOptions.of(List.of(dir), tmp.resolve("store"), T).withValidationFraction(0),
                tok, m -> {})) {
            TokenBlocks b = s.train();
            assertThat((long) blocks.length / T).isEqualTo(b.blockCount());
            int[] prepared = new int[blocks.length];
            for (long i = 0; i < b.blockCount(); i++) b.readBlock(i, prepared, (int) i * T);
            assertThat(blocks).isEqualTo(prepared);
        }
    }

    @Test
    void jsonlAndBadBytesFollowTheCorpusRules() throws IOException {
        Path jsonl = Files.writeString(tmp.resolve("x.jsonl"), "{\"text\":\"ab\"}\n{\"text\":\"c\"}\n");
        assertThat(TextBlocks.tokenize(tok, jsonl, "--text-file"))
                .containsExactly(CodePointTokenizer.BOS, 'a', 'b', CodePointTokenizer.EOS, CodePointTokenizer.BOS, 'c', CodePointTokenizer.EOS);
        Path bad = Files.write(tmp.resolve("bad.txt"), new byte[] {'o', 'k', '\n', (byte) 0xC3, '\n'});
        assertThatThrownBy(() -> TextBlocks.tokenize(tok, bad, "--text-file")).isInstanceOf(UserError.class)
                .hasMessageContaining("--text-file " + bad + " line 2 is not valid UTF-8").hasMessageNotContaining("--skip-invalid-lines");
    }
}
