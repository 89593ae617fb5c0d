package dev.cpt4j.hf;

import dev.cpt4j.UserError;
import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Layout;
import dev.cpt4j.model.VocabResize;
import dev.cpt4j.tensor.ParamLayout;

import dev.cpt4j.io.DType;

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

/**
 * Folds a PEFT LoRA adapter into its base GPT-2 for inference (what peft's {@code merge_and_unload} computes), so
 * decoding and evaluation run on one plain parameter buffer.
 *
 * <ul>
 *   <li>LoRA on a GPT-2 {@code Conv1D} (weight {@code [in, out]}, peft's {@code fan_in_fan_out}):
 *       {@code W += (B·A)ᵀ·s}; on {@code lm_head} ({@code nn.Linear}, {@code [out, in]}): {@code W += B·A·s}; on
 *       {@code wte} ({@code lora_embedding_A [r, V]}, {@code lora_embedding_B [C, r]}): {@code W += (B·A)ᵀ·s};
 *       {@code s = lora_alpha / r}, or {@code lora_alpha / √r} with rsLoRA (peft {@code LoraLayer.update_layer}).</li>
 *   <li>{@code modules_to_save} copies ({@code transformer.wte.weight}, {@code lm_head.weight}) replace the base
 *       tensors. With a tied base, peft's wrapper copies only the module it wraps, so the other side keeps the base
 *       tensor: whenever the input embedding and the output head end up different the result is untied
 *       ({@code tie_word_embeddings false}, separate {@code lm_head}), exactly what the PeftModel computed
 *       (peft#2018). peft's {@code ensure_weight_tying: true} keeps them tied.</li>
 *   <li>An adapter whose embedding copies have more rows than the base vocabulary (tokens were added before
 *       training) resizes the base first — no manual {@code resize_token_embeddings}. New rows of a tensor the
 *       adapter does not carry get the mean of the old rows (transformers' mean resizing, without its noise).</li>
 *   <li>Shapes that do not fit the base (another width, more layers, a smaller vocabulary) are one {@link UserError}
 *       that says what the adapter was made for and what this base is.</li>
 * </ul>
 * Not a trainer: the result has no LoRA tensors left.
 */
public final class AdapterMerge {
    private AdapterMerge() {}

    private static final Pattern LORA = Pattern.compile(
            "base_model\\.model\\.(.+)\\.(lora_A|lora_B|lora_embedding_A|lora_embedding_B)(\\.weight)?");
    private static final Pattern LAYER = Pattern.compile("transformer\\.h\\.(\\d+)\\.(attn\\.c_attn|attn\\.c_proj|mlp\\.c_fc|mlp\\.c_proj)");
    private static final String WTE_KEY = PeftAdapters.savedKey(Gpt2Layout.WTE);
    private static final String HEAD_KEY = PeftAdapters.savedKey(Gpt2Layout.LM_HEAD);

    /** Loads a model directory and, if {@code adapterDir} is not null, merges that adapter into it. */
    public static HfCheckpoints.ModelDir load(Path modelDir, Path adapterDir) {
        HfCheckpoints.ModelDir base = HfCheckpoints.loadModelDir(modelDir);
        if (adapterDir == null) return base;
        return merge(base, PeftAdapters.read(adapterDir), adapterDir.toString(), modelDir.toString());
    }

