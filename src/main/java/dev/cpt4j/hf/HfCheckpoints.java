package dev.cpt4j.hf;

import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.io.Json;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.io.ShardedCheckpoint;
import dev.cpt4j.io.TensorInfo;
import dev.cpt4j.io.TensorSource;
import dev.cpt4j.io.TorchZip;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.WeightStore;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Hugging Face checkpoint directories in and out of the flat parameter buffer, for every model family.
 *
 * <p>The name mapping is the family's ({@link ModelFamily#layout}, {@link ModelFamily#canonicalName}): layouts use
 * the causal-LM class's state-dict names and orientations, so no tensor is transposed; base-model saves (no
 * causal-LM prefix) are accepted and stored buffers that are not parameters are skipped. With tied embeddings a
 * stored head must equal the token embedding (then it is skipped). Everything else must match the layout exactly:
 * missing, unexpected and mis-shaped tensors are reported together in one error. fp32, bf16 and fp16 tensors are
 * widened to fp32 by the readers.
 */
public final class HfCheckpoints {
    private HfCheckpoints() {}

    public static final String SAFETENSORS = "model.safetensors";
    public static final String SAFETENSORS_INDEX = "model.safetensors.index.json";
    public static final String TORCH_BIN = "pytorch_model.bin";
    public static final String TORCH_BIN_INDEX = "pytorch_model.bin.index.json";
    public static final String CONFIG = "config.json";

    private static final int MAX_LISTED = 8;

    /** A loaded model directory: its config, the matching layout and the parameters. */
    public record ModelDir(ModelConfig config, ParamLayout layout, float[] params) {}

    /** Reads {@code dir/config.json} and the weights in {@code dir}. */
    public static ModelDir loadModelDir(Path dir) {
        ModelConfig cfg = readModelConfig(dir);
        ParamLayout layout = cfg.family().layout(cfg);
        float[] params = new float[layout.size()];
        load(dir, cfg, layout, params);
        return new ModelDir(cfg, layout, params);
    }

    /** Reads {@code dir/config.json} of a model directory (one clear error when the directory or the file is missing). */
    public static ModelConfig readModelConfig(Path dir) {
        checkDir(dir);
        Path cfgFile = dir.resolve(CONFIG);
        if (!Files.isRegularFile(cfgFile))
            throw new UserError(dir + ": no config.json; a Hugging Face model directory needs config.json beside its weights");
        return HfConfigs.read(cfgFile);
    }

    /** Opens the weights in {@code dir}: model.safetensors, then its shard index, then pytorch_model.bin (+ index). */
    public static TensorSource openWeights(Path dir) {
        checkDir(dir);
        if (Files.isRegularFile(dir.resolve(SAFETENSORS))) return Safetensors.open(dir.resolve(SAFETENSORS));
        if (Files.isRegularFile(dir.resolve(SAFETENSORS_INDEX))) return ShardedCheckpoint.openSafetensors(dir.resolve(SAFETENSORS_INDEX));
        if (Files.isRegularFile(dir.resolve(TORCH_BIN))) return TorchZip.open(dir.resolve(TORCH_BIN));
        if (Files.isRegularFile(dir.resolve(TORCH_BIN_INDEX))) return ShardedCheckpoint.open(dir.resolve(TORCH_BIN_INDEX), TorchZip::open);
        throw new UserError(dir + ": no model weights found (looked for " + SAFETENSORS + ", " + SAFETENSORS_INDEX + ", "
                + TORCH_BIN + ", " + TORCH_BIN_INDEX + "); point --model at a Hugging Face model directory");
    }

    private static void checkDir(Path dir) {
        if (!Files.exists(dir)) {
            String hub = dev.cpt4j.io.HubIds.hint(dir);
            throw new UserError(dir + ": model directory does not exist" + (hub.isEmpty() ? "; check the path" : hub));
        }
        if (!Files.isDirectory(dir)) throw new UserError(dir + ": is a file, expected a model directory (with config.json and weights)");
    }

    /** Loads the weights in {@code dir} into {@code params} (laid out by {@code layout} for {@code cfg}). */
    public static void load(Path dir, ModelConfig cfg, ParamLayout layout, float[] params) {
        try (TensorSource src = openWeights(dir)) {
            load(src, cfg, layout, params);
        }
    }

