package dev.cpt4j.generate;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.tensor.ParamLayout;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;

/**
 * Reads the fixtures of tools/golden/make_generate_golden.py from the test classpath, including a minimal
 * test-only safetensors reader (F32 tensors only) for the tiny GPT-2 models.
 */
final class Golden {
    static final ObjectMapper JSON = new ObjectMapper();

    private Golden() {}

    static byte[] bytes(String resource) {
        try (InputStream in = Golden.class.getResourceAsStream("/golden/generate/" + resource)) {
            if (in == null) throw new IllegalStateException("missing test resource golden/generate/" + resource);
            return in.readAllBytes();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** The file-system path of golden/generate/REL (the test classpath is a directory). */
    static java.nio.file.Path path(String rel) {
        try {
            java.net.URL url = Golden.class.getResource("/golden/generate/" + rel);
            if (url == null) throw new IllegalStateException("missing test resource golden/generate/" + rel);
            return java.nio.file.Path.of(url.toURI());
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    static JsonNode json(String resource) {
        try {
            return JSON.readTree(bytes(resource));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static JsonNode json(byte[] text) {
        try {
            return JSON.readTree(text);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    static int[] ints(JsonNode a) {
        int[] r = new int[a.size()];
        for (int i = 0; i < r.length; i++) r[i] = a.get(i).asInt();
        return r;
    }

    /** A row of scores; JSON null stands for -inf (a filtered token). */
    static float[] floats(JsonNode a) {
        float[] r = new float[a.size()];
        for (int i = 0; i < r.length; i++)
            r[i] = a.get(i).isNull() ? Float.NEGATIVE_INFINITY : (float) a.get(i).asDouble();
        return r;
    }

    record TinyModel(Gpt2Config config, ParamLayout layout, float[] params) {}

    /** Loads golden/generate/NAME/{config.json, model.safetensors}. */
    static TinyModel model(String name) {
        JsonNode c = json(name + "/config.json");
        int nEmbd = c.get("n_embd").asInt();
        Gpt2Config cfg = new Gpt2Config(c.get("vocab_size").asInt(), c.get("n_positions").asInt(), nEmbd,
                c.get("n_layer").asInt(), c.get("n_head").asInt(),
                c.path("n_inner").isNull() ? 4 * nEmbd : c.get("n_inner").asInt(),
                c.get("activation_function").asText(), (float) c.get("layer_norm_epsilon").asDouble(),
                (float) c.get("initializer_range").asDouble(), 0f, 0f, 0f,
                c.path("tie_word_embeddings").asBoolean(true), c.get("scale_attn_weights").asBoolean(),
                c.get("scale_attn_by_inverse_layer_idx").asBoolean());
        ParamLayout layout = Gpt2Layout.of(cfg);
        float[] params = new float[layout.size()];
        byte[] st = bytes(name + "/model.safetensors");
        ByteBuffer bb = ByteBuffer.wrap(st).order(ByteOrder.LITTLE_ENDIAN);
        long headerLen = bb.getLong(0);
        JsonNode header;
        try {
            header = JSON.readTree(new String(st, 8, (int) headerLen, StandardCharsets.UTF_8));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        int dataStart = 8 + (int) headerLen;
        Set<String> loaded = new HashSet<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) continue;
            JsonNode t = e.getValue();
            if (!t.get("dtype").asText().equals("F32")) throw new IllegalStateException("not F32: " + e.getKey());
            ParamLayout.View v = layout.get(e.getKey());
            int[] shape = ints(t.get("shape"));
            if (!java.util.Arrays.equals(shape, v.shape()))
                throw new IllegalStateException(e.getKey() + " shape " + java.util.Arrays.toString(shape) + " != " + v.shapeString());
            long begin = t.get("data_offsets").get(0).asLong();
            for (int i = 0; i < v.size(); i++) params[v.offset() + i] = bb.getFloat(dataStart + (int) begin + 4 * i);
            loaded.add(e.getKey());
        }
        for (ParamLayout.View v : layout.views())
            if (!loaded.contains(v.name())) throw new IllegalStateException("missing tensor " + v.name());
        return new TinyModel(cfg, layout, params);
    }
}
