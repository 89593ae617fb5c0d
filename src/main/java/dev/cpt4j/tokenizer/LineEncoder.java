package dev.cpt4j.tokenizer;

import dev.cpt4j.UserError;
import dev.cpt4j.tensor.Parallel;

import java.io.IOException;
import java.io.Writer;
import java.nio.ByteBuffer;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Encodes a text file line by line (lines split on '\n' only; nothing else stripped) into JSON id arrays. */
public final class LineEncoder {
    private LineEncoder() {}

    /** The lines of a UTF-8 file split on '\n' only ('\r' kept); a final '\n' does not start an empty line. */
    public static List<String> readLines(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (IOException e) {
            throw new UserError("cannot read input file " + file + ": " + e.getMessage() + "; check the path");
        }
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new UserError("input file " + file + " is not valid UTF-8; convert it (e.g. iconv -f GB18030 -t UTF-8)");
        }
        List<String> lines = new ArrayList<>();
        int start = 0;
        for (int i = 0; i < text.length(); i++) {
            if (text.charAt(i) == '\n') {
                lines.add(text.substring(start, i));
                start = i + 1;
            }
        }
        if (start < text.length()) lines.add(text.substring(start));
        return lines;
    }

    /** Writes one JSON array of ids per line, in input order; lines are encoded in parallel blocks. */
    public static void encodeLines(Tokenizer tok, List<String> lines, boolean addSpecialTokens, Parallel par, Writer out) throws IOException {
        int block = 4096;
        for (int s = 0; s < lines.size(); s += block) {
            int n = Math.min(block, lines.size() - s);
            String[] json = new String[n];
            final int base = s;
            par.forRange(n, (a, b) -> {
                StringBuilder sb = new StringBuilder();
                for (int i = a; i < b; i++) {
                    sb.setLength(0);
                    int[] ids = tok.encode(lines.get(base + i), addSpecialTokens);
                    sb.append('[');
                    for (int k = 0; k < ids.length; k++) {
                        if (k > 0) sb.append(", ");
                        sb.append(ids[k]);
                    }
                    json[i] = sb.append(']').toString();
                }
            });
            for (String j : json) out.write(j + "\n");
        }
        out.flush();
    }
}