    /** Tokenizer and generation files a merged directory carries over (adapter directory first, then the base). */
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
            for (String f : SIDE_FILES) {
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
     * The base with the adapter merged in. {@code base} is not modified; the result has its own buffer and, after a
     * resize or untying, its own config and layout.
     *
     * @param adapterName names the adapter in messages (its directory)
     * @param baseName    names the base in messages (its directory)
     */
    public static HfCheckpoints.ModelDir merge(HfCheckpoints.ModelDir base, PeftAdapters.Adapter adapter,
                                               String adapterName, String baseName) {
        if (!(base.config() instanceof Gpt2Config bc))
            throw new UserError(adapterName + ": applying a LoRA adapter to a " + base.config().family().displayName()
                    + " model is not supported yet; run eval/generate/compare on the base without --adapter");
        int C = bc.nEmbd(), V = bc.vocabSize();
        PeftAdapters.LoraConfig lc = adapter.config();
        Map<String, PeftAdapters.Tensor> t = adapter.tensors();

        // ---- what the adapter holds, and whether it fits this base
        Map<String, PeftAdapters.Tensor[]> lora = new LinkedHashMap<>();  // module -> {A, B}
        List<String> unknown = new ArrayList<>();
        PeftAdapters.Tensor newWte = null, newHead = null;
        for (var e : t.entrySet()) {
            String key = e.getKey();
            if (key.equals(WTE_KEY)) newWte = e.getValue();
            else if (key.equals(HEAD_KEY)) newHead = e.getValue();
            else {
                Matcher m = LORA.matcher(key);
                if (!m.matches()) {
                    unknown.add(key);
                    continue;
                }
                boolean isA = m.group(2).endsWith("A");
                lora.computeIfAbsent(m.group(1), k -> new PeftAdapters.Tensor[2])[isA ? 0 : 1] = e.getValue();
            }
        }
        if (!unknown.isEmpty())
            throw new UserError(adapterName + ": adapter tensors cpt4j cannot apply to a GPT-2: "
                    + String.join(", ", unknown.subList(0, Math.min(5, unknown.size())))
                    + (unknown.size() > 5 ? " and " + (unknown.size() - 5) + " more" : "")
                    + "; cpt4j merges LoRA on c_attn/c_proj/c_fc/lm_head/wte and modules_to_save wte/lm_head");
        int adapterV = V;
        List<String> mismatch = new ArrayList<>();
        int maxLayer = -1, adapterC = -1;
        for (PeftAdapters.Tensor emb : new PeftAdapters.Tensor[] {newWte, newHead}) {
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
        if (newWte != null && newHead != null && newWte.shape()[0] != newHead.shape()[0])
            mismatch.add("wte with " + newWte.shape()[0] + " rows but lm_head with " + newHead.shape()[0]);
        for (var e : lora.entrySet()) {
            String module = e.getKey();
            PeftAdapters.Tensor a = e.getValue()[0], b = e.getValue()[1];
            if (a == null || b == null) throw new UserError(adapterName + ": LoRA module " + module
                    + " has only one of lora_A/lora_B; the adapter file is incomplete");
            int[] as = a.shape(), bs = b.shape();
            if (as.length != 2 || bs.length != 2 || as[0] != bs[1])
                throw new UserError(adapterName + ": LoRA module " + module + " has lora_A " + Arrays.toString(as)
                        + " and lora_B " + Arrays.toString(bs) + ", not [r, in] and [out, r]; the adapter file is inconsistent");
            Matcher m = LAYER.matcher(module);
            if (m.matches()) {
                int l = Integer.parseInt(m.group(1));
                maxLayer = Math.max(maxLayer, l);
                String w = Gpt2Layout.layer(l, m.group(2) + ".weight");
                if (m.group(2).equals("attn.c_attn") && as[1] != C) adapterC = as[1];
                if (l < bc.nLayer()) {
                    int[] ws = base.layout().get(w).shape();
                    if (as[1] != ws[0] || bs[0] != ws[1])
                        mismatch.add(module + " of " + as[1] + "→" + bs[0] + " (this base: " + ws[0] + "→" + ws[1] + ")");
                }
            } else if (module.equals("lm_head") || module.equals("transformer.wte")) {
                boolean head = module.equals("lm_head");
                int in = head ? as[1] : bs[0], out = head ? bs[0] : as[1];  // head: [C]→[V]; wte A [r, V], B [C, r]
                if (in != C) adapterC = in;
                if (out != adapterV && out != V) mismatch.add(module + " LoRA over " + out + " tokens");
            } else {
                throw new UserError(adapterName + ": LoRA on module '" + module + "' cannot be merged into a GPT-2; "
                        + "cpt4j merges LoRA on attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj, lm_head and wte");
            }
        }
        if (maxLayer >= bc.nLayer()) mismatch.add("at least " + (maxLayer + 1) + " layers");
        if (adapterC >= 0) mismatch.add("width (n_embd) " + adapterC);
        if (!mismatch.isEmpty())
            throw new UserError("adapter " + adapterName + " was made for a base with " + String.join(", ", new TreeSet<>(mismatch))
                    + "; this base (" + baseName + ") has n_embd " + C + ", n_layer " + bc.nLayer() + ", vocab_size " + V
                    + "; use the base model the adapter was trained on");

        // ---- the merged model's shape: resized vocabulary, tied or not
        boolean keepTied = lc.extra().path("ensure_weight_tying").asBoolean(false);
        boolean tied = bc.tieWordEmbeddings();
        if (tied && !keepTied) {
            boolean wteChanges = newWte != null || lora.containsKey("transformer.wte");
            boolean headChanges = newHead != null || lora.containsKey("lm_head");
            if (wteChanges || headChanges) {
                // only both replaced by identical copies keeps the tie
                tied = !lora.containsKey("transformer.wte") && !lora.containsKey("lm_head") && newWte != null
                        && newHead != null && Arrays.equals(newWte.data(), newHead.data());
            }
        }
        Gpt2Config mc = bc.withVocabSize(adapterV).withTiedEmbeddings(tied);
        ParamLayout ml = Gpt2Layout.of(mc);
        float[] p = new float[ml.size()];
        ParamLayout bl = base.layout();
        float[] bp = base.params();
        for (ParamLayout.View v : bl.views()) {
            if (v.name().equals(Gpt2Layout.WTE) || v.name().equals(Gpt2Layout.LM_HEAD)) continue;
            System.arraycopy(bp, v.offset(), p, ml.get(v.name()).offset(), v.size());
        }
        int baseHead = bc.tieWordEmbeddings() ? bl.get(Gpt2Layout.WTE).offset() : bl.get(Gpt2Layout.LM_HEAD).offset();
        int wte = ml.get(Gpt2Layout.WTE).offset();
        VocabResize.copyResized(bp, bl.get(Gpt2Layout.WTE).offset(), V, p, wte, adapterV, C);
        int head = tied ? wte : ml.get(Gpt2Layout.LM_HEAD).offset();
        if (!tied) VocabResize.copyResized(bp, baseHead, V, p, head, adapterV, C);
        if (newWte != null) System.arraycopy(newWte.data(), 0, p, wte, adapterV * C);
        if (newHead != null && !(tied && newWte != null)) System.arraycopy(newHead.data(), 0, p, head, adapterV * C);
        if (tied && keepTied && newWte == null && newHead != null) System.arraycopy(newHead.data(), 0, p, wte, adapterV * C);

        // ---- LoRA deltas
        float s = (float) lc.scaling();
        for (var e : lora.entrySet()) {
            String module = e.getKey();
            float[] a = e.getValue()[0].data(), b = e.getValue()[1].data();
            int r = e.getValue()[0].shape()[0];
            Matcher m = LAYER.matcher(module);
            if (m.matches()) {
                ParamLayout.View w = ml.get(Gpt2Layout.layer(Integer.parseInt(m.group(1)),
                        m.group(2) + ".weight"));
                int in = w.shape()[0], out = w.shape()[1];
                // Conv1D [in, out]: W[i, o] += s·Σ_k B[o, k]·A[k, i]  ((B·A)ᵀ, peft's fan_in_fan_out transpose)
                addLowRank(p, w.offset(), in, out, a, b, r, s, true);
            } else if (module.equals("lm_head")) {
                // nn.Linear [V, C]: W[o, i] += s·Σ_k B[o, k]·A[k, i]
                addLowRank(p, head, C, b.length / r, a, b, r, s, false);
            } else {
                // nn.Embedding [V, C] with lora_embedding_A [r, V], lora_embedding_B [C, r]: W[v, c] += s·Σ_k B[c, k]·A[k, v]
                addLowRank(p, wte, a.length / r, C, a, b, r, s, true);
            }
        }
        return new HfCheckpoints.ModelDir(mc, ml, p);
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
