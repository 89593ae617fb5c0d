package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.hf.PeftExport;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Parity with transformers + peft 0.21 (fixtures by tools/golden/make_lora_golden.py): a tiny tied GPT-2 with
 * LoRA r=4, alpha 16 on c_attn and modules_to_save transformer.wte + lm_head (untied, as peft does), 10 steps of
 * HF-Trainer-style AdamW (cosine, 2 warm-up steps, clip 1.0) from peft's own initial adapter. Each step's loss and
 * grad norm within 1e-4 relative, the final adapter tensors within 1e-4, the final eval loss within 1e-4 relative.
 */
class LoraGoldenTest {
    private static final Path ROOT = resource("/golden/lora");

    static Path resource(String name) {
        try {
            return Path.of(LoraGoldenTest.class.getResource(name).toURI());
        } catch (Exception e) {
            throw new IllegalStateException("missing fixture " + name + " (regenerate with tools/golden/make_lora_golden.py)", e);
        }
    }

    /** The batches of the golden run, in order; the eval ids as evaluation blocks. */
    static final class FixedBatches implements BatchSource {
        final int[][] steps;
        final int[] eval;
        final int B, T;
        int next;

        FixedBatches(long[] ids, long[] evalIds, int steps, int B, int T) {
            this.B = B;
            this.T = T;
            this.steps = new int[steps][B * T];
            for (int s = 0; s < steps; s++)
                for (int i = 0; i < B * T; i++) this.steps[s][i] = (int) ids[s * B * T + i];
            this.eval = new int[evalIds.length];
            for (int i = 0; i < eval.length; i++) eval[i] = (int) evalIds[i];
        }

        @Override public int blockSize() { return T; }
        @Override public long trainBlocks() { return (long) steps.length * B; }
        @Override public void nextTrain(int[] dst, int batch) { System.arraycopy(steps[next++], 0, dst, 0, B * T); }
        @Override public long evalBlocks() { return eval.length / T; }
        @Override public void evalBlocks(int[] dst, long first, int count) {
            System.arraycopy(eval, (int) first * T, dst, 0, count * T);
        }
        @Override public JsonNode state() { return JsonNodeFactory.instance.numberNode(next); }
        @Override public void restore(JsonNode state) { next = state.asInt(); }
    }

