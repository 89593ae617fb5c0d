package dev.cpt4j.tokenizer;

import dev.cpt4j.UserError;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

/**
 * Vocabulary extension (continued pretraining on a new domain/language, as Chinese-LLaMA extended LLaMA's vocabulary)
 * and training from scratch. Every existing id stays unchanged; new tokens get the ids after the largest existing id.
 * The result is written as a {@code tokenizer.json} that HF tokenizers loads and encodes exactly as cpt4j does.
 *
 * <ul>
 * <li>BPE (byte-level, or byte-fallback/metaspace): characters that fell back to bytes and occur often become new
 *     single-character tokens; then N new merges are learned on the corpus's current tokenization and appended after
 *     the existing merges (lowest priority, so existing words tokenize as before unless a new merge applies).</li>
 * <li>WordPiece: BERT isolates every CJK character before WordPiece, so multi-character Chinese pieces are learned as
 *     merges over CJK runs and added as non-normalized added tokens (matched in the raw text before pre-tokenization,
 *     leftmost-longest); frequent [UNK] characters become vocabulary entries. Added tokens are also put into the
 *     model vocabulary with their ids, because HF re-numbers added tokens that are not in it.</li>
 * </ul>
 * Held-out text (every 20th line of the corpus) is never used for learning; the report gives tokens per 1,000
 * characters on it before and after.
 *
 * <p>When the base ships a SentencePiece {@code tokenizer.model} (LLaMA, Mistral), the output ships one too: the base
 * {@code ModelProto} with the new tokens appended as NORMAL pieces, as Chinese-LLaMA-Alpaca's
 * {@code merge_tokenizers.py} does. That script gives every new piece score 0, above all of LLaMA's (negative) scores
 * and tied with each other; cpt4j gives them distinct scores below every existing one, in the order they were
 * learned, so that text the new pieces do not touch encodes as before and ties cannot make the sentencepiece library
 * (which breaks them leftmost-first) and a merge-ranked {@code tokenizer.json} disagree. The {@code tokenizer.json}
 * written beside it takes its merges from the extended pieces, as transformers converts a {@code tokenizer.model}
 * (every split of a piece into two pieces, by score), so both files encode identically. {@code tokenizer_config.json}
 * and {@code special_tokens_map.json} are copied from the base (ids never change).
 */
public final class VocabExtender {
    private VocabExtender() {}

    /** What an extension or training run did. Token rates are per 1,000 characters (code points) of held-out text. */
    public record Report(int baseVocabSize, int newVocabSize, int newTokens, int newMerges, long heldOutLines,
                         long heldOutChars, double tokensPer1kCharsBefore, double tokensPer1kCharsAfter, Path tokenizerJson,
                         Path sentencePieceModel) {}

    record Corpus(List<String> train, List<String> heldOut) {}

    /** Every line of every *.txt under {@code dir} (sorted paths); every 20th line is held out. */
    static Corpus readCorpus(Path dir) {
        if (!Files.isDirectory(dir)) throw new UserError("corpus directory " + dir + " does not exist or is not a directory; give --corpus DIR with *.txt files");
        List<Path> files;
        try (Stream<Path> s = Files.walk(dir)) {
            files = s.filter(p -> Files.isRegularFile(p) && p.getFileName().toString().endsWith(".txt")).sorted().toList();
        } catch (IOException e) {
            throw new UserError("cannot list corpus directory " + dir + ": " + e.getMessage());
        }
        if (files.isEmpty()) throw new UserError("corpus directory " + dir + " has no *.txt files; put the domain text there, one example per line");
        List<String> train = new ArrayList<>(), held = new ArrayList<>();
        long n = 0;
        for (Path f : files) {
            for (String line : LineEncoder.readLines(f)) {
                if (line.isBlank()) continue;
                if (n++ % 20 == 19) held.add(line); else train.add(line);
            }
        }
        if (held.isEmpty()) held.addAll(train.subList(0, Math.min(train.size(), 1)));
        return new Corpus(train, held);
    }