    /** Loads the tensors of {@code src} into {@code params}; see the class comment for the name mapping. */
    public static void load(TensorSource src, ModelConfig cfg, ParamLayout layout, float[] params) {
        if (params.length < layout.size())
            throw new IllegalArgumentException("params has " + params.length + " floats, layout needs " + layout.size());
        stream(src, cfg, layout, (v, data) -> System.arraycopy(data, 0, params, v.offset(), v.size()));
    }

    /**
     * Receives one checkpoint tensor at a time: the layout view it fills and its values, in the first
     * {@code view.size()} floats of a buffer that is reused for the next tensor (copy what you keep).
     */
    @FunctionalInterface
    public interface TensorSink {
        void put(ParamLayout.View view, float[] data);
    }

    /** The checkpoint's tensor names matched to the layout (layout name → file name), and a stored tied head (or null). */
    private record Matched(Map<String, String> fileNameOf, String tiedHead) {}

    private static Matched match(TensorSource src, ModelConfig cfg, ParamLayout layout) {
        ModelFamily family = cfg.family();
        Map<String, String> fileNameOf = new LinkedHashMap<>();  // layout name -> name in the file
        List<String> unexpected = new ArrayList<>(), misShaped = new ArrayList<>(), duplicate = new ArrayList<>();
        String tiedHead = null;
        for (String fileName : src.names()) {
            String name = family.canonicalName(fileName);
            if (name == null) continue;  // a stored buffer (causal mask, rotary inv_freq), not a parameter
            TensorInfo info = src.info(fileName);
            if (!layout.has(name)) {
                if (name.equals(family.outputHead()) && cfg.tieWordEmbeddings()) {
                    tiedHead = fileName;
                    continue;
                }
                unexpected.add(fileName + " " + info.shapeString());
                continue;
            }
            if (fileNameOf.containsKey(name)) {
                duplicate.add(fileName + " and " + fileNameOf.get(name));
                continue;
            }
            fileNameOf.put(name, fileName);
            ParamLayout.View v = layout.get(name);
            if (!info.shapeEquals(v.shape()))
                misShaped.add(fileName + " is " + info.shapeString() + ", expected " + v.shapeString());
            else if (!info.dtype().isFloating())
                misShaped.add(fileName + " has dtype " + info.dtype() + ", expected a floating-point tensor");
        }
        List<String> missing = new ArrayList<>();
        for (ParamLayout.View v : layout.views())
            if (!fileNameOf.containsKey(v.name())) missing.add(v.name() + " " + v.shapeString());
        if (!missing.isEmpty() || !unexpected.isEmpty() || !misShaped.isEmpty() || !duplicate.isEmpty()) {
            StringBuilder sb = new StringBuilder(src.path() + ": checkpoint does not match its " + family.displayName() + " config");
            appendList(sb, "missing", missing);
            appendList(sb, "unexpected", unexpected);
            appendList(sb, "wrong shape", misShaped);
            appendList(sb, "stored twice", duplicate);
            sb.append(" (config: ").append(family.describe(cfg)).append("); use the config.json that belongs to these weights");
            throw new UserError(sb.toString());
        }
        return new Matched(fileNameOf, tiedHead);
    }

    /**
     * Validates {@code src} against the layout exactly as {@link #load} does, then reads the tensors one at a time
     * into one reused buffer and hands each to {@code sink}, so a caller that stores the model differently (bf16,
     * resized, untied) never holds a second full copy of the weights.
     */
    public static void stream(TensorSource src, ModelConfig cfg, ParamLayout layout, TensorSink sink) {
        ModelFamily family = cfg.family();
        Matched mt = match(src, cfg, layout);
        Map<String, String> fileNameOf = mt.fileNameOf();
        String tiedHead = mt.tiedHead();
        float[] wte = null;
        int largest = 0;
        for (String name : fileNameOf.keySet()) largest = Math.max(largest, layout.get(name).size());
        float[] buf = new float[largest];   // one buffer for every tensor: no garbage the size of the model
        for (var e : fileNameOf.entrySet()) {
            ParamLayout.View v = layout.get(e.getKey());
            src.readFloats(e.getValue(), buf, 0);
            if (tiedHead != null && v.name().equals(family.tokenEmbedding())) wte = Arrays.copyOf(buf, v.size());
            sink.put(v, buf);
        }
        if (tiedHead != null) checkTiedHead(src, tiedHead, family.tokenEmbedding(), layout, wte);
    }

