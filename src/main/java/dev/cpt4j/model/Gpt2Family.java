package dev.cpt4j.model;

import static dev.cpt4j.io.Json.bool;
import static dev.cpt4j.io.Json.intValue;
import static dev.cpt4j.io.Json.number;
import static dev.cpt4j.io.Json.optionalInt;
import static dev.cpt4j.io.Json.string;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.cpt4j.UserError;
import dev.cpt4j.io.DType;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.WeightStore;
import dev.cpt4j.tensor.cpu.Gemm;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The GPT-2 family ({@code GPT2LMHeadModel}): config.json as {@code GPT2Config} reads and writes it, the names of
 * {@link Gpt2Layout}, the engine {@link Gpt2Model} and the decoder {@link Gpt2Decoder}.
 *
 * <p>Reading follows {@code GPT2Config.__init__}: its key names, the {@code attribute_map} aliases
 * ({@code hidden_size→n_embd}, {@code max_position_embeddings→n_positions}, {@code num_attention_heads→n_head},
 * {@code num_hidden_layers→n_layer}), its defaults (dropouts 0.1, {@code layer_norm_epsilon} 1e-5,
 * {@code initializer_range} 0.02, {@code gelu_new}, {@code n_inner} null → 4·n_embd,
 * {@code tie_word_embeddings} true). The five sizes that fix the tensor shapes ({@code vocab_size},
 * {@code n_positions}, {@code n_embd}, {@code n_layer}, {@code n_head}) are required: transformers would fill in
 * GPT-2-small's, which never match someone else's weights. Writing produces a file
 * {@code GPT2LMHeadModel.from_pretrained} loads: {@code model_type}, {@code architectures} and every field.
 *
 * <p>Checkpoint names: a {@code GPT2Model} save lacks the {@code transformer.} prefix and is accepted; the
 * causal-mask buffers older transformers saved ({@code h.N.attn.bias}, {@code h.N.attn.masked_bias}) are skipped.
 */
public final class Gpt2Family implements ModelFamily {
    /** transformers' GPT2Config.attribute_map: alias → canonical key. */
    private static final String[][] ALIASES = {
        {"n_embd", "hidden_size"}, {"n_positions", "max_position_embeddings"},
        {"n_head", "num_attention_heads"}, {"n_layer", "num_hidden_layers"},
    };
    private static final Set<String> GPT2_KEYS = Set.of("n_embd", "n_layer", "n_head", "n_positions", "n_ctx");
    private static final Pattern LAYER_MODULE = Pattern.compile("transformer\\.h\\.(\\d+)\\..+");
    private static final Pattern MASK_BUFFER = Pattern.compile("transformer\\.h\\.\\d+\\.attn\\.(bias|masked_bias)");

    @Override
    public String displayName() {
        return "GPT-2";
    }

    @Override
    public List<String> modelTypes() {
        return List.of("gpt2");
    }

    /** True for a config.json without model_type that carries GPT-2's own keys. */
    static boolean looksLikeGpt2(ObjectNode j) {
        for (String k : GPT2_KEYS) if (j.has(k)) return true;
        return false;
    }

    @Override
    public Gpt2Config readConfig(ObjectNode j, String where) {
        int vocab = requiredInt(j, where, "vocab_size", null);
        int nPos = requiredInt(j, where, "n_positions", "max_position_embeddings");
        int nEmbd = requiredInt(j, where, "n_embd", "hidden_size");
        int nLayer = requiredInt(j, where, "n_layer", "num_hidden_layers");
        int nHead = requiredInt(j, where, "n_head", "num_attention_heads");
        JsonNode inner = j.get("n_inner");
        int nInner = inner == null || inner.isNull() ? 4 * nEmbd : intValue(inner, where, "n_inner");
        String act = string(j, where, "activation_function", "gelu_new");
        float eps = (float) number(j, where, "layer_norm_epsilon", 1e-5);
        float initRange = (float) number(j, where, "initializer_range", 0.02);
        float embd = (float) number(j, where, "embd_pdrop", 0.1);
        float attn = (float) number(j, where, "attn_pdrop", 0.1);
        float resid = (float) number(j, where, "resid_pdrop", 0.1);
        boolean tie = bool(j, where, "tie_word_embeddings", true);
        boolean scale = bool(j, where, "scale_attn_weights", true);
        boolean invIdx = bool(j, where, "scale_attn_by_inverse_layer_idx", false);
        if (bool(j, where, "add_cross_attention", false))
            throw new UserError(where + ": add_cross_attention is true; cpt4j supports decoder-only GPT-2 — set it to false");
        try {
            return new Gpt2Config(vocab, nPos, nEmbd, nLayer, nHead, nInner, act, eps, initRange, embd, attn, resid, tie,
                    scale, invIdx);
        } catch (UserError e) {
            String m = e.getMessage();
            throw new UserError(where + ": " + (m.startsWith("config: ") ? m.substring(8) : m));
        }
    }