    static double tokensPer1k(Tokenizer t, List<String> lines, long[] charsOut) {
        long tokens = 0, chars = 0;
        for (String l : lines) {
            tokens += t.encode(l, false).length;
            chars += l.codePointCount(0, l.length());
        }
        charsOut[0] = chars;
        return chars == 0 ? 0 : tokens * 1000.0 / chars;
    }

    private static void checkOutput(Path outputDir) {
        if (Files.exists(outputDir.resolve("tokenizer.json"))) {
            throw new UserError("output directory " + outputDir + " already has a tokenizer.json; choose a new directory (cpt4j never overwrites tokenizer files)");
        }
    }

    /** Extends the tokenizer at {@code base} with {@code add} new tokens/merges learned from {@code corpusDir}. */
    public static Report extend(Path base, Path corpusDir, int add, Path outputDir) {
        if (add <= 0) throw new UserError("--add must be a positive number of tokens, got " + add);
        checkOutput(outputDir);
        Tokenizer t = Tokenizer.load(base);
        if (!(t instanceof HfTokenizer h)) throw new UserError("tokenizer " + base + " cannot be extended");
        Path spm = sentencePieceBeside(base);
        SentencePieceLoader.ModelProto proto = null;
        byte[] spmBytes = null;
        if (spm != null && h.model instanceof BpeModel) {
            spmBytes = SentencePieceLoader.read(spm);
            proto = SentencePieceLoader.parse(spmBytes, spm);
            SentencePieceLoader.checkSupported(proto, spm);
            checkSameIds(h, proto, spm);
        }
        Corpus corpus = readCorpus(corpusDir);
        HfTokenizer ext = h.model instanceof BpeModel ? extendBpe(h, corpus, add) : extendWordPiece(h, corpus, add);
        Path modelOut = null;
        if (proto != null) {
            List<SentencePieceLoader.Piece> added = newPieces(proto, (BpeModel) ext.model);
            byte[] extended = SentencePieceWriter.appendPieces(spmBytes, spm, added);
            List<SentencePieceLoader.Piece> all = SentencePieceLoader.parse(extended, spm).pieces();
            BpeModel m = (BpeModel) ext.model;
            Map<String, Integer> vocab = SentencePieceLoader.vocab(all);
            if (!vocab.equals(m.vocab())) throw new IllegalStateException("extended tokenizer.model and tokenizer.json vocabularies differ");
            BpeModel nm = new BpeModel(m.vocab(), SentencePieceLoader.merges(all, vocab), m.unkToken, m.prefix, m.suffix, m.fuseUnk,
                    m.byteFallback, m.ignoreMerges);
            ext = new HfTokenizer(ext.normalizer, ext.preTokenizer, nm, ext.postProcessor, ext.decoder, ext.added.tokens, "extended");
            modelOut = outputDir.resolve("tokenizer.model");
            try {
                Files.createDirectories(outputDir);
            } catch (IOException e) {
                throw new UserError("cannot create output directory " + outputDir + ": " + e.getMessage());
            }
            dev.cpt4j.io.AtomicFiles.write(modelOut, extended);
        }
        Path json = TokenizerJsonWriter.write(ext, outputDir);
        copySideFiles(base, outputDir);
        Tokenizer reloaded = Tokenizer.load(json);
        long[] chars = new long[1];
        double before = tokensPer1k(t, corpus.heldOut(), chars), after = tokensPer1k(reloaded, corpus.heldOut(), chars);
        int newMerges = ext.model instanceof BpeModel b && h.model instanceof BpeModel a ? b.merges.size() - a.merges.size() : 0;
        return new Report(t.vocabSize(), reloaded.vocabSize(), reloaded.vocabSize() - t.vocabSize(), newMerges,
                corpus.heldOut().size(), chars[0], before, after, json, modelOut);
    }

