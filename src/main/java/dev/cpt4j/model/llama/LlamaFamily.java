package dev.cpt4j.model.llama;

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
import dev.cpt4j.model.CausalLm;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.model.StepModel;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.WeightStore;
import dev.cpt4j.tensor.cpu.Gemm;
import dev.cpt4j.tensor.cpu.Rope;

import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Predicate;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The LLaMA family — {@code llama}, {@code qwen2}, {@code qwen3}, {@code mistral} — whose causal-LM classes in
 * transformers 5 share one block (RMSNorm, rotary attention with grouped kv heads, SwiGLU MLP) and one set of tensor
 * names ({@link LlamaLayout}). The differences are config switches: q/k/v biases (Qwen2 always, LLaMA/Qwen3
 * {@code attention_bias}), {@code mlp_bias} (LLaMA), Qwen3's per-head q/k RMSNorm, sliding-window layers
 * (Mistral's {@code sliding_window}; Qwen's only with {@code use_sliding_window}, from {@code max_window_layers} on).
 *
 * <p>config.json is read as hub files write it ({@code rope_theta} + {@code rope_scaling}, key {@code rope_type} or
 * the legacy {@code type}; {@code torch_dtype}) and as transformers 5 writes it ({@code rope_parameters} with
 * {@code rope_theta} inside; {@code dtype}); token ids and every other key are kept from the base when writing.
 * A base-model save ({@code LlamaModel}: names without {@code model.}) is accepted; the rotary {@code inv_freq}
 * buffers older checkpoints stored are skipped.
 */
public final class LlamaFamily implements ModelFamily {
    public static final LlamaFamily INSTANCE = new LlamaFamily();
    private static final Pattern LAYER_MODULE = Pattern.compile("model\\.layers\\.(\\d+)\\..+");
    private static final Pattern PROJECTION = Pattern.compile("model\\.layers\\.\\d+\\.(self_attn\\.[qkvo]_proj|mlp\\.(gate|up|down)_proj)\\.weight");
    /** The seven projections of a block, in the order {@link LlamaModel} calls its hook with. */
    private static final List<String> SITES = List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");

    @Override
    public String displayName() {
        return "LLaMA";
    }

    @Override
    public List<String> modelTypes() {
        return LlamaConfig.MODEL_TYPES;
    }

