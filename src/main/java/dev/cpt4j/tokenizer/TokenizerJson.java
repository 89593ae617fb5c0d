package dev.cpt4j.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.UserError;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Reads Hugging Face {@code tokenizer.json} (the tokenizers library's serialization) into an {@link HfTokenizer}.
 * Supports the components BERT, GPT-2, Qwen, LLaMA/Mistral files use; anything else is a {@link UserError} naming
 * the field and the supported values.
 */
final class TokenizerJson {
    static final ObjectMapper JSON = new ObjectMapper();
    private final Path file;

    private TokenizerJson(Path file) { this.file = file; }

    static HfTokenizer read(Path file, String fingerprint) {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (IOException e) {
            String why = e instanceof com.fasterxml.jackson.core.JsonProcessingException j && j.getLocation() != null
                    ? j.getOriginalMessage().replaceAll(" \\(start marker at .*", "") + " at line " + j.getLocation().getLineNr() + ", column " + j.getLocation().getColumnNr()
                    : e.getMessage();
            throw new UserError("tokenizer file " + file + " is not valid JSON (" + firstLine(why)
                    + "); give a Hugging Face tokenizer.json, vocab.txt, vocab.json+merges.txt or tokenizer.model");
        }
        if (root == null || !root.isObject()) throw new UserError("tokenizer file " + file + " is not a JSON object; give a Hugging Face tokenizer.json");
        return new TokenizerJson(file).build(root, fingerprint);
    }

    static String firstLine(String s) {
        if (s == null) return "";
        int i = s.indexOf('\n');
        return i < 0 ? s : s.substring(0, i);
    }

    private UserError bad(String field, String problem, String supported) {
        return new UserError("tokenizer file " + file + ": field '" + field + "' " + problem
                + (supported == null ? "" : "; supported: " + supported));
    }

    private JsonNode req(JsonNode n, String key, String path) {
        JsonNode v = n.get(key);
        if (v == null || v.isNull()) throw bad(path + "." + key, "is missing", null);
        return v;
    }

    private static String text(JsonNode n, String key, String dflt) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? dflt : v.asText();
    }

    private static boolean bool(JsonNode n, String key, boolean dflt) {
        JsonNode v = n.get(key);
        return v == null || v.isNull() ? dflt : v.asBoolean();
    }

    private HfTokenizer build(JsonNode root, String fingerprint) {
        Normalizer normalizer = normalizer(root.get("normalizer"), "normalizer");
        PreTokenizer pre = preTokenizer(root.get("pre_tokenizer"), "pre_tokenizer");
        Model model = model(req(root, "model", "tokenizer"), "model");
        List<AddedToken> added = addedTokens(root.get("added_tokens"), model);
        PostProcessor post = postProcessor(root.get("post_processor"), "post_processor", model, added);
        Decoder decoder = decoder(root.get("decoder"), "decoder");
        return new HfTokenizer(normalizer, pre, model, post, decoder, added, fingerprint);
    }

    private String type(JsonNode n, String path) {
        JsonNode t = n.get("type");
        if (t == null || !t.isTextual()) throw bad(path + ".type", "is missing", null);
        return t.asText();
    }

    Normalizer normalizer(JsonNode n, String path) {
        if (n == null || n.isNull()) return null;
        String type = type(n, path);
        return switch (type) {
            case "BertNormalizer" -> {
                boolean lower = bool(n, "lowercase", true);
                JsonNode sa = n.get("strip_accents");
                boolean strip = sa == null || sa.isNull() ? lower : sa.asBoolean();
                yield new Normalizer.Bert(bool(n, "clean_text", true), bool(n, "handle_chinese_chars", true), strip, lower);
            }
            case "NFC" -> new Normalizer.UnicodeForm(java.text.Normalizer.Form.NFC);
            case "NFD" -> new Normalizer.UnicodeForm(java.text.Normalizer.Form.NFD);
            case "NFKC" -> new Normalizer.UnicodeForm(java.text.Normalizer.Form.NFKC);
            case "NFKD" -> new Normalizer.UnicodeForm(java.text.Normalizer.Form.NFKD);
            case "Lowercase" -> new Normalizer.Lowercase();
            case "StripAccents" -> new Normalizer.StripAccents();
            case "Strip" -> new Normalizer.Strip(bool(n, "strip_left", true), bool(n, "strip_right", true));
            case "Prepend" -> new Normalizer.Prepend(req(n, "prepend", path).asText());
            case "Replace" -> {
                JsonNode p = req(n, "pattern", path);
                String content = req(n, "content", path).asText();
                if (p.has("String")) yield new Normalizer.Replace(p.get("String").asText(), null, content);
                if (p.has("Regex")) yield new Normalizer.Replace(null, regex(p.get("Regex").asText(), path + ".pattern.Regex"), content);
                throw bad(path + ".pattern", "has neither String nor Regex", "{\"String\": …}, {\"Regex\": …}");
            }
            case "Sequence" -> {
                List<Normalizer> list = new ArrayList<>();
                JsonNode arr = req(n, "normalizers", path);
                for (int i = 0; i < arr.size(); i++) {
                    Normalizer x = normalizer(arr.get(i), path + ".normalizers[" + i + "]");
                    if (x != null) list.add(x);
                }
                yield new Normalizer.Sequence(list);
            }
            default -> throw bad(path + ".type", "is '" + type + "'",
                    "BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Strip, Prepend, Replace, Sequence");
        };
    }

    /** Oniguruma patterns as HF uses them, compiled with Unicode classes (\s, \w, \d are Unicode in Oniguruma). */
    Pattern regex(String re, String path) {
        try {
            return Pattern.compile(re, Pattern.UNICODE_CHARACTER_CLASS);
        } catch (PatternSyntaxException e) {
            throw bad(path, "is a regex Java cannot compile (" + e.getDescription() + ")", "Oniguruma patterns that are also Java regexes");
        }
    }

    PreTokenizer.Behavior behavior(JsonNode n, String path) {
        String b = text(n, "behavior", "Isolated");
        return switch (b) {
            case "Removed" -> PreTokenizer.Behavior.REMOVED;
            case "Isolated" -> PreTokenizer.Behavior.ISOLATED;
            case "MergedWithPrevious" -> PreTokenizer.Behavior.MERGED_WITH_PREVIOUS;
            case "MergedWithNext" -> PreTokenizer.Behavior.MERGED_WITH_NEXT;
            case "Contiguous" -> PreTokenizer.Behavior.CONTIGUOUS;
            default -> throw bad(path + ".behavior", "is '" + b + "'", "Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous");
        };
    }

    PreTokenizer preTokenizer(JsonNode n, String path) {
        if (n == null || n.isNull()) return null;
        String type = type(n, path);
        return switch (type) {
            case "BertPreTokenizer" -> new PreTokenizer.Bert();
            case "ByteLevel" -> new PreTokenizer.ByteLevel(bool(n, "add_prefix_space", true), bool(n, "use_regex", true));
            case "Whitespace" -> new PreTokenizer.Whitespace();
            case "WhitespaceSplit" -> new PreTokenizer.WhitespaceSplit();
            case "Punctuation" -> new PreTokenizer.Punctuation(behavior(n, path));
            case "Digits" -> new PreTokenizer.Digits(bool(n, "individual_digits", false));
            case "Metaspace" -> {
                String rep = text(n, "replacement", "\u2581");
                String scheme = n.has("prepend_scheme") ? text(n, "prepend_scheme", "always")
                        : (bool(n, "add_prefix_space", true) ? "always" : "never");
                if (!scheme.equals("always") && !scheme.equals("first") && !scheme.equals("never")) {
                    throw bad(path + ".prepend_scheme", "is '" + scheme + "'", "always, first, never");
                }
                yield new PreTokenizer.Metaspace(rep.charAt(0), scheme, bool(n, "split", true));
            }
            case "Split" -> {
                JsonNode p = req(n, "pattern", path);
                Pattern pat;
                boolean literal = p.has("String");
                String src = literal ? p.get("String").asText() : p.path("Regex").asText();
                if (literal) pat = Pattern.compile(Pattern.quote(src));
                else if (p.has("Regex")) pat = regex(src, path + ".pattern.Regex");
                else throw bad(path + ".pattern", "has neither String nor Regex", "{\"String\": …}, {\"Regex\": …}");
                yield new PreTokenizer.Split(src, literal, pat, behavior(n, path), bool(n, "invert", false));
            }
            case "Sequence" -> {
                List<PreTokenizer> list = new ArrayList<>();
                JsonNode arr = req(n, "pretokenizers", path);
                for (int i = 0; i < arr.size(); i++) {
                    PreTokenizer x = preTokenizer(arr.get(i), path + ".pretokenizers[" + i + "]");
                    if (x != null) list.add(x);
                }
                yield new PreTokenizer.Sequence(list);
            }
            default -> throw bad(path + ".type", "is '" + type + "'",
                    "BertPreTokenizer, ByteLevel, Metaspace, Split, Whitespace, WhitespaceSplit, Punctuation, Digits, Sequence");
        };
    }

    Model model(JsonNode n, String path) {
        String type = n.has("type") ? n.get("type").asText() : (n.has("merges") ? "BPE" : "WordPiece");
        if (!type.equals("WordPiece") && !type.equals("BPE")) throw bad(path + ".type", "is '" + type + "'", "WordPiece, BPE");
        Map<String, Integer> vocab = new LinkedHashMap<>();
        JsonNode v = req(n, "vocab", path);
        if (!v.isObject()) throw bad(path + ".vocab", "is not an object of token → id", null);
        for (Map.Entry<String, JsonNode> e : v.properties()) vocab.put(e.getKey(), e.getValue().asInt());
        try {
            return switch (type) {
                case "WordPiece" -> new WordPieceModel(vocab, text(n, "unk_token", "[UNK]"),
                        text(n, "continuing_subword_prefix", "##"), n.has("max_input_chars_per_word") ? n.get("max_input_chars_per_word").asInt() : 100);
                case "BPE" -> {
                    JsonNode dropout = n.get("dropout");
                    if (dropout != null && !dropout.isNull() && dropout.asDouble() != 0.0) {
                        throw bad(path + ".dropout", "is " + dropout.asText(), "null (BPE dropout is for training, not for preparing data)");
                    }
                    List<String[]> merges = new ArrayList<>();
                    JsonNode m = req(n, "merges", path);
                    for (int i = 0; i < m.size(); i++) {
                        JsonNode x = m.get(i);
                        if (x.isArray() && x.size() == 2) merges.add(new String[] {x.get(0).asText(), x.get(1).asText()});
                        else if (x.isTextual()) {
                            String s = x.asText();
                            int sp = s.indexOf(' ', 1);
                            if (sp < 0) throw bad(path + ".merges[" + i + "]", "is '" + s + "', not two tokens", "\"a b\" or [\"a\", \"b\"]");
                            merges.add(new String[] {s.substring(0, sp), s.substring(sp + 1)});
                        } else throw bad(path + ".merges[" + i + "]", "is not a merge", "\"a b\" or [\"a\", \"b\"]");
                    }
                    yield new BpeModel(vocab, merges, text(n, "unk_token", null), text(n, "continuing_subword_prefix", null),
                            text(n, "end_of_word_suffix", null), bool(n, "fuse_unk", false), bool(n, "byte_fallback", false),
                            bool(n, "ignore_merges", false));
                }
                default -> throw bad(path + ".type", "is '" + type + "'", "WordPiece, BPE");
            };
        } catch (IllegalArgumentException e) {
            throw bad(path, "is inconsistent: " + e.getMessage(), null);
        }
    }

    /**
     * Added tokens with the ids tokenizers gives them on load ({@code AddedVocabulary::add_tokens}): a token in the
     * model vocabulary keeps that id; any other gets the next id after the model vocabulary and the added tokens so
     * far — the file's "id" is only checked by HF (with a warning), so a file with gaps loads with other ids.
     */
    List<AddedToken> addedTokens(JsonNode n, Model model) {
        List<AddedToken> r = new ArrayList<>();
        if (n == null || n.isNull()) return r;
        Map<String, Integer> ids = new LinkedHashMap<>();
        int modelSize = model.vocab().size();
        int maxAdded = -1;
        for (int i = 0; i < n.size(); i++) {
            JsonNode t = n.get(i);
            String p = "added_tokens[" + i + "]";
            req(t, "id", p);
            String content = req(t, "content", p).asText();
            if (content.isEmpty()) continue;
            Integer id = ids.get(content);
            if (id == null) id = model.vocab().get(content);
            if (id == null) id = maxAdded < 0 ? modelSize : (maxAdded >= modelSize || modelSize == 0 ? maxAdded + 1 : modelSize);
            ids.put(content, id);
            maxAdded = Math.max(maxAdded, id);
            r.removeIf(x -> x.content().equals(content));
            r.add(new AddedToken(id, content, bool(t, "special", false),
                    bool(t, "lstrip", false), bool(t, "rstrip", false), bool(t, "single_word", false), bool(t, "normalized", true)));
        }
        return r;
    }

    private int idOf(String token, Model model, List<AddedToken> added, String path) {
        for (AddedToken t : added) if (t.content().equals(token)) return t.id();
        Integer id = model.vocab().get(token);
        if (id == null) throw bad(path, "names token '" + token + "', which is not in the vocabulary", null);
        return id;
    }

    PostProcessor postProcessor(JsonNode n, String path, Model model, List<AddedToken> added) {
        if (n == null || n.isNull()) return null;
        String type = type(n, path);
        return switch (type) {
            case "ByteLevel" -> null;   // only trims offsets; ids unchanged
            case "BertProcessing", "RobertaProcessing" -> {
                JsonNode cls = req(n, "cls", path), sep = req(n, "sep", path);
                yield new PostProcessor.Template(new int[] {cls.get(1).asInt()}, new int[] {sep.get(1).asInt()});
            }
            case "TemplateProcessing" -> {
                JsonNode single = req(n, "single", path);
                JsonNode specials = n.get("special_tokens");
                IntList before = new IntList(), after = new IntList();
                boolean seenSeq = false;
                for (int i = 0; i < single.size(); i++) {
                    JsonNode item = single.get(i);
                    if (item.has("Sequence")) {
                        seenSeq = true;
                    } else if (item.has("SpecialToken")) {
                        String name = item.get("SpecialToken").get("id").asText();
                        JsonNode st = specials == null ? null : specials.get(name);
                        if (st != null && st.has("ids")) {
                            for (JsonNode id : st.get("ids")) (seenSeq ? after : before).add(id.asInt());
                        } else {
                            (seenSeq ? after : before).add(idOf(name, model, added, path + ".special_tokens." + name));
                        }
                    } else {
                        throw bad(path + ".single[" + i + "]", "is neither Sequence nor SpecialToken", "Sequence, SpecialToken");
                    }
                }
                yield new PostProcessor.Template(before.toArray(), after.toArray());
            }
            case "Sequence" -> {
                List<PostProcessor> list = new ArrayList<>();
                JsonNode arr = req(n, "processors", path);
                for (int i = 0; i < arr.size(); i++) {
                    PostProcessor x = postProcessor(arr.get(i), path + ".processors[" + i + "]", model, added);
                    if (x != null) list.add(x);
                }
                yield new PostProcessor.Sequence(list);
            }
            default -> throw bad(path + ".type", "is '" + type + "'", "TemplateProcessing, BertProcessing, RobertaProcessing, ByteLevel, Sequence");
        };
    }

    Decoder decoder(JsonNode n, String path) {
        if (n == null || n.isNull()) return null;
        String type = type(n, path);
        return switch (type) {
            case "ByteLevel" -> new Decoder.ByteLevel();
            case "WordPiece" -> new Decoder.WordPiece(text(n, "prefix", "##"), bool(n, "cleanup", true));
            case "Metaspace" -> {
                String scheme = n.has("prepend_scheme") ? text(n, "prepend_scheme", "always")
                        : (bool(n, "add_prefix_space", true) ? "always" : "never");
                yield new Decoder.Metaspace(text(n, "replacement", "\u2581").charAt(0), !scheme.equals("never"));
            }
            case "Replace" -> {
                JsonNode p = req(n, "pattern", path);
                if (!p.has("String")) throw bad(path + ".pattern", "is not a String pattern", "{\"String\": …}");
                yield new Decoder.Replace(p.get("String").asText(), req(n, "content", path).asText());
            }
            case "ByteFallback" -> new Decoder.ByteFallback();
            case "Fuse" -> new Decoder.Fuse();
            case "Strip" -> new Decoder.Strip(req(n, "content", path).asText(), n.path("start").asInt(0), n.path("stop").asInt(0));
            case "BPEDecoder" -> new Decoder.BpeSuffix(text(n, "suffix", "</w>"));
            case "Sequence" -> {
                List<Decoder> list = new ArrayList<>();
                JsonNode arr = req(n, "decoders", path);
                for (int i = 0; i < arr.size(); i++) {
                    Decoder x = decoder(arr.get(i), path + ".decoders[" + i + "]");
                    if (x != null) list.add(x);
                }
                yield new Decoder.Sequence(list);
            }
            default -> throw bad(path + ".type", "is '" + type + "'", "ByteLevel, WordPiece, Metaspace, Replace, ByteFallback, Fuse, Strip, BPEDecoder, Sequence");
        };
    }
}
