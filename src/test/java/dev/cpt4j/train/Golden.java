package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;

/** Loads the fixtures written by tools/golden/make_train_golden.py. */
final class Golden {
    private Golden() {}

    static JsonNode load(String name) {
        try (InputStream in = Golden.class.getResourceAsStream("/golden/train/" + name)) {
            if (in == null) throw new IllegalStateException("missing fixture golden/train/" + name
                    + " (regenerate with tools/golden/make_train_golden.py)");
            return new ObjectMapper().readTree(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** A JSON array of float32 decimal strings. */
    static float[] floats(JsonNode arr) {
        float[] out = new float[arr.size()];
        for (int i = 0; i < out.length; i++) out[i] = Float.parseFloat(arr.get(i).asText());
        return out;
    }
}