    /**
     * Reads {@code dir}'s config and weights tensor by tensor into their own arrays (no 2³¹-element limit on the
     * model, only per tensor), validated exactly as {@link #load}; the tensors {@code keepBf16} accepts are stored as
     * bf16 (copied as stored from a bf16 file), the others in fp32. For inference on models too large for one flat
     * buffer.
     */
    public static Stored loadStore(Path dir, java.util.function.Predicate<String> keepBf16) {
        ModelConfig cfg = readModelConfig(dir);
        ParamLayout layout = cfg.family().layout(cfg);
        WeightStore store = new WeightStore();
        try (TensorSource src = openWeights(dir)) {
            Matched mt = match(src, cfg, layout);
            for (ParamLayout.View v : layout.views()) {
                String file = mt.fileNameOf().get(v.name());
                int n = v.size();
                if (keepBf16.test(v.name())) {
                    short[] h = new short[n];
                    src.readBf16(file, h, 0);
                    store.put(new WeightStore.Tensor(v.name(), v.shape(), null, h, 0));
                } else {
                    float[] f = new float[n];
                    src.readFloats(file, f, 0);
                    store.put(new WeightStore.Tensor(v.name(), v.shape(), f, null, 0));
                }
            }
        }
        return new Stored(cfg, store);
    }

    /** A model read by {@link #loadStore}: its config and its tensors. */
    public record Stored(ModelConfig config, WeightStore weights) {}

    /** A stored lm_head in a tied model is only acceptable as a copy of wte (torch.save of a tied state dict). */
    private static void checkTiedHead(TensorSource src, String headName, String embedName, ParamLayout layout, float[] wteData) {
        ParamLayout.View wte = layout.get(embedName);
        TensorInfo info = src.info(headName);
        boolean same = info.shapeEquals(wte.shape()) && info.dtype().isFloating();
        if (same) {
            float[] head = src.readFloats(headName);
            for (int i = 0; i < head.length && same; i++)
                same = Float.floatToIntBits(head[i]) == Float.floatToIntBits(wteData[i]);
        }
        if (!same)
            throw new UserError(src.fileOf(headName) + ": " + headName + " differs from " + embedName + " but config.json"
                    + " ties them (tie_word_embeddings true); set \"tie_word_embeddings\": false in config.json to load an untied head");
    }

    private static void appendList(StringBuilder sb, String what, List<String> items) {
        if (items.isEmpty()) return;
        sb.append("; ").append(what).append(" (").append(items.size()).append("): ");
        sb.append(String.join(", ", items.subList(0, Math.min(MAX_LISTED, items.size()))));
        if (items.size() > MAX_LISTED) sb.append(", ... and ").append(items.size() - MAX_LISTED).append(" more");
    }

    /**
     * Writes {@code dir/model.safetensors} (every tensor of {@code layout}, so no {@code lm_head.weight} when tied, as
     * transformers saves; metadata {@code {"format":"pt"}}) and {@code dir/config.json}, each atomically.
     */
    public static void save(Path dir, ModelConfig cfg, ParamLayout layout, float[] params, DType dtype) {
        save(dir, cfg, layout, params, dtype, null);
    }

    /** As {@link #save(Path, ModelConfig, ParamLayout, float[], DType)}, keeping the other keys of {@code baseConfig}. */
    public static void save(Path dir, ModelConfig cfg, ParamLayout layout, float[] params, DType dtype, ObjectNode baseConfig) {
        List<Safetensors.FloatTensor> tensors = new ArrayList<>();
        for (ParamLayout.View v : layout.views())
            tensors.add(Safetensors.FloatTensor.of(v.name(), v.shape(), params, v.offset()));
        try {
            Files.createDirectories(dir);
        } catch (java.io.IOException e) {
            throw new UserError(dir + ": cannot create the output directory (" + e.getMessage() + ")");
        }
        Safetensors.write(dir.resolve(SAFETENSORS), tensors, Map.of("format", "pt"), dtype);
        HfConfigs.write(dir.resolve(CONFIG), cfg, baseConfig, dtype);
    }

    /** The parsed config.json of {@code dir}, for passing its other keys to {@link #save}. */
    public static ObjectNode readConfigJson(Path dir) {
        return Json.readObject(dir.resolve(CONFIG));
    }
}
