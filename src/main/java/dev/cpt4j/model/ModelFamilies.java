package dev.cpt4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.model.llama.LlamaFamily;

import java.util.ArrayList;
import java.util.List;

/** The families cpt4j runs, and config.json dispatch on {@code model_type}. Immutable. */
public final class ModelFamilies {
    private ModelFamilies() {}

    private static final List<ModelFamily> ALL = List.of(new Gpt2Family(), new LlamaFamily());

    public static List<ModelFamily> all() {
        return ALL;
    }

    /** Every supported model_type, for messages. */
    public static List<String> modelTypes() {
        List<String> t = new ArrayList<>();
        for (ModelFamily f : ALL) t.addAll(f.modelTypes());
        return t;
    }

    /** The family of {@code modelType}; unknown types are one line naming {@code where} and the supported types. */
    public static ModelFamily forModelType(String modelType, String where) {
        for (ModelFamily f : ALL) if (f.modelTypes().contains(modelType)) return f;
        throw new UserError(where + ": unsupported model_type \"" + modelType + "\"; cpt4j supports " + modelTypes());
    }

    /**
     * Parses a config.json of any supported family. A config without model_type is read as GPT-2 when it has
     * GPT-2's own keys (old GPT-2 saves omit it), else refused.
     */
    public static ModelConfig readConfig(ObjectNode j, String where) {
        JsonNode mt = j.get("model_type");
        if (mt == null || mt.isNull()) {
            if (Gpt2Family.looksLikeGpt2(j)) return ALL.get(0).readConfig(j, where);
            throw new UserError(where + ": no model_type; add \"model_type\" (one of " + modelTypes() + ") to config.json");
        }
        if (!mt.isTextual()) throw new UserError(where + ": model_type must be a string, got " + mt);
        return forModelType(mt.asText(), where).readConfig(j, where);
    }
}
