package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.hf.PeftAdapters;
import dev.cpt4j.hf.PeftExport;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Parity of LoRA training on the LLaMA family with transformers + peft 0.21 (fixtures by
 * tools/golden/make_peft_llama_train_golden.py): LoRA r 4, alpha 8 on all seven projections ({@code all-linear})
 * with {@code embed_tokens} + {@code lm_head} trained in full, 10 steps of HF-Trainer-style AdamW (cosine, 2 warm-up
 * steps, clip 1.0) from peft's own initial adapter, through {@link Trainer#run}. Cases: an untied llama, and a tied
 * qwen2 (peft's two independent copies; config vocabulary 181 rows, ids below 150), and the same two bases with
 * peft's trainable tokens instead ({@code trainable_token_indices}: the untied llama's embedding and head rows of 4
 * ids, the tied qwen2's shared rows of 5 ids, one of them never an input). Each step's loss and grad norm
 * within 1e-4 relative, every final adapter tensor within 1e-4, the final eval loss within 1e-4 relative.
 */
class PeftLlamaTrainGoldenTest {
    @ParameterizedTest
    @ValueSource(strings = {"llama_untied_llama3_bias", "qwen2_tied_yarn", "llama_untied_tokens", "qwen2_tied_tokens"})
    void tenLoraStepsMatchPeft(String name, @TempDir Path tmp) throws Exception {
        Path root = LoraGoldenTest.resource("/golden/peft_llama_train/" + name);
        JsonNode exp = new ObjectMapper().readTree(root.resolve("expected.json").toFile());
        Path base = LoraGoldenTest.resource("/golden/llama/" + exp.get("base").asText());
        List<String> modules = new ArrayList<>();
        exp.get("modules_to_save").forEach(m -> modules.add(m.asText()));
        List<String> tokenIds = new ArrayList<>();
        exp.path("trainable_token_indices").forEach(i -> tokenIds.add(i.asText()));
        boolean tokens = !tokenIds.isEmpty();
        int steps = exp.get("steps").asInt(), B = exp.get("batch").asInt(), T = exp.get("block").asInt();
        TrainOptions o = TrainOptions.builder().modelNameOrPath(base).datasetDir(Path.of("unused")).validationSplit(0.0)
                .blockSize(T).threads(2).preprocessingNumWorkers(1).perDeviceTrainBatchSize(B).perDeviceEvalBatchSize(B)
                .maxSteps(steps).numTrainEpochs(1.0).seed(1).learningRate(exp.get("lr").asDouble())
                .embeddingLearningRate(exp.get("lr").asDouble()).weightDecay(exp.get("weight_decay").asDouble())
                .lrSchedulerType(LrSchedule.Type.COSINE).warmupSteps(exp.get("warmup_steps").asInt())
                .loraRank(exp.get("r").asInt()).loraAlpha(exp.get("lora_alpha").asDouble())
                .trainable(List.of("all-linear")).modulesToSave(modules).loggingSteps(1).loggingFirstStep(true)
                .doEval(true).evalSteps(0).saveSteps(0).outputDir(tmp.resolve("out"))
                .trainableTokenIndices(tokens ? String.join(",", tokenIds) : null).build();
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
        try (Parallel par = new Parallel(2);
             Safetensors init = Safetensors.open(root.resolve("init_adapter.safetensors"));
             Safetensors ids = Safetensors.open(root.resolve("steps.safetensors"))) {
            FamilyTrainable model = FamilyTrainable.fromPretrained(base, FamilyTrainable.Spec.of(o, 0, T), new Gemm(par), par, m -> {});
            assertThat(model.config().tieWordEmbeddings()).as("peft trains untied copies; trainable tokens keep the tying")
                    .isEqualTo(tokens && model.baseConfig().tieWordEmbeddings());
            assertThat(model.config().vocabSize()).as("config rows kept").isEqualTo(model.baseConfig().vocabSize());
            ParamLayout layout = model.layout();
            for (String key : init.names()) {     // peft's own initial adapter (torch's kaiming draw), copies included
                String view = key.substring(PeftAdapters.PREFIX.length());
                assertThat(model.isTrainable(view)).as(view).isTrue();
                init.readFloats(key, model.params(), layout.get(view).offset());
            }
            LoraGoldenTest.FixedBatches data = new LoraGoldenTest.FixedBatches(ids.readLongs("input_ids"),
                    ids.readLongs("eval_ids"), steps, B, T);
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
                    model.loraSites(), model.savedModules());
            Map<String, PeftAdapters.Tensor> golden = PeftAdapters.readTensors(root.resolve("final_adapter"));
            assertThat(ours.keySet()).containsExactlyInAnyOrderElementsOf(golden.keySet());
            double worstTensor = 0;
            for (var e : golden.entrySet()) {
                float[] a = ours.get(e.getKey()).data(), b = e.getValue().data();
                assertThat(ours.get(e.getKey()).shape()).as(e.getKey()).containsExactly(e.getValue().shape());
                double worst = 0;
                for (int i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
                assertThat(worst).as("largest |difference| of %s", e.getKey()).isLessThanOrEqualTo(1e-4);
                worstTensor = Math.max(worstTensor, worst);
            }
            double eval = Trainer.evaluate(model, data, B);
            assertThat(rel(eval, exp.get("final_eval_loss").asDouble())).as("eval loss %s", eval).isLessThanOrEqualTo(1e-4);
            System.out.printf("%s: loss rel %.2e, grad-norm rel %.2e, adapter |diff| %.2e%n", name, worstLoss, worstNorm, worstTensor);

            // the adapter as cpt4j writes it (tools/golden/make_peft_llama_train_golden.py --check-java-output NAME DIR
            // loads it in peft), and both it and peft's own adapter loaded back through AdapterMerge: the eval loss
            Path out = System.getProperty("cpt4j.peftLlamaTrainOut") != null
                    ? Path.of(System.getProperty("cpt4j.peftLlamaTrainOut")).resolve(name) : tmp.resolve("adapter");
            PeftExport.writeAdapter(out, model.config(), layout, model.params(), o.loraRank(), o.loraAlpha(), 0.0, false,
                    model.loraSites(), model.savedModules(), base.toString(), model.trainableTokens());
            java.nio.file.Files.writeString(out.resolve("cpt4j_eval_loss.json"), "{\"eval_loss\": " + eval + "}\n");
            PeftAdapters.Adapter back = PeftAdapters.read(out);
            assertThat(back.config().fanInFanOut()).isFalse();
            if (tokens) assertThat(back.config().extra().get("trainable_token_indices").toString())
                    .isEqualTo(new ObjectMapper().readTree(root.resolve("final_adapter/adapter_config.json").toFile())
                            .get("trainable_token_indices").toString());
            for (Path adapter : List.of(out, root.resolve("final_adapter"))) {
                var merged = dev.cpt4j.hf.AdapterMerge.load(base, adapter);
                var m = merged.config().family().newModel(merged.config(), new Gemm(par), par, B, T, false);
                System.arraycopy(merged.params(), 0, m.params(), 0, merged.params().length);
                int[] evalIds = new int[B * T];
                data.evalBlocks(evalIds, 0, B);
                double l = m.evalLoss(evalIds, B, T);
                assertThat(rel(l, exp.get("final_eval_loss").asDouble())).as("%s merged through cpt4j: %s", adapter, l)
                        .isLessThanOrEqualTo(1e-4);
            }
        }
    }

    private static double rel(double a, double b) {
        return Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);
    }
}
