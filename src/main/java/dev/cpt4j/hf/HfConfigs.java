package dev.cpt4j.hf;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Json;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamilies;
import java.nio.file.Path;

/**
 * transformers' {@code config.json} in and out, for every supported family: reading dispatches on
 * {@code model_type} ({@link ModelFamilies}); each family parses and writes its own fields. Written files are
 * sorted by key and replaced atomically.
 */
public final class HfConfigs {
    private HfConfigs() {}

    /** Reads {@code file} (a config.json); any problem is one line naming file and field. */
    public static ModelConfig read(Path file) {
        return fromJson(Json.readObject(file), file.toString());
    }

    /** Converts a parsed config.json; {@code where} names the file in messages. */
    public static ModelConfig fromJson(ObjectNode j, String where) {
        return ModelFamilies.readConfig(j, where);
    }

    /** Writes {@code cfg} as a transformers-loadable config.json, atomically. */
    public static void write(Path file, ModelConfig cfg) {
        Json.writeAtomic(file, toJson(cfg, null, null));
    }

    /**
     * Writes {@code cfg} keeping the other keys of {@code base} (token ids, task params; may be null), with
     * {@code dtype} (may be null) recorded as transformers does.
     */
    public static void write(Path file, ModelConfig cfg, ObjectNode base, DType dtype) {
        Json.writeAtomic(file, toJson(cfg, base, dtype));
    }

    /** The config.json object for {@code cfg}: {@code base}'s other keys (if any) plus every field of its family. */
    public static ObjectNode toJson(ModelConfig c, ObjectNode base, DType dtype) {
        return sorted(c.family().writeConfig(c, base, dtype));
    }

    private static ObjectNode sorted(ObjectNode o) {
        ObjectNode s = JsonNodeFactory.instance.objectNode();
        o.properties().stream().map(java.util.Map.Entry::getKey).sorted().forEach(k -> s.set(k, o.get(k)));
        return s;
    }
}
