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
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.tensor.ParamLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * Hugging Face GPT-2 checkpoint directories in and out of the flat parameter buffer.
 *
 * <p>The name mapping, in one place: {@link Gpt2Layout} already uses {@code GPT2LMHeadModel}'s state-dict names
 * and orientations (Conv1D {@code [in, out]}), so no tensor is transposed. A {@code GPT2Model} save lacks the
 * {@code transformer.} prefix and is accepted too. The causal-mask buffers older transformers saved
 * ({@code h.N.attn.bias}, {@code h.N.attn.masked_bias}) are not parameters and are skipped. With tied embeddings
 * a stored {@code lm_head.weight} must equal {@code wte} (then it is skipped). Everything else must match the
 * layout exactly: missing, unexpected and mis-shaped tensors are reported together in one error.
 */
public final class HfCheckpoints {
    private HfCheckpoints() {}

    public static final String SAFETENSORS = "model.safetensors";
    public static final String SAFETENSORS_INDEX = "model.safetensors.index.json";
    public static final String TORCH_BIN = "pytorch_model.bin";
    public static final String TORCH_BIN_INDEX = "pytorch_model.bin.index.json";
    public static final String CONFIG = "config.json";

    private static final Pattern MASK_BUFFER = Pattern.compile("transformer\\.h\\.\\d+\\.attn\\.(bias|masked_bias)");
    private static final int MAX_LISTED = 8;

    /** A loaded model directory: its config, the matching layout and the parameters. */
    public record ModelDir(Gpt2Config config, ParamLayout layout, float[] params) {}

    /** Reads {@code dir/config.json} and the weights in {@code dir}. */
    public static ModelDir loadModelDir(Path dir) {
        Gpt2Config cfg = readModelConfig(dir);
        ParamLayout layout = Gpt2Layout.of(cfg);
        float[] params = new float[layout.size()];
        load(dir, cfg, layout, params);
        return new ModelDir(cfg, layout, params);
    }

    /** Reads {@code dir/config.json} of a model directory (one clear error when the directory or the file is missing). */
    public static Gpt2Config readModelConfig(Path dir) {
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
        if (!Files.exists(dir)) throw new UserError(dir + ": model directory does not exist; check the path");
        if (!Files.isDirectory(dir)) throw new UserError(dir + ": is a file, expected a model directory (with config.json and weights)");
    }

    /** Loads the weights in {@code dir} into {@code params} (laid out by {@code layout} for {@code cfg}). */
    public static void load(Path dir, Gpt2Config cfg, ParamLayout layout, float[] params) {
        try (TensorSource src = openWeights(dir)) {
            load(src, cfg, layout, params);
        }
    }

    /** Loads the tensors of {@code src} into {@code params}; see the class comment for the name mapping. */
    public static void load(TensorSource src, Gpt2Config cfg, ParamLayout layout, float[] params) {
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

    /**
     * Validates {@code src} against the layout exactly as {@link #load} does, then reads the tensors one at a time
     * into one reused buffer and hands each to {@code sink}, so a caller that stores the model differently (bf16,
     * resized, untied) never holds a second full copy of the weights.
     */
    public static void stream(TensorSource src, Gpt2Config cfg, ParamLayout layout, TensorSink sink) {
        Map<String, String> fileNameOf = new LinkedHashMap<>();  // layout name -> name in the file
        List<String> unexpected = new ArrayList<>(), misShaped = new ArrayList<>(), duplicate = new ArrayList<>();
        String tiedHead = null;
        for (String fileName : src.names()) {
            String name = canonical(fileName);
            if (MASK_BUFFER.matcher(name).matches()) continue;  // causal-mask buffers, not parameters
            TensorInfo info = src.info(fileName);
            if (!layout.has(name)) {
                if (name.equals(Gpt2Layout.LM_HEAD) && cfg.tieWordEmbeddings()) {
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
            StringBuilder sb = new StringBuilder(src.path() + ": checkpoint does not match its GPT-2 config");
            appendList(sb, "missing", missing);
            appendList(sb, "unexpected", unexpected);
            appendList(sb, "wrong shape", misShaped);
            appendList(sb, "stored twice", duplicate);
            sb.append(" (config: vocab_size ").append(cfg.vocabSize()).append(", n_positions ").append(cfg.nPositions())
                    .append(", n_embd ").append(cfg.nEmbd()).append(", n_layer ").append(cfg.nLayer()).append(", n_inner ")
                    .append(cfg.nInner()).append(", tie_word_embeddings ").append(cfg.tieWordEmbeddings())
                    .append("); use the config.json that belongs to these weights");
            throw new UserError(sb.toString());
        }
        float[] wte = null;
        int largest = 0;
        for (String name : fileNameOf.keySet()) largest = Math.max(largest, layout.get(name).size());
        float[] buf = new float[largest];   // one buffer for every tensor: no garbage the size of the model
        for (var e : fileNameOf.entrySet()) {
            ParamLayout.View v = layout.get(e.getKey());
            src.readFloats(e.getValue(), buf, 0);
            if (tiedHead != null && v.name().equals(Gpt2Layout.WTE)) wte = Arrays.copyOf(buf, v.size());
            sink.put(v, buf);
        }
        if (tiedHead != null) checkTiedHead(src, tiedHead, layout, wte);
    }

    /** A stored lm_head in a tied model is only acceptable as a copy of wte (torch.save of a tied state dict). */
    private static void checkTiedHead(TensorSource src, String headName, ParamLayout layout, float[] wteData) {
        ParamLayout.View wte = layout.get(Gpt2Layout.WTE);
        TensorInfo info = src.info(headName);
        boolean same = info.shapeEquals(wte.shape()) && info.dtype().isFloating();
        if (same) {
            float[] head = src.readFloats(headName);
            for (int i = 0; i < head.length && same; i++)
                same = Float.floatToIntBits(head[i]) == Float.floatToIntBits(wteData[i]);
        }
        if (!same)
            throw new UserError(src.fileOf(headName) + ": " + headName + " differs from transformer.wte.weight but config.json"
                    + " ties them (tie_word_embeddings true); set \"tie_word_embeddings\": false in config.json to load an untied head");
    }

    /** The layout name of a checkpoint tensor: GPT2Model saves lack the {@code transformer.} prefix. */
    static String canonical(String fileName) {
        if (fileName.startsWith("transformer.") || fileName.startsWith("lm_head.")) return fileName;
        return "transformer." + fileName;
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
    public static void save(Path dir, Gpt2Config cfg, ParamLayout layout, float[] params, DType dtype) {
        save(dir, cfg, layout, params, dtype, null);
    }

    /** As {@link #save(Path, Gpt2Config, ParamLayout, float[], DType)}, keeping the other keys of {@code baseConfig}. */
    public static void save(Path dir, Gpt2Config cfg, ParamLayout layout, float[] params, DType dtype, ObjectNode baseConfig) {
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
