package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.hf.AdapterMerge;
import dev.cpt4j.hf.HfCheckpoints;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/** {@code cpt4j merge}: base model + LoRA adapter → one plain Hugging Face checkpoint directory. */
@Command(name = "merge", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fold a peft LoRA adapter into its base model and write a Hugging Face checkpoint.",
                "The checkpoint (model.safetensors, config.json, tokenizer files) loads in transformers without peft.",
                "The vocabulary is resized automatically when the adapter's embeddings have more rows."})
final class MergeCommand implements Callable<Integer> {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Base model directory. Required.")
    Path model;

    @Option(names = "--adapter", required = true, paramLabel = "DIR", description = "peft LoRA adapter directory (a train --output_dir or one of its checkpoints). Required.")
    Path adapter;

    @Option(names = "--output", required = true, paramLabel = "DIR", description = "New (or empty) output directory. Required.")
    Path output;

    @Override
    public Integer call() {
        GenerateCommand.requireDir(model, "--model");
        if (!Files.isDirectory(adapter))
            throw new UserError("--adapter " + adapter + " is not a directory; give the directory holding adapter_config.json");
        HfCheckpoints.ModelDir m = AdapterMerge.writeMerged(model, adapter, output);
        System.out.println("wrote " + output + " (vocab_size " + m.config().vocabSize() + ", "
                + (m.config().tieWordEmbeddings() ? "tied" : "untied") + " embeddings, " + m.params().length + " parameters)");
        return 0;
    }
}
