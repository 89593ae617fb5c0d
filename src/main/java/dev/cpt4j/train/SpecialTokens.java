package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.io.Json;
import dev.cpt4j.tokenizer.Tokenizer;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Refuses a tokenizer whose special tokens the model's config.json contradicts, before any data is prepared: when
 * {@code tokenizer_config.json} (or {@code special_tokens_map.json}) names the {@code bos}/{@code eos}/{@code pad}
 * token and the tokenizer knows it, its id must be the config's {@code bos_token_id}/{@code eos_token_id} (one of
 * them when a list)/{@code pad_token_id} — otherwise the model would learn to stop (or start) on another token than
 * it generates with. Roles one side leaves unset are not compared. When no side file names a bos token, the one the
 * tokenizer itself puts before every text (a {@code tokenizer.json} post-processor template, sentencepiece's
 * {@code <s>}) is compared with {@code bos_token_id} — unless that id lies outside the config's vocabulary (the
 * seed's Wenzhong config keeps GPT-2's 50256 beside a 21128-token BERT vocabulary; no such token can be meant).
 */
final class SpecialTokens {
    private SpecialTokens() {}

    static void check(ObjectNode config, Path modelDir, Path tokenizerPath, Tokenizer tokenizer) {
        if (config == null) return;
        boolean dir = Files.isDirectory(tokenizerPath);
        for (String role : new String[] {"bos", "eos", "pad"}) {
            JsonNode want = config.get(role + "_token_id");
            if (want == null || want.isNull()) continue;
            String token = dir ? named(tokenizerPath, role + "_token") : null;
            if (token == null) {
                if (role.equals("bos")) checkLeading(config, want, modelDir, tokenizerPath, tokenizer);
                continue;
            }
            int id = tokenizer.tokenToId(token);
            if (id < 0) continue;
            boolean agrees = want.isArray() ? contains(want, id) : want.canConvertToInt() && want.asInt() == id;
            if (!agrees)
                throw new UserError(modelDir.resolve("config.json") + " says " + role + "_token_id " + want + " but the "
                        + "tokenizer " + tokenizerPath + " has " + role + "_token '" + token + "' as id " + id + "; use the "
                        + "tokenizer that belongs to the model, or set " + role + "_token_id to " + id + " in config.json");
        }
    }

    /** bos_token_id against the id the tokenizer adds before every text (if it adds one). */
    private static void checkLeading(ObjectNode config, JsonNode want, Path modelDir, Path tokenizerPath, Tokenizer tokenizer) {
        if (!want.canConvertToInt()) return;
        int[] empty = tokenizer.encode("", true);
        if (empty.length == 0) return;
        int id = empty[0], vocab = config.path("vocab_size").asInt(Integer.MAX_VALUE);
        if (want.asInt() == id || want.asInt() < 0 || want.asInt() >= vocab) return;
        throw new UserError(modelDir.resolve("config.json") + " says bos_token_id " + want.asInt() + " but the tokenizer "
                + tokenizerPath + " starts every text with id " + id + "; use the tokenizer that belongs to the model, or "
                + "set bos_token_id to " + id + " in config.json");
    }

    private static boolean contains(JsonNode ids, int id) {
        for (JsonNode n : ids) if (n.canConvertToInt() && n.asInt() == id) return true;
        return false;
    }

    /** The content of {@code key} in tokenizer_config.json, else special_tokens_map.json ("</s>" or {"content": …}). */
    private static String named(Path dir, String key) {
        for (String f : new String[] {"tokenizer_config.json", "special_tokens_map.json"}) {
            Path p = dir.resolve(f);
            if (!Files.isRegularFile(p)) continue;
            JsonNode v = Json.readObject(p).get(key);
            if (v == null || v.isNull()) continue;
            if (v.isTextual()) return v.asText();
            if (v.isObject() && v.path("content").isTextual()) return v.get("content").asText();
        }
        return null;
    }
}
