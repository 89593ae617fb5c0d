package dev.cpt4j.generate;

import dev.cpt4j.model.StepModel;
import java.util.Arrays;
import java.util.random.RandomGenerator;

/**
 * The decoding loop of transformers' {@code generate} for a decoder-only model: the prompt is expanded to
 * {@code num_return_sequences} rows (HF's {@code _expand_inputs_for_generation}), all rows advance together one token
 * per step, a row that produced an eos is finished and from then on is fed the pad token (HF fills it with
 * {@code pad_token_id}; here it is simply no longer computed), and the loop stops when every row finished or the
 * length limit is reached.
 *
 * <p>All per-step buffers are allocated once per call; the model keeps its own (KV cache, activations).
 */
public final class Generator {
    private Generator() {}

    /** Receives each new token as soon as it is chosen (eos included, pad never). */
    @FunctionalInterface
    public interface TokenListener {
        void onToken(int sequence, int token);

        TokenListener NONE = (s, t) -> {};
    }

    /** Why a sequence ended. */
    public enum FinishReason { EOS, LENGTH }

    /**
     * The outcome of one generation.
     *
     * @param prompt  the prompt ids
     * @param tokens  per sequence, the generated ids (the eos that ended it included; no pad)
     * @param reasons per sequence, why it ended
     */
    public record Result(int[] prompt, int[][] tokens, FinishReason[] reasons) {
        /** HF's {@code sequences}: prompt + generated ids, finished rows filled with {@code pad} to the common length. */
        public int[][] paddedSequences(int pad) {
            int longest = 0;
            for (int[] t : tokens) longest = Math.max(longest, t.length);
            int[][] out = new int[tokens.length][prompt.length + longest];
            for (int n = 0; n < tokens.length; n++) {
                Arrays.fill(out[n], pad);
                System.arraycopy(prompt, 0, out[n], 0, prompt.length);
                System.arraycopy(tokens[n], 0, out[n], prompt.length, tokens[n].length);
            }
            return out;
        }
    }

    /**
     * Generates {@code cfg.numReturnSequences()} continuations of {@code prompt}.
     *
     * @param rng the only source of randomness (used when {@code cfg.doSample()}); seed it from {@code cfg.seed()}
     *            for reproducible output
     */
    public static Result generate(StepModel model, int[] prompt, GenerationConfig cfg, RandomGenerator rng,
                                  TokenListener listener) {
        int N = cfg.numReturnSequences();
        int maxNew = cfg.newTokens(prompt.length, model.contextLength());
        if (N > model.maxSequences())
            throw new IllegalArgumentException("model was built for " + model.maxSequences() + " sequences, asked " + N);
        if (prompt.length + maxNew > model.maxLength())
            throw new IllegalArgumentException("model cache holds " + model.maxLength() + " positions, asked "
                    + (prompt.length + maxNew));
        int V = model.vocabSize();
        for (int t : prompt)
            if (t < 0 || t >= V) throw new IllegalArgumentException("prompt token " + t + " outside the vocabulary [0, " + V + ")");
        int pad = cfg.effectivePadTokenId();

        TokenChooser chooser = new TokenChooser(cfg, V, N);
        chooser.start(prompt);
        int[][] out = new int[N][maxNew];   // (N, maxNew)
        int[] len = new int[N];             // (N)
        int[] last = new int[N];            // (N) token each row is fed next
        boolean[] active = new boolean[N];  // (N)
        FinishReason[] reasons = new FinishReason[N];
        Arrays.fill(active, true);
        Arrays.fill(reasons, FinishReason.LENGTH);

        float[] logits = model.prefill(prompt, N); // (N, V)
        int alive = N;
        for (int step = 0; step < maxNew && alive > 0; step++) {
            if (step > 0) logits = model.next(last, active);
            for (int n = 0; n < N; n++) {
                if (!active[n]) {
                    chooser.append(n, pad);
                    continue;
                }
                int tok = chooser.choose(logits, n, rng);
                out[n][len[n]++] = tok;
                chooser.append(n, tok);
                listener.onToken(n, tok);
                if (cfg.isEos(tok)) {
                    active[n] = false;
                    reasons[n] = FinishReason.EOS;
                    alive--;
                } else {
                    last[n] = tok;
                }
            }
        }
        int[][] tokens = new int[N][];
        for (int n = 0; n < N; n++) tokens[n] = Arrays.copyOf(out[n], len[n]);
        return new Result(prompt.clone(), tokens, reasons);
    }
}