    /** The SentencePiece model that ships with {@code base}: the file itself, or tokenizer.model beside it / in it. */
    static Path sentencePieceBeside(Path base) {
        if (Files.isRegularFile(base) && base.getFileName().toString().endsWith(".model")) return base;
        Path dir = Files.isDirectory(base) ? base : base.toAbsolutePath().getParent();
        Path f = dir == null ? null : dir.resolve("tokenizer.model");
        return f != null && Files.isRegularFile(f) ? f : null;
    }

    /** A tokenizer.json beside a tokenizer.model must give every piece its piece id, or the two files are not one tokenizer. */
    private static void checkSameIds(HfTokenizer h, SentencePieceLoader.ModelProto proto, Path spm) {
        Map<String, Integer> v = fullVocab(h);
        List<SentencePieceLoader.Piece> ps = proto.pieces();
        if (v.size() != ps.size()) {
            throw new UserError("the base tokenizer has " + v.size() + " ids but " + spm + " has " + ps.size()
                    + " pieces; the two files are not the same tokenizer: remove the stale one (or give --base " + spm + ")");
        }
        for (int i = 0; i < ps.size(); i++) {
            Integer id = v.get(ps.get(i).text());
            if (id == null || id != i) {
                throw new UserError("piece " + i + " '" + ps.get(i).text() + "' of " + spm + " is " + (id == null ? "missing" : "id " + id)
                        + " in the base tokenizer.json; the two files are not the same tokenizer: remove the stale one (or give --base " + spm + ")");
            }
        }
    }

    /** The tokens the extension added (ids after the base's), as NORMAL pieces with distinct scores below every base score. */
    static List<SentencePieceLoader.Piece> newPieces(SentencePieceLoader.ModelProto proto, BpeModel extended) {
        int n = proto.pieces().size();
        String[] byId = new String[extended.vocab().size()];
        for (Map.Entry<String, Integer> e : extended.vocab().entrySet()) {
            int id = e.getValue();
            if (id >= byId.length || byId[id] != null) throw new IllegalStateException("extended vocabulary ids are not 0..n-1");
            byId[id] = e.getKey();
        }
        float score = Float.POSITIVE_INFINITY;
        for (SentencePieceLoader.Piece p : proto.pieces()) score = Math.min(score, p.score());
        List<SentencePieceLoader.Piece> added = new ArrayList<>();
        for (int id = n; id < byId.length; id++) {
            score = Math.min(score - 1f, Math.nextDown(score));   // -1 per piece while a float can tell them apart (LLaMA has -1e9)
            added.add(new SentencePieceLoader.Piece(byId[id], score, SentencePieceLoader.NORMAL));
        }
        return added;
    }

    /** transformers' side files, copied from the base's directory (the ids they name are unchanged). */
    private static void copySideFiles(Path base, Path outputDir) {
        Path dir = Files.isDirectory(base) ? base : base.toAbsolutePath().getParent();
        if (dir == null) return;
        for (String f : List.of("tokenizer_config.json", "special_tokens_map.json")) {
            Path src = dir.resolve(f);
            if (Files.isRegularFile(src) && !Files.exists(outputDir.resolve(f))) dev.cpt4j.io.AtomicFiles.copy(src, outputDir.resolve(f));
        }
    }

    private static Map<String, Long> wordCounts(HfTokenizer h, List<String> lines) {
        Map<String, Long> counts = new HashMap<>();
        for (String l : lines) h.words(l, w -> counts.merge(w, 1L, Long::sum));
        return new TreeMap<>(counts);   // sorted: deterministic symbol numbering
    }

    /** Model vocabulary plus every added token (so HF keeps their ids), and the next free id. */
    private static Map<String, Integer> fullVocab(HfTokenizer h) {
        Map<String, Integer> v = new LinkedHashMap<>(h.model.vocab());
        for (AddedToken a : h.added.tokens) v.putIfAbsent(a.content(), a.id());
        return v;
    }

