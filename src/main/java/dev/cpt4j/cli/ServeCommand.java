package dev.cpt4j.cli;

import dev.cpt4j.UserError;
import dev.cpt4j.serve.Serve;
import dev.cpt4j.serve.ServeOptions;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;

/** {@code cpt4j serve}: an OpenAI-compatible HTTP server (vLLM's flag names), a playground and a training dashboard. */
@Command(name = "serve", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Serve a model and its LoRA adapters over an OpenAI-compatible HTTP API, with a playground and a training dashboard at /.",
                "Endpoints: /v1/models, /v1/completions, /v1/chat/completions (when the tokenizer has a chat template).",
                "Requests in flight are decoded together (continuous batching). SIGTERM drains and stops."})
final class ServeCommand implements Callable<Integer> {
    @Mixin
    BackendOption backendOption;

    @Option(names = "--model", required = true, paramLabel = "DIR", description = "Model directory (config.json, weights, tokenizer). Required.")
    Path model;

    @Option(names = {"--served-model-name", "--served_model_name"}, paramLabel = "NAME",
            description = "The base model's id in the API (default: the directory's name).")
    String servedModelName;

    @Option(names = {"--lora-modules", "--lora_modules"}, arity = "1..*", paramLabel = "ADAPTER",
            description = "PEFT adapters to serve, each written NAME=DIR and served as model id NAME (default: none).")
    List<String> loraModules;

    @Option(names = "--host", defaultValue = "127.0.0.1", paramLabel = "ADDRESS", description = "Address to listen on; 0.0.0.0 for every interface (default: ${DEFAULT-VALUE}).")
    String host;

    @Option(names = "--port", defaultValue = "8000", paramLabel = "N", description = "Port; 0 is any free port (default: ${DEFAULT-VALUE}).")
    int port;

    @Option(names = {"--api-key", "--api_key"}, paramLabel = "KEY",
            description = "Require 'Authorization: Bearer KEY' on every API request (default: none).")
    String apiKey;

    @Option(names = {"--max-num-seqs", "--max_num_seqs"}, defaultValue = "16", paramLabel = "N",
            description = "Sequences decoded together (default: ${DEFAULT-VALUE}).")
    int maxNumSeqs;

    @Option(names = {"--max-model-len", "--max_model_len"}, defaultValue = "0", paramLabel = "N",
            description = "Positions per sequence, prompt + completion (default: the model's context, at most 2048).")
    int maxModelLen;

    @Option(names = "--max-body-bytes", defaultValue = "1048576", paramLabel = "N", description = "Largest request body in bytes (default: ${DEFAULT-VALUE}).")
    long maxBodyBytes;

    @Option(names = "--max-prompt-tokens", defaultValue = "0", paramLabel = "N", description = "Longest prompt (default: max-model-len − 1).")
    int maxPromptTokens;

    @Option(names = "--max-tokens-limit", defaultValue = "2048", paramLabel = "N", description = "Most max_tokens a request may ask (default: ${DEFAULT-VALUE}).")
    int maxTokens;

    @Option(names = "--max-n", defaultValue = "8", paramLabel = "N", description = "Most choices (n) per request (default: ${DEFAULT-VALUE}).")
    int maxN;

    @Option(names = "--max-concurrent-requests", defaultValue = "64", paramLabel = "N",
            description = "Requests in flight (decoding or queued) before 429 (default: ${DEFAULT-VALUE}).")
    int maxConcurrent;

    @Option(names = "--watch", paramLabel = "DIR", description = "Training output directory to show on the dashboard: its metrics.jsonl and newest checkpoint (default: none).")
    Path watch;

    @Option(names = "--threads", defaultValue = "0", paramLabel = "N", description = "Worker threads; 0 is all cores (default: ${DEFAULT-VALUE}).")
    int threads;

    @Override
    public Integer call() throws InterruptedException {
        backendOption.apply();
        Map<String, Path> lora = new LinkedHashMap<>();
        if (loraModules != null)
            for (String m : loraModules) {
                int eq = m.indexOf('=');
                if (eq <= 0 || eq == m.length() - 1)
                    throw new UserError("--lora-modules takes NAME=DIR, got '" + m + "'");
                String name = m.substring(0, eq);
                if (lora.put(name, Path.of(m.substring(eq + 1))) != null)
                    throw new UserError("--lora-modules names " + name + " twice");
            }
        ServeOptions o = new ServeOptions(model, servedModelName, lora, host, port, apiKey, maxNumSeqs, maxModelLen,
                maxBodyBytes, maxPromptTokens, maxTokens, maxN, maxConcurrent, watch, threads);
        Serve s = Serve.start(o);
        CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {   // SIGTERM / Ctrl-C: drain, then stop
            System.err.println("cpt4j serve: draining requests in flight, then stopping");
            s.drain(60);
            stopped.countDown();
        }));
        System.err.println("cpt4j serve: " + String.join(", ", s.modelIds()) + " on http://" + host + ":" + s.port()
                + "/ (OpenAI API at /v1" + (apiKey != null ? ", API key required" : "") + ")");
        stopped.await();
        return 0;
    }
}
