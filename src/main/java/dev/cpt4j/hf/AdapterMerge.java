package dev.cpt4j.hf;

import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.model.VocabResize;
import dev.cpt4j.tensor.ParamLayout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Folds a PEFT LoRA adapter into its base model for inference (what peft's {@code merge_and_unload} computes), so
 * decoding and evaluation run on one plain parameter buffer. Architecture-neutral: which modules an adapter may
 * adapt or save, and how their weights are stored, is the family's ({@link ModelFamily#loraTargets},
 * {@link ModelFamily#savableModules}).
 *
 * <ul>
 *   <li>LoRA on an {@code nn.Linear} (LLaMA's projections, any head; weight {@code [out, in]}): {@code W += B·A·s};
 *       on a weight stored {@code [in, out]} (GPT-2's {@code Conv1D}, peft's {@code fan_in_fan_out}; an embedding
 *       with {@code lora_embedding_A [r, V]}, {@code lora_embedding_B [C, r]}): {@code W += (B·A)ᵀ·s};
 *       {@code s = lora_alpha / r}, or {@code lora_alpha / √r} with rsLoRA (peft {@code LoraLayer.update_layer}),
 *       per module from {@code rank_pattern} / {@code alpha_pattern} where those name it. The config's
 *       {@code fan_in_fan_out} is not consulted: peft itself overrides it by the module's type.</li>
 *   <li>{@code modules_to_save} copies ({@code base_model.model.model.embed_tokens.weight},
 *       {@code …lm_head.weight}, GPT-2's {@code …transformer.wte.weight}, …) replace the base tensors. With a tied
 *       base, peft's wrapper copies only the module it wraps, so the other side keeps the base tensor: whenever the
 *       input embedding and the output head end up different the result is untied ({@code tie_word_embeddings
 *       false}, separate head), exactly what the PeftModel computed (peft#2018). peft's
 *       {@code ensure_weight_tying: true} keeps them tied.</li>
 *   <li>An adapter whose embedding copies have more rows than the base vocabulary (tokens were added before
 *       training) resizes the base first — no manual {@code resize_token_embeddings}. New rows of a tensor the
 *       adapter does not carry get the mean of the old rows ({@link VocabResize}).</li>
 *   <li>Shapes that do not fit the base (another width, more layers, a smaller vocabulary) are one {@link UserError}
 *       that says what the adapter was made for and what this base is; so are keys for modules the family does not
 *       have, a rank that disagrees with {@code r}, and {@code target_modules} / {@code modules_to_save} names the
 *       family has no module for ({@code target_modules} may also be peft's {@code "all-linear"} or a regex).</li>
 * </ul>
 * Not a trainer: the result has no LoRA tensors left.
 */
public final class AdapterMerge {
    private AdapterMerge() {}

    private static final Pattern LORA = Pattern.compile(
            "base_model\\.model\\.(.+)\\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)(\\.weight)?");

    /** Loads a model directory and, if {@code adapterDir} is not null, merges that adapter into it. */
    public static HfCheckpoints.ModelDir load(Path modelDir, Path adapterDir) {
        HfCheckpoints.ModelDir base = HfCheckpoints.loadModelDir(modelDir);
        if (adapterDir == null) return base;
        return merge(base, PeftAdapters.read(adapterDir), adapterDir.toString(), modelDir.toString());
    }

    /**
     * Tokenizer and generation files a merged directory carries over: the tokenizer files all from the adapter
     * directory when it holds a tokenizer, else all from the base; the others from the adapter first, then the base.
     */
    public static final List<String> SIDE_FILES = java.util.stream.Stream.concat(
            dev.cpt4j.tokenizer.TokenizerFiles.ALL.stream(), java.util.stream.Stream.of("generation_config.json")).toList();

    /**
     * Writes base + adapter as a plain transformers checkpoint: {@code model.safetensors} (F32), {@code config.json}
     * (the base's other keys kept; vocab_size and tie_word_embeddings as merged) and the tokenizer files. Everything
     * is written into a temporary sibling directory that is renamed to {@code output} at the end; an existing
     * {@code output} must be an empty directory (nothing of the user's is replaced).
     */
    public static HfCheckpoints.ModelDir writeMerged(Path modelDir, Path adapterDir, Path output) {
        Path out = output.toAbsolutePath().normalize();
        checkOutput(out);
        HfCheckpoints.ModelDir m = load(modelDir, adapterDir);
        Path parent = out.getParent();
        Path tmp;
        try {
            Files.createDirectories(parent);
            tmp = Files.createTempDirectory(parent, "." + out.getFileName() + ".tmp-");
        } catch (IOException e) {
            throw new UserError("--output " + output + ": cannot create a directory beside it (" + e.getMessage() + ")");
        }
        try {
            HfCheckpoints.save(tmp, m.config(), m.layout(), m.params(), DType.F32, HfCheckpoints.readConfigJson(modelDir));
            // The tokenizer comes whole from one directory — the adapter's when it ships one (trained after adding
            // tokens), else the base's — so no stale vocab.txt lands beside a larger tokenizer.json.
            Path tokDir = adapterDir != null && dev.cpt4j.tokenizer.TokenizerFiles.present(adapterDir) ? adapterDir : modelDir;
            for (String f : dev.cpt4j.tokenizer.TokenizerFiles.ALL)
                if (Files.isRegularFile(tokDir.resolve(f))) Files.copy(tokDir.resolve(f), tmp.resolve(f));
            for (String f : SIDE_FILES) {
                if (dev.cpt4j.tokenizer.TokenizerFiles.ALL.contains(f)) continue;
                Path src = adapterDir != null && Files.isRegularFile(adapterDir.resolve(f)) ? adapterDir.resolve(f) : modelDir.resolve(f);
                if (Files.isRegularFile(src)) Files.copy(src, tmp.resolve(f));
            }
            checkOutput(out); // again: nothing may have appeared there meanwhile
            dev.cpt4j.io.AtomicFiles.publishable(tmp);
            Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (IOException e) {
            deleteQuietly(tmp);
            throw new UserError("--output " + output + ": cannot write the merged model (" + e.getMessage() + ")");
        } catch (RuntimeException e) {
            deleteQuietly(tmp);
            throw e;
        }
        return m;
    }

    private static void checkOutput(Path out) {
        if (!Files.exists(out)) return;
        if (!Files.isDirectory(out)) throw new UserError("--output " + out + " is a file; give a new or empty directory");
        try (var entries = Files.list(out)) {
            if (entries.findAny().isPresent())
                throw new UserError("--output " + out + " is not empty; give a new or empty directory (cpt4j never replaces existing files)");
        } catch (IOException e) {
            throw new UserError("--output " + out + ": cannot read it (" + e.getMessage() + ")");
        }
    }

    /** Removes the temporary directory this class created (its own files only). */
    private static void deleteQuietly(Path tmp) {
        try (var walk = Files.walk(tmp)) {
            walk.sorted(java.util.Comparator.reverseOrder()).forEach(f -> {
                try {
                    Files.deleteIfExists(f);
                } catch (IOException ignored) {
                    // best effort: a left-over temporary directory is harmless
                }
            });
        } catch (IOException ignored) {
            // best effort
        }
    }

    /**
     * The adapter as a decoder applies it unmerged over the base's shared weights ({@code cpt4j serve}): its per-layer
     * LoRA pairs with their scales, and its copies of the token embedding and the head. Null, with the reason appended
     * to {@code why}, for an adapter that changes more than that (a resized vocabulary, trainable tokens, LoRA on the
     * embedding or the head, other {@code modules_to_save}): such an adapter is served merged. Everything
     * {@link #merge} checks is checked first (same errors).
     */
    public static dev.cpt4j.model.UnmergedAdapter unmerged(HfCheckpoints.ModelDir base, PeftAdapters.Adapter adapter,
                                                           String adapterName, String baseName, StringBuilder why) {
        ModelConfig bc = base.config();
        ModelFamily fam = bc.family();
        HfCheckpoints.ModelDir merged = merge(base, adapter, adapterName, baseName);
        if (merged.config().vocabSize() != bc.vocabSize()) {
            why.append("it resizes the vocabulary to ").append(merged.config().vocabSize());
            return null;
        }
        String EMB = fam.tokenEmbedding(), HEAD = fam.outputHead();
        Map<String, String> savable = new LinkedHashMap<>();
        for (ModelFamily.SavedModule m : fam.savableModules(bc))
            for (int i = 0; i < m.parameters().size(); i++) savable.put(m.parameters().get(i), m.views().get(i));
        Map<String, ModelFamily.LoraTarget> targets = byModule(fam.loraTargets(bc));
        List<String> sites = fam.loraSites();
        Map<String, PeftAdapters.Tensor[]> pairs = new LinkedHashMap<>();
        float[] emb = null, head = null;
        for (var e : adapter.tensors().entrySet()) {
            String key = e.getKey();
            String param = key.startsWith(PeftAdapters.PREFIX) ? key.substring(PeftAdapters.PREFIX.length()) : key;
            if (savable.containsKey(param)) {
                String view = savable.get(param);
                if (param.equals(EMB) || view.equals(EMB) && !param.equals(HEAD)) emb = e.getValue().data();
                else if (param.equals(HEAD)) head = e.getValue().data();
                else {
                    why.append("it saves ").append(param).append(" in full");
                    return null;
                }
                continue;
            }
            Matcher m = LORA.matcher(key);
            if (!m.matches() || m.group(2).startsWith("lora_embedding")) {
                why.append("it holds ").append(param);
                return null;
            }
            ModelFamily.LoraTarget t = targets.get(m.group(1));
            if (t == null || t.layer() < 0) {
                why.append("it has LoRA on ").append(m.group(1));
                return null;
            }
            pairs.computeIfAbsent(m.group(1), k -> new PeftAdapters.Tensor[2])[m.group(2).endsWith("A") ? 0 : 1] = e.getValue();
        }
        List<dev.cpt4j.model.UnmergedAdapter.Delta> deltas = new ArrayList<>();
        for (var e : pairs.entrySet()) {
            ModelFamily.LoraTarget t = targets.get(e.getKey());
            int site = -1;
            for (int i = 0; i < sites.size(); i++) if (t.module().endsWith("." + sites.get(i))) site = i;
            if (site < 0) {
                why.append("it has LoRA on ").append(e.getKey());
                return null;
            }
            PeftAdapters.Tensor a = e.getValue()[0], b = e.getValue()[1];
            deltas.add(new dev.cpt4j.model.UnmergedAdapter.Delta(t.layer(), site, a.shape()[0],
                    (float) scaling(adapter.config(), e.getKey()), a.data(), b.data(), t.in(), t.out()));
        }
        // tying as merge resolves it: a tied base keeps one matrix only with ensure_weight_tying
        if (bc.tieWordEmbeddings() && adapter.config().extra().path("ensure_weight_tying").asBoolean(false)) {
            if (emb != null) head = emb;
            else if (head != null) emb = head;
        }
        return new dev.cpt4j.model.UnmergedAdapter(adapterName, deltas, emb, head);
    }

    /**
     * The base with the adapter merged in. {@code base} is not modified; the result has its own buffer and, after a
     * resize or untying, its own config and layout.
     *
     * @param adapterName names the adapter in messages (its directory)
     * @param baseName    names the base in messages (its directory)
     */
    public static HfCheckpoints.ModelDir merge(HfCheckpoints.ModelDir base, PeftAdapters.Adapter adapter,
                                               String adapterName, String baseName) {
        ModelConfig bc = base.config();
        ModelFamily fam = bc.family();
        String arch = fam.displayName();
        String EMB = fam.tokenEmbedding(), HEAD = fam.outputHead();
        int C = bc.hiddenSize(), V = bc.vocabSize(), L = bc.numLayers();
        PeftAdapters.LoraConfig lc = adapter.config();
        List<ModelFamily.LoraTarget> baseTargets = fam.loraTargets(bc);
        checkNames(lc, fam, bc, baseTargets, adapterName);

        // ---- what the adapter holds, and whether it fits this base
        Map<String, String> savable = new LinkedHashMap<>();  // HF parameter -> base view
        for (ModelFamily.SavedModule m : fam.savableModules(bc))
            for (int i = 0; i < m.parameters().size(); i++) savable.put(m.parameters().get(i), m.views().get(i));
        Map<String, PeftAdapters.Tensor[]> lora = new LinkedHashMap<>();  // module -> {A, B}
        Map<String, Boolean> embeddingKeys = new LinkedHashMap<>();      // module -> keys are lora_embedding_*
        Map<String, PeftAdapters.Tensor> saved = new LinkedHashMap<>();  // HF parameter -> full copy
        List<String> unknown = new ArrayList<>();
        Map<String, PeftAdapters.Tensor> tokenDeltas = new LinkedHashMap<>();  // module -> (n, C) rows (trainable tokens)
        String embModule = null;
        for (ModelFamily.SavedModule m : fam.savableModules(bc)) if (m.parameters().contains(EMB)) embModule = m.module();
        for (var e : adapter.tensors().entrySet()) {
            String key = e.getKey();
            String param = key.startsWith(PeftAdapters.PREFIX) ? key.substring(PeftAdapters.PREFIX.length()) : null;
            if (param != null && savable.containsKey(param)) {
                saved.put(param, e.getValue());
                continue;
            }
            if (param != null && param.endsWith(PeftExport.TOKEN_DELTA)) {
                String module = param.substring(0, param.length() - PeftExport.TOKEN_DELTA.length());
                if (module.equals(embModule) || module.equals("lm_head")) {
                    tokenDeltas.put(module, e.getValue());
                    continue;
                }
            }
            Matcher m = LORA.matcher(key);
            if (!m.matches()) {
                unknown.add(key);
                continue;
            }
            boolean isA = m.group(2).endsWith("A");
            lora.computeIfAbsent(m.group(1), k -> new PeftAdapters.Tensor[2])[isA ? 0 : 1] = e.getValue();
            embeddingKeys.put(m.group(1), m.group(2).startsWith("lora_embedding"));
        }
        if (!unknown.isEmpty())
            throw new UserError(adapterName + ": adapter tensors cpt4j cannot apply to a " + arch + ": "
                    + String.join(", ", unknown.subList(0, Math.min(5, unknown.size())))
                    + (unknown.size() > 5 ? " and " + (unknown.size() - 5) + " more" : "")
                    + "; cpt4j merges LoRA on " + String.join("/", peftNames(baseTargets)) + " and modules_to_save "
                    + String.join("/", savedNames(fam.savableModules(bc))));
        PeftAdapters.Tensor newEmb = saved.remove(EMB), newHead = saved.remove(HEAD);
        int adapterV = V;
        Map<String, int[]> tokenIds = tokenIndices(lc, tokenDeltas, embModule, C, adapterName);
        for (int[] ids : tokenIds.values()) for (int id : ids) adapterV = Math.max(adapterV, id + 1);
        List<String> mismatch = new ArrayList<>();
        List<String> moduleMismatch = new ArrayList<>();
        int maxLayer = -1, adapterC = -1;
        for (PeftAdapters.Tensor emb : new PeftAdapters.Tensor[] {newEmb, newHead}) {
            if (emb == null) continue;
            int[] s = emb.shape();
            if (s.length != 2) {
                mismatch.add("an embedding copy of shape " + Arrays.toString(s));
                continue;
            }
            adapterV = Math.max(adapterV, s[0]);
            if (s[1] != C) adapterC = s[1];
            if (s[0] < V) mismatch.add("a vocabulary of " + s[0] + " tokens");
        }
        if (newEmb != null && newHead != null && newEmb.shape()[0] != newHead.shape()[0])
            mismatch.add(EMB + " with " + newEmb.shape()[0] + " rows but " + HEAD + " with " + newHead.shape()[0]);
        for (var e : saved.entrySet()) {
            int[] want = base.layout().get(savable.get(e.getKey())).shape(), got = e.getValue().shape();
            if (!Arrays.equals(want, got))
                mismatch.add(e.getKey() + " of shape " + Arrays.toString(got) + " (this base: " + Arrays.toString(want) + ")");
        }
        // shapes of the vocabulary-sized targets are those of the resized base
        Map<String, ModelFamily.LoraTarget> targets = byModule(fam.loraTargets(bc.withVocabSize(adapterV)));
        for (var e : lora.entrySet()) {
            String module = e.getKey();
            PeftAdapters.Tensor a = e.getValue()[0], b = e.getValue()[1];
            if (a == null || b == null) throw new UserError(adapterName + ": LoRA module " + module
                    + " has only one of lora_A/lora_B; the adapter file is incomplete");
            int[] as = a.shape(), bs = b.shape();
            if (as.length != 2 || bs.length != 2 || as[0] != bs[1])
                throw new UserError(adapterName + ": LoRA module " + module + " has lora_A " + Arrays.toString(as)
                        + " and lora_B " + Arrays.toString(bs) + ", not [r, in] and [out, r]; the adapter file is inconsistent");
            int rank = rank(lc, module);
            if (as[0] != rank)
                throw new UserError(adapterName + ": LoRA module " + module + " has rank " + as[0] + " (lora_A "
                        + Arrays.toString(as) + ") but adapter_config.json says r " + rank
                        + "; the config does not belong to these weights");
            ModelFamily.LoraTarget t = targets.get(module);
            if (t == null) {
                int l = fam.layerOf(module);
                ModelFamily.LoraTarget t0 = l < L ? null : layerZero(baseTargets, module);
                if (t0 == null)
                    throw new UserError(adapterName + ": LoRA on module '" + module + "' cannot be merged into a "
                            + arch + "; cpt4j merges LoRA on " + String.join(", ", peftNames(baseTargets)));
                maxLayer = Math.max(maxLayer, l);
                t = t0;
            } else {
                if (embeddingKeys.get(module) != (t.storage() == ModelFamily.LoraStorage.EMBEDDING))
                    throw new UserError(adapterName + ": LoRA module " + module + " is stored as "
                            + (embeddingKeys.get(module) ? "lora_embedding_A/B" : "lora_A/B") + " but is "
                            + (t.storage() == ModelFamily.LoraStorage.EMBEDDING ? "an embedding" : "a linear layer")
                            + " in a " + arch + "; the adapter was made for another architecture");
                if (as[1] != t.in() || bs[0] != t.out())
                    moduleMismatch.add(t.peftName() + " of " + as[1] + "→" + bs[0] + " (this base: " + t.in() + "→" + t.out() + ")");
            }
            // a weight reading (writing) the residual stream tells the width the adapter was made for
            if (t.storage() == ModelFamily.LoraStorage.EMBEDDING) {
                if (bs[0] != C) adapterC = bs[0];
            } else if (t.in() == C && as[1] != C) adapterC = as[1];
            else if (t.out() == C && bs[0] != C) adapterC = bs[0];
        }
        if (maxLayer >= L) mismatch.add("at least " + (maxLayer + 1) + " layers");
        if (adapterC >= 0) mismatch.add("width (" + fam.hiddenSizeKey() + ") " + adapterC);
        else mismatch.addAll(moduleMismatch);  // another width explains them all
        if (!mismatch.isEmpty())
            throw new UserError("adapter " + adapterName + " was made for a base with " + String.join(", ", new TreeSet<>(mismatch))
                    + "; this base (" + baseName + ") has " + fam.hiddenSizeKey() + " " + C + ", " + fam.numLayersKey()
                    + " " + L + ", vocab_size " + V + "; use the base model the adapter was trained on");

        // ---- the merged model's shape: resized vocabulary, tied or not
        boolean keepTied = lc.extra().path("ensure_weight_tying").asBoolean(false);
        boolean tied = bc.tieWordEmbeddings();
        if (tied && !keepTied) {
            boolean loraOnEither = false;  // on a tied base the head's LoRA adds to the embedding view too
            for (String module : lora.keySet()) {
                String w = targets.get(module).weight();
                loraOnEither |= w.equals(EMB) || w.equals(HEAD);
            }
            if (loraOnEither || newEmb != null || newHead != null) {
                // only both replaced by identical copies keeps the tie
                tied = !loraOnEither && newEmb != null && newHead != null && Arrays.equals(newEmb.data(), newHead.data());
            }
        }
        ModelConfig mc = bc.withVocabSize(adapterV).withTiedEmbeddings(tied);
        ParamLayout ml = fam.layout(mc);
        float[] p = new float[ml.size()];
        ParamLayout bl = base.layout();
        float[] bp = base.params();
        for (ParamLayout.View v : bl.views()) {
            if (v.name().equals(EMB) || v.name().equals(HEAD)) continue;
            System.arraycopy(bp, v.offset(), p, ml.get(v.name()).offset(), v.size());
        }
        int baseHead = bc.tieWordEmbeddings() ? bl.get(EMB).offset() : bl.get(HEAD).offset();
        int emb = ml.get(EMB).offset();
        VocabResize.copyResized(bp, bl.get(EMB).offset(), V, p, emb, adapterV, C);
        int head = tied ? emb : ml.get(HEAD).offset();
        if (!tied) VocabResize.copyResized(bp, baseHead, V, p, head, adapterV, C);
        if (newEmb != null) System.arraycopy(newEmb.data(), 0, p, emb, adapterV * C);
        if (newHead != null && !(tied && newEmb != null)) System.arraycopy(newHead.data(), 0, p, head, adapterV * C);
        if (tied && keepTied && newEmb == null && newHead != null) System.arraycopy(newHead.data(), 0, p, emb, adapterV * C);
        for (var e : saved.entrySet()) {
            float[] d = e.getValue().data();
            System.arraycopy(d, 0, p, ml.get(savable.get(e.getKey())).offset(), d.length);
        }
        // trainable tokens: W.index_copy(0, ids, delta) (peft TrainableTokensLayer.merge); a tied head shares the rows
        for (var e : tokenDeltas.entrySet()) {
            int[] ids = tokenIds.get(e.getKey());
            int off = e.getKey().equals("lm_head") && !tied ? head : emb;
            float[] d = e.getValue().data();
            for (int j = 0; j < ids.length; j++) System.arraycopy(d, j * C, p, off + ids[j] * C, C);
        }

        // ---- LoRA deltas, on the merged layout (a tied head's delta lands in the embedding)
        Map<String, ModelFamily.LoraTarget> merged = byModule(fam.loraTargets(mc));
        for (var e : lora.entrySet()) {
            ModelFamily.LoraTarget t = merged.get(e.getKey());
            float[] a = e.getValue()[0].data(), b = e.getValue()[1].data();
            int r = e.getValue()[0].shape()[0];
            float s = (float) scaling(lc, e.getKey());
            int off = ml.get(t.weight()).offset();
            // stored [in, out] (Conv1D, Embedding): W[i, o] += s·Σ_k B[o, k]·A[k, i], peft's fan_in_fan_out transpose;
            // nn.Linear [out, in]: W[o, i] += s·Σ_k B[o, k]·A[k, i]
            if (t.storage().inOut()) addLowRank(p, off, t.in(), t.out(), a, b, r, s, true);
            else addLowRank(p, off, t.out(), t.in(), a, b, r, s, false);
        }
        return new HfCheckpoints.ModelDir(mc, ml, p);
    }

    /**
     * The token ids of each trainable-tokens delta, from adapter_config.json's {@code trainable_token_indices} (a list:
     * the embedding's; {module: ids}: per module, by peft's name rule); one line when they disagree with the tensors.
     */
    private static Map<String, int[]> tokenIndices(PeftAdapters.LoraConfig lc, Map<String, PeftAdapters.Tensor> deltas,
                                                   String embModule, int C, String adapterName) {
        Map<String, int[]> out = new LinkedHashMap<>();
        if (deltas.isEmpty()) return out;
        com.fasterxml.jackson.databind.JsonNode t = lc.extra().get("trainable_token_indices");
        if (t == null || t.isNull())
            throw new UserError(adapterName + ": the adapter has trainable-token tensors but adapter_config.json no "
                    + "trainable_token_indices; the config does not belong to these weights");
        for (String module : deltas.keySet()) {
            com.fasterxml.jackson.databind.JsonNode ids = null;
            if (t.isArray()) ids = module.equals(embModule) ? t : null;
            else if (t.isObject())
                for (var it = t.fields(); it.hasNext(); ) {
                    var f = it.next();
                    if (peftMatches(module, f.getKey())) ids = f.getValue();
                }
            if (ids == null || !ids.isArray())
                throw new UserError(adapterName + ": trainable_token_indices names no token ids for " + module
                        + "; the config does not belong to these weights");
            int[] a = new int[ids.size()];
            for (int i = 0; i < a.length; i++) {
                if (!ids.get(i).canConvertToInt() || ids.get(i).asInt() < 0)
                    throw new UserError(adapterName + ": trainable_token_indices of " + module + " holds " + ids.get(i)
                            + ", not a token id");
                a[i] = ids.get(i).asInt();
            }
            int[] s = deltas.get(module).shape();
            if (s.length != 2 || s[0] != a.length || s[1] != C)
                throw new UserError(adapterName + ": " + module + PeftExport.TOKEN_DELTA + " has shape " + Arrays.toString(s)
                        + " but " + a.length + " token ids of width " + C + " are listed; the adapter was made for another base");
            out.put(module, a);
        }
        return out;
    }

    /**
     * peft's module-name rule ({@code check_target_module_exists}): a name selects a module whose path equals it or
     * ends with {@code "." + name}.
     */
    static boolean peftMatches(String module, String name) {
        return module.equals(name) || module.endsWith("." + name);
    }

    /** adapter_config.json's target_modules and modules_to_save must name modules this family has. */
    private static void checkNames(PeftAdapters.LoraConfig lc, ModelFamily fam, ModelConfig bc,
                                   List<ModelFamily.LoraTarget> targets, String adapterName) {
        String arch = fam.displayName();
        if (lc.targetModulesIsRegex()) {
            String re = lc.targetModules().get(0);
            if (!re.equals("all-linear")) {
                Pattern pat = compileOrNull(re);  // null: a Python-only regex, the tensor keys alone decide
                if (pat != null && targets.stream().noneMatch(t -> pat.matcher(t.module()).matches()))
                    throw new UserError(adapterName + ": target_modules \"" + re + "\" matches no module of a " + arch
                            + "; LoRA can adapt " + String.join(", ", peftNames(targets)));
            }
        } else {
            for (String name : lc.targetModules())
                if (targets.stream().noneMatch(t -> peftMatches(t.module(), name)))
                    throw new UserError(adapterName + ": target_modules names '" + name + "', which a " + arch
                            + " has no LoRA-adaptable module of; LoRA can adapt " + String.join(", ", peftNames(targets))
                            + " (is the adapter for another architecture?)");
        }
        List<ModelFamily.SavedModule> savable = fam.savableModules(bc);
        for (String name : lc.modulesToSave())
            if (savable.stream().noneMatch(m -> peftMatches(m.module(), name)))
                throw new UserError(adapterName + ": modules_to_save names '" + name + "', which cpt4j cannot take from "
                        + "the adapter of a " + arch + "; it takes " + String.join(", ", savedNames(savable)));
    }

    private static Pattern compileOrNull(String re) {
        try {
            return Pattern.compile(re);
        } catch (PatternSyntaxException e) {
            return null;
        }
    }

    /** The layer-0 target a module path of a deeper layer corresponds to (same target_modules name), or null. */
    private static ModelFamily.LoraTarget layerZero(List<ModelFamily.LoraTarget> targets, String module) {
        for (ModelFamily.LoraTarget t : targets) if (t.layer() == 0 && module.endsWith("." + t.peftName())) return t;
        return null;
    }

    private static Map<String, ModelFamily.LoraTarget> byModule(List<ModelFamily.LoraTarget> targets) {
        Map<String, ModelFamily.LoraTarget> m = new LinkedHashMap<>();
        for (ModelFamily.LoraTarget t : targets) m.put(t.module(), t);
        return m;
    }

    private static List<String> peftNames(List<ModelFamily.LoraTarget> targets) {
        return targets.stream().map(ModelFamily.LoraTarget::peftName).distinct().toList();
    }

    private static List<String> savedNames(List<ModelFamily.SavedModule> modules) {
        return modules.stream().map(ModelFamily.SavedModule::module).toList();
    }

    /**
     * The rank of {@code module}: adapter_config.json's {@code rank_pattern} entry that selects it, else {@code r}.
     * peft's {@code get_pattern_key}: a pattern key {@code k} selects a module whose path matches
     * {@code (.*\.)?k$}; the first such key wins.
     */
    static int rank(PeftAdapters.LoraConfig lc, String module) {
        var v = pattern(lc.extra().path("rank_pattern"), module);
        return v == null ? lc.r() : v.asInt();
    }

    /** The LoRA scale of {@code module}: its alpha ({@code alpha_pattern}, else {@code lora_alpha}) over r, or √r with rsLoRA. */
    static double scaling(PeftAdapters.LoraConfig lc, String module) {
        var a = pattern(lc.extra().path("alpha_pattern"), module);
        double alpha = a == null ? lc.loraAlpha() : a.asDouble();
        int r = rank(lc, module);
        return lc.useRslora() ? alpha / Math.sqrt(r) : alpha / r;
    }

    private static com.fasterxml.jackson.databind.JsonNode pattern(com.fasterxml.jackson.databind.JsonNode patterns,
                                                                    String module) {
        if (!patterns.isObject()) return null;
        for (var e : patterns.properties()) {
            try {
                if (Pattern.compile("(.*\\.)?(" + e.getKey() + ")").matcher(module).matches() && e.getValue().isNumber())
                    return e.getValue();
            } catch (PatternSyntaxException ignored) {
                if (peftMatches(module, e.getKey()) && e.getValue().isNumber()) return e.getValue();
            }
        }
        return null;
    }

    /**
     * dst[i, o] (rows × cols at off) += s·Σ_k B[o, k]·A[k, i] when transposed (A [r, rows], B [cols, r]), else
     * dst[o, i] += s·Σ_k B[o, k]·A[k, i] (A [r, cols], B [rows, r]). Sums in double: merging must not be the
     * rounding step that separates cpt4j from peft.
     */
    private static void addLowRank(float[] dst, int off, int rows, int cols, float[] a, float[] b, int r, float s,
                                   boolean transposed) {
        if (transposed) {
            for (int i = 0; i < rows; i++)
                for (int o = 0; o < cols; o++) {
                    double acc = 0;
                    for (int k = 0; k < r; k++) acc += (double) b[o * r + k] * a[k * rows + i];
                    dst[off + i * cols + o] += (float) (acc * s);
                }
        } else {
            for (int o = 0; o < rows; o++)
                for (int i = 0; i < cols; i++) {
                    double acc = 0;
                    for (int k = 0; k < r; k++) acc += (double) b[o * r + k] * a[k * cols + i];
                    dst[off + o * cols + i] += (float) (acc * s);
                }
        }
    }
}