    private static int nextId(Map<String, Integer> v) {
        int m = -1;
        for (int id : v.values()) m = Math.max(m, id);
        return m + 1;
    }

    static HfTokenizer extendBpe(HfTokenizer h, Corpus corpus, int add) {
        BpeModel m = (BpeModel) h.model;
        Map<String, Integer> vocab = fullVocab(h);
        int next = nextId(vocab);
        Map<String, Long> words = wordCounts(h, corpus.train());
        // 1. byte-fallback models: frequent characters spelled as bytes become tokens (never control characters,
        //    which sentencepiece refuses in a piece and which are better left to the bytes)
        int budget = add;
        if (m.byteFallback) {
            Map<String, Long> chars = new TreeMap<>();
            for (Map.Entry<String, Long> e : words.entrySet()) {
                String w = e.getKey();
                for (int i = 0; i < w.length(); ) {
                    int c = w.codePointAt(i);
                    String ch = w.substring(i, i + Character.charCount(c));
                    if (!vocab.containsKey(ch) && !Character.isISOControl(c)) chars.merge(ch, e.getValue(), Long::sum);
                    i += Character.charCount(c);
                }
            }
            List<Map.Entry<String, Long>> top = chars.entrySet().stream().filter(e -> e.getValue() >= 2)
                    .sorted((x, y) -> y.getValue().equals(x.getValue()) ? x.getKey().compareTo(y.getKey()) : Long.compare(y.getValue(), x.getValue()))
                    .limit(budget / 2).toList();
            for (Map.Entry<String, Long> e : top) vocab.put(e.getKey(), next++);
            budget -= top.size();
        }
        BpeModel withChars = new BpeModel(vocab, m.merges, m.unkToken, m.prefix, m.suffix, m.fuseUnk, m.byteFallback, m.ignoreMerges);
        // 2. merges over the current tokenization; no pair across a metaspace word start, with a byte token or (byte
        //    fallback) with a control character
        MergeLearner learner = new MergeLearner();
        for (Map.Entry<String, Long> e : words.entrySet()) {
            IntList ids = new IntList();
            withChars.encode(e.getKey(), 0, e.getKey().length(), ids);
            List<String> seq = new ArrayList<>();
            for (int i = 0; i < ids.size(); i++) {
                String tok = withChars.idToToken(ids.get(i));
                boolean barrier = tok == null || Decoder.ByteFallback.byteToken(tok) >= 0 || tok.equals(m.unkToken)
                        || (m.byteFallback && tok.codePoints().anyMatch(Character::isISOControl));
                if (barrier || (tok.startsWith("\u2581") && !seq.isEmpty())) {
                    learner.addWord(seq, e.getValue());
                    seq = new ArrayList<>();
                    if (barrier) continue;
                }
                seq.add(tok);
            }
            learner.addWord(seq, e.getValue());
        }
        List<String[]> merges = new ArrayList<>(m.merges);
        for (MergeLearner.Merge mg : learner.learn(budget, 2, String::concat, (a, b) -> true)) {
            merges.add(new String[] {mg.left(), mg.right()});
            if (!vocab.containsKey(mg.joined())) vocab.put(mg.joined(), next++);
        }
        BpeModel nm = new BpeModel(vocab, merges, m.unkToken, m.prefix, m.suffix, m.fuseUnk, m.byteFallback, m.ignoreMerges);
        return new HfTokenizer(h.normalizer, h.preTokenizer, nm, h.postProcessor, h.decoder, h.added.tokens, "extended");
    }

