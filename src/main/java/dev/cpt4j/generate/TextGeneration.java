package dev.cpt4j.generate;

import dev.cpt4j.UserError;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.tokenizer.Tokenizer;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * Text in, text out: runs {@link Generator} on a prompt's ids and turns the results into clean text (the tokenizer's
 * decode, which skips special tokens and joins CJK characters without spaces; the eos that ended a sequence and the
 * pad that HF fills finished rows with never appear). What {@code cpt4j generate} prints.
 */
public final class TextGeneration {
    private static final ObjectMapper JSON = new ObjectMapper();

    private TextGeneration() {}

    /**
     * One returned sequence.
     *
     * @param text       prompt + continuation, clean
     * @param completion the continuation alone, clean
     * @param ids        the generated ids (prompt excluded; the final eos included when it ended the sequence)
     */
    public record Sample(int index, String text, String completion, int[] ids, Generator.FinishReason finishReason) {
        /** One line of {@code --json} output. */
        public String toJsonLine() {
            ObjectNode o = JSON.createObjectNode();
            o.put("index", index);
            o.put("text", text);
            o.put("completion", completion);
            var arr = o.putArray("ids");
            for (int id : ids) arr.add(id);
            o.put("finish_reason", finishReason.name().toLowerCase(java.util.Locale.ROOT));
            try {
                return JSON.writeValueAsString(o);
            } catch (JsonProcessingException e) {
                throw new IllegalStateException(e);
            }
        }
    }

    /**
     * Generates and decodes. With one sequence and a {@code stream} sink, the text (prompt first) is emitted piece by
     * piece as tokens are produced; the returned samples are the same either way.
     *
     * @param decode ids → clean text (the tokenizer's decode)
     * @param stream receives text pieces of sequence 0 as they become final, or null
     */
    public static List<Sample> run(StepModel model, Function<int[], String> decode, int[] prompt, GenerationConfig cfg,
                                   Consumer<String> stream) {
        TextStreamer streamer = stream == null || cfg.numReturnSequences() != 1 ? null
                : new TextStreamer(ids -> decode.apply(withoutEos(ids, cfg)), prompt, 0, stream);
        Generator.Result r = Generator.generate(model, prompt, cfg, new SplittableRandom(cfg.seed()),
                streamer == null ? Generator.TokenListener.NONE : streamer);
        if (streamer != null) streamer.finish();
        List<Sample> out = new ArrayList<>();
        for (int n = 0; n < r.tokens().length; n++) {
            int[] gen = withoutEos(r.tokens()[n], cfg);
            int[] all = Arrays.copyOf(prompt, prompt.length + gen.length);
            System.arraycopy(gen, 0, all, prompt.length, gen.length);
            String text = decode.apply(all);
            out.add(new Sample(n, text, completion(text, decode.apply(prompt)), r.tokens()[n], r.reasons()[n]));
        }
        return out;
    }

    /**
     * Loads the model of {@code o} and continues its prompt ({@code cpt4j generate}). With one sequence and a
     * {@code stream} sink (may be null) the text, prompt first, is emitted piece by piece as it is generated.
     */
    public static List<Sample> run(GenerateOptions o, Consumer<String> stream) {
        LoadedModel m = LoadedModel.load(o.model(), o.adapter());
        Tokenizer tok = m.tokenizer();
        int[] ids = tok.encode(o.prompt(), false); // transformers' add_special_tokens=False
        GenerationConfig cfg = o.generation(defaultEos(tok));
        int newTokens = cfg.newTokens(ids.length, m.config().contextLength());
        int vocab = m.config().vocabSize();
        for (int e : cfg.eosTokenIds())
            if (e >= vocab) throw new UserError("--eos-token-id " + e + " is outside the model's vocabulary of " + vocab + " ids");
        if (cfg.padTokenId() >= vocab)
            throw new UserError("--pad-token-id " + cfg.padTokenId() + " is outside the model's vocabulary of " + vocab + " ids");
        try (Parallel par = new Parallel(o.threads())) {
            StepModel dec = m.decoder(cfg.numReturnSequences(), ids.length + newTokens, par);
            return run(dec, tok::decode, ids, cfg, stream);
        }
    }

    /**
     * The continuation as the tokenizer joins it to the prompt: the whole text past the prompt's own text (so a
     * WordPiece continuation piece joins its word instead of showing {@code ##}, and a byte-level BPE's leading space
     * stays). When the whole text does not start with the prompt's (the decode changed across the boundary: a byte
     * sequence the prompt left incomplete, a clean-up rule), the text past the longest common prefix: never the
     * continuation decoded alone, which would show a leading {@code ##}.
     */
    static String completion(String text, String promptText) {
        if (text.startsWith(promptText)) return text.substring(promptText.length());
        int n = 0, max = Math.min(text.length(), promptText.length());
        while (n < max && text.charAt(n) == promptText.charAt(n)) n++;
        if (n > 0 && n < text.length() && Character.isLowSurrogate(text.charAt(n))) n--; // never split a pair
        return text.substring(n);
    }

    /** Drops eos ids, which may be ordinary vocabulary entries that decode would otherwise print. */
    static int[] withoutEos(int[] ids, GenerationConfig cfg) {
        int n = 0;
        int[] out = new int[ids.length];
        for (int id : ids) if (!cfg.isEos(id)) out[n++] = id;
        return n == ids.length ? ids : Arrays.copyOf(out, n);
    }

    /**
     * The end-of-text id to stop at when none is given: the tokenizer's {@code <|endoftext|>} (GPT-2, and Wenzhong's
     * 21133), else {@code </s>}, else BERT's {@code [SEP]}; empty if it has none of them.
     */
    public static int[] defaultEos(Tokenizer tok) {
        for (String t : new String[] {"<|endoftext|>", "</s>", "[SEP]"}) {
            int id = tok.tokenToId(t);
            if (id >= 0) return new int[] {id};
        }
        return new int[0];
    }
}
