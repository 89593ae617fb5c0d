package dev.cpt4j.train;

import dev.cpt4j.UserError;
import dev.cpt4j.data.Prepare;
import dev.cpt4j.data.PrepareOptions;
import dev.cpt4j.data.TextBlocks;
import dev.cpt4j.data.TokenStore;
import dev.cpt4j.dist.Collective;
import dev.cpt4j.tokenizer.Tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.function.Consumer;

/**
 * The data of a training run, opened from {@link TrainOptions}: one prepared store ({@code --dataset_dir}, several
 * sources concatenated without {@code --interleave_probs}), or one store per source mixed by {@link MixedBatches};
 * blocks with document starts under {@code --neat_packing}; and the general-domain held-out blocks of
 * {@code --general_eval_file} (cut by prepare's rule, {@link TextBlocks}). Closing it unmaps the stores.
 */
public final class TrainData implements AutoCloseable {
    private final List<TokenStore> stores;
    private final BatchSource batches;
    private final GeneralEval general;

    /**
     * General-domain held-out blocks: (count, T) ids and, when packed, their document starts.
     *
     * @param source the file as given
     */
    public record GeneralEval(String source, int[] blocks, int[] docStarts, int blockSize) {
        public long count() {
            return blocks.length / blockSize;
        }

        /** Copies blocks [first, first+count) (and their document starts when both are non-null). */
        public void read(int[] dst, int[] starts, long first, int count) {
            System.arraycopy(blocks, (int) first * blockSize, dst, 0, count * blockSize);
            if (starts != null && docStarts != null)
                System.arraycopy(docStarts, (int) first * blockSize, starts, 0, count * blockSize);
        }

        /** The blocks of {@code file} for {@code tokenizer}, cut into {@code T}-token blocks (starts when packed). */
        public static GeneralEval of(Path file, Tokenizer tokenizer, int T, boolean packed) {
            TextBlocks.Text text = TextBlocks.tokenizeDocuments(tokenizer, file, "--general_eval_file");
            int[] blocks = TextBlocks.cut(text.ids(), T, "--general_eval_file " + file);
            int[] starts = packed ? TextBlocks.docStarts(text.docLengths(), blocks.length / T, T) : null;
            return new GeneralEval(file.toString(), blocks, starts, T);
        }
    }

    private TrainData(List<TokenStore> stores, BatchSource batches, GeneralEval general) {
        this.stores = stores;
        this.batches = batches;
        this.general = general;
    }

    /** Prepares (or reuses) and opens what {@code o} names; T is the block size, nPositions the model's context. */
    public static TrainData open(TrainOptions o, Tokenizer tokenizer, int T, int nPositions, Consumer<String> say) {
        return open(o, tokenizer, T, nPositions, o.perDeviceTrainBatchSize(), say, Collective.SINGLE);
    }

    /**
     * As {@link #open(TrainOptions, Tokenizer, int, int, Consumer)} as one rank of {@code comm}: the batches are
     * global batches of {@code globalBatch} blocks (each rank takes its rows), and under mpirun every rank tokenizes
     * its share of the files, rank 0 assembles the store and the others open it. Neat packing, mixing and the
     * general-domain evaluation run in one process only (refused before this under mpirun).
     */
    public static TrainData open(TrainOptions o, Tokenizer tokenizer, int T, int nPositions, int globalBatch,
                                 Consumer<String> say, Collective comm) {
        List<TokenStore> stores = new ArrayList<>();
        try {
            BatchSource batches;
            if (o.mixing()) {
                List<String> names = new ArrayList<>();
                for (int i = 0; i < o.datasetDirs().size(); i++) {
                    Path src = o.datasetDirs().get(i);
                    names.add(src.toString());
                    Path cache = sourceCache(o, src, i);
                    say.accept("source " + (i + 1) + " of " + o.datasetDirs().size() + ": " + src + " (p = "
                            + o.interleaveProbs().get(i) + ")");
                    stores.add(prepare(o, List.of(src), cache, tokenizer, T, nPositions, say));
                }
                batches = new MixedBatches(stores, names, o.interleaveProbs(), o.seed(), o.neatPacking());
            } else {
                TokenStore store = openSingle(o, tokenizer, T, nPositions, say, comm);
                stores.add(store);
                batches = new StoreBatches(store, globalBatch, o.seed(), o.maxTrainSamples(),
                        o.maxEvalSamples(), o.neatPacking());
            }
            GeneralEval general = null;
            if (o.generalEvalFile() != null) {
                general = GeneralEval.of(o.generalEvalFile(), tokenizer, T, o.neatPacking());
                say.accept(String.format(java.util.Locale.ROOT, "general-domain held-out text %s: %,d blocks of %d tokens",
                        o.generalEvalFile(), general.count(), T));
            }
            return new TrainData(stores, batches, general);
        } catch (RuntimeException e) {
            for (TokenStore s : stores) s.close();
            throw e;
        }
    }

