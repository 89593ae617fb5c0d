package dev.cpt4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import dev.cpt4j.UserError;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Finds and loads the tokenizer files in a directory or a file path: {@code tokenizer.json} first; else
 * {@code vocab.txt} (transformers' BertTokenizer), {@code vocab.json}+{@code merges.txt} (GPT2Tokenizer; OpenAI's
 * {@code encoder.json}+{@code vocab.bpe} too) or SentencePiece {@code tokenizer.model}, each with the
 * {@code tokenizer_config.json}, {@code special_tokens_map.json} and {@code added_tokens.json} beside it.
 */
final class TokenizerLoader {
    private TokenizerLoader() {}

    static Tokenizer load(Path path) {
        if (!Files.exists(path)) {
            String hub = dev.cpt4j.io.HubIds.hint(path);
            throw new UserError("tokenizer path " + path + " does not exist" + (hub.isEmpty() ? "; give a tokenizer "
                    + "directory or a tokenizer.json/vocab.txt/vocab.json/tokenizer.model file" : hub));
        }
        Path file = path;
        if (Files.isDirectory(path)) {
            file = null;
            for (String name : TokenizerFiles.MAIN) {
                if (Files.isRegularFile(path.resolve(name))) {
                    file = path.resolve(name);
                    break;
                }
            }
            if (file == null) throw new UserError("no tokenizer in directory " + path + "; expected tokenizer.json, vocab.txt (BERT), vocab.json + merges.txt (GPT-2) or tokenizer.model (SentencePiece)");
        }
        String name = file.getFileName().toString();
        Path dir = file.toAbsolutePath().getParent();
        if (name.equals("vocab.json") || name.equals("encoder.json")) return loadGpt2(file, dir);
        if (name.endsWith(".txt")) return loadBertVocab(file, dir);
        if (name.endsWith(".model")) return SentencePieceLoader.load(file, dir);
        if (name.endsWith(".json")) return TokenizerJson.read(file, fingerprint(file));
        throw new UserError("tokenizer file " + file + " has an unsupported name; supported: tokenizer.json, vocab.txt, vocab.json + merges.txt, tokenizer.model");
    }

    /** The transformers-side files beside a vocabulary: tokenizer_config.json, special_tokens_map.json, added_tokens.json. */
    record SideFiles(JsonNode config, JsonNode specialMap, JsonNode addedJson, Path[] paths) {
        static SideFiles read(Path dir) {
            Path c = dir.resolve("tokenizer_config.json"), s = dir.resolve("special_tokens_map.json"), a = dir.resolve("added_tokens.json");
            return new SideFiles(readJson(c), readJson(s), readJson(a), new Path[] {c, s, a});
        }

        static JsonNode readJson(Path f) {
            if (!Files.isRegularFile(f)) return null;
            try {
                return TokenizerJson.JSON.readTree(f.toFile());
            } catch (IOException e) {
                throw new UserError("tokenizer file " + f + " is not valid JSON (" + TokenizerJson.firstLine(e.getMessage()) + "); fix or remove it");
            }
        }

        /** A special token's content from the config or the special-tokens map (string or {"content": …}). */
        String token(String key, String dflt) {
            for (JsonNode n : new JsonNode[] {specialMap, config}) {
                if (n == null) continue;
                JsonNode v = n.get(key);
                if (v == null || v.isNull()) continue;
                return v.isObject() ? v.path("content").asText() : v.asText();
            }
            return dflt;
        }

        boolean flag(String key, boolean dflt) {
            JsonNode v = config == null ? null : config.get(key);
            return v == null || v.isNull() ? dflt : v.asBoolean();
        }

        Boolean optFlag(String key) {
            JsonNode v = config == null ? null : config.get(key);
            return v == null || v.isNull() ? null : v.asBoolean();
        }

        List<String> additionalSpecial() {
            List<String> r = new ArrayList<>();
            for (JsonNode n : new JsonNode[] {specialMap, config}) {
                if (n == null) continue;
                for (String key : new String[] {"additional_special_tokens", "extra_special_tokens"}) {
                    JsonNode v = n.get(key);
                    if (v != null && v.isArray()) for (JsonNode x : v) r.add(x.isObject() ? x.path("content").asText() : x.asText());
                }
            }
            return r;
        }

