package dev.cpt4j.hf;

import static dev.cpt4j.io.Json.bool;
import static dev.cpt4j.io.Json.number;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Json;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.io.TensorInfo;
import dev.cpt4j.io.TensorSource;
import dev.cpt4j.io.TorchZip;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * PEFT LoRA adapter directories (huggingface/peft {@code save_pretrained}): {@code adapter_config.json} and
 * {@code adapter_model.safetensors} (or {@code adapter_model.bin}), file level only — which model tensors the keys
 * address is the model's business.
 *
 * <p>Key names are peft's: {@code base_model.model.transformer.h.{i}.attn.c_attn.lora_A.weight} {@code [r, in]},
 * {@code …lora_B.weight} {@code [out, r]}, and for {@code modules_to_save} the full copies under their model name,
 * e.g. {@code base_model.model.transformer.wte.weight}, {@code base_model.model.lm_head.weight}. The adapter-name
 * variants peft uses inside a live model ({@code lora_A.default.weight}, {@code wte.modules_to_save.default.weight})
 * are read as the plain names (so is {@code X.modules_to_save.weight}, which peft writes beside an identical
 * {@code X.weight} when the vocabulary was resized); the frozen {@code original_module} copies are not adapter
 * tensors and are skipped.
 */
public final class PeftAdapters {
    private PeftAdapters() {}

    public static final String CONFIG = "adapter_config.json";
    public static final String SAFETENSORS = "adapter_model.safetensors";
    public static final String TORCH_BIN = "adapter_model.bin";
    /** The prefix peft puts before the wrapped model's own parameter names. */
    public static final String PREFIX = "base_model.model.";

    /**
     * peft's {@code LoraConfig} fields that cpt4j uses; every other field of a file read is kept in {@code extra}
     * and written back unchanged.
     *
     * @param targetModules module names (peft also allows one regex string: it is kept as a one-element list
     *                      and written back as a string when {@code targetModulesIsRegex})
     * @param modulesToSave module names trained in full, e.g. {@code ["wte", "lm_head"]}; empty for none
     * @param initLoraWeights {@code "true"}, {@code "false"} or a named scheme ({@code "gaussian"}, ...)
     */
    public record LoraConfig(
            String peftType,
            String taskType,
            int r,
            double loraAlpha,
            double loraDropout,
            List<String> targetModules,
            boolean targetModulesIsRegex,
            List<String> modulesToSave,
            boolean fanInFanOut,
            String bias,
            String baseModelNameOrPath,
            String initLoraWeights,
            boolean useRslora,
            boolean inferenceMode,
            ObjectNode extra) {

        public LoraConfig {
            if (!"LORA".equals(peftType))
                throw new UserError("adapter_config.json: peft_type '" + peftType + "' is not supported; cpt4j reads LoRA adapters (peft_type \"LORA\")");
            if (r <= 0) throw new UserError("adapter_config.json: r must be positive, got " + r);
            if (!(loraDropout >= 0 && loraDropout < 1))
                throw new UserError("adapter_config.json: lora_dropout must be in [0, 1), got " + loraDropout);
            if (targetModules == null || targetModules.isEmpty())
                throw new UserError("adapter_config.json: target_modules is empty; name the modules LoRA adapts (e.g. [\"c_attn\"])");
            if (!"none".equals(bias))
                throw new UserError("adapter_config.json: bias '" + bias + "' is not supported; cpt4j supports bias \"none\"");
            targetModules = List.copyOf(targetModules);
            modulesToSave = modulesToSave == null ? List.of() : List.copyOf(modulesToSave);
            extra = extra == null ? JsonNodeFactory.instance.objectNode() : extra.deepCopy();
        }

        /** A causal-LM LoRA config with peft's defaults for everything else (GPT-2 Conv1D: fan_in_fan_out true). */
        public static LoraConfig of(int r, double alpha, double dropout, List<String> targets, List<String> modulesToSave,
                                    boolean useRslora, String baseModel) {
            return new LoraConfig("LORA", "CAUSAL_LM", r, alpha, dropout, targets, false, modulesToSave, true, "none",
                    baseModel, "true", useRslora, true, peftDefaults());
        }

        /** peft's LoraConfig defaults for the fields cpt4j does not use, so peft reads our file as one of its own. */
        private static ObjectNode peftDefaults() {
            ObjectNode o = JsonNodeFactory.instance.objectNode();
            o.putObject("alpha_pattern");
            o.putNull("auto_mapping");
            o.putNull("exclude_modules");
            o.putNull("layer_replication");
            o.putNull("layers_pattern");
            o.putNull("layers_to_transform");
            o.putObject("loftq_config");
            o.put("lora_bias", false);
            o.putNull("megatron_config");
            o.put("megatron_core", "megatron.core");
            o.putObject("rank_pattern");
            o.putNull("revision");
            o.put("use_dora", false);
            return o;
        }

        /** The LoRA scale: {@code lora_alpha / r}, or {@code lora_alpha / sqrt(r)} with rsLoRA (peft's LoraLayer). */
        public double scaling() {
            return useRslora ? loraAlpha / Math.sqrt(r) : loraAlpha / r;
        }
    }

