package dev.cpt4j.hf;

import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.model.Lora;
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
     * The adapter tensors under peft's keys: {@code lora_A}/{@code lora_B} of every adapted layer, then the
     * modules_to_save copies ({@code transformer.wte.weight}, {@code lm_head.weight} — the wte tensor when the model
     * is tied —, {@code transformer.wpe.weight}, {@code transformer.ln_f.weight/bias}).
     *
     * @param targets       canonical LoRA targets ({@code attn.c_attn}, …)
     * @param modulesToSave canonical module names ({@code transformer.wte}, {@code lm_head}, …)
     */
    public static Map<String, PeftAdapters.Tensor> tensors(Gpt2Config cfg, ParamLayout layout, float[] params,
                                                           List<String> targets, List<String> modulesToSave) {
        Map<String, PeftAdapters.Tensor> out = new LinkedHashMap<>();
        for (int l = 0; l < cfg.nLayer(); l++)
            for (String t : targets) {
                Lora.Site site = Lora.site(t);
                String module = Gpt2Layout.layer(l, t);
                out.put(PeftAdapters.loraKey(module, 'A'), copy(layout.get(Lora.viewName(l, site, 'A')), params));
                out.put(PeftAdapters.loraKey(module, 'B'), copy(layout.get(Lora.viewName(l, site, 'B')), params));
            }
        for (String m : modulesToSave)
            switch (m) {
                case "transformer.wte" -> out.put(PeftAdapters.savedKey(Gpt2Layout.WTE), copy(layout.get(Gpt2Layout.WTE), params));
                case "lm_head" -> out.put(PeftAdapters.savedKey(Gpt2Layout.LM_HEAD),
                        copy(layout.get(cfg.tieWordEmbeddings() ? Gpt2Layout.WTE : Gpt2Layout.LM_HEAD), params));
                case "transformer.wpe" -> out.put(PeftAdapters.savedKey(Gpt2Layout.WPE), copy(layout.get(Gpt2Layout.WPE), params));
                case "transformer.ln_f" -> {
                    out.put(PeftAdapters.savedKey(Gpt2Layout.LNF_W), copy(layout.get(Gpt2Layout.LNF_W), params));
                    out.put(PeftAdapters.savedKey(Gpt2Layout.LNF_B), copy(layout.get(Gpt2Layout.LNF_B), params));
                }
                default -> throw new IllegalArgumentException("unsupported module to save: " + m);
            }
        return out;
    }

    /** peft's target_modules entry for a canonical target: {@code c_attn}, {@code c_fc}, or the dotted projection. */
    public static String peftTargetName(String canonical) {
        return switch (canonical) {
            case "attn.c_attn" -> "c_attn";
            case "mlp.c_fc" -> "c_fc";
            default -> canonical;
        };
    }

    /** Writes adapter_config.json and adapter_model.safetensors (fp32) into {@code dir}. */
    public static void writeAdapter(Path dir, Gpt2Config cfg, ParamLayout layout, float[] params, int r, double alpha,
                                    double dropout, boolean useRslora, List<String> targets, List<String> modulesToSave,
                                    String baseModelNameOrPath) {
        List<String> names = new ArrayList<>();
        for (String t : targets) names.add(peftTargetName(t));
        PeftAdapters.LoraConfig config = PeftAdapters.LoraConfig.of(r, alpha, dropout, names, modulesToSave, useRslora,
                baseModelNameOrPath);
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
