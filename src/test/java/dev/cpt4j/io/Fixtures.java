package dev.cpt4j.io;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;

/** Paths of the committed fixtures (made by tools/golden/make_io_fixtures.py) and small file builders. */
public final class Fixtures {
    private Fixtures() {}

    public static Path golden(String rel) {
        try {
            var url = Fixtures.class.getResource("/golden/io/" + rel);
            if (url == null) throw new IllegalStateException("fixture missing: golden/io/" + rel + " (run tools/golden/make_io_fixtures.py)");
            return Path.of(url.toURI());
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A little-endian f32 file as an array. */
    public static float[] f32(String rel) throws IOException {
        byte[] b = Files.readAllBytes(golden(rel));
        float[] out = new float[b.length / 4];
        ByteBuffer.wrap(b).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    /** Writes a safetensors file from a raw header string and data bytes (header length as given, unpadded). */
    public static Path rawSafetensors(Path file, String header, byte[] data) throws IOException {
        byte[] h = header.getBytes(java.nio.charset.StandardCharsets.UTF_8);
        ByteBuffer b = ByteBuffer.allocate(8 + h.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(h.length).put(h).put(data);
        Files.write(file, b.array());
        return file;
    }
}