        /**
         * Added tokens as transformers registers them: {@code added_tokens_decoder} entries with their flags, then
         * {@code added_tokens.json} entries, then named special tokens present in the vocabulary. Special tokens are
         * never normalized; other added tokens are (transformers' {@code AddedToken(normalized=not special)}).
         */
        List<AddedToken> addedTokens(Map<String, Integer> vocab, Set<String> specials) {
            Map<String, AddedToken> r = new LinkedHashMap<>();
            JsonNode dec = config == null ? null : config.get("added_tokens_decoder");
            if (dec != null && dec.isObject()) {
                for (Map.Entry<String, JsonNode> e : dec.properties()) {
                    JsonNode t = e.getValue();
                    String content = t.path("content").asText();
                    boolean special = t.path("special").asBoolean(specials.contains(content));
                    r.put(content, new AddedToken(Integer.parseInt(e.getKey()), content, special, t.path("lstrip").asBoolean(false),
                            t.path("rstrip").asBoolean(false), t.path("single_word").asBoolean(false), t.path("normalized").asBoolean(!special)));
                }
            }
            if (addedJson != null && addedJson.isObject()) {
                for (Map.Entry<String, JsonNode> e : addedJson.properties()) {
                    if (r.containsKey(e.getKey())) continue;
                    boolean special = specials.contains(e.getKey());
                    r.put(e.getKey(), new AddedToken(e.getValue().asInt(), e.getKey(), special, false, false, false, !special));
                }
            }
            int next = nextId(vocab, r.values());
            for (String s : specials) {
                if (s == null || s.isEmpty()) continue;
                AddedToken old = r.get(s);
                if (old != null) {
                    if (!old.special()) r.put(s, new AddedToken(old.id(), s, true, old.lstrip(), old.rstrip(), old.singleWord(), false));
                    continue;
                }
                Integer id = vocab.get(s);
                r.put(s, new AddedToken(id != null ? id : next++, s, true, false, false, false, false));
            }
            return new ArrayList<>(r.values());
        }

        private static int nextId(Map<String, Integer> vocab, Iterable<AddedToken> added) {
            int max = -1;
            for (int v : vocab.values()) max = Math.max(max, v);
            for (AddedToken t : added) max = Math.max(max, t.id());
            return max + 1;
        }
    }

    /**
     * transformers' BertTokenizer from {@code vocab.txt}: BertNormalizer(clean_text, tokenize_chinese_chars,
     * strip_accents, do_lower_case=True by default), BertPreTokenizer, WordPiece, and the post-processor
     * {@code cls_token $A sep_token} ([CLS] … [SEP]). A tokenizer_config.json with {@code add_bos_token} /
     * {@code add_eos_token} (the LLaMA-style keys) replaces that template with bos … eos instead.
     */
    static Tokenizer loadBertVocab(Path file, Path dir) {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        try {
            String all = Files.readString(file, StandardCharsets.UTF_8);
            String[] lines = all.split("\n", -1);
            int n = all.endsWith("\n") ? lines.length - 1 : lines.length;
            for (int i = 0; i < n; i++) {
                String t = lines[i].endsWith("\r") ? lines[i].substring(0, lines[i].length() - 1) : lines[i];
                vocab.put(t, i);   // a repeated token keeps its last line, as transformers' load_vocab
            }
        } catch (IOException e) {
            throw new UserError("cannot read tokenizer vocabulary " + file + ": " + e.getMessage());
        }
        if (vocab.isEmpty()) throw new UserError("tokenizer vocabulary " + file + " is empty; give a BERT vocab.txt (one token per line)");
        SideFiles side = SideFiles.read(dir);
        boolean lower = side.flag("do_lower_case", true);
        Boolean sa = side.optFlag("strip_accents");
        Normalizer norm = new Normalizer.Bert(true, side.flag("tokenize_chinese_chars", true), sa == null ? lower : sa, lower);
        String unk = side.token("unk_token", "[UNK]"), cls = side.token("cls_token", "[CLS]"), sep = side.token("sep_token", "[SEP]");
        String pad = side.token("pad_token", "[PAD]"), mask = side.token("mask_token", "[MASK]");
        String bos = side.token("bos_token", null), eos = side.token("eos_token", null);
        Set<String> specials = new LinkedHashSet<>();
        for (String s : new String[] {pad, unk, cls, sep, mask, bos, eos}) if (s != null) specials.add(s);
        specials.addAll(side.additionalSpecial());
        if (!vocab.containsKey(unk)) throw new UserError("tokenizer vocabulary " + file + " lacks the unk_token '" + unk + "'; add it or set unk_token in tokenizer_config.json");
        WordPieceModel model = new WordPieceModel(vocab, unk, "##", 100);
        List<AddedToken> added = side.addedTokens(vocab, specials);
        Map<String, Integer> ids = new LinkedHashMap<>(vocab);
        for (AddedToken t : added) ids.put(t.content(), t.id());
        PostProcessor post;
        boolean addBos = side.flag("add_bos_token", false), addEos = side.flag("add_eos_token", false);
        if (addBos || addEos) {
            post = new PostProcessor.Template(addBos ? new int[] {idOrFail(ids, bos, "bos_token", file)} : new int[0],
                    addEos ? new int[] {idOrFail(ids, eos, "eos_token", file)} : new int[0]);
        } else {
            post = new PostProcessor.Template(new int[] {idOrFail(ids, cls, "cls_token", file)}, new int[] {idOrFail(ids, sep, "sep_token", file)});
        }
        List<Path> fp = new ArrayList<>(List.of(file));
        fp.addAll(List.of(side.paths()));
        return new HfTokenizer(norm, new PreTokenizer.Bert(), model, post, new Decoder.WordPiece("##", true), added,
                fingerprint(fp.toArray(Path[]::new)));
    }