    /**
     * A source's own store: {@code <data_cache_dir>/source-<i>-<name>-<hash>} when {@code --data_cache_dir} is given,
     * else {@code <source>/.cpt4j-cache} for a folder ({@code .<name>.cpt4j-cache} beside a file).
     */
    static Path sourceCache(TrainOptions o, Path src, int i) {
        String name = src.getFileName() == null ? "source" : src.getFileName().toString();
        if (o.dataCacheDir() != null) {
            String h;
            try {
                h = HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                        .digest(src.toAbsolutePath().normalize().toString().getBytes(java.nio.charset.StandardCharsets.UTF_8)), 0, 4);
            } catch (java.security.NoSuchAlgorithmException e) {
                throw new IllegalStateException(e);
            }
            return o.dataCacheDir().resolve("source-" + (i + 1) + "-" + name.replaceAll("[^A-Za-z0-9._-]", "_") + "-" + h);
        }
        if (Files.isRegularFile(src)) return src.toAbsolutePath().getParent().resolve("." + name + ".cpt4j-cache");
        return src.resolve(".cpt4j-cache");
    }

    private static TokenStore prepare(TrainOptions o, List<Path> dataset, Path cache, Tokenizer tokenizer, int T,
                                      int nPositions, Consumer<String> say) {
        PrepareOptions po = new PrepareOptions(dataset, cache, T, o.validationSplit(), o.preprocessingNumWorkers(),
                PrepareOptions.DEFAULT_SEED, false, nPositions, o.neatPacking());
        return Prepare.run(po, tokenizer, say);
    }

    /** The one store: {@code --data_cache_dir}, default {@code <dataset_dir>/.cpt4j-cache}. */
    private static TokenStore openSingle(TrainOptions o, Tokenizer tokenizer, int T, int nPositions, Consumer<String> say,
                                         Collective comm) {
        Path cache = o.dataCacheDir() != null ? o.dataCacheDir() : o.datasetDir().resolve(".cpt4j-cache");
        if (comm.size() > 1 && o.datasetDir() != null) {
            // every rank tokenizes its share of the files into the shared cache, rank 0 assembles the store (reusing
            // all of them), then the others open what it made
            PrepareOptions po = new PrepareOptions(o.sources(), cache, T, o.validationSplit(),
                    o.preprocessingNumWorkers(), PrepareOptions.DEFAULT_SEED, false, nPositions);
            Prepare.tokenizeShare(po, tokenizer, comm.rank(), comm.size(), say);
            comm.barrier();
            if (comm.isRoot()) {
                TokenStore store = openSingle(o, tokenizer, T, nPositions, say, Collective.SINGLE);
                comm.barrier();
                return store;
            }
            comm.barrier();
            return TokenStore.open(cache);
        }
        if (o.datasetDir() != null) return prepare(o, o.sources(), cache, tokenizer, T, nPositions, say);
        TokenStore store = TokenStore.open(cache);
        if (store.blockSize() != T) {
            store.close();
            throw new UserError("--data_cache_dir " + cache + " holds blocks of " + store.blockSize() + " tokens, not "
                    + "--block_size " + T + "; give --dataset_dir to rebuild it or use --block_size " + store.blockSize());
        }
        String why = store.tokenizerMismatch(tokenizer);
        if (why != null) {
            store.close();
            throw new UserError("--data_cache_dir " + cache + " was prepared with another tokenizer than "
                    + o.tokenizerNameOrPath() + " (its manifest has " + why + "); give --dataset_dir to rebuild it "
                    + "with this tokenizer, or train with the tokenizer it was prepared with");
        }
        if (o.neatPacking() && !store.hasDocumentStarts()) {
            store.close();
            throw new UserError("--data_cache_dir " + cache + " was prepared without document boundaries (by an older "
                    + "cpt4j); --neat_packing needs them: give --dataset_dir to prepare it again");
        }
        return store;
    }

    public BatchSource batches() {
        return batches;
    }

    /** The general-domain held-out blocks, or null without {@code --general_eval_file}. */
    public GeneralEval general() {
        return general;
    }

    /** Training blocks of every store. */
    public long trainBlocks() {
        return batches.trainBlocks();
    }

    /** Validation blocks evaluation uses (the first source's when mixing). */
    public long evalBlocks() {
        return batches.evalBlocks();
    }

    @Override
    public void close() {
        for (TokenStore s : stores) s.close();
    }
}