    @Override
    public LlamaConfig readConfig(ObjectNode j, String where) {
        String type = j.get("model_type").asText();
        int vocab = requiredInt(j, where, "vocab_size");
        int hidden = requiredInt(j, where, "hidden_size");
        int inter = requiredInt(j, where, "intermediate_size");
        int layers = requiredInt(j, where, "num_hidden_layers");
        int heads = requiredInt(j, where, "num_attention_heads");
        int kv = optionalInt(j, where, "num_key_value_heads", heads);
        if (kv <= 0 || heads % kv != 0)
            throw new UserError(where + ": num_attention_heads (" + heads + ") must be a multiple of num_key_value_heads ("
                    + kv + "); use the config.json that belongs to these weights");
        JsonNode hd = j.get("head_dim");
        int headDim;
        if (hd == null || hd.isNull()) {
            if (hidden % heads != 0)
                throw new UserError(where + ": hidden_size (" + hidden + ") is not a multiple of num_attention_heads ("
                        + heads + ") and no head_dim is given; add \"head_dim\" to config.json");
            headDim = hidden / heads;
        } else headDim = intValue(hd, where, "head_dim");
        int maxPos = optionalInt(j, where, "max_position_embeddings", type.equals("llama") ? 2048 : 32768);
        String act = string(j, where, "hidden_act", "silu");
        if (!act.equals("silu"))
            throw new UserError(where + ": hidden_act \"" + act + "\" is not supported; the LLaMA family runs silu (SwiGLU)");
        float eps = (float) number(j, where, "rms_norm_eps", 1e-6);
        boolean attnBias = bool(j, where, "attention_bias", false);
        boolean qkvBias = type.equals("qwen2") || (!type.equals("mistral") && attnBias);
        boolean oBias = (type.equals("llama") || type.equals("qwen3")) && attnBias;
        boolean mlpBias = type.equals("llama") && bool(j, where, "mlp_bias", false);
        boolean tie = bool(j, where, "tie_word_embeddings", false);
        float initRange = (float) number(j, where, "initializer_range", 0.02);

        // rotary: transformers 5 rope_parameters, else hub-style rope_theta + rope_scaling
        JsonNode rp = j.get("rope_parameters");
        ObjectNode rope = rp != null && rp.isObject() ? (ObjectNode) rp : null;
        double theta;
        if (rope != null && rope.has("rope_theta")) theta = number(rope, where + " rope_parameters", "rope_theta", 10000.0);
        else theta = number(j, where, "rope_theta", 10000.0);
        if (rope == null) {
            JsonNode rs = j.get("rope_scaling");
            if (rs != null && !rs.isNull()) {
                if (!rs.isObject()) throw new UserError(where + ": rope_scaling must be an object or null, got " + rs);
                rope = (ObjectNode) rs;
            }
        }
        Rope.Scaling scaling = rope == null ? Rope.Scaling.DEFAULT : scaling(rope, where, maxPos);

        int[] windows = new int[layers];
        JsonNode sw = j.get("sliding_window");
        int window = sw == null || sw.isNull() ? 0 : intValue(sw, where, "sliding_window");
        boolean useWindow = type.equals("mistral") ? window > 0 : window > 0 && bool(j, where, "use_sliding_window", false);
        JsonNode lt = j.get("layer_types");
        if (useWindow && lt != null && lt.isArray() && lt.size() == layers) {
            for (int l = 0; l < layers; l++) if (lt.get(l).asText().equals("sliding_attention")) windows[l] = window;
        } else if (useWindow) {
            int from = type.equals("mistral") ? 0 : optionalInt(j, where, "max_window_layers", layers);
            for (int l = from; l < layers; l++) windows[l] = window;
        }
        try {
            return new LlamaConfig(type, vocab, hidden, inter, layers, heads, kv, headDim, maxPos, eps, theta, scaling,
                    qkvBias, oBias, mlpBias, type.equals("qwen3"), tie, windows, initRange);
        } catch (UserError e) {
            String m = e.getMessage();
            throw new UserError(where + ": " + (m.startsWith("config: ") ? m.substring(8) : m));
        }
    }

    private static Rope.Scaling scaling(ObjectNode r, String where, int maxPos) {
        String w = where + " rope scaling";
        JsonNode t = r.has("rope_type") ? r.get("rope_type") : r.get("type");
        String type = t == null || t.isNull() ? "default" : t.asText();
        if (!Rope.TYPES.contains(type))
            throw new UserError(where + ": rope type \"" + type + "\" is not supported; cpt4j supports " + Rope.TYPES);
        JsonNode om = r.get("original_max_position_embeddings");
        int origMax = om == null || om.isNull() ? 0 : intValue(om, w, "original_max_position_embeddings");
        // factor NaN = absent (yarn then derives it from max_position_embeddings / original, as transformers does)
        return new Rope.Scaling(type, number(r, w, "factor", type.equals("yarn") ? Double.NaN : 1.0), origMax, number(r, w, "low_freq_factor", 1.0),
                number(r, w, "high_freq_factor", 4.0), number(r, w, "beta_fast", 32.0), number(r, w, "beta_slow", 1.0),
                optionalDouble(r, w, "attention_factor"), optionalDouble(r, w, "mscale"),
                optionalDouble(r, w, "mscale_all_dim"), bool(r, w, "truncate", true));
    }