    @Override
    public ObjectNode writeConfig(ModelConfig mc, ObjectNode base, DType dtype) {
        Gpt2Config c = (Gpt2Config) mc;
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        if (base != null) o.setAll(base.deepCopy());
        for (String[] a : ALIASES) o.remove(a[1]);  // one spelling only, so nothing can disagree
        o.put("model_type", "gpt2");
        o.putArray("architectures").add("GPT2LMHeadModel");
        o.put("vocab_size", c.vocabSize());
        o.put("n_positions", c.nPositions());
        o.put("n_embd", c.nEmbd());
        o.put("n_layer", c.nLayer());
        o.put("n_head", c.nHead());
        o.put("n_inner", c.nInner());
        o.put("activation_function", c.activation());
        o.put("layer_norm_epsilon", shortest(c.layerNormEpsilon()));
        o.put("initializer_range", shortest(c.initializerRange()));
        o.put("embd_pdrop", shortest(c.embdPdrop()));
        o.put("attn_pdrop", shortest(c.attnPdrop()));
        o.put("resid_pdrop", shortest(c.residPdrop()));
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        o.put("scale_attn_weights", c.scaleAttnWeights());
        o.put("scale_attn_by_inverse_layer_idx", c.scaleAttnByInverseLayerIdx());
        if (!o.has("reorder_and_upcast_attn")) o.put("reorder_and_upcast_attn", false);
        if (!o.has("add_cross_attention")) o.put("add_cross_attention", false);
        if (!o.has("use_cache")) o.put("use_cache", true);
        putDtype(o, dtype);
        return o;
    }

    /** transformers ≥ 4.56 writes "dtype"; older releases read "torch_dtype": both are written. */
    static void putDtype(ObjectNode o, DType dtype) {
        if (dtype == null) return;
        o.put("dtype", dtype.torchName());
        o.put("torch_dtype", dtype.torchName());
    }

    /** The shortest decimal of a float (1e-5, not 9.999999747e-06). */
    static double shortest(float f) {
        return Double.parseDouble(Float.toString(f));
    }

    @Override
    public ParamLayout layout(ModelConfig c) {
        return Gpt2Layout.of((Gpt2Config) c);
    }

    @Override
    public String canonicalName(String fileName) {
        String name = fileName.startsWith("transformer.") || fileName.startsWith("lm_head.") ? fileName : "transformer." + fileName;
        return MASK_BUFFER.matcher(name).matches() ? null : name;
    }

    @Override
    public String tokenEmbedding() {
        return Gpt2Layout.WTE;
    }

    @Override
    public String outputHead() {
        return Gpt2Layout.LM_HEAD;
    }

    @Override
    public boolean noDecay(String name) {
        return Gpt2Layout.noDecay(name);
    }

    @Override
    public boolean isEmbedding(String name) {
        return name.equals(Gpt2Layout.WTE) || name.equals(Gpt2Layout.WPE) || name.equals(Gpt2Layout.LM_HEAD);
    }

    @Override
    public Gpt2Model newModel(ModelConfig c, Gemm gemm, Parallel par, int maxBatch, int maxT, boolean ckpt) {
        return new Gpt2Model((Gpt2Config) c, gemm, par, maxBatch, maxT, ckpt);
    }