    /** One adapter tensor: row-major {@code shape} and its values. */
    public record Tensor(int[] shape, float[] data) {
        public Tensor {
            long n = 1;
            for (int d : shape) n *= d;
            if (n != data.length) throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n + " values, got " + data.length);
            shape = shape.clone();
        }

        @Override
        public int[] shape() {
            return shape.clone();
        }
    }

    /** An adapter directory's contents. */
    public record Adapter(LoraConfig config, Map<String, Tensor> tensors) {}

    // ------------------------------------------------------------ key names

    /** peft's key of a LoRA matrix: {@code loraKey("transformer.h.0.attn.c_attn", 'A')} → {@code base_model.model.transformer.h.0.attn.c_attn.lora_A.weight}. */
    public static String loraKey(String module, char aOrB) {
        if (aOrB != 'A' && aOrB != 'B') throw new IllegalArgumentException("A or B, not " + aOrB);
        return PREFIX + module + ".lora_" + aOrB + ".weight";
    }

    /** peft's key of a modules_to_save copy: {@code savedKey("transformer.wte.weight")} → {@code base_model.model.transformer.wte.weight}. */
    public static String savedKey(String parameter) {
        return PREFIX + parameter;
    }

    /**
     * The canonical key for a key found in a file: drops peft's adapter-name segments ({@code .default}), maps
     * {@code X.modules_to_save.default.weight} to {@code X.weight}; null for keys that are not adapter tensors
     * ({@code original_module} copies, base layers).
     */
    public static String canonicalKey(String key) {
        if (key.contains(".original_module.") || key.contains(".base_layer.")) return null;
        // peft 0.21's save_embedding_layers also writes the wrapper's trained copy as X.modules_to_save.weight
        String k = key.replaceAll("\\.modules_to_save\\.(default\\.)?", ".");
        k = k.replaceAll("\\.(lora_[AB]|lora_embedding_[AB])\\.default\\.", ".$1.");
        k = k.replaceAll("\\.(lora_embedding_[AB])\\.default$", ".$1");
        return k;
    }

    // ------------------------------------------------------------ reading

    /** Reads {@code dir}'s adapter_config.json and adapter tensors (safetensors preferred over .bin). */
    public static Adapter read(Path dir) {
        if (!Files.isDirectory(dir)) {
            String hub = dev.cpt4j.io.HubIds.hint(dir);
            throw new UserError(dir + ": adapter directory does not exist" + (hub.isEmpty() ? "; check --adapter" : hub));
        }
        LoraConfig cfg = readConfig(dir.resolve(CONFIG));
        Map<String, Tensor> tensors = readTensors(dir);
        checkRanks(dir, cfg, tensors);
        return new Adapter(cfg, tensors);
    }

    /**
     * Every LoRA matrix has the config's rank: {@code lora_A}/{@code lora_embedding_A} {@code [r, in]},
     * {@code lora_B}/{@code lora_embedding_B} {@code [out, r]} (peft builds the layers from {@code r} and refuses
     * such a checkpoint on loading). Whether {@code in} and {@code out} fit the base is the merge's check.
     */
    static void checkRanks(Path dir, LoraConfig cfg, Map<String, Tensor> tensors) {
        for (var e : tensors.entrySet()) {
            String key = e.getKey();
            boolean a = key.contains(".lora_A.") || key.contains(".lora_embedding_A");
            boolean b = key.contains(".lora_B.") || key.contains(".lora_embedding_B");
            if (!a && !b) continue;
            int[] s = e.getValue().shape();
            if (s.length != 2 || s[a ? 0 : 1] != cfg.r())
                throw new UserError(dir + ": adapter tensor " + key + " has shape " + Arrays.toString(s) + " but "
                        + CONFIG + " says r = " + cfg.r() + " (" + (a ? "lora_A is [r, in]" : "lora_B is [out, r]")
                        + "); the config and the weights are from different adapters: use the adapter_config.json "
                        + "written with these weights");
        }
    }

    /** Reads an adapter_config.json; any problem is one line naming the file and field. */
    public static LoraConfig readConfig(Path file) {
        ObjectNode j = Json.readObject(file);
        String where = file.toString();
        try {
            String peftType = text(j, where, "peft_type", null);
            if (peftType == null) throw new UserError(where + ": missing field 'peft_type'; this is not a peft adapter_config.json");
            String taskType = text(j, where, "task_type", "CAUSAL_LM");
            int r = j.has("r") ? integer(j, where, "r") : 8;
            double alpha = number(j, where, "lora_alpha", 8);
            double dropout = number(j, where, "lora_dropout", 0);
            JsonNode tm = j.get("target_modules");
            List<String> targets = new ArrayList<>();
            boolean regex = false;
            if (tm == null || tm.isNull()) throw new UserError(where + ": missing field 'target_modules'; name the modules LoRA adapts");
            if (tm.isTextual()) {
                targets.add(tm.asText());
                regex = true;
            } else targets = strings(tm, where, "target_modules");
            JsonNode ms = j.get("modules_to_save");
            List<String> save = ms == null || ms.isNull() ? List.of() : strings(ms, where, "modules_to_save");
            boolean fifo = bool(j, where, "fan_in_fan_out", false);
            String bias = text(j, where, "bias", "none");
            String base = text(j, where, "base_model_name_or_path", null);
            JsonNode init = j.get("init_lora_weights");
            String initW = init == null || init.isNull() ? "true" : init.asText();
            boolean rs = bool(j, where, "use_rslora", false);
            boolean inf = bool(j, where, "inference_mode", true);
            if (bool(j, where, "use_dora", false))
                throw new UserError(where + ": use_dora is true; cpt4j supports plain LoRA adapters");
            for (String pattern : List.of("rank_pattern", "alpha_pattern")) {
                JsonNode pv = j.get(pattern);
                if (pv != null && !pv.isNull() && !(pv.isObject() && pv.isEmpty()))
                    throw new UserError(where + ": " + pattern + " " + pv + " gives some modules their own rank or "
                            + "alpha; cpt4j supports one r and one lora_alpha for all modules");
            }
            ObjectNode extra = j.deepCopy();
            for (String k : KNOWN) extra.remove(k);
            return new LoraConfig(peftType, taskType, r, alpha, dropout, targets, regex, save, fifo, bias, base, initW, rs, inf, extra);
        } catch (UserError e) {
            String m = e.getMessage();
            throw m.startsWith("adapter_config.json: ") ? new UserError(where + ": " + m.substring("adapter_config.json: ".length())) : e;
        }
    }

    private static final List<String> KNOWN = List.of("peft_type", "task_type", "r", "lora_alpha", "lora_dropout",
            "target_modules", "modules_to_save", "fan_in_fan_out", "bias", "base_model_name_or_path", "init_lora_weights",
            "use_rslora", "inference_mode");

    /** Reads the adapter tensors of {@code dir} under their canonical peft keys, in file order. */
    public static Map<String, Tensor> readTensors(Path dir) {
        Path st = dir.resolve(SAFETENSORS), bin = dir.resolve(TORCH_BIN);
        Path file = Files.isRegularFile(st) ? st : Files.isRegularFile(bin) ? bin : null;
        if (file == null)
            throw new UserError(dir + ": no adapter weights (looked for " + SAFETENSORS + " and " + TORCH_BIN + "); is this a peft adapter directory?");
        try (TensorSource src = file == st ? Safetensors.open(st) : TorchZip.open(bin)) {
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (String name : src.names()) {
                String key = canonicalKey(name);
                if (key == null) continue;
                TensorInfo info = src.info(name);
                long[] s = info.shape();
                int[] shape = new int[s.length];
                for (int i = 0; i < s.length; i++) shape[i] = Math.toIntExact(s[i]);
                Tensor t = new Tensor(shape, src.readFloats(name));
                Tensor before = out.put(key, t);
                if (before != null && !(Arrays.equals(before.shape, t.shape) && Arrays.equals(before.data, t.data)))
                    throw new UserError(file + ": adapter tensor '" + key + "' is stored twice (as '" + name + "' and another variant); the file is inconsistent");
            }
            if (out.isEmpty()) throw new UserError(file + ": holds no adapter tensors");
            return out;
        }
    }

    // ------------------------------------------------------------ writing

    /** Writes adapter_config.json and adapter_model.safetensors (metadata {@code {"format":"pt"}}) into {@code dir}, atomically. */
    public static void write(Path dir, LoraConfig cfg, Map<String, Tensor> tensors, DType dtype) {
        writeConfig(dir.resolve(CONFIG), cfg);
        List<Safetensors.FloatTensor> list = new ArrayList<>();
        for (var e : tensors.entrySet()) list.add(Safetensors.FloatTensor.of(e.getKey(), e.getValue().shape(), e.getValue().data(), 0));
        Safetensors.write(dir.resolve(SAFETENSORS), list, Map.of("format", "pt"), dtype);
    }

    /** Writes {@code cfg} as peft writes adapter_config.json (peft's field names, sorted, with its other defaults). */
    public static void writeConfig(Path file, LoraConfig cfg) {
        Json.writeAtomic(file, toJson(cfg));
    }

    public static ObjectNode toJson(LoraConfig c) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.setAll(c.extra());
        o.put("peft_type", c.peftType());
        o.put("task_type", c.taskType());
        o.put("r", c.r());
        putNumber(o, "lora_alpha", c.loraAlpha());
        o.put("lora_dropout", c.loraDropout());
        if (c.targetModulesIsRegex()) o.put("target_modules", c.targetModules().get(0));
        else {
            ArrayNode a = o.putArray("target_modules");
            c.targetModules().forEach(a::add);
        }
        if (c.modulesToSave().isEmpty()) o.putNull("modules_to_save");
        else {
            ArrayNode a = o.putArray("modules_to_save");
            c.modulesToSave().forEach(a::add);
        }
        o.put("fan_in_fan_out", c.fanInFanOut());
        o.put("bias", c.bias());
        if (c.baseModelNameOrPath() == null) o.putNull("base_model_name_or_path");
        else o.put("base_model_name_or_path", c.baseModelNameOrPath());
        switch (c.initLoraWeights()) {
            case "true" -> o.put("init_lora_weights", true);
            case "false" -> o.put("init_lora_weights", false);
            default -> o.put("init_lora_weights", c.initLoraWeights());
        }
        o.put("use_rslora", c.useRslora());
        o.put("inference_mode", c.inferenceMode());
        ObjectNode s = JsonNodeFactory.instance.objectNode();
        o.properties().stream().map(Map.Entry::getKey).sorted().forEach(k -> s.set(k, o.get(k)));
        return s;
    }

    private static void putNumber(ObjectNode o, String k, double v) {
        if (v == Math.rint(v) && Math.abs(v) < 1e15) o.put(k, (long) v);  // peft writes lora_alpha 32, not 32.0
        else o.put(k, v);
    }

    // ------------------------------------------------------------ typed fields

    private static String text(ObjectNode j, String where, String key, String dflt) {
        JsonNode v = j.get(key);
        if (v == null || v.isNull()) return dflt;
        if (!v.isTextual()) throw new UserError(where + ": field '" + key + "' must be a string, got " + v);
        return v.asText();
    }

    private static int integer(ObjectNode j, String where, String key) {
        JsonNode v = j.get(key);
        if (v == null || !v.isIntegralNumber() || !v.canConvertToInt())
            throw new UserError(where + ": field '" + key + "' must be an integer, got " + v);
        return v.asInt();
    }



    private static List<String> strings(JsonNode v, String where, String key) {
        if (!v.isArray()) throw new UserError(where + ": field '" + key + "' must be a list of strings, got " + v);
        List<String> out = new ArrayList<>();
        for (JsonNode e : v) {
            if (!e.isTextual()) throw new UserError(where + ": field '" + key + "' must be a list of strings, got " + v);
            out.add(e.asText());
        }
        return out;
    }
}