    @Test
    void tenLoraStepsMatchPeft(@TempDir Path tmp) throws Exception {
        JsonNode exp = new ObjectMapper().readTree(ROOT.resolve("expected.json").toFile());
        int steps = exp.get("steps").asInt(), B = exp.get("batch").asInt(), T = exp.get("block").asInt();
        TrainOptions o = TrainOptions.builder().modelNameOrPath(ROOT.resolve("base")).datasetDir(Path.of("unused"))
                .validationSplit(0.0).blockSize(T).threads(1).perDeviceTrainBatchSize(B).perDeviceEvalBatchSize(B)
                .maxSteps(steps).numTrainEpochs(1.0).seed(1).learningRate(exp.get("lr").asDouble())
                .embeddingLearningRate(exp.get("lr").asDouble()).weightDecay(exp.get("weight_decay").asDouble())
                .lrSchedulerType(LrSchedule.Type.COSINE).warmupSteps(exp.get("warmup_steps").asInt())
                .loraRank(exp.get("r").asInt()).loraAlpha(exp.get("lora_alpha").asDouble())
                .trainable(List.of("c_attn")).modulesToSave(List.of("transformer.wte", "lm_head")).loggingSteps(1)
                .loggingFirstStep(true).doEval(true).evalSteps(0).saveSteps(0).outputDir(tmp.resolve("out")).build();
        List<Double> losses = new ArrayList<>(), norms = new ArrayList<>();
        Progress capture = new Progress() {
            @Override public void start(long startStep, long maxSteps) {}
            @Override public void step(long step, double loss, double lr, double gradNorm, double tokensPerS) {
                losses.add(loss);
                norms.add(gradNorm);
            }
            @Override public void message(String line) {}
            @Override public void close() {}
        };
        try (Parallel par = new Parallel(1);
             Safetensors init = Safetensors.open(ROOT.resolve("init_adapter.safetensors"));
             Safetensors ids = Safetensors.open(ROOT.resolve("steps.safetensors"))) {
            FamilyTrainable model = FamilyTrainable.fromPretrained(ROOT.resolve("base"), FamilyTrainable.Spec.of(o, 0, T),
                    new Gemm(par), par, m -> {});
            assertThat(model.config().tieWordEmbeddings()).as("peft unties wte/lm_head copies").isFalse();
            ParamLayout layout = model.layout();
            // start from peft's own initial adapter (torch's kaiming draw), wte/lm_head copies included
            for (String key : init.names()) {
                String view = key.substring(PeftAdapters.PREFIX.length());
                assertThat(model.isTrainable(view)).as(view).isTrue();
                init.readFloats(key, model.params(), layout.get(view).offset());
            }
            FixedBatches data = new FixedBatches(ids.readLongs("input_ids"), ids.readLongs("eval_ids"), steps, B, T);
            Trainer.run(o, model, data, par, capture, new PrintStream(PrintStream.nullOutputStream()));

            JsonNode expLoss = exp.get("losses"), expNorm = exp.get("grad_norms");
            double worstLoss = 0, worstNorm = 0;
            for (int s = 0; s < steps; s++) {
                worstLoss = Math.max(worstLoss, rel(losses.get(s), expLoss.get(s).asDouble()));
                worstNorm = Math.max(worstNorm, rel(norms.get(s), expNorm.get(s).asDouble()));
            }
            assertThat(worstLoss).as("largest per-step loss rel. difference; ours %s", losses).isLessThanOrEqualTo(1e-4);
            assertThat(worstNorm).as("largest per-step grad-norm rel. difference; ours %s", norms).isLessThanOrEqualTo(1e-4);

            Map<String, PeftAdapters.Tensor> ours = PeftExport.tensors(model.config(), layout, model.params(),
                    o.trainable(), o.modulesToSave());
            Map<String, PeftAdapters.Tensor> golden = PeftAdapters.readTensors(ROOT.resolve("final_adapter"));
            assertThat(ours.keySet()).containsExactlyInAnyOrderElementsOf(golden.keySet());
            for (var e : golden.entrySet()) {
                float[] a = ours.get(e.getKey()).data(), b = e.getValue().data();
                assertThat(ours.get(e.getKey()).shape()).as(e.getKey()).containsExactly(e.getValue().shape());
                double worst = 0;
                for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
                assertThat(worst).as("largest |difference| of %s", e.getKey()).isLessThanOrEqualTo(1e-4);
            }
            double eval = Trainer.evaluate(model, data, B);
            assertThat(rel(eval, exp.get("final_eval_loss").asDouble())).as("eval loss %s", eval).isLessThanOrEqualTo(1e-4);

            // the adapter as cpt4j writes it; tools/golden/make_lora_golden.py --check-java-output DIR loads it in peft
            Path out = System.getProperty("cpt4j.loraGoldenOut") != null
                    ? Path.of(System.getProperty("cpt4j.loraGoldenOut")) : tmp.resolve("adapter");
            PeftExport.writeAdapter(out, model.config(), layout, model.params(), o.loraRank(), o.loraAlpha(), 0.0, false,
                    o.trainable(), o.modulesToSave(), ROOT.resolve("base").toString());
            Files.writeString(out.resolve("cpt4j_eval_loss.json"), "{\"eval_loss\": " + eval + "}\n");
            PeftAdapters.Adapter back = PeftAdapters.read(out);
            assertThat(back.config().fanInFanOut()).isTrue();
            assertThat(back.config().targetModules()).containsExactly("c_attn");
            assertThat(back.config().modulesToSave()).containsExactly("transformer.wte", "lm_head");
            assertThat(back.tensors().keySet()).containsExactlyInAnyOrderElementsOf(golden.keySet());
        }
    }

    private static double rel(double a, double b) {
        return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
    }
}
