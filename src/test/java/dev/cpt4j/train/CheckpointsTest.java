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

    /** The logging window travels exactly (its sum is a double of any bits); a manifest without one reads as empty. */
    @Test
    void theLogWindowRoundTripsBitForBit(@TempDir Path out) throws Exception {
        ToyBigram m = new ToyBigram(7, 1);
        AdamW opt = optimizer(m);
        double sum = 3.8622803688049316 + 3.857118606567383 + Math.ulp(7.0);   // not a short decimal
        Checkpoints.State s = state(3);
        Path dir = Checkpoints.save(out, m.layout, m.params, opt, new Checkpoints.State(3, 100, s.schedule(), 7, s.rng(),
                s.dataCursor(), s.logHistory(), 2, null, new Checkpoints.LogWindow(sum, 2)), 0);
        Checkpoints.LogWindow back = Checkpoints.load(dir, m.layout, m.params, opt).logWindow();
        assertThat(Double.doubleToRawLongBits(back.lossSum())).isEqualTo(Double.doubleToRawLongBits(sum));
        assertThat(back.steps()).isEqualTo(2);

        Path plain = Checkpoints.save(out, m.layout, m.params, opt, state(4), 0);
        assertThat(Checkpoints.load(plain, m.layout, m.params, opt).logWindow()).isEqualTo(Checkpoints.LogWindow.EMPTY);
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

    private static void setBytes(Path f, long at, byte[] b) throws Exception {
        try (var ch = java.nio.channels.FileChannel.open(f, java.nio.file.StandardOpenOption.WRITE)) {
            ch.write(ByteBuffer.wrap(b), at);
        }
    }

    /** Rewrites the manifest's size and CRC32C of {@code file}, as if the damage had happened before the save. */
    private static void reseal(Path dir, String file) throws Exception {
        var json = new com.fasterxml.jackson.databind.ObjectMapper();
        var st = (com.fasterxml.jackson.databind.node.ObjectNode) json.readTree(dir.resolve(Checkpoints.STATE).toFile());
        var e = (com.fasterxml.jackson.databind.node.ObjectNode) st.get("files").get(file);
        e.put("bytes", Files.size(dir.resolve(file)));
        e.put("crc32c", String.format("%08x", dev.cpt4j.io.AtomicFiles.crc32c(dir.resolve(file))));
        Files.write(dir.resolve(Checkpoints.STATE), json.writeValueAsBytes(st));
    }

    /** Issue 12 items 4 and 10: same-size corruption and truncation are caught by the manifest, naming the intact one. */
    @Test
    void damagedOrTruncatedFilesAreRefusedNamingTheNewestIntactCheckpoint(@TempDir Path out) throws Exception {
        ToyBigram m = new ToyBigram(7, 1);
        AdamW opt = optimizer(m);
        for (long s : new long[] {2, 4, 6}) Checkpoints.save(out, m.layout, m.params, opt, state(s), 0);
        Path six = out.resolve("checkpoint-6"), four = out.resolve("checkpoint-4");
        Path optFile = six.resolve(Checkpoints.OPTIMIZER);
        long size = Files.size(optFile);
        setBytes(optFile, size - 4, new byte[] {0, 0, (byte) 0xc0, 0x7f});   // a NaN, same size: only the CRC can tell
        assertThatThrownBy(() -> Checkpoints.load(six, m.layout, m.params, optimizer(m)))
                .isInstanceOf(UserError.class).hasMessageContaining(optFile.toString()).hasMessageContaining("CRC32C")
                .hasMessageContaining("the newest intact checkpoint is " + four);

        Path weights = four.resolve(Checkpoints.WEIGHTS);          // a truncated file in the next one down
        try (var ch = java.nio.channels.FileChannel.open(weights, java.nio.file.StandardOpenOption.WRITE)) {
            ch.truncate(Files.size(weights) - 10);
        }
        assertThatThrownBy(() -> Checkpoints.load(four, m.layout, m.params, optimizer(m)))
                .isInstanceOf(UserError.class).hasMessageContaining(weights.toString()).hasMessageContaining("truncated")
                .hasMessageContaining("the newest intact checkpoint is " + out.resolve("checkpoint-2"));
        assertThatThrownBy(() -> Checkpoints.load(six, m.layout, m.params, optimizer(m)))
                .hasMessageContaining("the newest intact checkpoint is " + out.resolve("checkpoint-2"));
        assertThat(Checkpoints.newestIntact(out, Long.MAX_VALUE)).isEqualTo(out.resolve("checkpoint-2"));
        Checkpoints.load(out.resolve("checkpoint-2"), m.layout, m.params, optimizer(m));   // the intact one loads
    }

    /** Issue 12 item 4: a checkpoint holding NaN (sealed with a matching CRC) is refused naming file and tensor. */
    @Test
    void nonFiniteValuesAreNeverWrittenNorResumed(@TempDir Path out) throws Exception {
        ToyBigram m = new ToyBigram(7, 1);
        AdamW opt = optimizer(m);
        Checkpoints.save(out, m.layout, m.params, opt, state(2), 0);
        opt.m()[3] = Float.NaN;
        assertThatThrownBy(() -> Checkpoints.save(out, m.layout, m.params, opt, state(4), 0))
                .isInstanceOf(UserError.class).hasMessageContaining("exp_avg of transformer.wte.weight holds NaN")
                .hasMessageContaining("not writing");
        assertThat(out.resolve("checkpoint-4")).doesNotExist();
        assertThat(out).isDirectoryNotContaining(p -> p.getFileName().toString().startsWith(".tmp"));

        Path two = out.resolve("checkpoint-2"), f = two.resolve(Checkpoints.WEIGHTS);
        setBytes(f, Files.size(f) - 4, new byte[] {0, 0, (byte) 0x80, 0x7f});   // +Inf: the last wte element
        reseal(two, Checkpoints.WEIGHTS);
        assertThatThrownBy(() -> Checkpoints.load(two, m.layout, m.params, optimizer(m)))
                .isInstanceOf(UserError.class).hasMessageContaining(f.toString())
                .hasMessageContaining("tensor transformer.wte.weight holds an infinity (element 48)");
    }

    /** Issue 12 item 10: overlapping data offsets are refused by the one safetensors reader. */
    @Test
    void overlappingTensorOffsetsAreRefused(@TempDir Path out) throws Exception {
        ToyBigram m = new ToyBigram(7, 1);
        Path dir = Checkpoints.save(out, m.layout, m.params, optimizer(m), state(2), 0);
        Path f = dir.resolve(Checkpoints.WEIGHTS);
        byte[] bytes = Files.readAllBytes(f);
        long n = ByteBuffer.wrap(bytes, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        String header = new String(bytes, 8, (int) n, java.nio.charset.StandardCharsets.UTF_8);
        // lm_head.bias (7 floats) at [0, 28) moved to [4, 32), overlapping the wte table at [28, 224): same header length
        String bad = header.replace("\"data_offsets\":[0,28]", "\"data_offsets\":[4,32]");
        assertThat(bad).isNotEqualTo(header);
        System.arraycopy(bad.getBytes(java.nio.charset.StandardCharsets.UTF_8), 0, bytes, 8, (int) n);
        Files.write(f, bytes);
        reseal(dir, Checkpoints.WEIGHTS);
        assertThatThrownBy(() -> Checkpoints.load(dir, m.layout, m.params, optimizer(m)))
                .isInstanceOf(UserError.class).hasMessageContaining(f.toString()).hasMessageContaining("overlap");
    }

    /** Issue 12 item 3: a full disk names the file and the cause, leaves no temporary file, keeps the previous one. */
    @Test
    void aFailedWriteNamesTheFileRemovesItsTemporaryFilesAndKeepsThePreviousCheckpoint(@TempDir Path out) throws Exception {
        ToyBigram m = new ToyBigram(7, 1);
        AdamW opt = optimizer(m);
        Path two = Checkpoints.save(out, m.layout, m.params, opt, state(2), 0);
        for (String file : new String[] {Checkpoints.OPTIMIZER, Checkpoints.WEIGHTS, "adapter_model.safetensors", Checkpoints.STATE}) {
            FullDisk disk = new FullDisk(file, 100);
            Checkpoints.Extra adapter = dir -> dev.cpt4j.io.AtomicFiles.write(dir.resolve("adapter_model.safetensors"),
                    new byte[300], disk);
            assertThatThrownBy(() -> Checkpoints.save(out, m.layout, m.params, opt, state(4), 1, adapter, disk))
                    .as(file).isInstanceOf(UserError.class)
                    .hasMessageContaining("cannot write " + out.resolve("checkpoint-4").resolve(file) + " (No space left on device)")
                    .hasMessageContaining("the previous checkpoint " + two + " is intact");
            assertThat(out.resolve("checkpoint-4")).doesNotExist();
            try (var all = Files.walk(out)) {
                assertThat(all.map(p -> p.getFileName().toString())).as(file).noneMatch(p -> p.startsWith("."));
            }
            assertThat(Checkpoints.list(out)).containsExactly(two);         // rotation did not run either
            Checkpoints.load(two, m.layout, m.params, optimizer(m));
        }
    }

    /** Issue 12 item 2: what the run's Extra writes is part of the checkpoint: checksummed, rotated with it. */
    @Test
    void extraFilesAreListedVerifiedAndRotated(@TempDir Path out) throws Exception {
        ToyBigram m = new ToyBigram(5, 1);
        AdamW opt = optimizer(m);
        Checkpoints.Extra adapter = dir -> dev.cpt4j.io.AtomicFiles.writeString(dir.resolve("adapter_config.json"), "{}");
        Path ten = Checkpoints.save(out, m.layout, m.params, opt, state(10), 1, adapter, dev.cpt4j.io.AtomicFiles.Channels.DIRECT);
        assertThat(ten.resolve("adapter_config.json")).hasContent("{}");
        assertThat(Files.readString(ten.resolve(Checkpoints.STATE))).contains("\"adapter_config.json\"").contains("crc32c");
        Files.writeString(ten.resolve("adapter_config.json"), "{ }");
        assertThatThrownBy(() -> Checkpoints.load(ten, m.layout, m.params, optimizer(m)))
                .hasMessageContaining("adapter_config.json has 3 bytes, 2 were written")
                .hasMessageContaining("no intact earlier checkpoint");
        Checkpoints.save(out, m.layout, m.params, opt, state(20), 1, adapter, dev.cpt4j.io.AtomicFiles.Channels.DIRECT);
        assertThat(ten).doesNotExist();                                     // its adapter file went with it
    }
}