    @Override
    public ObjectNode writeConfig(ModelConfig mc, ObjectNode base, DType dtype) {
        LlamaConfig c = (LlamaConfig) mc;
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        if (base != null) o.setAll(base.deepCopy());
        boolean v5 = o.has("rope_parameters");
        o.put("model_type", c.modelType());
        o.putArray("architectures").add(switch (c.modelType()) {
            case "qwen2" -> "Qwen2ForCausalLM";
            case "qwen3" -> "Qwen3ForCausalLM";
            case "mistral" -> "MistralForCausalLM";
            default -> "LlamaForCausalLM";
        });
        o.put("vocab_size", c.vocabSize());
        o.put("hidden_size", c.hiddenSize());
        o.put("intermediate_size", c.intermediateSize());
        o.put("num_hidden_layers", c.numLayers());
        o.put("num_attention_heads", c.numHeads());
        o.put("num_key_value_heads", c.numKvHeads());
        o.put("head_dim", c.headDim());
        o.put("max_position_embeddings", c.maxPositionEmbeddings());
        o.put("rms_norm_eps", Double.parseDouble(Float.toString(c.rmsNormEps())));
        o.put("hidden_act", "silu");
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        o.put("initializer_range", Double.parseDouble(Float.toString(c.initializerRange())));
        if (!c.modelType().equals("qwen2") && !c.modelType().equals("mistral")) o.put("attention_bias", c.qkvBias());
        if (c.modelType().equals("llama")) o.put("mlp_bias", c.mlpBias());
        ObjectNode rope = JsonNodeFactory.instance.objectNode();
        Rope.Scaling s = c.ropeScaling();
        rope.put("rope_type", s.type());
        if (!s.type().equals("default")) {
            rope.put("factor", s.factor());
            if (s.originalMaxPositionEmbeddings() > 0) rope.put("original_max_position_embeddings", s.originalMaxPositionEmbeddings());
            if (s.type().equals("llama3")) {
                rope.put("low_freq_factor", s.lowFreqFactor());
                rope.put("high_freq_factor", s.highFreqFactor());
            }
            if (s.type().equals("yarn")) {
                rope.put("beta_fast", s.betaFast());
                rope.put("beta_slow", s.betaSlow());
                if (s.attentionFactor() != null) rope.put("attention_factor", s.attentionFactor());
                if (s.mscale() != null) rope.put("mscale", s.mscale());
                if (s.mscaleAllDim() != null) rope.put("mscale_all_dim", s.mscaleAllDim());
                if (!s.truncate()) rope.put("truncate", false);
            }
        }
        if (v5) {
            rope.put("rope_theta", c.ropeTheta());
            o.set("rope_parameters", rope);
            o.remove("rope_scaling");
            o.remove("rope_theta");
        } else {
            o.put("rope_theta", c.ropeTheta());
            if (s.type().equals("default")) o.putNull("rope_scaling");
            else o.set("rope_scaling", rope);
        }
        if (dtype != null) {
            o.put("dtype", dtype.torchName());
            o.put("torch_dtype", dtype.torchName());
        }
        return o;
    }

    @Override
    public ParamLayout layout(ModelConfig c) {
        return LlamaLayout.of((LlamaConfig) c);
    }

    @Override
    public String canonicalName(String fileName) {
        if (fileName.endsWith("rotary_emb.inv_freq")) return null;
        if (fileName.startsWith("model.") || fileName.startsWith("lm_head.")) return fileName;
        return "model." + fileName;
    }

    @Override
    public String tokenEmbedding() {
        return LlamaLayout.EMBED;
    }

    @Override
    public String outputHead() {
        return LlamaLayout.LM_HEAD;
    }

    @Override
    public boolean noDecay(String name) {
        return LlamaLayout.noDecay(name);
    }

    @Override
    public boolean isEmbedding(String name) {
        return name.equals(LlamaLayout.EMBED) || name.equals(LlamaLayout.LM_HEAD);
    }

    @Override
    public CausalLm newModel(ModelConfig c, Gemm gemm, Parallel par, int maxBatch, int maxT, boolean ckpt) {
        return new LlamaModel((LlamaConfig) c, gemm, par, maxBatch, maxT, ckpt);
    }

    @Override
    public CausalLm newModel(ModelConfig c, ParamLayout layout, Gemm gemm, Parallel par, int maxBatch, int maxT,
                             boolean ckpt, Predicate<String> storedBf16) {
        return new LlamaModel((LlamaConfig) c, layout, gemm, par, maxBatch, maxT, ckpt, storedBf16);
    }

