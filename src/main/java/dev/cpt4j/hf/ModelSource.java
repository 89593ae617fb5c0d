package dev.cpt4j.hf;

import dev.cpt4j.UserError;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * What a {@code --model} and an optional {@code --adapter} point at, resolved to a model directory and an adapter
 * directory (or none), so every inference command takes the folders a training run writes wherever it takes a model
 * or an adapter:
 * <ul>
 *   <li>a Hugging Face model directory ({@code config.json} + weights): a base model, the final output of a full
 *       fine-tune, or one of its {@code checkpoint-N} folders;</li>
 *   <li>a PEFT adapter directory ({@code adapter_config.json}): the final output of a LoRA run or one of its
 *       {@code checkpoint-N} folders. Given as {@code --adapter} it applies to {@code --model}; given as
 *       {@code --model} alone its base is the adapter's {@code base_model_name_or_path} when that is a local
 *       directory (as peft's {@code AutoPeftModelForCausalLM} reads it).</li>
 * </ul>
 * A training output folder holding only {@code checkpoint-N} folders (a run that has not finished) and a full model
 * given as an adapter are refused with one line naming what to pass instead.
 *
 * @param model   the model directory (holding {@code config.json})
 * @param adapter the adapter directory, or null
 */
public record ModelSource(Path model, Path adapter) {
    /** Folder names of training checkpoints ({@code train.Checkpoints} writes them). */
    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint-(\\d+)");

    /**
     * Resolves {@code model} (+ {@code adapter}, may be null) as the class comment describes; the flag names in the
     * messages are {@code --model} and {@code --adapter}.
     */
    public static ModelSource resolve(Path model, Path adapter) {
        return resolve(model, adapter, "--model", "--adapter");
    }

    /** As {@link #resolve(Path, Path)}, naming other flags in the messages (e.g. {@code --base-model}). */
    public static ModelSource resolve(Path model, Path adapter, String modelFlag, String adapterFlag) {
        if (model == null) throw new UserError("no model given; pass " + modelFlag + " DIR");
        if (!Files.isDirectory(model))
            throw new UserError(modelFlag + " " + model + (Files.exists(model) ? " is a file" : " does not exist")
                    + "; give the directory holding config.json and the weights (or an adapter or checkpoint folder)");
        if (adapter != null) checkAdapter(adapter, adapterFlag, modelFlag);
        if (Files.isRegularFile(model.resolve(HfCheckpoints.CONFIG))) return new ModelSource(model, adapter);
        if (Files.isRegularFile(model.resolve(PeftAdapters.CONFIG))) {
            if (adapter != null)
                throw new UserError(modelFlag + " " + model + " is a LoRA adapter (adapter_config.json), and "
                        + adapterFlag + " is given too; give the base model as " + modelFlag);
            String base = PeftAdapters.readConfig(model.resolve(PeftAdapters.CONFIG)).baseModelNameOrPath();
            Path baseDir = base == null || base.isBlank() ? null : Path.of(base);
            if (baseDir == null || !Files.isRegularFile(baseDir.resolve(HfCheckpoints.CONFIG)))
                throw new UserError(modelFlag + " " + model + " is a LoRA adapter whose base model "
                        + (baseDir == null ? "is not named in its adapter_config.json" : baseDir + " is not a model directory here")
                        + "; pass the base as " + modelFlag + " BASE and this folder as " + adapterFlag + " " + model);
            return new ModelSource(baseDir, model);
        }
        String checkpoints = checkpointsIn(model);
        if (checkpoints != null)
            throw new UserError(modelFlag + " " + model + " holds training checkpoints (" + checkpoints + ") but no final "
                    + "model or adapter yet; give one of the checkpoint folders");
        throw new UserError(modelFlag + " " + model + ": no config.json (a model) or adapter_config.json (a LoRA adapter); "
                + "give a Hugging Face model directory, an adapter, or a checkpoint-N folder of a training run");
    }

    private static void checkAdapter(Path adapter, String adapterFlag, String modelFlag) {
        if (!Files.isDirectory(adapter))
            throw new UserError(adapterFlag + " " + adapter + (Files.exists(adapter) ? " is a file" : " does not exist")
                    + "; give the directory holding adapter_config.json (a LoRA run's output or checkpoint folder)");
        if (Files.isRegularFile(adapter.resolve(PeftAdapters.CONFIG))) return;
        if (Files.isRegularFile(adapter.resolve(HfCheckpoints.CONFIG)))
            throw new UserError(adapterFlag + " " + adapter + " holds a full model (config.json), not a LoRA adapter; "
                    + "pass it as " + modelFlag + " " + adapter + " without " + adapterFlag);
        String checkpoints = checkpointsIn(adapter);
        if (checkpoints != null)
            throw new UserError(adapterFlag + " " + adapter + " holds training checkpoints (" + checkpoints + ") but no "
                    + "final adapter yet; give one of the checkpoint folders");
        throw new UserError(adapterFlag + " " + adapter + ": no adapter_config.json; give a PEFT LoRA adapter directory "
                + "(a LoRA run's output or one of its checkpoint-N folders)");
    }

    /** The checkpoint-N folder names under {@code dir}, newest last ("checkpoint-4, checkpoint-6"), or null. */
    private static String checkpointsIn(Path dir) {
        List<Path> found = new ArrayList<>();
        try (Stream<Path> s = Files.list(dir)) {
            s.filter(Files::isDirectory).filter(p -> CHECKPOINT.matcher(p.getFileName().toString()).matches()).forEach(found::add);
        } catch (IOException e) {
            return null;
        }
        if (found.isEmpty()) return null;
        found.sort(Comparator.comparingLong(ModelSource::step));
        List<String> names = found.stream().map(p -> p.getFileName().toString()).toList();
        return names.size() <= 4 ? String.join(", ", names)
                : names.getFirst() + ", …, " + String.join(", ", names.subList(names.size() - 2, names.size()));
    }

    private static long step(Path p) {
        Matcher m = CHECKPOINT.matcher(p.getFileName().toString());
        if (!m.matches()) return -1;
        try {
            return Long.parseLong(m.group(1));
        } catch (NumberFormatException e) {
            return Long.MAX_VALUE;
        }
    }

    /** A short name for reports: the adapter folder's name, else the model folder's. */
    public String shortName() {
        Path p = adapter != null ? adapter : model;
        Path name = p.toAbsolutePath().normalize().getFileName();
        return name == null ? p.toString() : name.toString();
    }

    /** {@code model} or {@code model + adapter}, as given. */
    public String describe() {
        return adapter == null ? model.toString() : model + " + " + adapter;
    }
}
