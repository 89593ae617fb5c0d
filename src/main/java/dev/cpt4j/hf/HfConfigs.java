package dev.cpt4j.hf;

import static dev.cpt4j.io.Json.bool;
import static dev.cpt4j.io.Json.number;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Json;
import dev.cpt4j.model.Gpt2Config;
import java.nio.file.Path;
import java.util.Set;

/**
 * transformers' {@code config.json} for GPT-2 ({@code GPT2Config}) in and out.
 *
 * <p>Reading follows {@code GPT2Config.__init__}: its key names, the {@code attribute_map} aliases
 * ({@code hidden_size→n_embd}, {@code max_position_embeddings→n_positions}, {@code num_attention_heads→n_head},
 * {@code num_hidden_layers→n_layer}), its defaults (dropouts 0.1, {@code layer_norm_epsilon} 1e-5,
 * {@code initializer_range} 0.02, {@code gelu_new}, {@code n_inner} null → 4·n_embd,
 * {@code tie_word_embeddings} true). The five sizes that fix the tensor shapes ({@code vocab_size},
 * {@code n_positions}, {@code n_embd}, {@code n_layer}, {@code n_head}) are required: transformers would fill in
 * GPT-2-small's, which never match someone else's weights. Writing produces a file
 * {@code GPT2LMHeadModel.from_pretrained} loads: {@code model_type}, {@code architectures} and every field.
 */
public final class HfConfigs {
    private HfConfigs() {}

    /** transformers' GPT2Config.attribute_map: alias → canonical key. */
    private static final String[][] ALIASES = {
        {"n_embd", "hidden_size"}, {"n_positions", "max_position_embeddings"},
        {"n_head", "num_attention_heads"}, {"n_layer", "num_hidden_layers"},
    };

    private static final Set<String> GPT2_KEYS = Set.of("n_embd", "n_layer", "n_head", "n_positions", "n_ctx");

    /** Reads {@code file} (a config.json) into a {@link Gpt2Config}; any problem is one line naming file and field. */
    public static Gpt2Config read(Path file) {
        return fromJson(Json.readObject(file), file.toString());
    }

    /** Converts a parsed config.json; {@code where} names the file in messages. */
    public static Gpt2Config fromJson(ObjectNode j, String where) {
        JsonNode mt = j.get("model_type");
        if (mt != null && !mt.isNull()) {
            if (!mt.isTextual() || !mt.asText().equals("gpt2"))
                throw new UserError(where + ": unsupported model_type " + mt + "; cpt4j supports GPT-2 models (model_type \"gpt2\")");
        } else {
            boolean gpt2ish = false;
            for (String k : GPT2_KEYS) gpt2ish |= j.has(k);
            if (!gpt2ish)
                throw new UserError(where + ": no model_type and no GPT-2 fields (n_embd, n_layer, n_head); cpt4j supports GPT-2 models — add \"model_type\": \"gpt2\" if this is one");
        }
        int vocab = requiredInt(j, where, "vocab_size", null);
        int nPos = requiredInt(j, where, "n_positions", "max_position_embeddings");
        int nEmbd = requiredInt(j, where, "n_embd", "hidden_size");
        int nLayer = requiredInt(j, where, "n_layer", "num_hidden_layers");
        int nHead = requiredInt(j, where, "n_head", "num_attention_heads");
        JsonNode inner = j.get("n_inner");
        int nInner = inner == null || inner.isNull() ? 4 * nEmbd : intValue(inner, where, "n_inner");
        String act = string(j, where, "activation_function", "gelu_new");
        float eps = (float) number(j, where, "layer_norm_epsilon", 1e-5);
        float initRange = (float) number(j, where, "initializer_range", 0.02);
        float embd = (float) number(j, where, "embd_pdrop", 0.1);
        float attn = (float) number(j, where, "attn_pdrop", 0.1);
        float resid = (float) number(j, where, "resid_pdrop", 0.1);
        boolean tie = bool(j, where, "tie_word_embeddings", true);
        boolean scale = bool(j, where, "scale_attn_weights", true);
        boolean invIdx = bool(j, where, "scale_attn_by_inverse_layer_idx", false);
        if (bool(j, where, "add_cross_attention", false))
            throw new UserError(where + ": add_cross_attention is true; cpt4j supports decoder-only GPT-2 — set it to false");
        try {
            return new Gpt2Config(vocab, nPos, nEmbd, nLayer, nHead, nInner, act, eps, initRange, embd, attn, resid, tie,
                    scale, invIdx);
        } catch (UserError e) {
            String m = e.getMessage();
            throw new UserError(where + ": " + (m.startsWith("config: ") ? m.substring(8) : m));
        }
    }

