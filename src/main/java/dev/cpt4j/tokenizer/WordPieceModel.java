package dev.cpt4j.tokenizer;

import java.util.HashMap;
import java.util.Map;

/**
 * WordPiece as tokenizers' {@code models/wordpiece}: greedy longest match from the left, pieces after the first carry
 * the continuing-subword prefix ({@code ##}); a word with an unmatchable part, or longer than
 * {@code maxInputCharsPerWord} code points, becomes the single unknown token.
 */
final class WordPieceModel implements Model {
    final Map<String, Integer> vocab;
    final String unkToken;
    final String prefix;
    final int maxInputCharsPerWord;
    private final Vocab first;         // every token
    private final Vocab continuation;  // tokens starting with the prefix, prefix removed
    private final int unkId;
    private final String[] idToToken;

    WordPieceModel(Map<String, Integer> vocab, String unkToken, String prefix, int maxInputCharsPerWord) {
        this.vocab = vocab;
        this.unkToken = unkToken;
        this.prefix = prefix;
        this.maxInputCharsPerWord = maxInputCharsPerWord;
        this.first = new Vocab(vocab);
        Map<String, Integer> cont = new HashMap<>();
        int maxId = -1;
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            if (e.getKey().startsWith(prefix)) cont.put(e.getKey().substring(prefix.length()), e.getValue());
            maxId = Math.max(maxId, e.getValue());
        }
        this.continuation = new Vocab(cont);
        Integer u = vocab.get(unkToken);
        if (u == null) throw new IllegalArgumentException("unk_token '" + unkToken + "' is not in the vocabulary");
        this.unkId = u;
        this.idToToken = new String[maxId + 1];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) idToToken[e.getValue()] = e.getKey();
    }

    @Override
    public void encode(String s, int start, int end, IntList out) {
        if (end - start > maxInputCharsPerWord && s.codePointCount(start, end) > maxInputCharsPerWord) {
            out.add(unkId);
            return;
        }
        int mark = out.size();
        int pos = start;
        while (pos < end) {
            Vocab v = pos == start ? first : continuation;
            int e = Math.min(end, pos + v.maxKeyLength());
            if (e < end && Character.isLowSurrogate(s.charAt(e)) && e > pos) e--;   // never split a surrogate pair
            int id = -1;
            while (e > pos) {
                id = v.get(s, pos, e);
                if (id >= 0) break;
                e -= (e - pos >= 2 && Character.isLowSurrogate(s.charAt(e - 1)) && Character.isHighSurrogate(s.charAt(e - 2))) ? 2 : 1;
            }
            if (id < 0) {
                out.n = mark;
                out.add(unkId);
                return;
            }
            out.add(id);
            pos = e;
        }
    }

    @Override
    public Map<String, Integer> vocab() { return vocab; }

    @Override
    public String idToToken(int id) { return id >= 0 && id < idToToken.length ? idToToken[id] : null; }
}
