package dev.cpt4j.tokenizer;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Map;

/** Writes an {@link HfTokenizer} as a Hugging Face {@code tokenizer.json} that the tokenizers library loads. */
final class TokenizerJsonWriter {
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    private TokenizerJsonWriter() {}

    /** Writes {@code tokenizer.json} into {@code dir} atomically (temp file + rename). */
    static Path write(HfTokenizer t, Path dir) {
        try {
            Files.createDirectories(dir);
            Path dst = dir.resolve("tokenizer.json");
            dev.cpt4j.io.AtomicFiles.writeString(dst, toJson(t));
            return dst;
        } catch (IOException e) {
            throw new UserError("cannot write tokenizer to " + dir + ": " + e.getMessage() + "; check the directory is writable");
        }
    }

    static String toJson(HfTokenizer t) {
        ObjectNode root = F.objectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (AddedToken a : t.added.tokens.stream().sorted(Comparator.comparingInt(AddedToken::id)).toList()) {
            ObjectNode o = added.addObject();
            o.put("id", a.id());
            o.put("content", a.content());
            o.put("single_word", a.singleWord());
            o.put("lstrip", a.lstrip());
            o.put("rstrip", a.rstrip());
            o.put("normalized", a.normalized());
            o.put("special", a.special());
        }
        root.set("normalizer", normalizer(t.normalizer));
        root.set("pre_tokenizer", preTokenizer(t.preTokenizer));
        root.set("post_processor", postProcessor(t.postProcessor, t));
        root.set("decoder", decoder(t.decoder));
        root.set("model", model(t.model));
        try {
            return TokenizerJson.JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root);
        } catch (IOException e) {
            throw new IllegalStateException(e);
        }
    }

    private static ObjectNode typed(String type) {
        ObjectNode o = F.objectNode();
        o.put("type", type);
        return o;
    }

    static ObjectNode normalizer(Normalizer n) {
        if (n == null) return null;
        return switch (n) {
            case Normalizer.Bert b -> {
                ObjectNode o = typed("BertNormalizer");
                o.put("clean_text", b.cleanText());
                o.put("handle_chinese_chars", b.handleChineseChars());
                o.put("strip_accents", b.stripAccents());
                o.put("lowercase", b.lowercase());
                yield o;
            }
            case Normalizer.StripAccents s -> typed("StripAccents");
            case Normalizer.Lowercase l -> typed("Lowercase");
            case Normalizer.UnicodeForm u -> typed(u.form().name());
            case Normalizer.Replace r -> {
                ObjectNode o = typed("Replace");
                o.putObject("pattern").put(r.literal() != null ? "String" : "Regex", r.literal() != null ? r.literal() : r.regex().pattern());
                o.put("content", r.content());
                yield o;
            }
            case Normalizer.Prepend p -> typed("Prepend").put("prepend", p.prepend());
            case Normalizer.Strip s -> typed("Strip").put("strip_left", s.left()).put("strip_right", s.right());
            case Normalizer.Sequence s -> {
                ObjectNode o = typed("Sequence");
                ArrayNode a = o.putArray("normalizers");
                for (Normalizer x : s.normalizers()) a.add(normalizer(x));
                yield o;
            }
            default -> throw new IllegalStateException("no JSON form for " + n);
        };
    }

    private static String behavior(PreTokenizer.Behavior b) {
        return switch (b) {
            case REMOVED -> "Removed";
            case ISOLATED -> "Isolated";
            case MERGED_WITH_PREVIOUS -> "MergedWithPrevious";
            case MERGED_WITH_NEXT -> "MergedWithNext";
            case CONTIGUOUS -> "Contiguous";
        };
    }

    static ObjectNode preTokenizer(PreTokenizer p) {
        if (p == null) return null;
        return switch (p) {
            case PreTokenizer.Bert b -> typed("BertPreTokenizer");
            case PreTokenizer.Whitespace w -> typed("Whitespace");
            case PreTokenizer.WhitespaceSplit w -> typed("WhitespaceSplit");
            case PreTokenizer.Punctuation x -> typed("Punctuation").put("behavior", behavior(x.behavior()));
            case PreTokenizer.Digits d -> typed("Digits").put("individual_digits", d.individual());
            case PreTokenizer.ByteLevel b -> typed("ByteLevel").put("add_prefix_space", b.addPrefixSpace()).put("trim_offsets", true).put("use_regex", b.useRegex());
            case PreTokenizer.Metaspace m -> typed("Metaspace").put("replacement", String.valueOf(m.replacement()))
                    .put("prepend_scheme", m.prependScheme()).put("split", m.splitWords());
            case PreTokenizer.Split s -> {
                ObjectNode o = typed("Split");
                o.putObject("pattern").put(s.literal() ? "String" : "Regex", s.source());
                o.put("behavior", behavior(s.behavior()));
                o.put("invert", s.invert());
                yield o;
            }
            case PreTokenizer.Sequence s -> {
                ObjectNode o = typed("Sequence");
                ArrayNode a = o.putArray("pretokenizers");
                for (PreTokenizer x : s.steps()) a.add(preTokenizer(x));
                yield o;
            }
            default -> throw new IllegalStateException("no JSON form for " + p);
        };
    }

    static ObjectNode postProcessor(PostProcessor p, HfTokenizer t) {
        if (p == null || p == PostProcessor.NONE) return null;
        return switch (p) {
            case PostProcessor.Template tp -> {
                ObjectNode o = typed("TemplateProcessing");
                ArrayNode single = o.putArray("single"), pair = o.putArray("pair");
                ObjectNode specials = F.objectNode();
                for (int id : tp.before()) { special(single, specials, t, id, 0); special(pair, specials, t, id, 0); }
                single.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
                pair.addObject().putObject("Sequence").put("id", "A").put("type_id", 0);
                for (int id : tp.after()) { special(single, specials, t, id, 0); special(pair, specials, t, id, 0); }
                pair.addObject().putObject("Sequence").put("id", "B").put("type_id", 1);
                for (int id : tp.after()) special(pair, specials, t, id, 1);
                o.set("special_tokens", specials);
                yield o;
            }
            case PostProcessor.Sequence s -> {
                ObjectNode o = typed("Sequence");
                ArrayNode a = o.putArray("processors");
                for (PostProcessor x : s.steps()) a.add(postProcessor(x, t));
                yield o;
            }
            default -> throw new IllegalStateException("no JSON form for " + p);
        };
    }

    private static void special(ArrayNode items, ObjectNode specials, HfTokenizer t, int id, int typeId) {
        String tok = t.idToToken(id);
        items.addObject().putObject("SpecialToken").put("id", tok).put("type_id", typeId);
        ObjectNode s = specials.putObject(tok);
        s.put("id", tok);
        s.putArray("ids").add(id);
        s.putArray("tokens").add(tok);
    }

    static ObjectNode decoder(Decoder d) {
        if (d == null) return null;
        return switch (d) {
            case Decoder.Plain p -> null;
            case Decoder.ByteLevel b -> typed("ByteLevel").put("add_prefix_space", true).put("trim_offsets", true).put("use_regex", true);
            case Decoder.WordPiece w -> typed("WordPiece").put("prefix", w.prefix()).put("cleanup", w.cleanup());
            case Decoder.Metaspace m -> typed("Metaspace").put("replacement", String.valueOf(m.replacement()))
                    .put("prepend_scheme", m.stripFirst() ? "always" : "never").put("split", true);
            case Decoder.Replace r -> {
                ObjectNode o = typed("Replace");
                o.putObject("pattern").put("String", r.pattern());
                o.put("content", r.content());
                yield o;
            }
            case Decoder.ByteFallback b -> typed("ByteFallback");
            case Decoder.Fuse f -> typed("Fuse");
            case Decoder.Strip s -> typed("Strip").put("content", s.content()).put("start", s.start()).put("stop", s.stop());
            case Decoder.BpeSuffix s -> typed("BPEDecoder").put("suffix", s.suffix());
            case Decoder.Sequence s -> {
                ObjectNode o = typed("Sequence");
                ArrayNode a = o.putArray("decoders");
                for (Decoder x : s.steps()) a.add(decoder(x));
                yield o;
            }
            default -> throw new IllegalStateException("no JSON form for " + d);
        };
    }

    static ObjectNode model(Model m) {
        ObjectNode o;
        if (m instanceof WordPieceModel w) {
            o = typed("WordPiece");
            o.put("unk_token", w.unkToken);
            o.put("continuing_subword_prefix", w.prefix);
            o.put("max_input_chars_per_word", w.maxInputCharsPerWord);
            o.set("vocab", vocab(w.vocab));
        } else if (m instanceof BpeModel b) {
            o = typed("BPE");
            o.putNull("dropout");
            if (b.unkToken == null) o.putNull("unk_token"); else o.put("unk_token", b.unkToken);
            if (b.prefix == null) o.putNull("continuing_subword_prefix"); else o.put("continuing_subword_prefix", b.prefix);
            if (b.suffix == null) o.putNull("end_of_word_suffix"); else o.put("end_of_word_suffix", b.suffix);
            o.put("fuse_unk", b.fuseUnk);
            o.put("byte_fallback", b.byteFallback);
            o.put("ignore_merges", b.ignoreMerges);
            o.set("vocab", vocab(b.vocab));
            ArrayNode merges = o.putArray("merges");
            for (String[] mm : b.merges) merges.addArray().add(mm[0]).add(mm[1]);
        } else {
            throw new IllegalStateException("no JSON form for " + m);
        }
        return o;
    }

    private static ObjectNode vocab(Map<String, Integer> v) {
        ObjectNode o = F.objectNode();
        List<Map.Entry<String, Integer>> es = v.entrySet().stream().sorted(Map.Entry.comparingByValue()).toList();
        for (Map.Entry<String, Integer> e : es) o.put(e.getKey(), e.getValue());
        return o;
    }
}
