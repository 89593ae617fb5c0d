package dev.cpt4j.generate;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.model.CausalLm;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tokenizer.Tokenizer;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Held-out loss of a causal LM, as transformers computes it with {@code labels=input_ids}: text is tokenized line by
 * line (blank lines skipped, special tokens as the tokenizer's post-processor adds them — the same rule as
 * {@code cpt4j prepare}), all ids are concatenated and cut into blocks of N tokens (the remainder dropped), and the
 * loss is the mean next-token cross-entropy over every predicted position, B·(N−1) per batch of B blocks. Runs the
 * engine's eval-mode forward ({@link CausalLm#evalLoss}).
 */
public final class Evaluation {
    private Evaluation() {}

    /**
     * @param loss       mean cross-entropy (nats) over all predicted positions
     * @param tokens     tokens in the evaluated blocks (blocks × block size)
     * @param blocks     blocks evaluated
     * @param textTokens tokens the text gave before cutting (the rest was dropped); equal to tokens for prepared data
     */
    public record Result(double loss, long tokens, long blocks, int blockSize, long textTokens) {
        public double perplexity() {
            return Math.exp(loss);
        }

        /** {@code {"loss":…,"perplexity":…,"tokens":…,"blocks":…}}. */
        public String toJson() {
            ObjectNode o = new ObjectMapper().createObjectNode();
            o.put("loss", loss);
            o.put("perplexity", perplexity());
            o.put("tokens", tokens);
            o.put("blocks", blocks);
            return o.toString();
        }
    }

    /** Ids of every non-blank line of {@code file} (with special tokens), concatenated. */
    public static int[] tokenizeLines(Tokenizer tok, Path file) {
        if (!Files.isRegularFile(file)) throw new UserError("--text-file " + file + " does not exist or is not a file");
        int[] ids = new int[1 << 12];
        int n = 0;
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            for (String line; (line = r.readLine()) != null; ) {
                if (line.isBlank()) continue;
                int[] t = tok.encode(line, true);
                if (n + t.length > ids.length) ids = Arrays.copyOf(ids, Math.max(2 * ids.length, n + t.length));
                System.arraycopy(t, 0, ids, n, t.length);
                n += t.length;
            }
        } catch (java.nio.charset.MalformedInputException e) {
            throw new UserError("--text-file " + file + " is not UTF-8 text; convert it to UTF-8");
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return Arrays.copyOf(ids, n);
    }

    /** The whole blocks of {@code ids}, row-major (blocks, blockSize); checks the block size against the text. */
    public static int[] cut(int[] ids, int blockSize, String where) {
        if (ids.length == 0) throw new UserError(where + " has no text (every line is blank); give a file with held-out text");
        if (blockSize < 2) throw new UserError("--block-size must be at least 2 (a block predicts its tokens 1..N−1), got " + blockSize);
        int blocks = ids.length / blockSize;
        if (blocks == 0)
            throw new UserError(where + " gives only " + ids.length + " tokens, less than one block of " + blockSize
                    + "; use a smaller --block-size or more text");
        return Arrays.copyOf(ids, blocks * blockSize);
    }

    /**
     * Mean next-token loss of the model over {@code blocks} (row-major (count, blockSize)), {@code batchSize} blocks
     * per forward.
     */
    public static Result evaluate(HfCheckpoints.ModelDir m, int[] blocks, int blockSize, int batchSize, Parallel par) {
        if (blockSize > m.config().contextLength())
            throw new UserError("--block-size " + blockSize + " exceeds the model's context of " + m.config().contextLength()
                    + " positions; use --block-size " + m.config().contextLength() + " or less");
        if (batchSize < 1) throw new UserError("--batch-size must be at least 1, got " + batchSize);
        int count = blocks.length / blockSize;
        int V = m.config().vocabSize();
        for (int id : blocks)
            if (id < 0 || id >= V)
                throw new UserError("token id " + id + " is outside the model's vocabulary of " + V + "; the tokenizer or prepared data does not belong to this model");
        int B = Math.min(batchSize, count);
        var cfg = m.config().withoutDropout();
        CausalLm model = cfg.family().newModel(cfg, new Gemm(par), par, B, blockSize, false);
        System.arraycopy(m.params(), 0, model.params(), 0, m.params().length);
        double sum = 0;
        long predicted = 0;
        int[] batch = new int[B * blockSize];
        for (int first = 0; first < count; first += B) {
            int b = Math.min(B, count - first);
            System.arraycopy(blocks, first * blockSize, batch, 0, b * blockSize);
            float loss = model.evalLoss(batch, b, blockSize);
            long n = (long) b * (blockSize - 1);
            sum += (double) loss * n;
            predicted += n;
        }
        return new Result(sum / predicted, (long) count * blockSize, count, blockSize, blocks.length);
    }

    /** Tokenizes {@code textFile}, cuts it into blocks and evaluates. */
    public static Result evaluateText(LoadedModel m, Path textFile, int blockSize, int batchSize, Parallel par) {
        if (blockSize > m.config().contextLength())
            throw new UserError("--block-size " + blockSize + " exceeds the model's context of " + m.config().contextLength()
                    + " positions; use --block-size " + m.config().contextLength() + " or less");
        int[] ids = tokenizeLines(m.tokenizer(), textFile);
        int[] blocks = cut(ids, blockSize, "--text-file " + textFile);
        Result r = evaluate(m.modelDir(), blocks, blockSize, batchSize, par);
        return new Result(r.loss(), r.tokens(), r.blocks(), blockSize, ids.length);
    }
}