    static HfTokenizer extendWordPiece(HfTokenizer h, Corpus corpus, int add) {
        WordPieceModel m = (WordPieceModel) h.model;
        Map<String, Integer> vocab = fullVocab(h);
        int next = nextId(vocab);
        // CJK runs of the raw text (added tokens are matched there, before normalization)
        Map<String, Long> runs = new TreeMap<>();
        Map<String, Long> unkChars = new TreeMap<>();
        for (String l : corpus.train()) {
            int i = 0;
            while (i < l.length()) {
                int c = l.codePointAt(i);
                if (!Unicode.isChineseChar(c)) { i += Character.charCount(c); continue; }
                int s = i;
                while (i < l.length() && Unicode.isChineseChar(l.codePointAt(i))) {
                    String ch = l.substring(i, i + Character.charCount(l.codePointAt(i)));
                    if (!vocab.containsKey(ch)) unkChars.merge(ch, 1L, Long::sum);
                    i += ch.length();
                }
                runs.merge(l.substring(s, i), 1L, Long::sum);
            }
        }
        int budget = add;
        List<Map.Entry<String, Long>> topUnk = unkChars.entrySet().stream().filter(e -> e.getValue() >= 2)
                .sorted((x, y) -> y.getValue().equals(x.getValue()) ? x.getKey().compareTo(y.getKey()) : Long.compare(y.getValue(), x.getValue()))
                .limit(budget / 4).toList();
        for (Map.Entry<String, Long> e : topUnk) vocab.put(e.getKey(), next++);
        budget -= topUnk.size();
        MergeLearner learner = new MergeLearner();
        for (Map.Entry<String, Long> e : runs.entrySet()) {
            List<String> chars = new ArrayList<>();
            e.getKey().codePoints().forEach(c -> chars.add(new String(Character.toChars(c))));
            learner.addWord(chars, e.getValue());
        }
        List<AddedToken> added = new ArrayList<>(h.added.tokens);
        for (MergeLearner.Merge mg : learner.learn(budget, 2, String::concat, (a, b) -> true)) {
            if (vocab.containsKey(mg.joined())) continue;
            int id = next++;
            vocab.put(mg.joined(), id);
            added.add(new AddedToken(id, mg.joined(), false, false, false, false, false));
        }
        WordPieceModel nm = new WordPieceModel(vocab, m.unkToken, m.prefix, m.maxInputCharsPerWord);
        return new HfTokenizer(h.normalizer, h.preTokenizer, nm, h.postProcessor, h.decoder, added, "extended");
    }

    /**
     * Trains a tokenizer from scratch: {@code bpe} = GPT-2-style byte-level BPE (256 byte symbols, then merges, plus
     * {@code <|endoftext|>}); {@code wordpiece} = BERT-style (BertNormalizer without lowercasing, BERT pre-tokenizer,
     * [PAD] [UNK] [CLS] [SEP] [MASK], every character seen twice or more, and pieces learned as merges with {@code ##}).
     */
    public static Report train(Path corpusDir, String kind, int vocabSize, Path outputDir) {
        checkOutput(outputDir);
        Corpus corpus = readCorpus(corpusDir);
        HfTokenizer t = switch (kind) {
            case "bpe" -> trainBpe(corpus, vocabSize);
            case "wordpiece" -> trainWordPiece(corpus, vocabSize);
            default -> throw new UserError("--type is '" + kind + "'; supported: bpe, wordpiece");
        };
        Path json = TokenizerJsonWriter.write(t, outputDir);
        Tokenizer reloaded = Tokenizer.load(json);
        long[] chars = new long[1];
        double after = tokensPer1k(reloaded, corpus.heldOut(), chars);
        int merges = t.model instanceof BpeModel b ? b.merges.size() : 0;
        return new Report(0, reloaded.vocabSize(), reloaded.vocabSize(), merges, corpus.heldOut().size(), chars[0], Double.NaN, after, json, null);
    }

