package dev.cpt4j.generate;

import dev.cpt4j.UserError;
import dev.cpt4j.data.TextBlocks;
import dev.cpt4j.data.TokenBlocks;
import dev.cpt4j.data.TokenStore;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * Base model vs. base + adapter, the seed's before/after comparison done with numbers: held-out loss and perplexity
 * of both on the same blocks, and continuations of the same prompts with the same seeds. The result is a
 * {@link CompareReport}; {@code cpt4j compare} writes it, {@code cpt4j demo} reuses this call.
 *
 * <p>Both models see identical ids: held-out text and prompts are tokenized once, with the tokenizer of base +
 * adapter (the adapter directory's, if it ships one). The two models are loaded one after the other, so only one
 * parameter buffer is alive at a time.
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
     * Where the held-out blocks come from: a prepared directory, or else a text file cut into blockSize blocks;
     * {@code neatPacking} scores each document (line) alone; {@code generalFile} (may be null) is general-domain
     * held-out text measured the same way before and after (forgetting).
     */
    public record EvalData(Path prepared, Path textFile, int blockSize, boolean neatPacking, Path generalFile) {
        public EvalData(Path prepared, Path textFile, int blockSize) {
            this(prepared, textFile, blockSize, false, null);
        }
    }

    /**
     * Runs the comparison.
     *
     * @param gen      sampling settings, applied to both models with the same seed per prompt
     * @param progress receives one line per stage (may be null)
     */
    public static CompareReport run(Path model, Path adapter, EvalData data, List<String> prompts, GenerationConfig gen,
                                    int batchSize, Parallel par, Consumer<String> progress) {
        Consumer<String> log = progress == null ? s -> {} : progress;
        if (prompts.isEmpty()) throw new UserError("no prompts to compare; write one prompt per line");
        log.accept("loading " + model + " + " + adapter);
        LoadedModel tuned = LoadedModel.load(model, adapter);
        int textBlock = Math.min(data.blockSize(), tuned.config().contextLength());
        HeldOut held = data.prepared() != null
                ? HeldOut.fromStore(data.prepared(), tuned.tokenizer().fingerprint(), data.neatPacking())
                : HeldOut.fromText(tuned, data.textFile(), textBlock, data.neatPacking(), "--text-file");
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
        log.accept(String.format(Locale.ROOT, "evaluating base + adapter on %d blocks of %d tokens", held.count(), held.blockSize()));
        Evaluation.Result after = Evaluation.evaluate(tuned.modelDir(), held.blocks(), held.docStarts(), held.blockSize(), batchSize, par);
        Evaluation.Result generalAfter = null;
        if (general != null) {
            log.accept(String.format(Locale.ROOT, "evaluating base + adapter on the general-domain text (%d blocks)", general.count()));
            generalAfter = Evaluation.evaluate(tuned.modelDir(), general.blocks(), general.docStarts(), general.blockSize(), batchSize, par);
        }
        List<List<String>> afterTexts = sample(tuned, promptIds, gen, par);
        var tokenizer = tuned.tokenizer();
        tuned = null; // one model in memory at a time

        log.accept("loading " + model + " (base)");
        LoadedModel base = LoadedModel.load(model, null);
        for (HeldOut h : general == null ? List.of(held) : List.of(held, general))
            for (int id : h.blocks())
                if (id >= base.config().vocabSize())
                    throw new UserError("the held-out text " + h.source() + " has token " + id + ", which the base model's vocabulary of "
                            + base.config().vocabSize() + " lacks (tokens were added for the adapter); compare on text without them");
        log.accept("evaluating the base model");
        Evaluation.Result before = Evaluation.evaluate(base.modelDir(), held.blocks(), held.docStarts(), held.blockSize(), batchSize, par);
        CompareReport.General generalRow = null;
        if (general != null) {
            Evaluation.Result generalBefore = Evaluation.evaluate(base.modelDir(), general.blocks(), general.docStarts(),
                    general.blockSize(), batchSize, par);
            generalRow = new CompareReport.General(general.source(), general.count(), generalBefore.loss(), generalAfter.loss());
        }
        LoadedModel baseWithTokenizer = new LoadedModel(base.config(), base.layout(), base.params(), tokenizer, base.tokenizerDir());
        List<List<String>> beforeTexts = sample(baseWithTokenizer, promptIds, gen, par);

        List<CompareReport.PromptSamples> samples = new ArrayList<>();
        for (int i = 0; i < prompts.size(); i++)
            samples.add(new CompareReport.PromptSamples(prompts.get(i), gen.seed(), beforeTexts.get(i), afterTexts.get(i)));
        String settings = String.format(Locale.ROOT, "%s, %d sequence(s) per prompt, %s new tokens, seed %d",
                gen.doSample() ? String.format(Locale.ROOT, "sampling (top-k %d, top-p %.2f, temperature %.2f)",
                        gen.topK(), gen.topP(), gen.temperature()) : "greedy",
                gen.numReturnSequences(), gen.maxNewTokens() == GenerationConfig.UNSET ? "default" : "" + gen.maxNewTokens(), gen.seed());
        return new CompareReport(model.toString(), adapter.toString(), held.source(), Math.toIntExact(after.blocks()),
                (long) after.blocks() * (held.blockSize() - 1), before.loss(), after.loss(), settings, samples, generalRow);
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
