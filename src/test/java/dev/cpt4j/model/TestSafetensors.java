package dev.cpt4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/** A minimal test-only safetensors reader (F32 and I32 only) for the golden fixtures. */
final class TestSafetensors {
    record Tensor(int[] shape, float[] f32, int[] i32) {
        int size() {
            int n = 1;
            for (int d : shape) n *= d;
            return n;
        }
    }

    static Map<String, Tensor> read(Path file) throws IOException {
        byte[] all = Files.readAllBytes(file);
        ByteBuffer bb = ByteBuffer.wrap(all).order(ByteOrder.LITTLE_ENDIAN);
        long hlen = bb.getLong(0);
        JsonNode header = new ObjectMapper().readTree(new String(all, 8, (int) hlen, java.nio.charset.StandardCharsets.UTF_8));
        int base = 8 + (int) hlen;
        Map<String, Tensor> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().equals("__metadata__")) continue;
            JsonNode t = e.getValue();
            int[] shape = new int[t.get("shape").size()];
            for (int i = 0; i < shape.length; i++) shape[i] = t.get("shape").get(i).asInt();
            int begin = base + t.get("data_offsets").get(0).asInt();
            int n = 1;
            for (int d : shape) n *= d;
            String dt = t.get("dtype").asText();
            if (dt.equals("F32")) {
                float[] f = new float[n];
                for (int i = 0; i < n; i++) f[i] = bb.getFloat(begin + 4 * i);
                out.put(e.getKey(), new Tensor(shape, f, null));
            } else if (dt.equals("I32")) {
                int[] v = new int[n];
                for (int i = 0; i < n; i++) v[i] = bb.getInt(begin + 4 * i);
                out.put(e.getKey(), new Tensor(shape, null, v));
            } else throw new IOException(file + ": dtype " + dt + " not supported by the test reader");
        }
        return out;
    }

    /** HF config.json → Gpt2Config with GPT2Config's defaults for missing keys (test-only). */
    static Gpt2Config config(Path file) throws IOException {
        JsonNode j = new ObjectMapper().readTree(file.toFile());
        int nEmbd = j.path("n_embd").asInt(768);
        int nInner = j.hasNonNull("n_inner") ? j.get("n_inner").asInt() : 4 * nEmbd;
        return new Gpt2Config(j.path("vocab_size").asInt(50257), j.path("n_positions").asInt(1024), nEmbd,
                j.path("n_layer").asInt(12), j.path("n_head").asInt(12), nInner,
                j.path("activation_function").asText("gelu_new"), (float) j.path("layer_norm_epsilon").asDouble(1e-5),
                (float) j.path("initializer_range").asDouble(0.02), (float) j.path("embd_pdrop").asDouble(0.1),
                (float) j.path("attn_pdrop").asDouble(0.1), (float) j.path("resid_pdrop").asDouble(0.1),
                j.path("tie_word_embeddings").asBoolean(true), j.path("scale_attn_weights").asBoolean(true),
                j.path("scale_attn_by_inverse_layer_idx").asBoolean(false));
    }
}
