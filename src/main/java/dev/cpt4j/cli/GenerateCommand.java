package dev.cpt4j.cli;

import dev.cpt4j.Cpt4j;
import dev.cpt4j.UserError;
import dev.cpt4j.generate.GenerateOptions;
import dev.cpt4j.generate.GenerationConfig;
import dev.cpt4j.generate.TextGeneration;
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
        description = {"Continue a prompt with a model, optionally with a LoRA adapter, as transformers' generate does.",
                "Prints clean text: no spaces between CJK characters, no [PAD] or end-of-text tokens."})
final class GenerateCommand implements Callable<Integer> {
    @Mixin
    BackendOption backendOption;

    @Option(names = "--model", required = true, paramLabel = "DIR",
            description = "Model directory (config.json, weights, tokenizer), a full fine-tune's output or checkpoint-N "
                    + "folder, or a LoRA adapter folder whose base model is a local directory. Required.")
    Path model;

    @Option(names = "--adapter", paramLabel = "DIR",
            description = "LoRA adapter to apply: a LoRA run's output or one of its checkpoint-N folders (default: none).")
    Path adapter;

    @ArgGroup(exclusive = true, multiplicity = "1")
    PromptSource prompt;

    static final class PromptSource {
        @Option(names = "--prompt", paramLabel = "TEXT",
                description = "Prompt text, tokenized without special tokens. This or --prompt-file is required.")
        String text;

        @Option(names = {"--prompt-file", "--prompt_file"}, paramLabel = "FILE",
                description = "UTF-8 file holding the prompt (one final line break is dropped). This or --prompt is required.")
        Path file;
    }

    @Option(names = {"--do-sample", "--do_sample"}, arity = "1", paramLabel = "BOOL",
            description = "Sample (true) or decode greedily (false) (default: false, as transformers).")
    boolean doSample;

    @Option(names = "--temperature", defaultValue = "1.0", paramLabel = "X",
            description = "Sampling temperature (default: ${DEFAULT-VALUE}).")
    float temperature;

    @Option(names = {"--top-k", "--top_k"}, defaultValue = "50", paramLabel = "N",
            description = "Keep the N most likely tokens, 0 = off (default: ${DEFAULT-VALUE}, as transformers).")
    int topK;

    @Option(names = {"--top-p", "--top_p"}, defaultValue = "1.0", paramLabel = "X",
            description = "Nucleus filter: keep the most likely tokens up to this probability mass (default: ${DEFAULT-VALUE} = off).")
    float topP;

    @Option(names = {"--repetition-penalty", "--repetition_penalty"}, defaultValue = "1.0", paramLabel = "X",
            description = "Repetition penalty (default: ${DEFAULT-VALUE} = off).")
    float repetitionPenalty;

    @Option(names = {"--num-return-sequences", "--num_return_sequences"}, defaultValue = "1", paramLabel = "N",
            description = "Sequences to sample, decoded together as one batch (default: ${DEFAULT-VALUE}).")
    int numReturnSequences;

    @Option(names = {"--max-length", "--max_length"}, paramLabel = "N",
            description = "Total length, prompt included (default: unset; see --max-new-tokens).")
    Integer maxLength;

    @Option(names = {"--max-new-tokens", "--max_new_tokens"}, paramLabel = "N",
            description = "New tokens (default: " + GenerationConfig.DEFAULT_NEW_TOKENS
                    + " when neither length option is given, as transformers).")
    Integer maxNewTokens;

    @Option(names = {"--min-new-tokens", "--min_new_tokens"}, defaultValue = "0", paramLabel = "N",
            description = "No end-of-text before this many new tokens (default: ${DEFAULT-VALUE}).")
    int minNewTokens;

    @Option(names = {"--eos-token-id", "--eos_token_id"}, split = ",", paramLabel = "ID",
            description = "End-of-text token id(s), comma-separated (default: the tokenizer's <|endoftext|>, </s> or [SEP]).")
    int[] eosTokenIds;

    @Option(names = {"--pad-token-id", "--pad_token_id"}, paramLabel = "ID",
            description = "Token id that fills finished sequences (default: the first end-of-text id).")
    Integer padTokenId;

    @Option(names = "--seed", defaultValue = "" + GenerateOptions.DEFAULT_SEED, paramLabel = "N",
            description = "Sampling seed (default: ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--threads", paramLabel = "N", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = "--json", description = "Print one JSON object per sequence per line: index, text, completion, ids, "
            + "finish_reason (default: plain text, streamed for one sequence).")
    boolean json;

    @Override
    public Integer call() throws IOException {
        backendOption.apply();
        GenerateOptions.Builder b = GenerateOptions.builder().model(model).adapter(adapter).prompt(promptText())
                .doSample(doSample).temperature(temperature).topK(topK).topP(topP).repetitionPenalty(repetitionPenalty)
                .numReturnSequences(numReturnSequences).minNewTokens(minNewTokens).seed(seed);
        if (maxLength != null) b.maxLength(maxLength);
        if (maxNewTokens != null) b.maxNewTokens(maxNewTokens);
        if (eosTokenIds != null) b.eosTokenIds(eosTokenIds);
        if (padTokenId != null) b.padTokenId(padTokenId);
        if (threads != null) b.threads(threads);
        GenerateOptions o = b.build(); // every setting is checked before anything is loaded

        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        boolean stream = !json && numReturnSequences == 1;
        List<TextGeneration.Sample> samples = Cpt4j.generate(o, stream ? piece -> {
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
        return 0;
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
}
