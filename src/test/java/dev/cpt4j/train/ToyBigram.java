package dev.cpt4j.train;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.cpt4j.tensor.ParamLayout;

/**
 * A bigram language model for testing the training loop: logits(next | x) = wte[x] + bias (+ an optional frozen
 * "base" view the optimizer must leave alone). Exact cross-entropy forward/backward; deterministic.
 */
final class ToyBigram implements TrainableModel {
    final int V;
    final ParamLayout layout = new ParamLayout();
    final float[] params, grads;
    int calls;
    int nanAtCall = -1;       // returns NaN on this forward call (1-based)
    int crashAtCall = -1;     // throws (a simulated kill) on this forward call
    int explodeAtCall = -1;   // multiplies the trainable weights by 50 before this call (a blow-up that stays finite)
    int poisonAtCall = -1;    // sets one trainable weight to NaN after this call (loss and gradients stay finite)
    java.util.function.IntConsumer onCall = c -> { };   // runs before every forward call (e.g. a stop request)

    ToyBigram(int vocab, long seed) {
        V = vocab;
        layout.add("frozen.base", 5);
        layout.add("transformer.wte.weight", V, V);   // (V, V) bigram logits table
        layout.add("lm_head.bias", V);
        params = new float[layout.size()];
        grads = new float[layout.size()];
        java.util.Random r = new java.util.Random(seed);
        for (int i = 0; i < params.length; i++) params[i] = (float) (r.nextGaussian() * 0.1);
    }

    public ParamLayout layout() { return layout; }
    public float[] params() { return params; }
    public float[] grads() { return grads; }
    public boolean isTrainable(String view) { return !view.startsWith("frozen"); }
    public boolean isEmbedding(String view) { return view.equals("transformer.wte.weight"); }
    public int maxSequenceLength() { return 64; }

    public double forwardBackward(int[] tokens, int batch, int seqLen, float gradScale, long dropoutSeed) {
        calls++;
        onCall.accept(calls);
        if (calls == crashAtCall) throw new IllegalStateException("simulated kill at call " + calls);
        if (calls == explodeAtCall) for (int i = 5; i < params.length; i++) params[i] *= 50f;
        double loss = run(tokens, batch, seqLen, gradScale, true);
        if (calls == poisonAtCall) params[layout.get("transformer.wte.weight").offset() + 3] = Float.NaN;
        return calls == nanAtCall ? Double.NaN : loss;
    }

    public double loss(int[] tokens, int batch, int seqLen) {
        return run(tokens, batch, seqLen, 0, false);
    }

    private double run(int[] tokens, int batch, int seqLen, float gradScale, boolean backward) {
        int w = layout.get("transformer.wte.weight").offset(), b = layout.get("lm_head.bias").offset();
        int n = batch * (seqLen - 1);
        double total = 0;
        float[] p = new float[V];
        for (int s = 0; s < batch; s++)
            for (int t = 0; t + 1 < seqLen; t++) {
                int x = tokens[s * seqLen + t], y = tokens[s * seqLen + t + 1];
                float max = Float.NEGATIVE_INFINITY;
                for (int v = 0; v < V; v++) max = Math.max(max, p[v] = params[w + x * V + v] + params[b + v]);
                double sum = 0;
                for (int v = 0; v < V; v++) sum += p[v] = (float) Math.exp(p[v] - max);
                for (int v = 0; v < V; v++) p[v] /= (float) sum;
                total -= Math.log(p[y]);
                if (backward)
                    for (int v = 0; v < V; v++) {
                        float d = (p[v] - (v == y ? 1f : 0f)) * gradScale / n;
                        grads[w + x * V + v] += d;
                        grads[b + v] += d;
                    }
            }
        return total / n;
    }
}

/** Blocks cut from a fixed pseudo-random token stream; the cursor is the next block index. */
final class ToyData implements BatchSource {
    final int V, T, trainBlocks, evalBlocks;
    long cursor;

    ToyData(int vocab, int blockSize, int trainBlocks, int evalBlocks) {
        V = vocab;
        T = blockSize;
        this.trainBlocks = trainBlocks;
        this.evalBlocks = evalBlocks;
    }

    private int token(long block, int t) {
        // a learnable pattern: mostly (prev * 3 + 1) mod V, with some noise
        long h = (block * 1_000_003L + t) * 0x9E3779B97F4A7C15L;
        int start = (int) Math.floorMod(block * 7, V);
        int x = start;
        for (int i = 0; i < t; i++) x = (x * 3 + 1) % V;
        return ((h >>> 40) % 5 == 0) ? (int) ((h >>> 20) % V) : x;
    }

    public int blockSize() { return T; }
    public long trainBlocks() { return trainBlocks; }

    public void nextTrain(int[] dst, int batch) {
        for (int i = 0; i < batch; i++) {
            long blk = cursor++ % trainBlocks;
            for (int t = 0; t < T; t++) dst[i * T + t] = token(blk, t);
        }
    }

    public long evalBlocks() { return evalBlocks; }

    public void evalBlocks(int[] dst, long first, int count) {
        for (int i = 0; i < count; i++)
            for (int t = 0; t < T; t++) dst[i * T + t] = token(10_000 + first + i, t);
    }

    public JsonNode state() { return JsonNodeFactory.instance.objectNode().put("cursor", cursor); }

    public void restore(JsonNode state) { cursor = state.get("cursor").asLong(); }
}
