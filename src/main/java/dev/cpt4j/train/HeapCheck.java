package dev.cpt4j.train;

import dev.cpt4j.UserError;
import dev.cpt4j.model.ModelConfig;
import dev.cpt4j.model.ModelFamily;
import dev.cpt4j.tensor.ParamLayout;
import java.util.HashSet;
import java.util.Locale;
import java.util.Set;

/**
 * Refuses a training run whose buffers cannot fit in the Java heap before any of them is allocated, instead of an
 * {@code OutOfMemoryError} minutes later. The estimate is a lower bound built from the sizes the model allocates:
 * its activations ({@link ModelFamily#activationBytes}), the weights (fp32, or bf16 for the frozen projection
 * weights of {@code --base_dtype bf16}), and the gradient and AdamW moments of what is trained in full (every
 * tensor without LoRA; the {@code modules_to_save} copies with it). LoRA matrices, the loader's read buffer and the
 * JVM's own memory come on top.
 */
final class HeapCheck {
    private HeapCheck() {}

    /** What a run of {@code spec} on the base {@code base} needs at least, in bytes, and how that splits. */
    record Estimate(long activations, long weights, long optimizer) {
        long total() {
            return activations + weights + optimizer;
        }
    }

    static Estimate estimate(ModelConfig base, FamilyTrainable.Spec spec) {
        ModelFamily fam = base.family();
        ModelConfig cfg = spec.trainedConfig(base);
        long activations = fam.activationBytes(cfg, spec.maxBatch(), spec.maxT(), spec.gradientCheckpointing());
        Set<String> full = new HashSet<>();
        ParamLayout layout = fam.layout(cfg);
        if (spec.lora()) {
            for (String m : spec.modules(fam)) full.addAll(FamilyTrainable.moduleViews(cfg, m));
        } else {
            for (ParamLayout.View v : layout.views()) full.add(v.name());
        }
        boolean sparseEmbedding = fam.sparseTokenEmbeddingGrad() && !cfg.tieWordEmbeddings();
        long weights = 0, optimizer = 0;
        for (ParamLayout.View v : layout.views()) {
            boolean bf16 = spec.baseBf16() && !full.contains(v.name()) && fam.bf16Storable(v.name());
            weights += (bf16 ? 2L : 4L) * v.size();
            if (full.contains(v.name())) optimizer += 8L * v.size()   // AdamW m and v
                    + (v.name().equals(fam.tokenEmbedding()) && sparseEmbedding ? 0 : 4L * v.size()); // gradient (an untied embedding's may be row-sparse)
        }
        return new Estimate(activations, weights, optimizer);
    }

    /** Throws a {@link UserError} when the estimate of {@code spec} exceeds {@code maxHeap} bytes. */
    static void require(ModelConfig base, FamilyTrainable.Spec spec, int batch, long maxHeap) {
        Estimate e = estimate(base, spec);
        if (e.total() <= maxHeap) return;
        long gib = (long) Math.ceil(e.total() * 1.25 / (1L << 30)) + 1;   // the estimate, JVM overhead and headroom
        throw new UserError(String.format(Locale.ROOT, "a batch of %d × %d tokens needs at least %s (activations %s, "
                        + "weights %s, gradients and optimizer state %s), more than the Java heap's %s; give the JVM "
                        + "more with CPT4J_JAVA_OPTS=-Xmx%dg (if the machine has it), use a smaller "
                        + "--per_device_train_batch_size or --block_size%s",
                batch, spec.maxT(), mib(e.total()), mib(e.activations()), mib(e.weights()), mib(e.optimizer()),
                mib(maxHeap), gib, spec.gradientCheckpointing() ? "" : ", or add --gradient_checkpointing"));
    }

    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%,d MiB", (bytes + (1 << 20) - 1) >> 20);
    }
}
