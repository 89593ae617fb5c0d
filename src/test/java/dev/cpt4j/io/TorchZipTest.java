package dev.cpt4j.io;

import static dev.cpt4j.io.Fixtures.golden;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TorchZipTest {
    @TempDir Path tmp;

    @Test
    void readsTorchSaveStateDictLikeTheSafetensorsCopy() {
        // tiny_bin/pytorch_model.bin is torch.save(model.state_dict()) of the model in tiny/ (make_io_fixtures.py).
        try (TorchZip bin = TorchZip.open(golden("tiny_bin/pytorch_model.bin"));
             Safetensors st = Safetensors.open(golden("tiny/model.safetensors"))) {
            assertThat(bin.names()).containsAll(st.names()).contains("lm_head.weight");
            for (String n : st.names()) {
                assertThat(bin.info(n).shape()).containsExactly(st.info(n).shape());
                assertThat(bin.readFloats(n)).as(n).containsExactly(st.readFloats(n));
            }
            // the tied head shares wte's storage in the file
            assertThat(bin.ref("lm_head.weight").storage()).isEqualTo(bin.ref("transformer.wte.weight").storage());
            assertThat(bin.readFloats("lm_head.weight")).containsExactly(st.readFloats("transformer.wte.weight"));
        }
    }

    @Test
    void stridedViewsAndStorageOffsetsReadInRowMajorOrder() {
        try (TorchZip bin = TorchZip.open(golden("tiny_bin_gpt2model/pytorch_model.bin"));
             Safetensors st = Safetensors.open(golden("tiny/model.safetensors"))) {
            TorchPickle.TensorRef cAttn = bin.ref("h.0.attn.c_attn.weight");
            assertThat(cAttn.isContiguous()).isFalse();
            assertThat(cAttn.stride()).containsExactly(1, 8);
            assertThat(bin.ref("ln_f.bias").offset()).isEqualTo(5);
            for (String n : List.of("h.0.attn.c_attn.weight", "h.1.attn.c_attn.weight", "ln_f.bias", "wte.weight"))
                assertThat(bin.readFloats(n)).as(n).containsExactly(st.readFloats("transformer." + n));
            // non-float buffers are recognised, and refused as floats with their dtype named
            assertThat(bin.info("h.0.attn.bias").dtype()).isEqualTo(DType.BOOL);
            assertThat(bin.info("h.0.attn.bias").shape()).containsExactly(1, 1, 16, 16);
            assertThatThrownBy(() -> bin.readFloats("h.0.attn.bias")).isInstanceOf(UserError.class)
                    .hasMessageContaining("tensor 'h.0.attn.bias' has dtype bool but a floating-point tensor is expected");
            assertThat(bin.info("h.0.attn.masked_bias").shape()).isEmpty();
            assertThat(bin.readFloats("h.0.attn.masked_bias")).containsExactly(-1e4f);
        }
    }

    @Test
    void refusesPickleThatCallsOsSystem() {
        Path f = golden("bad/malicious.bin");
        assertThatThrownBy(() -> TorchZip.open(f)).isInstanceOf(UserError.class)
                .hasMessageStartingWith(f + " (archive/data.pkl): refusing to load: the pickle references the Python global 'posix.system'")
                .hasMessageContaining("cpt4j never executes code from files")
                .hasMessageNotContaining("\n");
        assertThat(Path.of("/tmp/cpt4j-pwned")).doesNotExist();
    }

    @Test
    void refusesBuiltinsEval() {
        Path f = golden("bad/eval.bin");
        assertThatThrownBy(() -> TorchZip.open(f)).isInstanceOf(UserError.class)
                .hasMessageContaining("refusing to load: the pickle references the Python global 'builtins.eval'");
    }

    @Test
    void legacyFormatIsNotSupportedWithAFix() {
        Path f = golden("bad/legacy.bin");
        assertThatThrownBy(() -> TorchZip.open(f)).isInstanceOf(UserError.class)
                .hasMessage(f + ": legacy (pre-1.6, non-zip) torch.save format is not supported; re-save it with torch>=1.6"
                        + " (torch.save(torch.load(f), f)) or convert it to safetensors");
    }

    @Test
    void notAZipAndTruncatedZip() throws Exception {
        Path txt = tmp.resolve("x.bin");
        Files.writeString(txt, "hello");
        assertThatThrownBy(() -> TorchZip.open(txt)).hasMessageContaining("not a torch.save zip file");
        byte[] good = Files.readAllBytes(golden("tiny_bin/pytorch_model.bin"));
        Path cut = tmp.resolve("cut.bin");
        Files.write(cut, java.util.Arrays.copyOf(good, good.length / 2));
        assertThatThrownBy(() -> TorchZip.open(cut)).isInstanceOf(UserError.class)
                .hasMessageContaining("cut.bin: corrupt zip").hasMessageContaining("download or save it again");
    }

    @Test
    void missingStorageEntryIsReported() throws Exception {
        // a valid pickle naming storage "0" but no archive/data/0 in the zip
        byte[] pkl = pickle("}q\u0000X\u0001\u0000\u0000\u0000wctorch._utils\n_rebuild_tensor_v2\n"
                + "((X\u0007\u0000\u0000\u0000storagectorch\nFloatStorage\nX\u0001\u0000\u0000\u00000X\u0003\u0000\u0000\u0000cpuK\u0002tQK\u0000K\u0002\u0085K\u0001\u0085\u0089ccollections\nOrderedDict\n)RtRs.");
        Path f = zip(tmp.resolve("nostore.bin"), Map.of("archive/data.pkl", pkl));
        assertThatThrownBy(() -> TorchZip.open(f)).isInstanceOf(UserError.class)
                .hasMessageContaining("tensor 'w' refers to storage 0, which the zip does not contain");
        // with the storage present it reads
        byte[] data = new byte[8];
        java.nio.ByteBuffer.wrap(data).order(java.nio.ByteOrder.LITTLE_ENDIAN).putFloat(1.5f).putFloat(-2f);
        Path ok = zip(tmp.resolve("ok.bin"), Map.of("archive/data.pkl", pkl, "archive/data/0", data));
        try (TorchZip z = TorchZip.open(ok)) {
            assertThat(z.readFloats("w")).containsExactly(1.5f, -2f);
        }
        Path big = zip(tmp.resolve("big.bin"), Map.of("archive/data.pkl", pkl, "archive/data/0", data, "archive/byteorder", "big".getBytes()));
        assertThatThrownBy(() -> TorchZip.open(big)).hasMessageContaining("byteorder is 'big'");
    }

    static byte[] pickle(String body) {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        b.write(0x80);
        b.write(2);
        byte[] s = body.getBytes(StandardCharsets.ISO_8859_1);
        b.write(s, 0, s.length);
        return b.toByteArray();
    }

    static Path zip(Path f, Map<String, byte[]> entries) throws Exception {
        try (ZipOutputStream z = new ZipOutputStream(Files.newOutputStream(f))) {
            for (var e : new java.util.TreeMap<>(entries).entrySet()) {
                z.putNextEntry(new ZipEntry(e.getKey()));
                z.write(e.getValue());
                z.closeEntry();
            }
        }
        return f;
    }
}
