package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.generate.GenerationConfig;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.generate.LoadedModel;
import dev.cpt4j.generate.TextGeneration;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tokenizer.Tokenizer;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;

/** {@code cpt4j generate}: continues a prompt with transformers' {@code generate} semantics; prints clean text. */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Continue a prompt with a model (and optionally a LoRA adapter), as transformers' generate does.",
                "Prints clean text: no spaces between CJK characters, no [PAD] or end-of-text tokens."})
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    BackendOption backendOption;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model directory (config.json, weights, tokenizer).")
    Path model;

    @Option(names = "--adapter", paramLabel = "DIR", description = "PEFT LoRA adapter directory to apply.")
    Path adapter;

    @ArgGroup(exclusive = true, multiplicity = "1")
    PromptSource prompt;

    static final class PromptSource {
        @Option(names = "--prompt", paramLabel = "TEXT", description = "Prompt text (tokenized without special tokens).")
        String text;

        @Option(names = {"--prompt-file", "--prompt_file"}, paramLabel = "FILE", description = "UTF-8 file holding the prompt.")
        Path file;
    }

    @Option(names = {"--do-sample", "--do_sample"}, arity = "1", paramLabel = "true|false",
            description = "Sample (true) or greedy (false, default).")
    boolean doSample;

    @Option(names = "--temperature", defaultValue = "1.0", description = "Sampling temperature (default ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = {"--top-k", "--top_k"}, defaultValue = "50", description = "Top-k filter, 0 = off (default ${DEFAULT-VALUE}, as transformers).")
    int topK;

    @Option(names = {"--top-p", "--top_p"}, defaultValue = "1.0", description = "Nucleus filter (default ${DEFAULT-VALUE} = off).")
    float topP;

    @Option(names = {"--repetition-penalty", "--repetition_penalty"}, defaultValue = "1.0",
            description = "Repetition penalty (default ${DEFAULT-VALUE} = off).")
    float repetitionPenalty;

    @Option(names = {"--num-return-sequences", "--num_return_sequences"}, defaultValue = "1",
            description = "Sequences to sample, decoded together as one batch.")
    int numReturnSequences;

    @Option(names = {"--max-length", "--max_length"}, paramLabel = "N", description = "Total length, prompt included.")
    Integer maxLength;

    @Option(names = {"--max-new-tokens", "--max_new_tokens"}, paramLabel = "N",
            description = "New tokens (default 20 when neither length flag is given, as transformers).")
    Integer maxNewTokens;

    @Option(names = {"--min-new-tokens", "--min_new_tokens"}, defaultValue = "0", paramLabel = "N",
            description = "No end-of-text before this many new tokens.")
    int minNewTokens;

    @Option(names = {"--eos-token-id", "--eos_token_id"}, split = ",", paramLabel = "ID",
            description = "End-of-text id(s) (default: the tokenizer's <|endoftext|>, </s> or [SEP]).")
    int[] eosTokenIds;

    @Option(names = {"--pad-token-id", "--pad_token_id"}, paramLabel = "ID", description = "Pad id (default: the eos id).")
    Integer padTokenId;

    @Option(names = "--seed", defaultValue = "42", description = "Sampling seed (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = "--json", description = "One JSON object per sequence per line: text, completion, ids, finish_reason.")
    boolean json;

    @Override
    public Integer call() throws IOException {
        backendOption.apply();
        String text = promptText();
        if (text.isBlank()) throw new UserError("the prompt is empty; give a non-empty --prompt or --prompt-file");
        if (threads != null && threads < 1) throw new UserError("--threads must be at least 1, got " + threads);
        requireDir(model, "--model");
        if (adapter != null) requireDir(adapter, "--adapter");
        // flags are checked before anything is loaded
        GenerationConfig probe = config(eosTokenIds == null ? new int[0] : eosTokenIds);

        LoadedModel ck = LoadedModel.load(model, adapter);
        Tokenizer tok = ck.tokenizer();
        int[] ids = tok.encode(text, false); // as the seed: add_special_tokens=False
        GenerationConfig cfg = eosTokenIds != null ? probe : config(TextGeneration.defaultEos(tok));
        int newTokens = cfg.newTokens(ids.length, ck.config().contextLength());
        checkIds(cfg, ck.config().vocabSize());

        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        try (Parallel par = threads == null ? Parallel.allCores() : new Parallel(threads)) {
            StepModel dec = ck.decoder(cfg.numReturnSequences(), ids.length + newTokens, par);
            boolean stream = !json && cfg.numReturnSequences() == 1;
            List<TextGeneration.Sample> samples = TextGeneration.run(dec, tok::decode, ids, cfg,
                    stream ? piece -> {
                        out.print(piece);
                        out.flush();
                    } : null);
            if (stream) {
                out.println();
            } else {
                for (TextGeneration.Sample s : samples) {
                    if (json) out.println(s.toJsonLine());
                    else out.println("[" + (s.index() + 1) + "] " + s.text());
                }
            }
        }
        return 0;
    }

    private GenerationConfig config(int[] eos) {
        return new GenerationConfig(doSample, temperature, topK, topP, repetitionPenalty, numReturnSequences,
                maxLength == null ? GenerationConfig.UNSET : maxLength,
                maxNewTokens == null ? GenerationConfig.UNSET : maxNewTokens, minNewTokens, eos,
                padTokenId == null ? GenerationConfig.UNSET : padTokenId, seed);
    }

    private String promptText() throws IOException {
        if (prompt.text != null) return prompt.text;
        if (!Files.isRegularFile(prompt.file))
            throw new UserError("--prompt-file " + prompt.file + " does not exist or is not a file");
        String s = Files.readString(prompt.file, StandardCharsets.UTF_8);
        return s.endsWith("\r\n") ? s.substring(0, s.length() - 2) : s.endsWith("\n") ? s.substring(0, s.length() - 1) : s;
    }

    static void requireDir(Path dir, String flag) {
        if (!Files.isDirectory(dir)) throw new UserError(flag + " " + dir + " is not a directory; give the directory holding config.json");
    }

    /** Token-id flags must name rows of this model's vocabulary. */
    private static void checkIds(GenerationConfig cfg, int vocab) {
        for (int e : cfg.eosTokenIds())
            if (e >= vocab) throw new UserError("--eos-token-id " + e + " is outside the model's vocabulary of " + vocab + " ids");
        if (cfg.padTokenId() >= vocab)
            throw new UserError("--pad-token-id " + cfg.padTokenId() + " is outside the model's vocabulary of " + vocab + " ids");
    }
}
