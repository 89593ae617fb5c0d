package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.data.BatchCursor;
import dev.cpt4j.data.TokenBlocks;
import dev.cpt4j.data.TokenStore;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A {@link BatchSource} that mixes several prepared stores ({@code --dataset_dir A,B --interleave_probs 0.75,0.25},
 * LLaMA-Factory's {@code interleave_under}-style sampling without its stopping rule): every training block is drawn
 * from source i with probability p_i, then taken from that source's own shuffling {@link BatchCursor}, so each source
 * cycles through its own epochs (a small replay set repeats, a large domain set does not).
 *
 * <p>The choice of block n (counted from the start of training) is a pure function of (seed, n): a SplitMix64 hash
 * turned into a uniform number in [0, 1) and compared with the cumulative probabilities. The state is n plus every
 * source's cursor, so a resumed run continues bit for bit. Evaluation uses the validation split of the FIRST source
 * (the domain being learned; put the replay sources after it).
 */
public final class MixedBatches implements BatchSource {
    private final List<String> names;       // the sources as the user gave them
    private final List<TokenBlocks> train;
    private final List<BatchCursor> cursors;
    private final double[] cumulative;      // (S) cumulative probabilities, the last forced to 1
    private final TokenBlocks validation;   // the first source's
    private final long seed;
    private final int T;
    private final boolean packed;
    private final long[] served;            // (S) blocks served per source
    private final int[] one, oneStarts;     // (T) one block
    private long n;                         // blocks served in all

    /**
     * @param stores      one prepared store per source, same block size and tokenizer
     * @param names       the sources as given (keys of {@link #tokensBySource()})
     * @param probs       sampling probability of each source (validated by {@link TrainOptions})
     * @param neatPacking serve document starts too (every store must record them)
     */
    public MixedBatches(List<TokenStore> stores, List<String> names, List<Double> probs, long seed, boolean neatPacking) {
        if (stores.size() != names.size() || stores.size() != probs.size() || stores.size() < 2)
            throw new IllegalArgumentException("one name and probability per store, at least two stores");
        this.names = List.copyOf(names);
        this.T = stores.getFirst().blockSize();
        this.seed = seed;
        this.packed = neatPacking;
        this.train = new ArrayList<>();
        this.cursors = new ArrayList<>();
        this.cumulative = new double[stores.size()];
        double c = 0;
        for (int i = 0; i < stores.size(); i++) {
            TokenStore s = stores.get(i);
            if (s.blockSize() != T) throw new IllegalArgumentException("stores of different block sizes");
            if (neatPacking && !s.hasDocumentStarts())
                throw new UserError(s.dir() + " was prepared without document boundaries; --neat_packing needs them: "
                        + "prepare it again");
            TokenBlocks b = s.train();
            if (b.blockCount() < 1)
                throw new UserError("--dataset_dir source " + names.get(i) + " gives no training block of " + T
                        + " tokens (it is empty or too short); add text to it, lower --block_size or leave it out");
            train.add(b);
            cursors.add(new BatchCursor(b, 1, sourceSeed(seed, i), true));
            c += probs.get(i);
            cumulative[i] = c;
        }
        cumulative[cumulative.length - 1] = 1.0;
        this.validation = stores.getFirst().validation();
        this.served = new long[stores.size()];
        this.one = new int[T];
        this.oneStarts = new int[T];
    }

    /** Each source's cursor has its own seed, so two sources of equal size do not share an order. */
    static long sourceSeed(long seed, int source) {
        return source == 0 ? seed : mix(seed + 0x632BE59BD9B4E019L * source);
    }

    /** The source of block number {@code n}: a pure function of (seed, n). */
    int sourceOf(long n) {
        double u = (mix(mix(seed ^ 0xD1B54A32D192ED03L) + n) >>> 11) * 0x1.0p-53;
        for (int i = 0; i < cumulative.length; i++) if (u < cumulative[i]) return i;
        return cumulative.length - 1;
    }

    @Override
    public int blockSize() {
        return T;
    }

    /** Training blocks of all sources together (what {@code --num_train_epochs} counts). */
    @Override
    public long trainBlocks() {
        long t = 0;
        for (TokenBlocks b : train) t += b.blockCount();
        return t;
    }

    @Override
    public void nextTrain(int[] dst, int batch) {
        nextTrain(dst, null, batch);
    }

    @Override
    public boolean packed() {
        return packed;
    }

    @Override
    public void nextTrain(int[] dst, int[] docStarts, int batch) {
        for (int b = 0; b < batch; b++) {
            int s = sourceOf(n++);
            cursors.get(s).next(one, docStarts == null ? null : oneStarts);
            System.arraycopy(one, 0, dst, b * T, T);
            if (docStarts != null) System.arraycopy(oneStarts, 0, docStarts, b * T, T);
            served[s]++;
        }
    }

    @Override
    public long evalBlocks() {
        return validation.blockCount();
    }

    @Override
    public void evalBlocks(int[] dst, long first, int count) {
        for (int i = 0; i < count; i++) validation.readBlock(first + i, dst, i * T);
    }

    @Override
    public void evalBlocks(int[] dst, int[] docStarts, long first, int count) {
        evalBlocks(dst, first, count);
        if (docStarts != null) for (int i = 0; i < count; i++) validation.readDocStarts(first + i, docStarts, i * T);
    }

    @Override
    public Map<String, Long> tokensBySource() {
        Map<String, Long> m = new LinkedHashMap<>();
        for (int i = 0; i < names.size(); i++) m.put(names.get(i), served[i] * T);
        return m;
    }

    @Override
    public JsonNode state() {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.put("kind", "mixed");
        o.put("blocks_served", n);
        o.put("neat_packing", packed);
        ArrayNode a = o.putArray("sources");
        for (int i = 0; i < names.size(); i++) {
            BatchCursor.State st = cursors.get(i).state();
            ObjectNode s = a.addObject();
            s.put("source", names.get(i));
            s.put("epoch", st.epoch());
            s.put("position", st.position());
            s.put("train_blocks", train.get(i).blockCount());
            s.put("blocks_served", served[i]);
        }
        return o;
    }

    @Override
    public void restore(JsonNode state) {
        JsonNode a = state.path("sources");
        if (!"mixed".equals(state.path("kind").asText()) || a.size() != names.size())
            throw new UserError("the checkpoint was not trained on these " + names.size() + " mixed sources; resume with "
                    + "the same --dataset_dir and --interleave_probs");
        if (state.path("neat_packing").asBoolean(false) != packed)
            throw new UserError("the checkpoint was trained " + (packed ? "without" : "with") + " --neat_packing; resume "
                    + (packed ? "without" : "with") + " it, or start a new --output_dir");
        for (int i = 0; i < names.size(); i++) {
            JsonNode s = a.get(i);
            if (!s.path("source").asText().equals(names.get(i)) || s.path("train_blocks").asLong() != train.get(i).blockCount())
                throw new UserError("source " + (i + 1) + " of the checkpoint is " + s.path("source").asText() + " with "
                        + s.path("train_blocks").asLong() + " training blocks, now it is " + names.get(i) + " with "
                        + train.get(i).blockCount() + "; resume with the same --dataset_dir, tokenizer and --block_size");
        }
        for (int i = 0; i < names.size(); i++) {
            JsonNode s = a.get(i);
            cursors.get(i).restore(new BatchCursor.State(s.path("epoch").asLong(), s.path("position").asLong()));
            served[i] = s.path("blocks_served").asLong();
        }
        n = state.path("blocks_served").asLong();
    }

    private static long mix(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
