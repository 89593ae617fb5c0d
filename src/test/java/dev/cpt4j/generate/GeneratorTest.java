package dev.cpt4j.generate;

import dev.cpt4j.UserError;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The decoding loop on a fake Markov model whose greedy path can be read off its table. */
class GeneratorTest {
    // greedy successor of each token: 0→1→2→3→4→0 ..., 5 (eos) → 5
    static final int[] NEXT = {1, 2, 3, 4, 0, 5};

    @Test
    void greedyFollowsTheTable() {
        MarkovModel m = MarkovModel.chain(6, NEXT, 64);
        Generator.Result r = Generator.generate(m, new int[] {2}, GenerationConfig.greedy(7), new SplittableRandom(0),
                Generator.TokenListener.NONE);
        assertThat(r.tokens()[0]).containsExactly(3, 4, 0, 1, 2, 3, 4);
        assertThat(r.reasons()[0]).isEqualTo(Generator.FinishReason.LENGTH);
        assertThat(m.rowsComputed).isEqualTo(6); // prefill gives the first token's logits
    }

    @Test
    void stopsAtEosAndKeepsIt() {
        int[] next = {1, 2, 5, 4, 0, 5}; // 0→1→2→eos
        MarkovModel m = MarkovModel.chain(6, next, 64);
        List<Integer> streamed = new ArrayList<>();
        Generator.Result r = Generator.generate(m, new int[] {0}, GenerationConfig.greedy(10, 5), new SplittableRandom(0),
                (s, t) -> streamed.add(t));
        assertThat(r.tokens()[0]).containsExactly(1, 2, 5);
        assertThat(r.reasons()[0]).isEqualTo(Generator.FinishReason.EOS);
        assertThat(streamed).containsExactly(1, 2, 5);
        assertThat(r.paddedSequences(0)[0]).containsExactly(0, 1, 2, 5);
    }

    @Test
    void minNewTokensSuppressesEos() {
        int[] next = {1, 2, 5, 4, 0, 5};
        float[][] t = new float[6][6];
        for (int i = 0; i < 6; i++) {
            t[i][next[i]] = 5f;
            t[i][(i + 3) % 6] += 1f; // runner-up
        }
        MarkovModel m = new MarkovModel(t, 64, 4, 64);
        GenerationConfig cfg = new GenerationConfig(false, 1f, 50, 1f, 1f, 1, GenerationConfig.UNSET, 10, 4,
                new int[] {5}, 0, 0L);
        Generator.Result r = Generator.generate(m, new int[] {0}, cfg, new SplittableRandom(0), Generator.TokenListener.NONE);
        // 0→1→2, then row 2 wants eos (score 6) but eos is forbidden while fewer than 4 tokens exist, so the best
        // allowed is token 0 (score 0, first index among ties); →1 (4th token); from the 5th token on eos is allowed:
        // 1→2→eos
        assertThat(r.tokens()[0]).containsExactly(1, 2, 0, 1, 2, 5);
        assertThat(r.reasons()[0]).isEqualTo(Generator.FinishReason.EOS);
    }

    @Test
    void sequencesOfABatchFinishIndependentlyAndFinishedRowsAreNotComputed() {
        // token 0 → uniform over {1, 2}; 1 → eos (3); 2 → 2
        float neg = -1e9f;
        float[][] t = {{neg, 0, 0, neg}, {neg, neg, neg, 0}, {neg, neg, 0, neg}, {neg, neg, neg, 0}};
        MarkovModel m = new MarkovModel(t, 64, 8, 64);
        GenerationConfig cfg = new GenerationConfig(true, 1f, 0, 1f, 1f, 6, GenerationConfig.UNSET, 5, 0,
                new int[] {3}, 0, 9L);
        Generator.Result r = Generator.generate(m, new int[] {0}, cfg, new SplittableRandom(9), Generator.TokenListener.NONE);
        int eosRows = 0;
        for (int n = 0; n < 6; n++) {
            int[] seq = r.tokens()[n];
            if (seq[0] == 1) {
                assertThat(seq).containsExactly(1, 3);
                assertThat(r.reasons()[n]).isEqualTo(Generator.FinishReason.EOS);
                eosRows++;
            } else {
                assertThat(seq).containsExactly(2, 2, 2, 2, 2);
            }
        }
        assertThat(eosRows).isBetween(1, 5); // seed 9 draws both branches
        // each eos row is computed once after its first token; each other row 4 times
        assertThat(m.rowsComputed).isEqualTo(eosRows + 4 * (6 - eosRows));
    }

