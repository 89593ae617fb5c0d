package dev.cpt4j.train;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import dev.cpt4j.UserError;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointsTest {
    private static final JsonNodeFactory F = JsonNodeFactory.instance;

    private static Checkpoints.State state(long step) {
        return new Checkpoints.State(step, 100, new LrSchedule(LrSchedule.Type.COSINE, 5, 100), 7,
                F.objectNode().put("seed", 7), F.objectNode().put("cursor", step * 4), F.arrayNode(), 2);
    }

    private static AdamW optimizer(ToyBigram m) {
        return AdamW.forLanguageModel(m.layout, 1e-2, 1e-3, 0.1, 0.9, 0.999, 1e-8, m::isTrainable, m::isEmbedding);
    }

    @Test
    void roundTripRestoresTrainableTensorsMomentsAndProgress(@TempDir Path out) {
        ToyBigram m = new ToyBigram(7, 1);
        AdamW opt = optimizer(m);
        java.util.Arrays.fill(m.grads, 0.5f);
        opt.step(m.params, m.grads, 1.0, null);
        opt.step(m.params, m.grads, 0.5, null);
        Path dir = Checkpoints.save(out, m.layout, m.params, opt, state(2), 0);
        assertThat(dir).isEqualTo(out.resolve("checkpoint-2"));
        assertThat(out).isDirectoryNotContaining(p -> p.getFileName().toString().startsWith(".tmp"));

        ToyBigram fresh = new ToyBigram(7, 99);
        float[] frozen = java.util.Arrays.copyOf(fresh.params, 5);
        AdamW opt2 = optimizer(fresh);
        Checkpoints.State st = Checkpoints.load(dir, fresh.layout, fresh.params, opt2);
        assertThat(java.util.Arrays.copyOfRange(fresh.params, 5, fresh.params.length))
                .containsExactly(java.util.Arrays.copyOfRange(m.params, 5, m.params.length));
        assertThat(java.util.Arrays.copyOf(fresh.params, 5)).containsExactly(frozen);   // frozen not in the checkpoint
        assertThat(opt2.m()).containsExactly(opt.m());
        assertThat(opt2.v()).containsExactly(opt.v());
        assertThat(opt2.stepCount()).isEqualTo(2);
        assertThat(st.globalStep()).isEqualTo(2);
        assertThat(st.schedule()).isEqualTo(new LrSchedule(LrSchedule.Type.COSINE, 5, 100));
        assertThat(st.dataCursor().get("cursor").asLong()).isEqualTo(8);
        assertThat(st.threads()).isEqualTo(2);
    }

    @Test
    void safetensorsHeaderIsAlignedAndReadable(@TempDir Path out) throws Exception {
        ToyBigram m = new ToyBigram(7, 1);
        Path dir = Checkpoints.save(out, m.layout, m.params, optimizer(m), state(1), 0);
        byte[] bytes = Files.readAllBytes(dir.resolve(Checkpoints.WEIGHTS));
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertThat(n % 8).isZero();
        String header = new String(bytes, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8);
        assertThat(header).contains("\"transformer.wte.weight\":{\"dtype\":\"F32\",\"shape\":[7,7]");
        assertThat(header).doesNotContain("frozen.base");
        assertThat(bytes.length).isEqualTo(8 + n + 4L * (49 + 7));
    }

    @Test
    void rotationDeletesOnlyOurOwnFiles(@TempDir Path out) throws Exception {
        ToyBigram m = new ToyBigram(5, 1);
        AdamW opt = optimizer(m);
        for (long s : new long[] {10, 20}) Checkpoints.save(out, m.layout, m.params, opt, state(s), 0);
        Files.writeString(out.resolve("checkpoint-10/my-notes.txt"), "mine");   // a user file in an old checkpoint
        Files.createDirectories(out.resolve("checkpoint-5"));                   // not ours: no state file
        Files.writeString(out.resolve("checkpoint-5/data.bin"), "x");
        Checkpoints.save(out, m.layout, m.params, opt, state(30), 1);
        assertThat(Checkpoints.list(out)).extracting(p -> p.getFileName().toString()).containsExactly("checkpoint-30");
        assertThat(out.resolve("checkpoint-10/my-notes.txt")).hasContent("mine");
        assertThat(out.resolve("checkpoint-10/" + Checkpoints.WEIGHTS)).doesNotExist();
        assertThat(out.resolve("checkpoint-20")).doesNotExist();
        assertThat(out.resolve("checkpoint-5/data.bin")).exists();
        assertThat(Checkpoints.latest(out)).isEqualTo(out.resolve("checkpoint-30"));
    }

    @Test
    void outputDirRules(@TempDir Path tmp) throws Exception {
        Path out = tmp.resolve("out");
        assertThat(Checkpoints.prepareOutputDir(TrainerTest.opts(out, 10, 5, 0, null, false))).isEmpty(); // absent: fine
        Files.createDirectories(out);
        Files.writeString(out.resolve("notes.txt"), "user file");
        assertThatThrownBy(() -> Checkpoints.prepareOutputDir(TrainerTest.opts(out, 10, 5, 0, null, false)))
                .isInstanceOf(UserError.class).hasMessageContaining("--overwrite_output_dir");
        // with overwrite: allowed, user file kept
        Checkpoints.prepareOutputDir(TrainerTest.opts(out, 10, 5, 0, null, true));
        assertThat(out.resolve("notes.txt")).hasContent("user file");

        ToyBigram m = new ToyBigram(5, 1);
        Checkpoints.save(out, m.layout, m.params, optimizer(m), state(5), 0);
        // an interrupted save leaves a hidden temp folder: cleaned up
        Path stale = Files.createDirectories(out.resolve(Checkpoints.TMP_PREFIX + "10-123"));
        Files.writeString(stale.resolve(Checkpoints.WEIGHTS), "partial");
        assertThatThrownBy(() -> Checkpoints.prepareOutputDir(TrainerTest.opts(out, 10, 5, 0, null, false)))
                .isInstanceOf(UserError.class).hasMessageContaining("--resume_from_checkpoint true");
        assertThat(stale).doesNotExist();
        // resuming into it is allowed and keeps the checkpoint
        Checkpoints.prepareOutputDir(TrainerTest.opts(out, 10, 5, 0, "true", false));
        assertThat(Checkpoints.resolveResume(TrainerTest.opts(out, 10, 5, 0, "true", false)))
                .isEqualTo(out.resolve("checkpoint-5"));
        // overwrite without resume: our old checkpoints go, user files stay
        Checkpoints.prepareOutputDir(TrainerTest.opts(out, 10, 5, 0, null, true));
        assertThat(Checkpoints.list(out)).isEmpty();
        assertThat(out.resolve("notes.txt")).hasContent("user file");
    }

    @Test
    void resumeErrorsAreClear(@TempDir Path tmp) throws Exception {
        assertThatThrownBy(() -> Checkpoints.resolveResume(TrainerTest.opts(tmp, 10, 5, 0, "true", false)))
                .isInstanceOf(UserError.class).hasMessageContaining("no complete cpt4j checkpoint");
        Path notOurs = Files.createDirectories(tmp.resolve("checkpoint-3"));
        assertThatThrownBy(() -> Checkpoints.resolveResume(TrainerTest.opts(tmp, 10, 5, 0, notOurs.toString(), false)))
                .isInstanceOf(UserError.class).hasMessageContaining("not a complete cpt4j checkpoint");
        // a checkpoint of a different LoRA setup: the tensor list does not match
        ToyBigram m = new ToyBigram(5, 1);
        Path dir = Checkpoints.save(tmp.resolve("o"), m.layout, m.params, optimizer(m), state(4), 0);
        AdamW onlyBias = AdamW.forLanguageModel(m.layout, 1e-2, 1e-3, 0.1, 0.9, 0.999, 1e-8,
                n -> n.equals("lm_head.bias"), n -> false);
        assertThatThrownBy(() -> Checkpoints.load(dir, m.layout, m.params, onlyBias))
                .isInstanceOf(UserError.class).hasMessageContaining("--lora_rank/--trainable/--modules_to_save");
    }
}