    @Override
    public boolean bf16Storable(String view) {
        return PROJECTION.matcher(view).matches();
    }

    /** The sizes {@link LlamaModel}'s constructor allocates (keep the two in step). */
    @Override
    public long activationBytes(ModelConfig mc, int maxBatch, int maxT, boolean ckpt) {
        LlamaConfig c = (LlamaConfig) mc;
        long N = (long) maxBatch * maxT, C = c.hiddenSize(), F = c.intermediateSize(), Q = c.qDim(), K = c.kvDim();
        long L = c.numLayers(), S = ckpt ? 1 : L, NH = c.numHeads(), NKV = c.numKvHeads();
        boolean qk = c.qkNorm();
        long floats = (L + 1) * N * C                   // resid
                + S * N * C                             // hRes
                + (qk ? S * N * (Q + K) : 0)            // qPre, kPre
                + S * N * (Q + 2 * K)                   // qRot, kRot, vAct
                + S * N * Q + S * maxBatch * NH * maxT  // att, lse
                + 2 * S * N * F                         // gate, up
                + 2 * S * N                             // rstd1, rstd2
                + (qk ? S * N * (NH + NKV) : 0)         // qRstd, kRstd
                + N * C + N * F + N * C + N * C + N     // xn, act, tmp, lnf, lnfRstd
                + 2 * N * C + 3 * N * F + N * Q         // dres, dxn, dact, dgate, dup, datt
                + N * (Q + 2 * K)                       // dq, dk, dv
                + (qk ? N * (Q + K) : 0)                // dqPre, dkPre
                + N * C                                 // dlnf
                + dev.cpt4j.tensor.cpu.CrossEntropyHead.scratchSize((int) Math.min(128, N), (int) C, c.vocabSize());
        return 4 * (floats + 4 * N);                    // + tokens, targets, starts, embedSlots
    }

    @Override
    public boolean sparseTokenEmbeddingGrad() {
        return true;
    }

    @Override
    public List<String> loraSites() {
        return SITES;
    }

    /** peft's default for llama, mistral, qwen2 and qwen3: {@code ["q_proj", "v_proj"]}. */
    @Override
    public List<String> defaultLoraSites() {
        return List.of("self_attn.q_proj", "self_attn.v_proj");
    }