    static HfTokenizer trainBpe(Corpus corpus, int vocabSize) {
        if (vocabSize < 300) throw new UserError("--vocab-size " + vocabSize + " is too small for byte-level BPE; use at least 300 (256 bytes + merges)");
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int b = 0; b < 256; b++) vocab.put(String.valueOf(ByteLevelCodec.BYTE_TO_CHAR[b]), b);
        PreTokenizer pre = new PreTokenizer.ByteLevel(false, true);
        HfTokenizer seed = new HfTokenizer(null, pre, new BpeModel(vocab, List.of(), null, null, null, false, false, false),
                null, new Decoder.ByteLevel(), List.of(), "seed");
        MergeLearner learner = new MergeLearner();
        for (Map.Entry<String, Long> e : wordCounts(seed, corpus.train()).entrySet()) {
            List<String> syms = new ArrayList<>();
            for (char c : e.getKey().toCharArray()) syms.add(String.valueOf(c));
            learner.addWord(syms, e.getValue());
        }
        List<String[]> merges = new ArrayList<>();
        int next = 256;
        for (MergeLearner.Merge mg : learner.learn(vocabSize - 257, 2, String::concat, (a, b) -> true)) {
            merges.add(new String[] {mg.left(), mg.right()});
            if (!vocab.containsKey(mg.joined())) vocab.put(mg.joined(), next++);
        }
        vocab.put("<|endoftext|>", next);
        List<AddedToken> added = List.of(new AddedToken(next, "<|endoftext|>", true, false, false, false, false));
        return new HfTokenizer(null, pre, new BpeModel(vocab, merges, null, null, null, false, false, false), null,
                new Decoder.ByteLevel(), added, "trained");
    }

    static HfTokenizer trainWordPiece(Corpus corpus, int vocabSize) {
        Normalizer norm = new Normalizer.Bert(true, true, false, false);
        PreTokenizer pre = new PreTokenizer.Bert();
        Map<String, Integer> vocab = new LinkedHashMap<>();
        String[] specials = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
        for (String s : specials) vocab.put(s, vocab.size());
        HfTokenizer seed = new HfTokenizer(norm, pre, new WordPieceModel(vocab, "[UNK]", "##", 100), null, null, List.of(), "seed");
        Map<String, Long> words = wordCounts(seed, corpus.train());
        Map<String, Long> alphabet = new TreeMap<>();
        for (Map.Entry<String, Long> e : words.entrySet()) {
            String w = e.getKey();
            for (int i = 0; i < w.length(); ) {
                int c = w.codePointAt(i);
                String ch = new String(Character.toChars(c));
                alphabet.merge(i == 0 ? ch : "##" + ch, e.getValue(), Long::sum);
                i += Character.charCount(c);
            }
        }
        alphabet.entrySet().stream().filter(e -> e.getValue() >= 2)   // most frequent characters first
                .sorted((x, y) -> y.getValue().equals(x.getValue()) ? x.getKey().compareTo(y.getKey()) : Long.compare(y.getValue(), x.getValue()))
                .forEach(e -> { if (vocab.size() < vocabSize) vocab.putIfAbsent(e.getKey(), vocab.size()); });
        MergeLearner learner = new MergeLearner();
        for (Map.Entry<String, Long> e : words.entrySet()) {
            List<String> syms = new ArrayList<>();
            String w = e.getKey();
            for (int i = 0; i < w.length(); ) {
                int c = w.codePointAt(i);
                syms.add((i == 0 ? "" : "##") + new String(Character.toChars(c)));
                i += Character.charCount(c);
            }
            learner.addWord(syms, e.getValue());
        }
        int room = Math.max(0, vocabSize - vocab.size());
        for (MergeLearner.Merge mg : learner.learn(room * 2, 2, (a, b) -> a + b.substring(2), (a, b) -> true)) {
            if (vocab.size() >= vocabSize) break;
            vocab.putIfAbsent(mg.joined(), vocab.size());
        }
        List<AddedToken> added = new ArrayList<>();
        for (String s : specials) added.add(new AddedToken(vocab.get(s), s, true, false, false, false, false));
        PostProcessor post = new PostProcessor.Template(new int[] {vocab.get("[CLS]")}, new int[] {vocab.get("[SEP]")});
        return new HfTokenizer(norm, pre, new WordPieceModel(vocab, "[UNK]", "##", 100), post, new Decoder.WordPiece("##", true), added, "trained");
    }
}
