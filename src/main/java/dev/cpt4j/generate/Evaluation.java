package dev.cpt4j.generate;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.data.TextBlocks;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.model.CausalLm;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Held-out loss of a causal LM, as transformers computes it with {@code labels=input_ids}: text is cut into blocks of
 * N tokens by {@code cpt4j prepare}'s rule ({@link TextBlocks}: every non-blank line tokenized with special tokens,
 * the ids concatenated, the remainder dropped), and the
 * loss is the mean next-token cross-entropy over every predicted position, B·(N−1) per batch of B blocks. Runs the
 * engine's eval-mode forward ({@link CausalLm#evalLoss}). With neat packing a block's documents (lines) do not see
 * each other and only positions whose next token is in the same document are scored — the loss of running every
 * document piece alone, averaged over all their predictions.
 */
public final class Evaluation {
    private Evaluation() {}

    /**
     * The block size when none is given, capped at the model's context: train's default ({@code run_clm}'s
     * {@code min(1024, max_position_embeddings)}), so held-out numbers are measured on blocks like the training ones.
     * {@code eval} and {@code compare} share it.
     */
    public static final int DEFAULT_BLOCK_SIZE = 1024;

    /** {@code requested} when positive, else {@link #DEFAULT_BLOCK_SIZE} capped at {@code contextLength}. */
    public static int blockSize(int requested, int contextLength) {
        return requested > 0 ? requested : Math.min(DEFAULT_BLOCK_SIZE, contextLength);
    }

    /** Loads the model of {@code o}, tokenizes its text file, cuts it into blocks and evaluates ({@code cpt4j eval}). */
    public static Result evaluate(EvalOptions o) {
        if (!Files.isRegularFile(o.textFile()))
            throw new UserError("--text-file " + o.textFile() + " does not exist or is not a file");
        LoadedModel m = LoadedModel.load(o.model(), o.adapter());
        try (Parallel par = new Parallel(o.threads())) {
            return evaluateText(m, o.textFile(), blockSize(o.blockSize(), m.config().contextLength()), o.batchSize(),
                    o.neatPacking(), par);
        }
    }

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

    /** Ids of every non-blank line of {@code file} (with special tokens), concatenated: {@link TextBlocks#tokenize}. */
    public static int[] tokenizeLines(Tokenizer tok, Path file) {
        return TextBlocks.tokenize(tok, file, "--text-file");
    }

    /**
     * Mean next-token loss of the model over {@code blocks} (row-major (count, blockSize)), {@code batchSize} blocks
     * per forward.
     */
    public static Result evaluate(HfCheckpoints.ModelDir m, int[] blocks, int blockSize, int batchSize, Parallel par) {
        return evaluate(m, blocks, null, blockSize, batchSize, par);
    }

    /**
     * As {@link #evaluate(HfCheckpoints.ModelDir, int[], int, int, Parallel)} with documents packed in the blocks
     * (neat packing): {@code docStarts} (count, blockSize) holds each token's document start in its block, a token sees
     * only its own document and the loss is the mean over every position whose next token is in the same document.
     * Null: plain blocks.
     */
    public static Result evaluate(HfCheckpoints.ModelDir m, int[] blocks, int[] docStarts, int blockSize, int batchSize,
                                  Parallel par) {
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
        int[] batch = new int[B * blockSize], starts = docStarts == null ? null : new int[B * blockSize];
        for (int first = 0; first < count; first += B) {
            int b = Math.min(B, count - first);
            System.arraycopy(blocks, first * blockSize, batch, 0, b * blockSize);
            float loss;
            long n;
            if (starts == null) {
                loss = model.evalLoss(batch, b, blockSize);
                n = (long) b * (blockSize - 1);
            } else {
                System.arraycopy(docStarts, first * blockSize, starts, 0, b * blockSize);
                n = CausalLm.trainedPositions(starts, b, blockSize);
                if (n == 0) continue;                     // only one-token documents: nothing is predicted
                loss = model.forward(batch, null, starts, b, blockSize, false, 0L);
            }
            sum += (double) loss * n;
            predicted += n;
        }
        if (predicted == 0)
            throw new UserError("--neat_packing: every document of the held-out text is a single token, so nothing is "
                    + "predicted; give text whose lines have at least 2 tokens, or evaluate without --neat_packing");
        return new Result(sum / predicted, (long) count * blockSize, count, blockSize, blocks.length);
    }

    /** Tokenizes {@code textFile}, cuts it into blocks and evaluates. */
    public static Result evaluateText(LoadedModel m, Path textFile, int blockSize, int batchSize, Parallel par) {
        return evaluateText(m, textFile, blockSize, batchSize, false, par);
    }

    /** As {@link #evaluateText(LoadedModel, Path, int, int, Parallel)}; {@code neatPacking}: one document per line. */
    public static Result evaluateText(LoadedModel m, Path textFile, int blockSize, int batchSize, boolean neatPacking,
                                      Parallel par) {
        if (blockSize > m.config().contextLength())
            throw new UserError("--block-size " + blockSize + " exceeds the model's context of " + m.config().contextLength()
                    + " positions; use --block-size " + m.config().contextLength() + " or less");
        TextBlocks.Text text = TextBlocks.tokenizeDocuments(m.tokenizer(), textFile, "--text-file");
        int[] blocks = TextBlocks.cut(text.ids(), blockSize, "--text-file " + textFile);
        int[] starts = neatPacking ? TextBlocks.docStarts(text.docLengths(), blocks.length / blockSize, blockSize) : null;
        Result r = evaluate(m.modelDir(), blocks, starts, blockSize, batchSize, par);
        return new Result(r.loss(), r.tokens(), r.blocks(), blockSize, text.ids().length);
    }
}