    @Override
    public Gpt2Model newModel(ModelConfig c, ParamLayout layout, Gemm gemm, Parallel par, int maxBatch, int maxT,
                              boolean ckpt, Predicate<String> storedBf16) {
        return new Gpt2Model((Gpt2Config) c, layout, gemm, par, maxBatch, maxT, ckpt, storedBf16);
    }

    @Override
    public boolean bf16Storable(String view) {
        return Gpt2Model.isConv1dWeight(view);
    }

    @Override
    public long activationBytes(ModelConfig c, int maxBatch, int maxT, boolean ckpt) {
        return Gpt2Model.activationBytes((Gpt2Config) c, maxBatch, maxT, ckpt);
    }

    @Override
    public boolean sparseTokenEmbeddingGrad() {
        return true;
    }

    @Override
    public List<String> loraSites() {
        List<String> s = new ArrayList<>();
        for (LinearHook.Site site : LinearHook.Site.values()) s.add(site.hfName());
        return s;
    }

    /** peft's GPT-2 default: {@code c_attn}. */
    @Override
    public List<String> defaultLoraSites() {
        return List.of("attn.c_attn");
    }

    @Override
    public List<String> resolveLoraSites(List<String> names) {
        Set<String> out = new LinkedHashSet<>();
        for (String raw : names) {
            String n = raw.strip();
            if (n.isEmpty()) continue;
            switch (n) {
                case "c_attn", "attn.c_attn" -> out.add("attn.c_attn");
                case "attn.c_proj" -> out.add("attn.c_proj");
                case "c_fc", "mlp.c_fc" -> out.add("mlp.c_fc");
                case "mlp.c_proj" -> out.add("mlp.c_proj");
                // peft matches target names by suffix: "c_proj" hits both projections
                case "c_proj" -> { out.add("attn.c_proj"); out.add("mlp.c_proj"); }
                case "all-linear" -> out.addAll(loraSites());   // peft: every Conv1D but the head
                default -> throw new UserError("--trainable '" + n + "' is not a GPT-2 LoRA target; use a comma list of "
                        + "c_attn, attn.c_proj, c_fc, mlp.c_proj (or all-linear)");
            }
        }
        List<String> sorted = new ArrayList<>();
        for (String t : loraSites()) if (out.contains(t)) sorted.add(t);
        return List.copyOf(sorted);
    }

    @Override
    public List<String> resolveSavedModules(List<String> names) {
        Set<String> out = new LinkedHashSet<>();
        for (String raw : names) {
            String n = raw.strip();
            if (n.isEmpty()) continue;
            if (n.endsWith(".weight")) n = n.substring(0, n.length() - ".weight".length());
            switch (n) {
                case "wte", "transformer.wte", "embed_tokens" -> out.add("transformer.wte");
                case "lm_head" -> out.add("lm_head");
                case "wpe", "transformer.wpe" -> out.add("transformer.wpe");
                case "ln_f", "transformer.ln_f" -> out.add("transformer.ln_f");
                default -> throw new UserError("--modules_to_save '" + n + "' is not supported; use a comma list of "
                        + "transformer.wte, lm_head, transformer.wpe, transformer.ln_f");
            }
        }
        return List.copyOf(out);
    }

    @Override
    public StepModel decoder(ModelConfig c, float[] params, ParamLayout layout, int maxSeqs, int maxLength, Parallel par) {
        return new Gpt2Decoder((Gpt2Config) c, params, layout, maxSeqs, maxLength, par);
    }

    /** GPT-2's decoder runs on one flat fp32 buffer: the store is copied into it (bf16 tensors widened). */
    @Override
    public StepModel decoder(ModelConfig c, WeightStore weights, int maxSeqs, int maxLength, Parallel par) {
        ParamLayout layout = layout(c);
        float[] p = new float[layout.size()];
        for (ParamLayout.View v : layout.views()) {
            WeightStore.Tensor t = weights.get(v.name());
            if (t == null) throw new IllegalArgumentException("no tensor " + v.name());
            for (int i = 0; i < v.size(); i++)
                p[v.offset() + i] = t.isBf16() ? DType.bf16ToFloat(t.bf16()[t.offset() + i]) : t.f32()[t.offset() + i];
        }
        return decoder(c, p, layout, maxSeqs, maxLength, par);
    }

