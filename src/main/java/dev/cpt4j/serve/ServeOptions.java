package dev.cpt4j.serve;

import dev.cpt4j.UserError;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Settings of {@code cpt4j serve}, named after vLLM's flags where vLLM has one. Validated on construction; messages
 * name the flag to change.
 *
 * @param servedModelName  the base model's id in the API (null: the model directory's name)
 * @param loraModules      adapter id → PEFT adapter directory, each served as its own model id
 * @param apiKey           when set, every API request needs {@code Authorization: Bearer KEY}
 * @param maxNumSeqs       sequences decoded together (the decoder's slots; vLLM {@code --max-num-seqs})
 * @param maxModelLen      positions per sequence, prompt + completion (0: the model's context, at most 2048)
 * @param maxBodyBytes     largest request body
 * @param maxPromptTokens  longest prompt (0: maxModelLen − 1)
 * @param maxTokens        most new tokens one request may ask for
 * @param maxN             most choices ({@code n}) per request (at most maxNumSeqs)
 * @param maxConcurrent    requests in flight (decoding or queued) before the server answers 429
 * @param watch            training output directory whose {@code metrics.jsonl} the dashboard shows, or null
 * @param threads          worker threads of the decoder (0: all cores)
 */
public record ServeOptions(Path model, String servedModelName, Map<String, Path> loraModules, String host, int port,
                           String apiKey, int maxNumSeqs, int maxModelLen, long maxBodyBytes, int maxPromptTokens,
                           int maxTokens, int maxN, int maxConcurrent, Path watch, int threads) {
    public ServeOptions {
        loraModules = loraModules == null ? Map.of() : new LinkedHashMap<>(loraModules);
        if (model == null) throw new UserError("--model is required: the model directory to serve");
        if (host == null || host.isBlank()) throw new UserError("--host must name an address, e.g. 127.0.0.1");
        if (port < 0 || port > 65535) throw new UserError("--port must be in [0, 65535] (0: any free port), got " + port);
        if (apiKey != null && apiKey.isBlank()) throw new UserError("--api-key must not be empty");
        if (maxNumSeqs < 1) throw new UserError("--max-num-seqs must be at least 1, got " + maxNumSeqs);
        if (maxModelLen < 0) throw new UserError("--max-model-len must be positive (0: the model's context), got " + maxModelLen);
        if (maxBodyBytes < 1024) throw new UserError("--max-body-bytes must be at least 1024, got " + maxBodyBytes);
        if (maxPromptTokens < 0) throw new UserError("--max-prompt-tokens must be positive, got " + maxPromptTokens);
        if (maxTokens < 1) throw new UserError("--max-tokens-limit must be at least 1, got " + maxTokens);
        if (maxN < 1 || maxN > maxNumSeqs)
            throw new UserError("--max-n must be in [1, --max-num-seqs " + maxNumSeqs + "], got " + maxN);
        if (maxConcurrent < 1) throw new UserError("--max-concurrent-requests must be at least 1, got " + maxConcurrent);
        if (threads < 0) throw new UserError("--threads must be at least 1, got " + threads);
        for (String id : loraModules.keySet())
            if (id.isBlank() || id.contains("/") && id.startsWith("/"))
                throw new UserError("--lora-modules NAME=DIR: NAME '" + id + "' must be a non-empty id");
    }

    /** The defaults for {@code model}: 127.0.0.1:8000, no key, 16 slots. */
    public static ServeOptions defaults(Path model) {
        return new ServeOptions(model, null, Map.of(), "127.0.0.1", 8000, null, 16, 0, 1 << 20, 0, 2048, 8, 64, null, 0);
    }

    public ServeOptions withPort(int p) {
        return new ServeOptions(model, servedModelName, loraModules, host, p, apiKey, maxNumSeqs, maxModelLen,
                maxBodyBytes, maxPromptTokens, maxTokens, maxN, maxConcurrent, watch, threads);
    }
}
