package dev.cpt4j.model;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.cpt4j.hf.HfCheckpoints;
import dev.cpt4j.io.Safetensors;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.ParamLayout;
import dev.cpt4j.tensor.cpu.Gemm;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

import static org.assertj.core.api.Assertions.assertThat;

/**
 * Neat packing against transformers (fixtures of tools/golden/make_packing_golden.py): a batch of blocks, each cut
 * into document pieces, through the engine with its document starts gives the loss and every gradient transformers
 * gives running each piece separately, with the loss summed over the pieces' predictions and divided by all trained
 * positions of the batch. GPT-2 (learned positions) and the LLaMA family (llama3 RoPE with biases; Mistral's sliding
 * window inside longer pieces); 1 and 2 threads, with and without gradient checkpointing. Tolerances as
 * {@link LlamaGoldenTest}: loss 1e-5 relative, each gradient within 1e-3 of its tensor's largest |reference|. The
 * same ids unpacked give a loss more than 1e-3 relative away (100× the tolerance: the fixture is sensitive to packing), and the KV-cache decoder's
 * per-piece losses average to the packed loss.
 */
class PackingGoldenTest {
    static final Path GOLDEN = Path.of("src/test/resources/golden");

    static Stream<Arguments> cases() {
        List<Arguments> a = new ArrayList<>();
        for (String name : List.of("gpt2_untied", "llama_bias", "mistral_swa"))
            for (int threads : new int[] {1, 2})
                for (boolean ckpt : new boolean[] {false, true}) a.add(Arguments.of(name, threads, ckpt));
        return a.stream();
    }

    @ParameterizedTest(name = "{0} threads={1} checkpointing={2}")
    @MethodSource("cases")
    void packedEqualsEachDocumentAlone(String name, int threads, boolean ckpt) throws IOException {
        Path d = GOLDEN.resolve("packing").resolve(name);
        JsonNode g = new ObjectMapper().readTree(d.resolve("golden.json").toFile());
        HfCheckpoints.ModelDir m = HfCheckpoints.loadModelDir(GOLDEN.resolve(g.path("model").asText()));
        ModelConfig cfg = m.config();
        List<String> failures = new ArrayList<>(), report = new ArrayList<>();
        try (Safetensors expected = Safetensors.open(d.resolve("expected.safetensors"));
             Safetensors refGrads = Safetensors.open(d.resolve("grads.safetensors"));
             Parallel par = new Parallel(threads)) {
            int[] ids = LlamaGoldenTest.ints(expected, "input_ids"), starts = LlamaGoldenTest.ints(expected, "doc_starts");
            int B = g.path("batch").asInt(), T = g.path("time").asInt();
            assertThat(CausalLm.trainedPositions(starts, B, T)).isEqualTo(g.path("trained").asLong());
            CausalLm model = cfg.family().newModel(cfg, new Gemm(par), par, B, T, ckpt);
            System.arraycopy(m.params(), 0, model.params(), 0, m.params().length);
            float ref = expected.readFloats("loss")[0];
            float eval = model.forward(ids, null, starts, B, T, false, 0L);
            model.zeroGrad();
            float loss = model.forward(ids, null, starts, B, T, true, 42L);
            model.backward();
            for (float l : new float[] {eval, loss}) {
                double rel = Math.abs(l - ref) / Math.abs(ref);
                report.add(String.format("loss %.7f vs %.7f rel %.3g", l, ref, rel));
                if (!(rel <= 1e-5)) failures.add("loss " + l + " vs " + ref);
            }
            Set<String> seen = new HashSet<>();
            double worst = 0;
            for (String n : refGrads.names()) {
                seen.add(n);
                float[] r = refGrads.readFloats(n);
                int go = model.gradOffset(n);
                assertThat(r.length).as(n).isEqualTo(model.layout().get(n).size());
                double maxRef = 0, maxDiff = 0;
                for (int i = 0; i < r.length; i++) {
                    maxRef = Math.max(maxRef, Math.abs(r[i]));
                    maxDiff = Math.max(maxDiff, Math.abs(model.grads()[go + i] - r[i]));
                }
                double ratio = maxDiff / Math.max(maxRef, 1e-30);
                worst = Math.max(worst, ratio);
                if (!(ratio <= 1e-3)) failures.add("grad " + n + " diff/max " + ratio);
            }
            report.add(String.format("grads worst diff/max %.3g", worst));
            for (ParamLayout.View v : model.layout().views())
                if (!seen.contains(v.name())) failures.add("no reference gradient for " + v.name());

            float plain = model.forward(ids, null, null, B, T, false, 0L);
            if (!(Math.abs(plain - ref) / ref > 1e-3)) failures.add("unpacked loss " + plain + " is too close to the packed " + ref);

            // the decoder (eval's other path) scores each piece alone; weighted by its predictions it is the same loss
            StepModel dec = cfg.family().decoder(cfg, m.params().clone(), m.layout(), 1, T, par);
            double sum = 0;
            long n = 0;
            for (int b = 0; b < B; b++)
                for (int s = 0; s < T; ) {
                    int e = s + 1;
                    while (e < T && starts[b * T + e] == s) e++;
                    if (e - s >= 2) {
                        sum += dec.sequenceLoss(Arrays.copyOfRange(ids, b * T + s, b * T + e)) * (e - s - 1);
                        n += e - s - 1;
                    }
                    s = e;
                }
            double decLoss = sum / n;
            if (!(Math.abs(decLoss - ref) / ref <= 1e-5)) failures.add("decoder loss " + decLoss + " vs " + ref);
        }
        System.out.println("[packing golden " + name + " threads=" + threads + " ckpt=" + ckpt + "] " + String.join("; ", report));
        assertThat(failures).as(name + ": " + String.join("; ", report)).isEmpty();
    }
}