    @Override
    public List<String> resolveLoraSites(List<String> names) {
        Set<String> out = new LinkedHashSet<>();
        for (String raw : names) {
            String n = raw.strip();
            if (n.isEmpty()) continue;
            if (n.equals("all-linear")) {                   // peft: every nn.Linear but the output head
                out.addAll(SITES);
                continue;
            }
            String hit = null;
            for (String s : SITES) if (s.equals(n) || s.endsWith("." + n)) hit = s;
            if (hit == null)
                throw new UserError("--trainable '" + n + "' is not a projection of this LLaMA-family model; it has "
                        + "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj (or all-linear)");
            out.add(hit);
        }
        List<String> sorted = new ArrayList<>();
        for (String s : SITES) if (out.contains(s)) sorted.add(s);
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
                case "embed_tokens", "model.embed_tokens" -> out.add("model.embed_tokens");
                case "lm_head" -> out.add("lm_head");
                case "norm", "model.norm" -> out.add("model.norm");
                default -> throw new UserError("--modules_to_save '" + n + "' is not a module cpt4j can train in full on "
                        + "this LLaMA-family model; it has embed_tokens, lm_head, norm");
            }
        }
        return List.copyOf(out);
    }

    @Override
    public StepModel decoder(ModelConfig c, float[] params, ParamLayout layout, int maxSeqs, int maxLength, Parallel par) {
        LlamaConfig lc = (LlamaConfig) c;
        return new LlamaDecoder(lc, LlamaWeights.of(lc, layout, params), maxSeqs, maxLength, par);
    }

    @Override
    public StepModel decoder(ModelConfig c, WeightStore weights, int maxSeqs, int maxLength, Parallel par) {
        LlamaConfig lc = (LlamaConfig) c;
        return new LlamaDecoder(lc, LlamaWeights.of(lc, weights), maxSeqs, maxLength, par);
    }

    @Override
    public String describe(ModelConfig mc) {
        LlamaConfig c = (LlamaConfig) mc;
        return "model_type " + c.modelType() + ", vocab_size " + c.vocabSize() + ", hidden_size " + c.hiddenSize()
                + ", intermediate_size " + c.intermediateSize() + ", num_hidden_layers " + c.numLayers()
                + ", heads " + c.numHeads() + "/" + c.numKvHeads() + " kv, head_dim " + c.headDim()
                + ", tie_word_embeddings " + c.tieWordEmbeddings();
    }

    @Override
    public int attentionWidth(ModelConfig c) {
        return ((LlamaConfig) c).qDim();
    }

    @Override
    public String hiddenSizeKey() {
        return "hidden_size";
    }

    @Override
    public String numLayersKey() {
        return "num_hidden_layers";
    }

    /**
     * The seven {@code nn.Linear} projections of every block (what peft's {@code "all-linear"} selects), the
     * embedding and the head ({@code all-linear} leaves the head out; naming {@code lm_head} adapts it).
     */
    @Override
    public List<LoraTarget> loraTargets(ModelConfig mc) {
        LlamaConfig c = (LlamaConfig) mc;
        int V = c.vocabSize(), C = c.hiddenSize(), F = c.intermediateSize(), Q = c.qDim(), K = c.kvDim();
        List<LoraTarget> t = new ArrayList<>();
        t.add(new LoraTarget("model.embed_tokens", -1, "embed_tokens", LlamaLayout.EMBED, LoraStorage.EMBEDDING, V, C));
        for (int l = 0; l < c.numLayers(); l++) {
            t.add(linear(l, "self_attn.q_proj", C, Q));
            t.add(linear(l, "self_attn.k_proj", C, K));
            t.add(linear(l, "self_attn.v_proj", C, K));
            t.add(linear(l, "self_attn.o_proj", Q, C));
            t.add(linear(l, "mlp.gate_proj", C, F));
            t.add(linear(l, "mlp.up_proj", C, F));
            t.add(linear(l, "mlp.down_proj", F, C));
        }
        t.add(new LoraTarget("lm_head", -1, "lm_head", head(c), LoraStorage.LINEAR, C, V));
        return t;
    }

    private static LoraTarget linear(int l, String site, int in, int out) {
        String module = LlamaLayout.layer(l, site);
        return new LoraTarget(module, l, site.substring(site.indexOf('.') + 1), module + ".weight", LoraStorage.LINEAR, in, out);
    }

    private static String head(LlamaConfig c) {
        return c.tieWordEmbeddings() ? LlamaLayout.EMBED : LlamaLayout.LM_HEAD;
    }

    @Override
    public int layerOf(String module) {
        Matcher m = LAYER_MODULE.matcher(module);
        return m.matches() ? Integer.parseInt(m.group(1)) : -1;
    }

    @Override
    public List<SavedModule> savableModules(ModelConfig mc) {
        LlamaConfig c = (LlamaConfig) mc;
        return List.of(new SavedModule("model.embed_tokens", List.of(LlamaLayout.EMBED), List.of(LlamaLayout.EMBED)),
                new SavedModule("model.norm", List.of(LlamaLayout.NORM), List.of(LlamaLayout.NORM)),
                new SavedModule("lm_head", List.of(LlamaLayout.LM_HEAD), List.of(head(c))));
    }

    // ------------------------------------------------------------ typed fields

    private static int requiredInt(ObjectNode j, String where, String key) {
        JsonNode v = j.get(key);
        if (v == null || v.isNull())
            throw new UserError(where + ": missing field '" + key + "'; a " + j.get("model_type").asText()
                    + " config.json needs vocab_size, hidden_size, intermediate_size, num_hidden_layers and num_attention_heads");
        return intValue(v, where, key);
    }

    private static Double optionalDouble(ObjectNode j, String where, String key) {
        JsonNode v = j.get(key);
        if (v == null || v.isNull()) return null;
        return number(j, where, key, 0.0);
    }

}
