package dev.cpt4j.hf;

import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tokenizer.TokenizerFiles;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Writing what training produced in Hugging Face form: a LoRA run's adapter as peft's {@code save_pretrained}
 * writes it ({@code adapter_config.json} + {@code adapter_model.safetensors}, keys per {@link PeftAdapters}), and the
 * tokenizer files beside it so the output folder describes itself. Full fine-tuning is written with
 * {@link HfCheckpoints#save}.
 */
public final class PeftExport {
    private PeftExport() {}

    /**
     * The adapter tensors under peft's keys: {@code lora_A}/{@code lora_B} (an embedding's
     * {@code lora_embedding_A}/{@code _B}) of every module {@code targets} selects, in state-dict order, then the
     * modules_to_save copies (GPT-2: {@code transformer.wte.weight}, {@code lm_head.weight} — the embedding tensor
     * when the model is tied —, …; LLaMA: {@code model.embed_tokens.weight}, {@code lm_head.weight}, …). The LoRA
     * matrices are read from the layout views named as the keys without peft's prefix
     * ({@code model.layers.0.self_attn.q_proj.lora_A.weight}), as training lays them out.
     *
     * @param targets       LoRA targets as peft matches them: a module's path or a dotted suffix of it
     *                      ({@code attn.c_attn}, {@code c_attn}, {@code q_proj}, {@code self_attn.q_proj})
     * @param modulesToSave module names, matched the same way ({@code transformer.wte}, {@code embed_tokens}, {@code lm_head})
     */
    public static Map<String, PeftAdapters.Tensor> tensors(ModelConfig cfg, ParamLayout layout, float[] params,
                                                           List<String> targets, List<String> modulesToSave) {
        Map<String, PeftAdapters.Tensor> out = new LinkedHashMap<>();
        keyViews(cfg, layout, targets, modulesToSave).forEach((key, view) -> out.put(key, copy(view, params)));
        return out;
    }

    /**
     * The adapter keys of {@link #tensors} with the layout view each is read from (and, continuing an adapter, written
     * to), in the same order. A tied head's {@code modules_to_save} key names the embedding's view.
     */
    public static Map<String, ParamLayout.View> keyViews(ModelConfig cfg, ParamLayout layout, List<String> targets,
                                                         List<String> modulesToSave) {
        ModelFamily fam = cfg.family();
        Map<String, ParamLayout.View> out = new LinkedHashMap<>();
        for (ModelFamily.LoraTarget t : selected(fam.loraTargets(cfg), targets, fam)) {
            boolean emb = t.storage() == ModelFamily.LoraStorage.EMBEDDING;
            for (char ab : new char[] {'A', 'B'}) {
                String key = emb ? PeftAdapters.PREFIX + t.module() + ".lora_embedding_" + ab : PeftAdapters.loraKey(t.module(), ab);
                String view = key.substring(PeftAdapters.PREFIX.length());
                if (!layout.has(view))
                    throw new IllegalArgumentException("the layout has no LoRA view " + view + " for target " + t.peftName());
                out.put(key, layout.get(view));
            }
        }
        List<ModelFamily.SavedModule> savable = fam.savableModules(cfg);
        for (String m : modulesToSave) {
            ModelFamily.SavedModule sm = savable.stream().filter(x -> AdapterMerge.peftMatches(x.module(), m)).findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("unsupported module to save: " + m));
            for (int i = 0; i < sm.parameters().size(); i++)
                out.put(PeftAdapters.savedKey(sm.parameters().get(i)), layout.get(sm.views().get(i)));
        }
        for (ParamLayout.View v : layout.views())     // peft trainable tokens: the (n, C) rows of the ids, as trained
            if (v.name().endsWith(TOKEN_DELTA)) out.put(PeftAdapters.PREFIX + v.name(), v);
        return out;
    }

    /** The suffix of a trainable-tokens delta ({@code model.embed_tokens.token_adapter.trainable_tokens_delta}). */
    public static final String TOKEN_DELTA = ".token_adapter.trainable_tokens_delta";

    /** The targets {@code names} select (peft's rule), in state-dict order; a name that selects none is a bug upstream. */
    private static List<ModelFamily.LoraTarget> selected(List<ModelFamily.LoraTarget> all, List<String> names, ModelFamily fam) {
        for (String n : names)
            if (all.stream().noneMatch(t -> AdapterMerge.peftMatches(t.module(), n)))
                throw new IllegalArgumentException("no " + fam.displayName() + " module is a LoRA target named " + n);
        return all.stream().filter(t -> names.stream().anyMatch(n -> AdapterMerge.peftMatches(t.module(), n))).toList();
    }

    /**
     * Writes adapter_config.json and adapter_model.safetensors (fp32) into {@code dir}. target_modules lists the
     * family's peft name of each target ({@code attn.c_attn} → {@code c_attn}, {@code q_proj} → {@code q_proj}),
     * in the order given; {@code fan_in_fan_out} is true when the adapted weights are stored {@code [in, out]}
     * (GPT-2's Conv1D), false for {@code nn.Linear} (the LLaMA family).
     */
    public static void writeAdapter(Path dir, ModelConfig cfg, ParamLayout layout, float[] params, int r, double alpha,
                                    double dropout, boolean useRslora, List<String> targets, List<String> modulesToSave,
                                    String baseModelNameOrPath) {
        writeAdapter(dir, cfg, layout, params, r, alpha, dropout, useRslora, targets, modulesToSave, baseModelNameOrPath,
                Map.of());
    }

    /**
     * As above, with peft's {@code trainable_token_indices} (module name → token ids; empty for none): written as a
     * list when only the embedding has them (peft's form for a tied model), else as {module: ids}; their deltas are
     * the layout's {@link #TOKEN_DELTA} views.
     */
    public static void writeAdapter(Path dir, ModelConfig cfg, ParamLayout layout, float[] params, int r, double alpha,
                                    double dropout, boolean useRslora, List<String> targets, List<String> modulesToSave,
                                    String baseModelNameOrPath, Map<String, List<Integer>> trainableTokens) {
        writeAdapter(dir, cfg, layout, params, r, alpha, dropout, useRslora, targets, modulesToSave, baseModelNameOrPath,
                trainableTokens, false);
    }

    /**
     * As above; {@code ensureWeightTying} writes peft's {@code ensure_weight_tying: true} (the embedding and a tied
     * head stayed one tensor), which {@code merge} and peft read to keep the checkpoint tied.
     */
    public static void writeAdapter(Path dir, ModelConfig cfg, ParamLayout layout, float[] params, int r, double alpha,
                                    double dropout, boolean useRslora, List<String> targets, List<String> modulesToSave,
                                    String baseModelNameOrPath, Map<String, List<Integer>> trainableTokens,
                                    boolean ensureWeightTying) {
        List<ModelFamily.LoraTarget> all = cfg.family().loraTargets(cfg);
        List<String> names = new ArrayList<>();
        for (String t : targets) {
            String n = all.stream().filter(x -> AdapterMerge.peftMatches(x.module(), t)).map(ModelFamily.LoraTarget::peftName)
                    .findFirst().orElse(t);
            if (!names.contains(n)) names.add(n);
        }
        boolean inOut = selected(all, targets, cfg.family()).stream().anyMatch(t -> t.storage() == ModelFamily.LoraStorage.CONV1D);
        PeftAdapters.LoraConfig c = PeftAdapters.LoraConfig.of(r, alpha, dropout, names, modulesToSave, useRslora,
                baseModelNameOrPath);
        PeftAdapters.LoraConfig config = new PeftAdapters.LoraConfig(c.peftType(), c.taskType(), c.r(), c.loraAlpha(),
                c.loraDropout(), c.targetModules(), c.targetModulesIsRegex(), c.modulesToSave(), inOut, c.bias(),
                c.baseModelNameOrPath(), c.initLoraWeights(), c.useRslora(), c.inferenceMode(), tokensField(c.extra(), trainableTokens));
        if (ensureWeightTying) config.extra().put("ensure_weight_tying", true);
        createDirs(dir);
        PeftAdapters.write(dir, config, tensors(cfg, layout, params, targets, modulesToSave), DType.F32);
    }

    /**
     * Copies the tokenizer files of {@code tokenizer} (a folder, or one file) into {@code dir}, each atomically;
     * returns the names copied. A file already there with the same bytes is left alone.
     */
    public static List<String> copyTokenizerFiles(Path tokenizer, Path dir) {
        List<Path> sources = new ArrayList<>();
        if (Files.isDirectory(tokenizer)) {
            for (String f : TokenizerFiles.ALL) if (Files.isRegularFile(tokenizer.resolve(f))) sources.add(tokenizer.resolve(f));
        } else if (Files.isRegularFile(tokenizer)) sources.add(tokenizer);
        List<String> copied = new ArrayList<>();
        createDirs(dir);
        for (Path src : sources) {
            Path dst = dir.resolve(src.getFileName().toString());
            try {
                if (Files.exists(dst) && Arrays.equals(Files.readAllBytes(src), Files.readAllBytes(dst))) continue;
                dev.cpt4j.io.AtomicFiles.copy(src, dst);
                copied.add(src.getFileName().toString());
            } catch (IOException e) {
                throw new UserError("could not copy the tokenizer file " + src + " to " + dir + ": " + e.getMessage());
            }
        }
        return copied;
    }

    private static com.fasterxml.jackson.databind.node.ObjectNode tokensField(com.fasterxml.jackson.databind.node.ObjectNode extra,
                                                                          Map<String, List<Integer>> tokens) {
        if (tokens.isEmpty()) return extra;
        com.fasterxml.jackson.databind.node.ObjectNode e = extra.deepCopy();
        if (tokens.size() == 1) {
            var a = e.putArray("trainable_token_indices");
            tokens.values().iterator().next().forEach(a::add);
        } else {
            var o = e.putObject("trainable_token_indices");
            tokens.forEach((m, ids) -> {
                var a = o.putArray(m);
                ids.forEach(a::add);
            });
        }
        return e;
    }

    private static PeftAdapters.Tensor copy(ParamLayout.View v, float[] params) {
        return new PeftAdapters.Tensor(v.shape(), Arrays.copyOfRange(params, v.offset(), v.offset() + v.size()));
    }

    private static void createDirs(Path dir) {
        try {
            Files.createDirectories(dir);
        } catch (IOException e) {
            throw new UserError(dir + ": cannot create the output directory (" + e.getMessage() + ")");
        }
    }
}