    @Test
    void aSeedFixesTheSamples() {
        float[][] t = new float[5][5];
        SplittableRandom init = new SplittableRandom(1);
        for (float[] row : t) for (int j = 0; j < row.length; j++) row[j] = (float) init.nextGaussian();
        GenerationConfig cfg = GenerationConfig.sampling(0.95f, 3, 12, 5L);
        int[][] a = Generator.generate(new MarkovModel(t, 64, 4, 64), new int[] {1, 2}, cfg, new SplittableRandom(5),
                Generator.TokenListener.NONE).tokens();
        int[][] b = Generator.generate(new MarkovModel(t, 64, 4, 64), new int[] {1, 2}, cfg, new SplittableRandom(5),
                Generator.TokenListener.NONE).tokens();
        int[][] c = Generator.generate(new MarkovModel(t, 64, 4, 64), new int[] {1, 2}, cfg, new SplittableRandom(6),
                Generator.TokenListener.NONE).tokens();
        assertThat(a).isDeepEqualTo(b);
        assertThat(a).isNotEqualTo(c);
    }

    @Test
    void lengthRulesFollowTransformers() {
        GenerationConfig def = GenerationConfig.greedy(GenerationConfig.UNSET);
        assertThat(def.newTokens(5, 100)).isEqualTo(20);        // HF default: 20 new tokens
        assertThat(def.newTokens(90, 100)).isEqualTo(10);       // capped at the context
        GenerationConfig maxLen = new GenerationConfig(false, 1f, 50, 1f, 1f, 1, 128, GenerationConfig.UNSET, 0,
                null, GenerationConfig.UNSET, 0L);
        assertThat(maxLen.newTokens(5, 1024)).isEqualTo(123);   // max_length counts the prompt
        assertThat(GenerationConfig.greedy(30).newTokens(5, 1024)).isEqualTo(30);

        assertThatThrownBy(() -> def.newTokens(0, 100)).isInstanceOf(UserError.class).hasMessageContaining("empty");
        assertThatThrownBy(() -> def.newTokens(100, 100)).isInstanceOf(UserError.class)
                .hasMessageContaining("100 tokens").hasMessageContaining("context is 100");
        assertThatThrownBy(() -> maxLen.newTokens(128, 1024)).isInstanceOf(UserError.class).hasMessageContaining("--max-length");
        assertThatThrownBy(() -> GenerationConfig.greedy(50).newTokens(60, 100)).isInstanceOf(UserError.class)
                .hasMessageContaining("--max-new-tokens 40");
        assertThatThrownBy(() -> new GenerationConfig(false, 1f, 50, 1f, 1f, 1, 50, 20, 0, null, -1, 0L))
                .isInstanceOf(UserError.class).hasMessageContaining("--max-length and --max-new-tokens");
        assertThatThrownBy(() -> new GenerationConfig(false, 1f, 50, 1f, 1f, 3, -1, 20, 0, null, -1, 0L))
                .isInstanceOf(UserError.class).hasMessageContaining("--do-sample true");
        assertThatThrownBy(() -> new GenerationConfig(true, 0f, 50, 1f, 1f, 1, -1, 20, 0, null, -1, 0L))
                .isInstanceOf(UserError.class).hasMessageContaining("--temperature");
        assertThatThrownBy(() -> new GenerationConfig(true, 1f, 50, 1.5f, 1f, 1, -1, 20, 0, null, -1, 0L))
                .isInstanceOf(UserError.class).hasMessageContaining("--top-p");
    }

    @Test
    void padDefaultsToEos() {
        assertThat(GenerationConfig.greedy(5, 7, 8).effectivePadTokenId()).isEqualTo(7);
        assertThat(new GenerationConfig(false, 1f, 50, 1f, 1f, 1, -1, 5, 0, new int[] {7}, 0, 0L).effectivePadTokenId())
                .isZero();
    }
}
