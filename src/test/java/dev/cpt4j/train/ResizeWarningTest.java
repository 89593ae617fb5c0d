package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cpt4j.model.Gpt2Config;
import dev.cpt4j.model.Gpt2Model;
import dev.cpt4j.tensor.Parallel;
import dev.cpt4j.tensor.cpu.Gemm;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** A resized vocabulary whose new rows would stay frozen under LoRA is reported, naming the frozen tensor. */
class ResizeWarningTest {
    private static List<String> build(Gpt2Config base, int vocab, List<String> modulesToSave, boolean ensureTying) {
        try (Parallel par = Parallel.serial()) {
            Gemm gemm = new Gemm(par);
            Gpt2Model init = new Gpt2Model(base, gemm, par, 1, 1, false);
            init.initRandom(5);
            FamilyTrainable.Spec spec = new FamilyTrainable.Spec(vocab, 1, 8, false, 4, 2.0, 0.0,
                    List.of("attn.c_attn"), modulesToSave, ensureTying, false, 11);
            List<String> log = new ArrayList<>();
            FamilyTrainable.build(base, init.layout(), init.params(), spec, gemm, par, log::add);
            return log.stream().filter(l -> l.startsWith("warning:")).toList();
        }
    }

    @Test
    void warnsWhenTheNewRowsAreFrozen() {
        Gpt2Config tied = Gpt2Config.of(37, 32, 16, 2, 2);
        assertThat(build(tied, 40, List.of(), false)).singleElement().asString()
                .contains("37 to 40 rows", "transformer.wte (tied to lm_head) is not trained", "--modules_to_save");
        Gpt2Config untied = tied.withTiedEmbeddings(false);
        assertThat(build(untied, 40, List.of(), false)).singleElement().asString()
                .contains("neither transformer.wte nor lm_head is trained");
        assertThat(build(untied, 40, List.of("transformer.wte"), false)).singleElement().asString()
                .contains("lm_head is not trained");
        assertThat(build(untied, 40, List.of("lm_head"), false)).singleElement().asString()
                .contains("transformer.wte is not trained");
    }

    @Test
    void quietWhenTheNewRowsTrainOrNothingGrew() {
        Gpt2Config tied = Gpt2Config.of(37, 32, 16, 2, 2);
        assertThat(build(tied, 40, List.of("transformer.wte", "lm_head"), false)).isEmpty();
        assertThat(build(tied, 40, List.of("transformer.wte"), true)).isEmpty();
        assertThat(build(tied, 37, List.of(), false)).isEmpty();
        assertThat(build(tied.withTiedEmbeddings(false), 40, List.of("transformer.wte", "lm_head"), false)).isEmpty();
    }
}
