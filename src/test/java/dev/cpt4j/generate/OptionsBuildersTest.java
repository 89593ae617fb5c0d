package dev.cpt4j.generate;

import dev.cpt4j.UserError;
import dev.cpt4j.data.PrepareOptions;
import org.junit.jupiter.api.Test;

import java.nio.file.Path;
import java.util.List;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

/** The library's option builders: the command line's defaults, and validation before anything is loaded. */
class OptionsBuildersTest {
    static final Path M = Path.of("model");

    @Test
    void generateDefaultsAreTransformers() {
        GenerateOptions o = GenerateOptions.builder().model(M).prompt("春").build();
        GenerationConfig g = o.generation(new int[] {3});
        assertThat(g).isEqualTo(new GenerationConfig(false, 1f, 50, 1f, 1f, 1, GenerationConfig.UNSET,
                GenerationConfig.UNSET, 0, new int[] {3}, GenerationConfig.UNSET, 42));
        assertThat(o.eosTokenIds()).isNull();
        assertThat(GenerateOptions.builder().model(M).prompt("春").eosTokenIds(7).build().generation(new int[] {3})
                .eosTokenIds()).containsExactly(7);
        assertThat(o.threads()).isEqualTo(Runtime.getRuntime().availableProcessors());
    }

    @Test
    void generateSettingsAreCheckedOnBuild() {
        assertThatThrownBy(() -> GenerateOptions.builder().model(M).prompt("春").topP(1.5f).build())
                .isInstanceOf(UserError.class).hasMessageContaining("--top-p must be in [0, 1], got 1.5");
        assertThatThrownBy(() -> GenerateOptions.builder().model(M).prompt(" ").build())
                .hasMessageContaining("the prompt is empty");
        assertThatThrownBy(() -> GenerateOptions.builder().model(M).prompt("春").numReturnSequences(3).build())
                .hasMessageContaining("--do-sample true");
        assertThatThrownBy(() -> GenerateOptions.builder().prompt("春").build()).hasMessageContaining("--model");
    }

    @Test
    void evalAndCompareShareTheDefaultBlockSize() {
        EvalOptions e = EvalOptions.builder().model(M).textFile(Path.of("t.txt")).build();
        CompareOptions c = CompareOptions.builder().model(M).adapter(Path.of("a")).textFile(Path.of("t.txt"))
                .prompts(List.of("春")).build();
        assertThat(e.blockSize()).isZero().isEqualTo(c.blockSize());
        assertThat(Evaluation.blockSize(e.blockSize(), 96)).isEqualTo(96);
        assertThat(Evaluation.blockSize(c.blockSize(), 2048)).isEqualTo(1024);
        assertThat(Evaluation.blockSize(512, 2048)).isEqualTo(512);
        assertThat(e.batchSize()).isEqualTo(8).isEqualTo(c.batchSize());
        assertThatThrownBy(() -> EvalOptions.builder().model(M).textFile(Path.of("t.txt")).blockSize(1).build())
                .hasMessageContaining("--block-size must be at least 2");
    }

    @Test
    void compareDefaultsAndChecks() {
        CompareOptions c = CompareOptions.builder().model(M).adapter(Path.of("a")).data(Path.of("cache"))
                .prompts(List.of("春")).build();
        GenerationConfig g = c.generation(new int[] {3});
        assertThat(g.doSample()).isTrue();
        assertThat(g.topP()).isEqualTo(0.9f);
        assertThat(g.topK()).isEqualTo(50);
        assertThat(g.numReturnSequences()).isEqualTo(3);
        assertThat(g.maxNewTokens()).isEqualTo(64);
        assertThat(g.seed()).isEqualTo(42);
        assertThatThrownBy(() -> CompareOptions.builder().model(M).adapter(Path.of("a")).prompts(List.of("春")).build())
                .hasMessageContaining("--text-file FILE or --data DIR");
        assertThatThrownBy(() -> CompareOptions.builder().model(M).adapter(Path.of("a")).data(Path.of("d"))
                .textFile(Path.of("t")).prompts(List.of("春")).build()).hasMessageContaining("both given");
        assertThatThrownBy(() -> CompareOptions.builder().model(M).adapter(Path.of("a")).data(Path.of("d")).build())
                .hasMessageContaining("no prompts");
        assertThatThrownBy(() -> CompareOptions.builder().model(M).data(Path.of("d")).prompts(List.of("春")).build())
                .hasMessageContaining("nothing to compare");
    }

    @Test
    void prepareBuilderHasTheDefaultsOfOf() {
        PrepareOptions b = PrepareOptions.builder().dataset(Path.of("corpus")).output(Path.of("cache")).blockSize(512).build();
        assertThat(b).isEqualTo(PrepareOptions.of(List.of(Path.of("corpus")), Path.of("cache"), 512));
        assertThatThrownBy(() -> PrepareOptions.builder().output(Path.of("cache")).blockSize(512).build())
                .hasMessageContaining("--dataset_dir");
        assertThat(PrepareOptions.builder().dataset(Path.of("c")).output(Path.of("o")).blockSize(8).validationFraction(0.05)
                .workers(2).seed(7).skipInvalidLines(true).maxBlockSize(16).build())
                .isEqualTo(new PrepareOptions(List.of(Path.of("c")), Path.of("o"), 8, 0.05, 2, 7, true, 16));
    }
}