    /** Writes {@code cfg} as a transformers-loadable config.json, atomically. */
    public static void write(Path file, Gpt2Config cfg) {
        Json.writeAtomic(file, toJson(cfg, null, null));
    }

    /**
     * Writes {@code cfg} keeping the other keys of {@code base} (token ids, task params; may be null), with
     * {@code dtype} (may be null) recorded as transformers does.
     */
    public static void write(Path file, Gpt2Config cfg, ObjectNode base, DType dtype) {
        Json.writeAtomic(file, toJson(cfg, base, dtype));
    }

    /** The config.json object for {@code cfg}: {@code base}'s other keys (if any) plus every GPT2Config field. */
    public static ObjectNode toJson(Gpt2Config c, ObjectNode base, DType dtype) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        if (base != null) o.setAll(base.deepCopy());
        for (String[] a : ALIASES) o.remove(a[1]);  // one spelling only, so nothing can disagree
        o.put("model_type", "gpt2");
        o.putArray("architectures").add("GPT2LMHeadModel");
        o.put("vocab_size", c.vocabSize());
        o.put("n_positions", c.nPositions());
        o.put("n_embd", c.nEmbd());
        o.put("n_layer", c.nLayer());
        o.put("n_head", c.nHead());
        o.put("n_inner", c.nInner());
        o.put("activation_function", c.activation());
        o.put("layer_norm_epsilon", (double) c.layerNormEpsilon());
        o.put("initializer_range", (double) c.initializerRange());
        o.put("embd_pdrop", (double) c.embdPdrop());
        o.put("attn_pdrop", (double) c.attnPdrop());
        o.put("resid_pdrop", (double) c.residPdrop());
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        o.put("scale_attn_weights", c.scaleAttnWeights());
        o.put("scale_attn_by_inverse_layer_idx", c.scaleAttnByInverseLayerIdx());
        if (!o.has("reorder_and_upcast_attn")) o.put("reorder_and_upcast_attn", false);
        if (!o.has("add_cross_attention")) o.put("add_cross_attention", false);
        if (!o.has("use_cache")) o.put("use_cache", true);
        if (dtype != null) {
            // transformers ≥ 4.56 writes "dtype"; older releases read "torch_dtype".
            o.put("dtype", dtype.torchName());
            o.put("torch_dtype", dtype.torchName());
        }
        // Floats are written through double: print the shortest decimal of the float (1e-5, not 9.999999747e-06).
        for (String k : new String[] {"layer_norm_epsilon", "initializer_range", "embd_pdrop", "attn_pdrop", "resid_pdrop"})
            o.put(k, Double.parseDouble(Float.toString((float) o.get(k).asDouble())));
        return sorted(o);
    }

    private static ObjectNode sorted(ObjectNode o) {
        ObjectNode s = JsonNodeFactory.instance.objectNode();
        o.properties().stream().map(java.util.Map.Entry::getKey).sorted().forEach(k -> s.set(k, o.get(k)));
        return s;
    }

    // ------------------------------------------------------------ typed fields

    private static int requiredInt(ObjectNode j, String where, String key, String alias) {
        JsonNode v = j.get(key);
        String used = key;
        if ((v == null || v.isNull()) && alias != null) {
            v = j.get(alias);
            used = alias;
        }
        if (v == null || v.isNull())
            throw new UserError(where + ": missing field '" + key + "'" + (alias != null ? " (or '" + alias + "')" : "")
                    + "; a GPT-2 config.json needs vocab_size, n_positions, n_embd, n_layer and n_head");
        return intValue(v, where, used);
    }

    private static int intValue(JsonNode v, String where, String key) {
        if (!v.isIntegralNumber() || !v.canConvertToInt())
            throw new UserError(where + ": field '" + key + "' must be an integer, got " + v);
        return v.asInt();
    }



    private static String string(ObjectNode j, String where, String key, String dflt) {
        JsonNode v = j.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isTextual()) throw new UserError(where + ": field '" + key + "' must be a string, got " + v);
        return v.asText();
    }
}
