package dev.cpt4j.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The Hugging Face tokenizers pipeline: added tokens → normalizer → pre-tokenizer → model → post-processor, and
 * the decoder back. Immutable and thread-safe (the BPE word cache is concurrent).
 */
final class HfTokenizer implements Tokenizer {
    final Normalizer normalizer;          // may be null
    final PreTokenizer preTokenizer;      // may be null
    final Model model;
    final PostProcessor postProcessor;
    final Decoder decoder;
    final AddedVocabulary added;
    private final Map<String, Integer> addedIds = new HashMap<>();
    private final String[] addedById;
    private final Set<Integer> specialIds = new HashSet<>();
    private final int vocabSize;
    private final String fingerprint;

    HfTokenizer(Normalizer normalizer, PreTokenizer preTokenizer, Model model, PostProcessor postProcessor,
                Decoder decoder, List<AddedToken> addedTokens, String fingerprint) {
        this(normalizer, preTokenizer, model, postProcessor, decoder, addedTokens, fingerprint, false);
    }

    /**
     * @param rawNormalizedTokens match normalized added tokens by their content as written (sentencepiece's
     *     user-defined pieces), instead of by their normalized form (HF)
     */
    HfTokenizer(Normalizer normalizer, PreTokenizer preTokenizer, Model model, PostProcessor postProcessor,
                Decoder decoder, List<AddedToken> addedTokens, String fingerprint, boolean rawNormalizedTokens) {
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.postProcessor = postProcessor == null ? PostProcessor.NONE : postProcessor;
        this.decoder = decoder == null ? new Decoder.Plain() : decoder;
        this.added = new AddedVocabulary(addedTokens, rawNormalizedTokens ? null : normalizer);
        int max = -1;
        for (int id : model.vocab().values()) max = Math.max(max, id);
        for (AddedToken t : addedTokens) {
            addedIds.putIfAbsent(t.content(), t.id());
            if (t.special()) specialIds.add(t.id());
            max = Math.max(max, t.id());
        }
        addedById = new String[max + 1];
        for (AddedToken t : addedTokens) addedById[t.id()] = t.content();
        this.vocabSize = max + 1;
        this.fingerprint = fingerprint;
    }

    @Override
    public int[] encode(String text, boolean addSpecialTokens) {
        IntList out = new IntList(text.length() / 2 + 8);
        Words words = new Words();
        boolean[] first = {true};
        added.split(text, normalizer, new AddedVocabulary.Sink() {
            @Override
            public void token(int id) {
                out.add(id);
                first[0] = false;
            }

            @Override
            public void text(String s, int start, int end) {
                words.clear();
                if (preTokenizer == null) words.add(s, start, end);
                else preTokenizer.split(s, start, end, first[0], words);
                for (int i = 0; i < words.n; i++) model.encode(words.text[i], words.start[i], words.end[i], out);
                first[0] = false;
            }
        });
        int[] ids = out.toArray();
        return addSpecialTokens ? postProcessor.process(ids) : ids;
    }

    /** The pre-tokenized words of {@code text} (added tokens excluded), as the model sees them. */
    void words(String text, java.util.function.Consumer<String> sink) {
        Words words = new Words();
        boolean[] first = {true};
        added.split(text, normalizer, new AddedVocabulary.Sink() {
            @Override
            public void token(int id) { first[0] = false; }

            @Override
            public void text(String s, int start, int end) {
                words.clear();
                if (preTokenizer == null) words.add(s, start, end);
                else preTokenizer.split(s, start, end, first[0], words);
                for (int i = 0; i < words.n; i++) sink.accept(words.word(i));
                first[0] = false;
            }
        });
    }

    /** Ids of one pre-tokenized word. */
    int[] encodeWord(String word) {
        IntList out = new IntList();
        model.encode(word, 0, word.length(), out);
        return out.toArray();
    }

    @Override
    public String decode(int[] ids) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            if (specialIds.contains(id)) continue;
            String t = idToToken(id);
            if (t != null) tokens.add(t);
        }
        return decoder.decode(tokens);
    }

    String idToToken(int id) {
        if (id >= 0 && id < addedById.length && addedById[id] != null) return addedById[id];
        return model.idToToken(id);
    }

    @Override
    public int vocabSize() { return vocabSize; }

    @Override
    public int tokenToId(String token) {
        Integer a = addedIds.get(token);
        if (a != null) return a;
        Integer v = model.vocab().get(token);
        return v == null ? -1 : v;
    }

    @Override
    public String fingerprint() { return fingerprint; }

    /** Empties the BPE word cache (benchmarks measure cold passes). */
    void clearCache() {
        if (model instanceof BpeModel b) b.clearCache();
    }

    boolean isSpecial(int id) { return specialIds.contains(id); }
}
