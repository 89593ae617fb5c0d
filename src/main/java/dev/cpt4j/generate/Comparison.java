package dev.cpt4j.generate;

import dev.cpt4j.UserError;
import dev.cpt4j.data.TextBlocks;
import dev.cpt4j.data.TokenBlocks;
import dev.cpt4j.data.TokenStore;
import dev.cpt4j.hf.ModelSource;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Two models side by side — base vs. base + adapter (the seed's before/after comparison), a base vs. its full
 * fine-tune, two adapters, two checkpoints — done with numbers: held-out loss and perplexity of both on the same
 * blocks, and continuations of the same prompts with the same seeds. The result is a {@link CompareReport};
 * {@code cpt4j compare} writes it, {@code cpt4j demo} reuses this call.
 *
 * <p>Both models see identical ids: held-out text and prompts are tokenized once, with the tokenizer of the
 * {@code after} model (an adapter directory's, if it ships one). The two models are loaded one after the other, so
 * only one parameter buffer is alive at a time.
 */
public final class Comparison {
    private Comparison() {}

    /**
     * Held-out blocks, row-major (blocks, blockSize), what they came from (for the report), and with neat packing each
     * token's document start in its block (else null).
     */
    public record HeldOut(int[] blocks, int blockSize, String source, int[] docStarts) {
        public HeldOut(int[] blocks, int blockSize, String source) {
            this(blocks, blockSize, source, null);
        }

        public int count() {
            return blocks.length / blockSize;
        }

        /** The validation blocks of a prepared store ({@code cpt4j prepare}). */
        public static HeldOut fromStore(Path dir, String tokenizerFingerprint) {
            return fromStore(dir, tokenizerFingerprint, false);
        }

        /** As {@link #fromStore(Path, String)}, with document starts when {@code neatPacking}. */
        public static HeldOut fromStore(Path dir, String tokenizerFingerprint, boolean neatPacking) {
            try (TokenStore store = TokenStore.open(dir)) {
                if (neatPacking && !store.hasDocumentStarts())
                    throw new UserError("--data " + dir + " was prepared without document boundaries (by an older cpt4j); "
                            + "--neat_packing needs them: run 'cpt4j prepare' on it again");
                if (tokenizerFingerprint != null && !tokenizerFingerprint.equals(store.manifest().tokenizerFingerprint()))
                    throw new UserError("--data " + dir + " was prepared with another tokenizer than the model's; run 'cpt4j prepare' with the model's tokenizer or use --text-file");
                TokenBlocks v = store.validation();
                if (v.blockCount() == 0)
                    throw new UserError("--data " + dir + " has no validation blocks; prepare it with a validation split or use --text-file");
                int n = Math.toIntExact(Math.min(v.blockCount(), Integer.MAX_VALUE / v.blockSize()));
                int[] blocks = new int[n * v.blockSize()];
                int[] starts = neatPacking ? new int[blocks.length] : null;
                for (int i = 0; i < n; i++) {
                    v.readBlock(i, blocks, i * v.blockSize());
                    if (starts != null) v.readDocStarts(i, starts, i * v.blockSize());
                }
                return new HeldOut(blocks, v.blockSize(), dir.toString() + " (validation split)", starts);
            }
        }

        /** The whole blocks of a text file's non-blank lines ({@link TextBlocks}, prepare's rule). */
        public static HeldOut fromText(LoadedModel m, Path file, int blockSize) {
            return fromText(m, file, blockSize, false, "--text-file");
        }

        /** As {@link #fromText(LoadedModel, Path, int)}; {@code flag} names the file in messages. */
        public static HeldOut fromText(LoadedModel m, Path file, int blockSize, boolean neatPacking, String flag) {
            TextBlocks.Text text = TextBlocks.tokenizeDocuments(m.tokenizer(), file, flag);
            int[] blocks = TextBlocks.cut(text.ids(), blockSize, flag + " " + file);
            int[] starts = neatPacking ? TextBlocks.docStarts(text.docLengths(), blocks.length / blockSize, blockSize) : null;
            return new HeldOut(blocks, blockSize, file.toString(), starts);
        }
    }

    /**
     * Where the held-out blocks come from: a prepared directory, or else a text file cut into blockSize blocks
     * (0: {@link Evaluation#DEFAULT_BLOCK_SIZE} capped at the model's context); {@code neatPacking} scores each
     * document (line) alone; {@code generalFile} (may be null) is general-domain held-out text measured the same way
     * on both models (forgetting).
     */
    public record EvalData(Path prepared, Path textFile, int blockSize, boolean neatPacking, Path generalFile) {
        /** Plain packing, no general-domain text. */
        public EvalData(Path prepared, Path textFile, int blockSize) {
            this(prepared, textFile, blockSize, false, null);
        }
    }

    private static int checkedBlockSize(int requested, int context) {
        if (requested > context)
            throw new UserError("--block-size " + requested + " exceeds the model's context of " + context
                    + " positions; use --block-size " + context + " or less");
        return Evaluation.blockSize(requested, context);
    }

    /** Resolves both models of {@code o} and runs the comparison ({@code cpt4j compare}). */
    public static CompareReport run(CompareOptions o, Consumer<String> progress) {
        if (o.data() != null && !Files.isDirectory(o.data()))
            throw new UserError("--data " + o.data() + " is not a directory; give the output directory of 'cpt4j prepare'");
        if (o.textFile() != null && !Files.isRegularFile(o.textFile()))
            throw new UserError("--text-file " + o.textFile() + " does not exist or is not a file");
        if (o.generalEvalFile() != null && !Files.isRegularFile(o.generalEvalFile()))
            throw new UserError("--general_eval_file " + o.generalEvalFile() + " does not exist or is not a file");
        ModelSource after = o.after();
        ModelSource before = o.before(after);
        if (same(before.model(), after.model()) && sameOrBothNull(before.adapter(), after.adapter()))
            throw new UserError("both sides of the comparison are " + after.describe() + "; give two different models");
        GenerationConfig gen = o.generation(TextGeneration.defaultEos(LoadedModel.tokenizerOf(after)));
        try (Parallel par = new Parallel(o.threads())) {
            return run(before, after, new EvalData(o.data(), o.textFile(), o.blockSize(), o.neatPacking(), o.generalEvalFile()), o.prompts(), gen,
                    o.batchSize(), par, progress);
        }
    }

    private static boolean sameOrBothNull(Path a, Path b) {
        return a == null ? b == null : b != null && same(a, b);
    }

    /**
     * Base model vs. base + adapter: {@link #run(ModelSource, ModelSource, EvalData, List, GenerationConfig, int,
     * Parallel, Consumer)} with {@code before = model} and {@code after = model + adapter}.
     */
    public static CompareReport run(Path model, Path adapter, EvalData data, List<String> prompts, GenerationConfig gen,
                                    int batchSize, Parallel par, Consumer<String> progress) {
        if (adapter == null) throw new UserError("no adapter to compare the model with; pass --adapter DIR");
        return run(ModelSource.resolve(model, null), ModelSource.resolve(model, adapter), data, prompts, gen, batchSize,
                par, progress);
    }

    /**
     * Runs the comparison of any two models: a base and a full fine-tune, two adapters, two checkpoints. Held-out
     * text and prompts are tokenized once with the tokenizer of {@code after} (the newer model, which may have
     * added tokens); {@code before} must have an embedding row for every id.
     *
     * @param before   the reference model (left column)
     * @param after    the model compared with it (right column)
     * @param gen      sampling settings, applied to both models with the same seed per prompt
     * @param progress receives one line per stage (may be null)
     */
    public static CompareReport run(ModelSource before, ModelSource after, EvalData data, List<String> prompts,
                                    GenerationConfig gen, int batchSize, Parallel par, Consumer<String> progress) {
        Consumer<String> log = progress == null ? s -> {} : progress;
        if (prompts.isEmpty()) throw new UserError("no prompts to compare; write one prompt per line");
        String[] headings = headings(before, after);
        log.accept("loading " + after.describe() + " (" + headings[1] + ")");
        LoadedModel tuned = LoadedModel.load(after);
        HeldOut held = data.prepared() != null
                ? HeldOut.fromStore(data.prepared(), tuned.tokenizer().fingerprint(), data.neatPacking())
                : HeldOut.fromText(tuned, data.textFile(), checkedBlockSize(data.blockSize(), tuned.config().contextLength()),
                        data.neatPacking(), "--text-file");
        HeldOut general = data.generalFile() == null ? null
                : HeldOut.fromText(tuned, data.generalFile(), held.blockSize(), data.neatPacking(), "--general_eval_file");
        if (held.blockSize() > tuned.config().contextLength())
            throw new UserError("held-out blocks of " + held.blockSize() + " tokens exceed the model's context of "
                    + tuned.config().contextLength() + " positions");
        List<int[]> promptIds = new ArrayList<>();
        for (String p : prompts) {
            int[] ids = tuned.tokenizer().encode(p, false);
            gen.newTokens(ids.length, tuned.config().contextLength()); // empty or too long: one clear line now
            promptIds.add(ids);
        }
        log.accept(String.format(Locale.ROOT, "evaluating %s on %d blocks of %d tokens", headings[1], held.count(), held.blockSize()));
        Evaluation.Result afterEval = Evaluation.evaluate(tuned.modelDir(), held.blocks(), held.docStarts(), held.blockSize(),
                batchSize, par);
        Evaluation.Result generalAfter = null;
        if (general != null) {
            log.accept(String.format(Locale.ROOT, "evaluating %s on the general-domain text (%d blocks)", headings[1], general.count()));
            generalAfter = Evaluation.evaluate(tuned.modelDir(), general.blocks(), general.docStarts(), general.blockSize(),
                    batchSize, par);
        }
        List<List<String>> afterTexts = sample(tuned, promptIds, gen, par);
        var tokenizer = tuned.tokenizer();
        tuned = null; // one model in memory at a time

        log.accept("loading " + before.describe() + " (" + headings[0] + ")");
        LoadedModel ref = LoadedModel.load(before);
        if (!ref.tokenizer().fingerprint().equals(tokenizer.fingerprint()))
            log.accept("the two models' tokenizers differ; both are given the ids of " + headings[1] + "'s tokenizer");
        if (held.blockSize() > ref.config().contextLength())
            throw new UserError("held-out blocks of " + held.blockSize() + " tokens exceed the context of " + before.describe()
                    + " (" + ref.config().contextLength() + " positions); use --block-size " + ref.config().contextLength() + " or less");
        for (HeldOut h : general == null ? List.of(held) : List.of(held, general))
            for (int id : h.blocks())
                if (id >= ref.config().vocabSize())
                    throw new UserError("the held-out text " + h.source() + " has token " + id + ", which the vocabulary of "
                            + before.describe() + " (" + ref.config().vocabSize() + " ids) lacks (tokens were added for "
                            + "the other model); compare on text without them");
        log.accept("evaluating " + headings[0]);
        Evaluation.Result beforeEval = Evaluation.evaluate(ref.modelDir(), held.blocks(), held.docStarts(), held.blockSize(),
                batchSize, par);
        CompareReport.General generalRow = null;
        if (general != null) {
            Evaluation.Result generalBefore = Evaluation.evaluate(ref.modelDir(), general.blocks(), general.docStarts(),
                    general.blockSize(), batchSize, par);
            generalRow = new CompareReport.General(general.source(), general.count(), generalBefore.loss(), generalAfter.loss());
        }
        LoadedModel refWithTokenizer = new LoadedModel(ref.config(), ref.layout(), ref.params(), tokenizer, ref.tokenizerDir());
        List<List<String>> beforeTexts = sample(refWithTokenizer, promptIds, gen, par);

        List<CompareReport.PromptSamples> samples = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++)
            samples.add(new CompareReport.PromptSamples(prompts.get(i), gen.seed(), beforeTexts.get(i), afterTexts.get(i)));
        String settings = String.format(Locale.ROOT, "%s, %d sequence(s) per prompt, %s new tokens, seed %d",
                gen.doSample() ? String.format(Locale.ROOT, "sampling (top-k %d, top-p %.2f, temperature %.2f)",
                        gen.topK(), gen.topP(), gen.temperature()) : "greedy",
                gen.numReturnSequences(), gen.maxNewTokens() == GenerationConfig.UNSET ? "default" : "" + gen.maxNewTokens(), gen.seed());
        return new CompareReport(side(headings[0], before), side(headings[1], after), held.source(),
                Math.toIntExact(afterEval.blocks()), (long) afterEval.blocks() * (held.blockSize() - 1),
                beforeEval.loss(), afterEval.loss(), settings, samples, generalRow);
    }

    private static CompareReport.Side side(String heading, ModelSource s) {
        return new CompareReport.Side(heading, s.model().toString(), s.adapter() == null ? null : s.adapter().toString());
    }

    /**
     * Column headings: "base" and "base + adapter" when {@code after} is {@code before} plus an adapter (the
     * classic case), else the folders' short names ({@link ModelSource#shortName}), told apart when equal.
     */
    static String[] headings(ModelSource before, ModelSource after) {
        if (before.adapter() == null && after.adapter() != null && same(before.model(), after.model()))
            return new String[] {"base", "base + adapter"};
        String a = before.shortName(), b = after.shortName();
        if (a.equals(b)) {
            a = "A: " + a;
            b = "B: " + b;
        }
        return new String[] {a, b};
    }

    private static boolean same(Path x, Path y) {
        return x.toAbsolutePath().normalize().equals(y.toAbsolutePath().normalize());
    }

    /** Continuations (clean text, prompt excluded) of every prompt. */
    private static List<List<String>> sample(LoadedModel m, List<int[]> prompts, GenerationConfig gen, Parallel par) {
        int longest = 0;
        for (int[] p : prompts) longest = Math.max(longest, p.length + gen.newTokens(p.length, m.config().contextLength()));
        StepModel dec = m.decoder(gen.numReturnSequences(), longest, par);
        List<List<String>> out = new ArrayList<>();
        for (int[] p : prompts) {
            List<String> texts = new ArrayList<>();
            for (TextGeneration.Sample s : TextGeneration.run(dec, m.tokenizer()::decode, p, gen, null)) texts.add(s.completion());
            out.add(texts);
        }
        return out;
    }
}
