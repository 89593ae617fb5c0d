package dev.cpt4j.generate;

import dev.cpt4j.UserError;
import dev.cpt4j.hf.AdapterMerge;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.hf.ModelSource;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tokenizer.Tokenizer;
import dev.cpt4j.tokenizer.TokenizerFiles;

import java.nio.file.Path;

/**
 * A model directory ready for inference: config, layout and flat parameters with the adapter (if any) merged in by
 * {@link AdapterMerge}, and the tokenizer. The tokenizer comes from the adapter directory when it holds one (an
 * adapter trained after adding tokens ships its tokenizer), else from the model directory.
 */
public record LoadedModel(ModelConfig config, ParamLayout layout, float[] params, Tokenizer tokenizer, Path tokenizerDir) {

    /**
     * Loads {@code modelDir} (+ {@code adapterDir}, may be null) and the tokenizer; either may be a training run's
     * output or {@code checkpoint-N} folder, and a LoRA adapter given as {@code modelDir} alone brings its base
     * ({@link ModelSource#resolve}). Any problem is a {@link UserError}.
     */
    public static LoadedModel load(Path modelDir, Path adapterDir) {
        return load(ModelSource.resolve(modelDir, adapterDir));
    }

    /** Loads a resolved model (+ adapter) and its tokenizer. */
    public static LoadedModel load(ModelSource source) {
        Path modelDir = source.model(), adapterDir = source.adapter();
        Path tokDir = tokenizerDir(source);
        Tokenizer tok = Tokenizer.load(tokDir);
        HfCheckpoints.ModelDir m = AdapterMerge.load(modelDir, adapterDir);
        if (tok.vocabSize() > m.config().vocabSize())
            throw new UserError("the tokenizer in " + tokDir + " has " + tok.vocabSize() + " ids but the model has only "
                    + m.config().vocabSize() + " embedding rows; use the tokenizer the model was trained with");
        return new LoadedModel(m.config(), m.layout(), m.params(), tok, tokDir);
    }

    /** The tokenizer {@link #load} would use (the adapter directory's, else the model directory's), without the weights. */
    public static Tokenizer tokenizerOf(Path modelDir, Path adapterDir) {
        return Tokenizer.load(tokenizerDir(ModelSource.resolve(modelDir, adapterDir)));
    }

    /** The tokenizer {@link #load} would use for a resolved source, without the weights. */
    public static Tokenizer tokenizerOf(ModelSource source) {
        return Tokenizer.load(tokenizerDir(source));
    }

    private static Path tokenizerDir(ModelSource source) {
        Path modelDir = source.model(), adapterDir = source.adapter();
        Path tokDir = adapterDir != null && hasTokenizer(adapterDir) ? adapterDir : modelDir;
        if (!hasTokenizer(tokDir))
            throw new UserError(modelDir + " has no tokenizer (tokenizer.json, vocab.txt, vocab.json + merges.txt or tokenizer.model); copy the base model's tokenizer files into it");
        return tokDir;
    }

    /** The family's KV-cache decoder over these weights. */
    public StepModel decoder(int maxSeqs, int maxLength, Parallel par) {
        return config.family().decoder(config, params, layout, maxSeqs, maxLength, par);
    }

    /** The weights alone, as the hf package describes them. */
    public HfCheckpoints.ModelDir modelDir() {
        return new HfCheckpoints.ModelDir(config, layout, params);
    }

    static boolean hasTokenizer(Path dir) {
        return TokenizerFiles.present(dir);
    }
}
