package dev.cpt4j.io;

import static dev.cpt4j.io.Fixtures.golden;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import dev.cpt4j.UserError;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {
    @TempDir Path tmp;

    @Test
    void readsTransformersFileAndMetadata() {
        try (Safetensors st = Safetensors.open(golden("tiny/model.safetensors"))) {
            assertThat(st.metadata()).containsEntry("format", "pt");
            assertThat(st.names()).hasSize(2 + 2 * 12 + 2).contains("transformer.wte.weight").doesNotContain("lm_head.weight");
            TensorInfo wte = st.info("transformer.wte.weight");
            assertThat(wte.dtype()).isEqualTo(DType.F32);
            assertThat(wte.shape()).containsExactly(61, 8);
            assertThat(st.info("transformer.h.0.attn.c_attn.weight").shape()).containsExactly(8, 24);
            assertThat(st.info("nope")).isNull();
            float[] wteVals = st.readFloats("transformer.wte.weight");
            assertThat(wteVals).hasSize(61 * 8);
            // read into an offset of a bigger buffer: the same values, nothing else touched
            float[] big = new float[1000];
            st.readFloats("transformer.wte.weight", big, 7);
            assertThat(big[6]).isZero();
            assertThat(java.util.Arrays.copyOfRange(big, 7, 7 + 488)).containsExactly(wteVals);
            assertThat(big[7 + 488]).isZero();
        }
    }

    @Test
    void writerReproducesTheRustLibraryBytes() throws Exception {
        // tiny/model.safetensors was written by transformers (safetensors' Rust writer); rewriting its tensors with
        // the same metadata must give the very same bytes (sorted names, compact JSON, space padding to 8).
        Path src = golden("tiny/model.safetensors");
        Path out = tmp.resolve("copy.safetensors");
        List<Safetensors.FloatTensor> ts = new ArrayList<>();
        try (Safetensors st = Safetensors.open(src)) {
            for (String n : st.names()) ts.add(new Safetensors.FloatTensor(n, st.info(n).shape(), st.readFloats(n), 0));
        }
        java.util.Collections.reverse(ts);  // input order must not matter
        Safetensors.write(out, ts, Map.of("format", "pt"), DType.F32);
        assertThat(Files.readAllBytes(out)).isEqualTo(Files.readAllBytes(src));
    }

    @Test
    void roundTripF32F16Bf16WithRoundingToNearestEven() {
        Random r = new Random(42);
        float[] buf = new float[3 + 5 * 7 + 11];
        for (int i = 0; i < buf.length; i++) buf[i] = (float) (r.nextGaussian() * Math.pow(10, r.nextInt(7) - 3));
        buf[3] = Float.NaN;
        buf[4] = Float.POSITIVE_INFINITY;
        buf[5] = -0.0f;
        buf[6] = 65520f;       // rounds to f16 infinity
        buf[7] = 1.00390625f;  // 1 + 2^-8: a bf16 tie, rounds to even (1.0)
        buf[8] = 1.01171875f;  // 1 + 3·2^-8: a bf16 tie, rounds to even (1 + 2^-6)
        for (DType dt : new DType[] {DType.F32, DType.F16, DType.BF16}) {
            Path f = tmp.resolve("t_" + dt + ".safetensors");
            Safetensors.write(f, List.of(
                    new Safetensors.FloatTensor("b", new long[] {5, 7}, buf, 3),
                    new Safetensors.FloatTensor("a", new long[] {11}, buf, 38),
                    new Safetensors.FloatTensor("scalar", new long[] {}, buf, 0)), Map.of(), dt);
            try (Safetensors st = Safetensors.open(f)) {
                assertThat(st.metadata()).isEmpty();
                assertThat(st.names()).containsExactly("a", "b", "scalar");
                assertThat(st.info("b").shape()).containsExactly(5, 7);
                assertThat(st.info("scalar").shape()).isEmpty();
                float[] b = st.readFloats("b");
                for (int i = 0; i < b.length; i++) {
                    float x = buf[3 + i];
                    float want = switch (dt) {
                        case F32 -> x;
                        case F16 -> Float.float16ToFloat(Float.floatToFloat16(x));
                        default -> DType.bf16ToFloat(DType.floatToBf16(x));
                    };
                    assertThat(Float.floatToIntBits(b[i])).as("%s element %d (%s)", dt, i, x).isEqualTo(Float.floatToIntBits(want));
                }
                if (dt == DType.BF16) {
                    assertThat(b[4]).isEqualTo(1.0f);
                    assertThat(b[5]).isEqualTo(1.015625f);
                }
                if (dt == DType.F16) assertThat(b[3]).isInfinite();
            }
            long headerLen = ByteBuffer.wrap(readPrefix(f)).order(ByteOrder.LITTLE_ENDIAN).getLong();
            assertThat(headerLen % 8).isZero();
        }
    }

    private static byte[] readPrefix(Path f) {
        try (var in = Files.newInputStream(f)) {
            return in.readNBytes(8);
        } catch (java.io.IOException e) {
            throw new RuntimeException(e);
        }
    }

    @Test
    void halfPrecisionFixturesMatchTorchRounding() throws Exception {
        // tiny_f16 / tiny_bf16 hold tiny's weights cast by torch (.to(float16 / bfloat16)): our conversions agree bit for bit.
        try (Safetensors f32 = Safetensors.open(golden("tiny/model.safetensors"));
             Safetensors f16 = Safetensors.open(golden("tiny_f16/model.safetensors"));
             Safetensors bf16 = Safetensors.open(golden("tiny_bf16/model.safetensors"))) {
            for (String n : f32.names()) {
                assertThat(f16.info(n).dtype()).isEqualTo(DType.F16);
                assertThat(bf16.info(n).dtype()).isEqualTo(DType.BF16);
                float[] x = f32.readFloats(n), h = f16.readFloats(n), b = bf16.readFloats(n);
                for (int i = 0; i < x.length; i++) {
                    assertThat(h[i]).isEqualTo(Float.float16ToFloat(Float.floatToFloat16(x[i])));
                    assertThat(b[i]).isEqualTo(DType.bf16ToFloat(DType.floatToBf16(x[i])));
                }
            }
        }
    }

    @Test
    void truncatedFileNamesTheTensorAndSaysTruncated() {
        Path f = golden("bad/truncated.safetensors");
        assertThatThrownBy(() -> Safetensors.open(f)).isInstanceOf(UserError.class)
                .hasMessageStartingWith(f.toString() + ": tensor '")
                .hasMessageContaining("the file is truncated")
                .hasMessageContaining("download or save it again")
                .hasMessageNotContaining("\n");
    }

    @Test
    void headerLengthBeyondTheFileIsRefusedBeforeReadingIt() {
        Path f = golden("bad/huge_header.safetensors");
        assertThatThrownBy(() -> Safetensors.open(f)).isInstanceOf(UserError.class)
                .hasMessage(f + ": safetensors header length 1000000000000 is beyond the end of the file (40 bytes);"
                        + " the file is truncated or not safetensors — download or save it again");
    }

    @Test
    void malformedHeadersAreOneLineErrors() throws Exception {
        Path tooShort = tmp.resolve("short.safetensors");
        Files.write(tooShort, new byte[] {1, 2, 3});
        assertThatThrownBy(() -> Safetensors.open(tooShort)).hasMessageContaining("3 bytes, too short to be safetensors");

        Path unsignedHuge = tmp.resolve("neg.safetensors");
        Files.write(unsignedHuge, new byte[] {-1, -1, -1, -1, -1, -1, -1, -1, '{', '}'});
        assertThatThrownBy(() -> Safetensors.open(unsignedHuge)).hasMessageContaining("header length 18446744073709551615 is beyond the end");

        Path notJson = Fixtures.rawSafetensors(tmp.resolve("nj.safetensors"), "{\"a\": [1,", new byte[0]);
        assertThatThrownBy(() -> Safetensors.open(notJson)).isInstanceOf(UserError.class)
                .hasMessageContaining("nj.safetensors (safetensors header): invalid JSON");

        Path noBrace = Fixtures.rawSafetensors(tmp.resolve("nb.safetensors"), "[1,2,3]", new byte[0]);
        assertThatThrownBy(() -> Safetensors.open(noBrace)).hasMessageContaining("header does not start with '{'");

        Path badDtype = Fixtures.rawSafetensors(tmp.resolve("dt.safetensors"),
                "{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", new byte[2]);
        assertThatThrownBy(() -> Safetensors.open(badDtype)).hasMessageContaining("tensor 'w' has dtype F8_E4M3, which cpt4j does not read");

        Path badSpan = Fixtures.rawSafetensors(tmp.resolve("span.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", new byte[24]);
        assertThatThrownBy(() -> Safetensors.open(badSpan))
                .hasMessageContaining("tensor 'w' data_offsets [0,20] span 20 bytes but dtype F32 and shape [2,3] need 24");

        Path overlap = Fixtures.rawSafetensors(tmp.resolve("ov.safetensors"),
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                new byte[12]);
        assertThatThrownBy(() -> Safetensors.open(overlap)).hasMessageContaining("tensors 'a' and 'b' overlap");

        Path badShape = Fixtures.rawSafetensors(tmp.resolve("sh.safetensors"),
                "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", new byte[4]);
        assertThatThrownBy(() -> Safetensors.open(badShape)).hasMessageContaining("tensor 'w' has an invalid shape [-1]");

        Path badMeta = Fixtures.rawSafetensors(tmp.resolve("md.safetensors"), "{\"__metadata__\":{\"x\":1}}", new byte[0]);
        assertThatThrownBy(() -> Safetensors.open(badMeta)).hasMessageContaining("__metadata__ value 'x' must be a string");

        assertThatThrownBy(() -> Safetensors.open(tmp.resolve("absent.safetensors")))
                .hasMessage(tmp.resolve("absent.safetensors") + ": file not found; check the path");
    }

    @Test
    void integerTensorsAreRecognisedButNotReadAsFloats() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(8 * 3 + 4).order(ByteOrder.LITTLE_ENDIAN);
        data.putLong(-5).putLong(7).putLong(1L << 40).put(new byte[] {1, 0, 1, 1});
        Path f = Fixtures.rawSafetensors(tmp.resolve("ints.safetensors"),
                "{\"ids\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[0,24]},\"mask\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[24,28]}}",
                data.array());
        try (Safetensors st = Safetensors.open(f)) {
            assertThat(st.info("ids").dtype()).isEqualTo(DType.I64);
            assertThat(st.info("mask").dtype()).isEqualTo(DType.BOOL);
            assertThat(st.readLongs("ids")).containsExactly(-5, 7, 1L << 40);
            assertThat(st.raw("mask").toArray(java.lang.foreign.ValueLayout.JAVA_BYTE)).containsExactly(1, 0, 1, 1);
            assertThatThrownBy(() -> st.readFloats("ids")).isInstanceOf(UserError.class)
                    .hasMessage(f + ": tensor 'ids' has dtype I64 but a floating-point tensor (F32, F16, BF16, F64) is expected here;"
                            + " the file does not hold what this model needs");
        }
    }

    @Test
    void f64IsConvertedToFloat() throws Exception {
        ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putDouble(0.1).putDouble(-3e40);
        Path f = Fixtures.rawSafetensors(tmp.resolve("d.safetensors"),
                "{\"x\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}", data.array());
        try (Safetensors st = Safetensors.open(f)) {
            assertThat(st.readFloats("x")).containsExactly(0.1f, Float.NEGATIVE_INFINITY);
        }
    }

    @Test
    void writeIsAtomicAndLeavesNoTemporaryFiles() throws Exception {
        Path f = tmp.resolve("w.safetensors");
        Files.writeString(f, "old content");
        float[] x = {1, 2, 3};
        Safetensors.write(f, List.of(new Safetensors.FloatTensor("x", new long[] {3}, x, 0)), Map.of("format", "pt"), DType.F32);
        try (var files = Files.list(tmp)) {
            assertThat(files.map(p -> p.getFileName().toString())).containsExactly("w.safetensors");
        }
        try (Safetensors st = Safetensors.open(f)) {
            assertThat(st.readFloats("x")).containsExactly(1, 2, 3);
        }
    }
}