    private static int idOrFail(Map<String, Integer> ids, String token, String key, Path file) {
        Integer id = token == null ? null : ids.get(token);
        if (id == null) throw new UserError("tokenizer " + file + ": " + key + " '" + token + "' is not in the vocabulary; set " + key + " in tokenizer_config.json to a token that is");
        return id;
    }

    /**
     * transformers' GPT2Tokenizer from {@code vocab.json} + {@code merges.txt}: byte-level pre-tokenizer (GPT-2 regex,
     * no prefix space), byte-level BPE without unknown token, byte-level decoder, no special tokens added by encode
     * (GPT-2 adds no bos/eos unless {@code add_bos_token}); {@code <|endoftext|>} and configured specials are added tokens.
     */
    static Tokenizer loadGpt2(Path file, Path dir) {
        Path merges = dir.resolve(file.getFileName().toString().equals("encoder.json") ? "vocab.bpe" : "merges.txt");
        if (!Files.isRegularFile(merges)) throw new UserError("tokenizer " + file + " needs " + merges.getFileName() + " beside it (the BPE merges); copy it there");
        JsonNode v = SideFiles.readJson(file);
        if (v == null || !v.isObject()) throw new UserError("tokenizer file " + file + " is not a JSON object of token → id; give GPT-2's vocab.json");
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : v.properties()) vocab.put(e.getKey(), e.getValue().asInt());
        List<String[]> mergeList = readMerges(merges);
        SideFiles side = SideFiles.read(dir);
        Set<String> specials = new LinkedHashSet<>();
        String eos = side.token("eos_token", "<|endoftext|>"), bos = side.token("bos_token", "<|endoftext|>");
        for (String s : new String[] {bos, eos, side.token("unk_token", "<|endoftext|>"), side.token("pad_token", null)}) if (s != null) specials.add(s);
        specials.addAll(side.additionalSpecial());
        specials.removeIf(s -> !vocab.containsKey(s) && !(side.addedJson() != null && side.addedJson().has(s)) && s.equals("<|endoftext|>"));
        BpeModel model;
        try {
            model = new BpeModel(vocab, mergeList, null, null, null, false, false, false);
        } catch (IllegalArgumentException e) {
            throw new UserError("tokenizer " + merges + " does not fit " + file + ": " + e.getMessage());
        }
        List<AddedToken> added = side.addedTokens(vocab, specials);
        Map<String, Integer> ids = new LinkedHashMap<>(vocab);
        for (AddedToken t : added) ids.put(t.content(), t.id());
        PostProcessor post = side.flag("add_bos_token", false) ? new PostProcessor.Template(new int[] {idOrFail(ids, bos, "bos_token", file)}, new int[0]) : null;
        List<Path> fp = new ArrayList<>(List.of(file, merges));
        fp.addAll(List.of(side.paths()));
        return new HfTokenizer(null, new PreTokenizer.ByteLevel(false, true), model, post, new Decoder.ByteLevel(), added,
                fingerprint(fp.toArray(Path[]::new)));
    }

    static List<String[]> readMerges(Path f) {
        List<String[]> r = new ArrayList<>();
        try {
            List<String> lines = Files.readAllLines(f, StandardCharsets.UTF_8);
            for (int i = 0; i < lines.size(); i++) {
                String l = lines.get(i);
                if (l.endsWith("\r")) l = l.substring(0, l.length() - 1);
                if ((i == 0 && l.startsWith("#version")) || l.isEmpty()) continue;
                String[] p = l.split(" ");
                if (p.length != 2) throw new UserError("tokenizer merges file " + f + " line " + (i + 1) + " is '" + l + "', not two tokens separated by one space");
                r.add(p);
            }
        } catch (IOException e) {
            throw new UserError("cannot read tokenizer merges file " + f + ": " + e.getMessage());
        }
        return r;
    }

    static String fingerprint(Path... files) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            md.update("cpt4j-tokenizer-1".getBytes());
            for (Path f : files) {
                if (f != null && Files.isRegularFile(f)) {
                    md.update(f.getFileName().toString().getBytes(StandardCharsets.UTF_8));
                    md.update(Files.readAllBytes(f));
                }
            }
            return HexFormat.of().formatHex(md.digest()).substring(0, 16);
        } catch (IOException e) {
            throw new UserError("cannot read tokenizer file: " + e.getMessage());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