    @Override
    public String describe(ModelConfig mc) {
        Gpt2Config c = (Gpt2Config) mc;
        return "vocab_size " + c.vocabSize() + ", n_positions " + c.nPositions() + ", n_embd " + c.nEmbd() + ", n_layer "
                + c.nLayer() + ", n_inner " + c.nInner() + ", tie_word_embeddings " + c.tieWordEmbeddings();
    }

    @Override
    public String hiddenSizeKey() {
        return "n_embd";
    }

    @Override
    public String numLayersKey() {
        return "n_layer";
    }

    /**
     * The Conv1D projections of every block ({@code fan_in_fan_out}), the embedding and the head. {@code c_proj}
     * exists in both attention and MLP, so those two are named with their parent ({@code attn.c_proj},
     * {@code mlp.c_proj}); peft's plain {@code c_proj} matches both.
     */
    @Override
    public List<LoraTarget> loraTargets(ModelConfig mc) {
        Gpt2Config c = (Gpt2Config) mc;
        int V = c.vocabSize(), C = c.nEmbd(), F = c.nInner();
        List<LoraTarget> t = new ArrayList<>();
        t.add(new LoraTarget("transformer.wte", -1, "wte", Gpt2Layout.WTE, LoraStorage.EMBEDDING, V, C));
        for (int l = 0; l < c.nLayer(); l++) {
            t.add(conv1d(l, "attn.c_attn", "c_attn", C, 3 * C));
            t.add(conv1d(l, "attn.c_proj", "attn.c_proj", C, C));
            t.add(conv1d(l, "mlp.c_fc", "c_fc", C, F));
            t.add(conv1d(l, "mlp.c_proj", "mlp.c_proj", F, C));
        }
        t.add(new LoraTarget("lm_head", -1, "lm_head", head(c), LoraStorage.LINEAR, C, V));
        return t;
    }

    private static LoraTarget conv1d(int l, String site, String peftName, int in, int out) {
        return new LoraTarget(Gpt2Layout.layer(l, site), l, peftName, Gpt2Layout.layer(l, site + ".weight"),
                LoraStorage.CONV1D, in, out);
    }

    private static String head(Gpt2Config c) {
        return c.tieWordEmbeddings() ? Gpt2Layout.WTE : Gpt2Layout.LM_HEAD;
    }

    @Override
    public int layerOf(String module) {
        Matcher m = LAYER_MODULE.matcher(module);
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    @Override
    public List<SavedModule> savableModules(ModelConfig mc) {
        Gpt2Config c = (Gpt2Config) mc;
        return List.of(new SavedModule("transformer.wte", List.of(Gpt2Layout.WTE), List.of(Gpt2Layout.WTE)),
                new SavedModule("transformer.wpe", List.of(Gpt2Layout.WPE), List.of(Gpt2Layout.WPE)),
                new SavedModule("transformer.ln_f", List.of(Gpt2Layout.LNF_W, Gpt2Layout.LNF_B),
                        List.of(Gpt2Layout.LNF_W, Gpt2Layout.LNF_B)),
                new SavedModule("lm_head", List.of(Gpt2Layout.LM_HEAD), List.of(head(c))));
    }

    // ------------------------------------------------------------ typed fields

    private static int requiredInt(ObjectNode j, String where, String key, String alias) {
        JsonNode v = j.get(key);
        String used = key;
        if ((v == null || v.isNull()) && alias != null) {
            v = j.get(alias);
            used = alias;
        }
        if (v == null || v.isNull())
            throw new UserError(where + ": missing field '" + key + "'" + (alias != null ? " (or '" + alias + "')" : "")
                    + "; a GPT-2 config.json needs vocab_size, n_positions, n_embd, n_layer and n_head");
        return intValue(v, where, used);
    }

}
